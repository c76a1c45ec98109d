//! The one error shape every API failure takes: `{"error": {"code", "message", "field"}}`.
//!
//! Handlers, extractors, the auth gate and the router's fallbacks all answer through
//! [`ApiError`], so a client (the dashboard, curl, a script) parses one shape whatever went
//! wrong, and nothing the client sends turns into a 500 or a plain-text body.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use scalepilot_engine::HandleError;
use serde::Serialize;
use utoipa::ToSchema;

/// A failed request: its status and the body's `error` object.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) field: Option<String>,
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorDetail {
    /// unauthorized, forbidden, not_found, method_not_allowed, invalid, conflict,
    /// payload_too_large, unsupported_media_type or unavailable.
    code: &'static str,
    message: String,
    /// The request field, query parameter or path segment at fault, when one is.
    field: Option<String>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// The same error, naming the field at fault.
    pub(crate) fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// A request that cannot be read (bad syntax, a bad query parameter): 400.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", message)
    }

    /// A well-formed request whose content is refused (a wrong type, an invalid group): 422.
    pub(crate) fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// The store failed: the API cannot answer now, which is not the client's fault (and
    /// not a 500 either: a retry later may well work).
    pub(crate) fn store(e: impl std::fmt::Display) -> Self {
        Self::unavailable(format!("the store failed: {e}"))
    }

    pub(crate) fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message.clone(),
                field: self.field.clone(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(self.body())).into_response();
        // For the audit log's detail (see `auth::gate`).
        r.extensions_mut()
            .insert(super::auth::ErrorMessage(self.message));
        r
    }
}

impl From<HandleError> for ApiError {
    /// The engine's answers: an unknown group is 404, a stopped group or a failed action a
    /// conflict with its state (409), a refused request 422, a stopping engine 503.
    fn from(e: HandleError) -> Self {
        let message = e.to_string();
        match e {
            HandleError::NoGroup(_) => Self::not_found(message),
            HandleError::NotRunning(_) | HandleError::Failed(_) => Self::conflict(message),
            HandleError::Invalid(_) => Self::unprocessable(message),
            HandleError::Stopping | HandleError::Stopped => Self::unavailable(message),
        }
    }
}

/// What handlers return.
pub(crate) type ApiResult<T> = Result<T, ApiError>;
