//! The key server's storage behind one trait, with SQLite (the default, no
//! outside service) and PostgreSQL (chosen by `--database-url`) behind it.
//! The trait and the types it speaks in are `contract.rs`, re-exported here;
//! this module only picks and opens a backend ([`Database`]). The trait
//! speaks in domain operations, each of which writes its audit record in the
//! same transaction as its effect. Those operations are written once
//! (`txn.rs`) over each backend's rows (`tables.rs`, tables in `schema.rs`),
//! and made durable by one group-commit writer (`group_commit.rs`); a
//! backend module owns only its SQL, its connections and its upkeep.
//! Methods block: async callers run them with `spawn_blocking`.

mod alerts;
mod approval;
mod changes;
mod contract;
mod group_commit;
mod ledger;
mod postgres;
mod review;
mod schema;
mod sqlite;
mod tables;
mod trace;
mod txn;
mod write_ctx;

use std::path::PathBuf;
use std::sync::Arc;

pub use changes::{Batch, ChangeLog, Changed, Resume, Subscription};
pub use contract::*;

use irm_core::protocol::AuditRecord;

use crate::error::StoreError;
use crate::metrics::Metrics;

/// Where the key server keeps its state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Database {
    /// The SQLite file in the data directory.
    Sqlite(PathBuf),
    /// A PostgreSQL database (`--database-url`).
    Postgres(DatabaseUrl),
}

impl Database {
    /// Opens the store (creating its tables if needed) and starts its writer.
    pub fn open(&self, metrics: Arc<Metrics>) -> Result<Arc<dyn Store>, StoreError> {
        match self {
            Self::Sqlite(path) => Ok(Arc::new(sqlite::open(path, metrics)?)),
            Self::Postgres(url) => Ok(Arc::new(postgres::open(url, metrics)?)),
        }
    }

    /// Calls `f` with every audit record in `seq` order, reading without
    /// writing (offline verification, of a copy or of a live database).
    pub fn for_each_audit_read_only(
        &self,
        f: &mut dyn FnMut(&AuditRecord),
    ) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(path) => sqlite::for_each_audit_read_only(path, f),
            Self::Postgres(url) => postgres::for_each_audit_read_only(url, f),
        }
    }
}
