//! The fixed parts of the OpenAPI document (`GET /openapi.json`): its title
//! and the `IRM-Device-Sig` security scheme. Paths come from the routes as
//! they are registered (`api::documented_routes`), and every schema from the
//! protocol types of `irm_core::protocol`, which derive it (irm-core's
//! `openapi` feature): nothing here restates a body.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// Declares the `IRM-Device-Sig` authorization scheme (PROTOCOL.md §2).
struct DeviceSignature;

impl Modify for DeviceSignature {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "device_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "IRM-Device-Sig device=<hex>,ts=<unix>,nonce=<hex>,sig=<base64url> (PROTOCOL.md §2)",
            ))),
        );
    }
}

/// The document before any route is registered.
#[derive(OpenApi)]
#[openapi(
    info(title = "IRM key server", description = "Key-server protocol version 1 (docs/PROTOCOL.md)"),
    modifiers(&DeviceSignature),
    components(schemas(irm_core::protocol::DenyReason, irm_core::protocol::ErrorBody, irm_core::protocol::DenyBody))
)]
struct BaseDocument;

/// Title, version and security scheme; the routes add paths and schemas.
pub(super) fn base_document() -> utoipa::openapi::OpenApi {
    BaseDocument::openapi()
}
