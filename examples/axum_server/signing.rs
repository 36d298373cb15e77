//! Key-ring mode (`SIGNING_ALG`, feature `key-ring`): this server signs its
//! tokens with a rotating key ring instead of the HS256 secret, and publishes
//! the public keys so that other services verify them by JWK Set.

use std::sync::Arc;

use axum::Router;
use tower_jwt_auth::{
    JwksService, TokenIssuer, Verifier, keys::ring::KeyRing, refresh::store::RefreshStore,
};

use super::{
    app::AppState,
    config::{Config, SigningConfig},
};

/// The state of key-ring mode: the ring (in the store `REFRESH_STORE`
/// names, under the name `JWT_ISSUER`, so every instance of this issuer
/// shares it) signs, and verifies this server's own tokens; the key
/// documents are served under `JWT_ISSUER`'s path.
pub async fn state(
    config: &Config,
    signing: &SigningConfig,
    store: Arc<dyn RefreshStore>,
) -> Result<AppState, String> {
    let invalid = |e: tower_jwt_auth::ConfigError| format!("invalid configuration: {e}");
    let mut ring = KeyRing::builder(signing.algorithm)
        .store(config.store.connect_key_ring().await?)
        .name(&config.issuer);
    if let Some(period) = signing.rotation_period {
        ring = ring.rotation_period(period);
    }
    let ring = ring.build().await.map_err(|e| {
        let cause = std::error::Error::source(&e)
            .map(|cause| format!(": {cause}"))
            .unwrap_or_default();
        format!("cannot load the key ring: {e}{cause}")
    })?;
    let tokens = TokenIssuer::with_key_ring(ring.clone())
        .issuer(&config.issuer)
        .audience(&config.audience);
    let verifier = Verifier::builder()
        .key_ring(ring.clone())
        .issuer(&config.issuer)
        .audience(&config.audience)
        .build()
        .map_err(invalid)?;
    let documents = JwksService::builder(ring.clone())
        .issuer(&config.issuer)
        .build()
        .map_err(invalid)?;
    tracing::info!(
        algorithm = %ring.algorithm(),
        active_kid = %ring.active_kid(),
        rotation_period = ?ring.rotation_period(),
        jwks = %documents.jwks_path(),
        "signing with a key ring"
    );
    let mut state = AppState::assemble(config, store, tokens, verifier).map_err(invalid)?;
    state.well_known = Some(routes(documents));
    state.key_ring = Some(ring);
    Ok(state)
}

/// `GET {issuer path}/.well-known/jwks.json` and
/// `GET {issuer path}/.well-known/openid-configuration`, no token needed.
fn routes(documents: JwksService) -> Router {
    let discovery = documents
        .discovery_path()
        .expect("the issuer is set")
        .to_owned();
    Router::new()
        .route_service(documents.jwks_path(), documents.clone())
        .route_service(&discovery, documents)
}
