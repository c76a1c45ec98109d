//! The dashboard's files (`/` and `/assets/*`) and the JSON answers for a route or method
//! the API does not have.

use axum::extract::Path;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::assets;
use super::error::{ApiError, ErrorBody};

/// The dashboard's index page.
#[utoipa::path(get, path = "/", tag = "dashboard",
    responses((status = 200, description = "The dashboard's index page", content_type = "text/html")))]
pub(crate) async fn index() -> Response {
    file("")
}

/// One of the dashboard's files.
#[utoipa::path(get, path = "/assets/{*path}", tag = "dashboard",
    params(("path" = String, Path, description = "The file under assets/")),
    responses((status = 200, description = "The file"), (status = 404, body = ErrorBody)))]
pub(crate) async fn asset(Path(path): Path<String>) -> Response {
    file(&format!("assets/{path}"))
}

fn file(path: &str) -> Response {
    match assets::asset(path) {
        Some((kind, bytes)) => ([(header::CONTENT_TYPE, kind)], bytes).into_response(),
        None => ApiError::not_found(format!("no file /{path}")).into_response(),
    }
}

/// Any path no route has.
pub(crate) async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route {}", uri.path())).field("path")
}

/// A route that exists, asked with a method it does not take.
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not take {method}", uri.path()),
    )
}
