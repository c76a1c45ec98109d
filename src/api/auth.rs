//! Bearer-token authentication, roles, and the gate every routed request passes through.
//!
//! Tokens live in the store as SHA-256 hashes only. They are cached here and read again when
//! the store's `tokens_version` moves, which is checked at most once a second, so a busy
//! dashboard does not query the database on every request. A presented secret is hashed and
//! compared with every live token's hash in constant time ([`secret::same`]).
//!
//! The gate also writes the audit log: every mutating call (allowed or not) and every denied
//! read, with the before/after that the handler attached to its response ([`AuditNote`]).

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use scalepilot_store::{NewAudit, Role, Store};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult};
use super::{AppState, secret};

/// How often the store's token version is checked, at most.
const REFRESH_EVERY: Duration = Duration::from_secs(1);
/// How long a token read may take before the cached tokens are used as they are.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// Who is calling: the token's name and role.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Caller {
    pub(crate) name: String,
    #[schema(value_type = String, example = "operator")]
    pub(crate) role: Role,
}

/// What a handler tells the audit log about a call: the state before and after, a detail.
#[derive(Debug, Clone, Default)]
pub(crate) struct AuditNote {
    pub(crate) before: Option<Value>,
    pub(crate) after: Option<Value>,
    pub(crate) detail: Option<String>,
}

/// `response` with `note` attached for the audit log.
pub(crate) fn noted(response: impl IntoResponse, note: AuditNote) -> Response {
    let mut r = response.into_response();
    r.extensions_mut().insert(note);
    r
}

/// The route template a request matched, left on the response for the metrics.
#[derive(Debug, Clone)]
pub(crate) struct RouteTemplate(pub(crate) String);

/// The live tokens, as last read from the store.
#[derive(Default)]
pub(crate) struct Tokens {
    cache: tokio::sync::Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    /// The store's `tokens_version` the list was read at (None: never read).
    version: Option<i64>,
    checked: Option<Instant>,
    /// (name, role, hash) of every token not revoked.
    live: Vec<(String, Role, String)>,
}

impl Tokens {
    /// The caller whose secret this is, if any live token has its hash.
    async fn lookup(&self, store: &dyn Store, presented: &str) -> ApiResult<Option<Caller>> {
        let mut cache = self.cache.lock().await;
        let due = cache.checked.is_none_or(|at| at.elapsed() >= REFRESH_EVERY);
        if due {
            match tokio::time::timeout(STORE_TIMEOUT, refresh(store, cache.version)).await {
                Ok(Ok(Some((version, live)))) => {
                    cache.version = Some(version);
                    cache.live = live;
                    cache.checked = Some(Instant::now());
                }
                Ok(Ok(None)) => cache.checked = Some(Instant::now()),
                // The store is away: the tokens read before still hold; with none read yet,
                // nobody can be authenticated.
                Ok(Err(e)) if cache.version.is_none() => return Err(ApiError::store(e)),
                Err(_) if cache.version.is_none() => {
                    return Err(ApiError::unavailable(
                        "the store did not answer within 2 s: tokens cannot be checked",
                    ));
                }
                Ok(Err(e)) => tracing::warn!("api: cannot read tokens, using the cached ones: {e}"),
                Err(_) => tracing::warn!("api: reading tokens timed out, using the cached ones"),
            }
        }
        let hash = secret::hash(presented);
        // Every live token is compared, the match or not, so the time taken does not say
        // which one (or how much of one) matched.
        let mut found = None;
        for (name, role, stored) in &cache.live {
            if secret::same(&hash, stored) && found.is_none() {
                found = Some(Caller {
                    name: name.clone(),
                    role: *role,
                });
            }
        }
        Ok(found)
    }
}

/// The live tokens, when the version moved from `known` (None: unchanged).
async fn refresh(
    store: &dyn Store,
    known: Option<i64>,
) -> scalepilot_store::Result<Option<(i64, Vec<(String, Role, String)>)>> {
    let version = store.tokens_version().await?;
    if known == Some(version) {
        return Ok(None);
    }
    let live = store
        .tokens()
        .await?
        .into_iter()
        .filter(|t| t.revoked_ms.is_none())
        .map(|t| (t.name, t.role, t.hash))
        .collect();
    Ok(Some((version, live)))
}

