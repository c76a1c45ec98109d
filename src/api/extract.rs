//! Request extractors that fail with the API's JSON error shape instead of axum's plain-text
//! rejections: a JSON body ([`Body`]), query parameters ([`Params`]) and a path's group name
//! ([`GroupName`]).

use std::collections::BTreeMap;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Bodies larger than this are refused with 413: a group spec or a simulate upload fits.
pub(crate) const BODY_LIMIT: usize = 1024 * 1024;

/// A JSON body of type `T`. Refuses a missing or other Content-Type (415), a body over
/// [`BODY_LIMIT`] (413), bad JSON syntax (400) and a body of the wrong shape (422), naming
/// the field at fault (`strategies[0].target_per_replica`) via `serde_path_to_error`.
pub(crate) struct Body<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let bytes = read_json_bytes(req).await?;
        parse(&bytes).map(Body)
    }
}

/// The body's bytes, when the request says it is JSON and it fits the limit.
pub(crate) async fn read_json_bytes(req: Request) -> Result<axum::body::Bytes, ApiError> {
    let headers = req.headers();
    let json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|mime| mime == "application/json" || mime.ends_with("+json"));
    if !json {
        return Err(ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON: send `Content-Type: application/json`",
        ));
    }
    // A declared length over the limit is refused before a byte is read.
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        return Err(too_large());
    }
    // A client that stops sending mid-body would otherwise hold its connection (and a
    // task) for as long as it likes.
    match tokio::time::timeout(
        BODY_TIMEOUT,
        axum::body::to_bytes(req.into_body(), BODY_LIMIT),
    )
    .await
    {
        Ok(Ok(bytes)) => Ok(bytes),
        // The limit's error is http-body-util's `LengthLimitError`, known by its text here
        // (that crate is not a direct dependency); any other is the connection's.
        Ok(Err(e)) if e.to_string().contains("length limit exceeded") => Err(too_large()),
        Ok(Err(e)) => Err(ApiError::bad_request(format!(
            "the body could not be read: {e}"
        ))),
        Err(_) => Err(ApiError::bad_request(format!(
            "the body did not arrive within {} s",
            BODY_TIMEOUT.as_secs()
        ))),
    }
}

/// How long reading a body may take.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

fn too_large() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the body is larger than {BODY_LIMIT} bytes (1 MiB)"),
    )
}

/// `bytes` as a `T`, with the path of the field at fault in the error.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        // `.` is the root; `?` a syntax error's unknown place: neither names a field.
        let data = inner.classify() == serde_json::error::Category::Data;
        let mut field = (data && path != "." && path != "?" && !path.is_empty()).then_some(path);
        // A missing or unknown field is reported at its parent: name the field itself.
        if let Some(name) = ["missing field `", "unknown field `"]
            .iter()
            .filter(|_| data)
            .find_map(|p| message.split(p).nth(1)?.split('`').next())
            && !field.as_deref().is_some_and(|f| f.ends_with(name))
        {
            field = Some(match field {
                Some(parent) => format!("{parent}.{name}"),
                None => name.to_string(),
            });
        }
        let err = if data {
            ApiError::unprocessable(message)
        } else {
            ApiError::bad_request(format!("invalid JSON: {message}"))
        };
        match field {
            Some(f) => err.field(f),
            None => err,
        }
    })?;
    // Anything after the value is a syntax error too.
    de.end()
        .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    Ok(value)
}

/// The query string's parameters, decoded. Handlers take what they know with
/// [`Params::take`] and then call [`Params::finish`], which refuses any left over: a typo
/// (`?grup=web`) is a 400, not a silently ignored filter.
pub(crate) struct Params(BTreeMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let mut map = BTreeMap::new();
        for pair in parts.uri.query().unwrap_or("").split('&') {
            if pair.is_empty() {
                continue;
            }
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode(k).ok_or_else(|| {
                ApiError::bad_request("a query parameter's name is not valid percent-encoded UTF-8")
            })?;
            let value = decode(v).ok_or_else(|| {
                ApiError::bad_request("the value is not valid percent-encoded UTF-8")
                    .field(key.clone())
            })?;
            if map.insert(key.clone(), value).is_some() {
                return Err(ApiError::bad_request(format!("`{key}` is given twice")).field(key));
            }
        }
        Ok(Params(map))
    }
}

impl Params {
    /// The parameter's value (None when absent; an empty value counts as absent).
    pub(crate) fn take(&mut self, name: &str) -> Option<String> {
        self.0.remove(name).filter(|v| !v.is_empty())
    }

    /// Refuse parameters the route does not know.
    pub(crate) fn finish(self) -> Result<(), ApiError> {
        match self.0.into_keys().next() {
            Some(k) => {
                Err(ApiError::bad_request(format!("unknown query parameter `{k}`")).field(k))
            }
            None => Ok(()),
        }
    }
}

/// `%xx` and `+` decoded; None when the result is not UTF-8 or an escape is broken.
fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The `{name}` segment of a group route, checked to be a possible group name (1 to 63
/// letters, digits, `-`, `_` and `.`): anything else is 400, not a lookup.
pub(crate) struct GroupName(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for GroupName {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        name_segment(parts, state, "group").await.map(GroupName)
    }
}

/// The `{name}` segment of a token route (`/api/v1/tokens/{name}`), with the same rule.
pub(crate) struct TokenName(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for TokenName {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        name_segment(parts, state, "token").await.map(TokenName)
    }
}

/// The route's `{name}`, checked by [`valid_name`]; `what` names the thing in the error.
async fn name_segment<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
    what: &str,
) -> Result<String, ApiError> {
    let axum::extract::Path(params) =
        axum::extract::Path::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()).field("name"))?;
    let name = params
        .into_iter()
        .find(|(k, _)| k == "name")
        .map(|(_, v)| v)
        .unwrap_or_default();
    if !valid_name(&name) {
        return Err(ApiError::bad_request(format!(
            "{name:?} is not a {what} name: 1 to 63 letters, digits, `-`, `_` and `.`, starting with a letter or digit"
        ))
        .field("name"));
    }
    Ok(name)
}

/// A name a group may have (the config's rule).
pub(crate) fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() <= 63
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}
