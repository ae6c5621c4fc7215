//! The OpenAPI 3.1 document, served at `/openapi.json`: each area's
//! operations, merged under one title with the bearer scheme and the problem
//! document every refusal uses.

use utoipa::OpenApi as _;
use utoipa::openapi::OpenApi;

use crate::common::error::Problem;
use crate::{accounts, analytics, catalog, notifications, sale, tickets, venue};

/// The document's frame: title, shared components, security scheme.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "tixgate cloud API", description = "Sells tickets, issues signed barcodes, feeds venue hubs."),
    components(schemas(Problem)),
    modifiers(&BearerAuth)
)]
struct Frame;

/// The whole document.
pub fn document() -> OpenApi {
    let mut doc = Frame::openapi();
    for area in [
        accounts::routes::Api::openapi(),
        catalog::routes::Api::openapi(),
        sale::routes::Api::openapi(),
        tickets::routes::Api::openapi(),
        notifications::routes::Api::openapi(),
        venue::routes::Api::openapi(),
        analytics::routes::Api::openapi(),
    ] {
        doc.merge(area);
    }
    doc
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let scheme =
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build());
        doc.components.get_or_insert_with(Default::default).add_security_scheme("bearer", scheme);
    }
}