/// The role a route needs; None for the public ones. Reads need viewer (the audit log
/// admin); changing groups' definitions needs admin; every other change needs operator.
/// `force` on a manual scale needs admin too, checked by its handler (it is in the body).
///
/// Public: health and readiness (probes carry no token), `/metrics` (Prometheus scrapers
/// usually carry none, and it exposes counts and timings, no secrets or group specs), the
/// OpenAPI document, and the dashboard's files (it asks for a token itself).
pub(crate) fn needed(method: &Method, route: &str) -> Option<Role> {
    let public = matches!(
        route,
        "/healthz" | "/readyz" | "/metrics" | "/" | "/assets/{*path}" | "/api/v1/openapi.json"
    );
    if public {
        return None;
    }
    Some(match *method {
        Method::GET | Method::HEAD if matches!(route, "/api/v1/audit" | "/api/v1/tokens") => {
            Role::Admin
        }
        Method::GET | Method::HEAD => Role::Viewer,
        Method::POST if matches!(route, "/api/v1/groups" | "/api/v1/tokens") => Role::Admin,
        Method::PUT | Method::DELETE => Role::Admin,
        _ => Role::Operator,
    })
}

/// A secret from `Authorization: Bearer …`; Err when the header is there but unusable.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is not ASCII"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(ApiError::unauthorized(
            "the Authorization header must be `Bearer <token>`",
        )),
    }
}

/// Authenticate and authorize, run the handler, and audit: the middleware on every route.
pub(crate) async fn gate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().clone();
    // As requested, query string included: the audit log shows which page or filter.
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let mut response = match needed(&method, &route) {
        None => next.run(req).await,
        Some(need) => {
            let who = match bearer(req.headers()) {
                Ok(Some(secret)) => {
                    state
                        .tokens
                        .lookup(&*state.store, secret)
                        .await
                        .and_then(|c| {
                            c.ok_or_else(|| ApiError::unauthorized("unknown or revoked token"))
                        })
                }
                Ok(None) => Err(ApiError::unauthorized(
                    "no token: send `Authorization: Bearer <token>`",
                )),
                Err(e) => Err(e),
            };
            let mutating = !matches!(method, Method::GET | Method::HEAD);
            match who {
                Err(e) => {
                    let mut response = unauthorized(e.clone());
                    if e.status == StatusCode::UNAUTHORIZED {
                        audit(
                            &state,
                            None,
                            &method,
                            &path,
                            &mut response,
                            Some(&e.message),
                        )
                        .await;
                    }
                    response
                }
                Ok(caller) if !caller.role.allows(need) => {
                    let e = ApiError::forbidden(format!(
                        "token `{}` has role {}; {} {} needs {}",
                        caller.name,
                        caller.role.as_str(),
                        method,
                        route,
                        need.as_str()
                    ));
                    let mut response = e.clone().into_response();
                    audit(
                        &state,
                        Some(&caller),
                        &method,
                        &path,
                        &mut response,
                        Some(&e.message),
                    )
                    .await;
                    response
                }
                Ok(caller) => {
                    req.extensions_mut().insert(caller.clone());
                    let mut response = next.run(req).await;
                    let denied = matches!(
                        response.status(),
                        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
                    );
                    if mutating || denied {
                        audit(&state, Some(&caller), &method, &path, &mut response, None).await;
                    }
                    response
                }
            }
        }
    };
    response.extensions_mut().insert(RouteTemplate(route));
    response
}

/// A 401 with the header that says which scheme to use.
fn unauthorized(e: ApiError) -> Response {
    let mut r = e.into_response();
    if r.status() == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    r
}

/// Write one audit row. A failed write is logged, not turned into a failed request: the
/// action has happened by now either way.
async fn audit(
    state: &AppState,
    caller: Option<&Caller>,
    method: &Method,
    path: &str,
    response: &mut Response,
    detail: Option<&str>,
) {
    // Taken out of the response, which is not `Sync` and so cannot be borrowed across the
    // store's await.
    let note = response.extensions_mut().remove::<AuditNote>();
    let error = response
        .extensions()
        .get::<ErrorMessage>()
        .map(|m| m.0.clone());
    let status = response.status();
    let entry = NewAudit {
        actor: caller.map(|c| c.name.as_str()).unwrap_or("anonymous"),
        role: caller.map(|c| c.role),
        at: Timestamp::now(),
        method: method.as_str(),
        route: path,
        status: status.as_u16(),
        allowed: !matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
        before: note.as_ref().and_then(|n| n.before.as_ref()),
        after: note.as_ref().and_then(|n| n.after.as_ref()),
        detail: detail
            .or(note.as_ref().and_then(|n| n.detail.as_deref()))
            .or(error.as_deref()),
    };
    let write = state.store.record_audit(&entry);
    match tokio::time::timeout(STORE_TIMEOUT, write).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!("api: cannot write the audit log: {e}"),
        Err(_) => tracing::warn!("api: writing the audit log timed out"),
    }
}

/// An error response's message, left on the response for the audit log's detail.
#[derive(Debug, Clone)]
pub(crate) struct ErrorMessage(pub(crate) String);

/// The caller's token name and role.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "auth",
    responses((status = 200, body = Caller), (status = 401, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn whoami(caller: axum::Extension<Caller>) -> axum::Json<Caller> {
    axum::Json(caller.0)
}
