//! `MemoryStore` against the model of the `RefreshStore` contract
//! (`common_store::model`), over random sequences of create / rotate /
//! reuse / logout / expire / purge. The Redis and PostgreSQL stores run the
//! same model in their own test files.

mod common_store;

use std::sync::Arc;

use tower_jwt_auth::refresh::MemoryStore;

#[test]
fn memory_store_follows_the_model() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    common_store::model::check(&runtime, 256, 40, true, || Arc::new(MemoryStore::new()));
}
