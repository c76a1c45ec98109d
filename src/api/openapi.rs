//! The router with every route, and the OpenAPI 3.1 document generated from it.
//!
//! Each route is registered with utoipa-axum's `routes!`, which takes the handler's
//! `#[utoipa::path]` (method, path, parameters, bodies) for both the router and the document:
//! a route cannot be served without being documented, nor documented without being served.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{
    AppState, audit, auth, control, groups, health, history, recommend, series, simulate, site,
    tokens,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "scalepilot",
        description = "The scalepilot daemon's REST API. Bearer tokens with roles viewer (reads), operator (enable, disable, pause, scale, reload, simulate) and admin (database groups, force, tokens, the audit log). Every error is `{\"error\": {\"code\", \"message\", \"field\"}}`."
    ),
    modifiers(&Bearer),
    components(schemas(super::error::ErrorBody))
)]
struct Doc;

/// The `bearer` security scheme the routes refer to.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every route, documented.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(Doc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(site::index))
        .routes(routes!(site::asset))
        .routes(routes!(openapi))
        .routes(routes!(auth::whoami))
        .routes(routes!(groups::list, groups::create))
        .routes(routes!(groups::one, groups::replace, groups::delete))
        .routes(routes!(groups::enable))
        .routes(routes!(groups::disable))
        .routes(routes!(groups::pause))
        .routes(routes!(control::scale))
        .routes(routes!(series::series))
        .routes(routes!(history::forecasts))
        .routes(routes!(recommend::one))
        .routes(routes!(recommend::all))
        .routes(routes!(history::activities))
        .routes(routes!(history::errors))
        .routes(routes!(audit::audit))
        .routes(routes!(tokens::list, tokens::create))
        .routes(routes!(tokens::revoke))
        .routes(routes!(control::enable_all))
        .routes(routes!(control::disable_all))
        .routes(routes!(control::reload))
        .routes(routes!(simulate::simulate))
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub(crate) async fn openapi(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi.get().cloned().unwrap_or_default(),
    )
        .into_response()
}
