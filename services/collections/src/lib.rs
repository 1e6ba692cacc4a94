//! The medbill collections service: patient accounts on a double-entry ledger.
//!
//! - [`aging`]: what is owed by age, from the ledger (oldest charges paid first);
//! - [`model`]: accounts, journal entries and postings, with the double-entry check;
//! - [`store`]: the [`CollectionsStore`] trait and its PostgreSQL/SQLite implementation, with
//!   [`open_store`] to migrate and connect;
//! - [`service`]: [`CollectionsService`], the gRPC service (`CollectionsService::new(store).into_server()`).
//!
//! An account's balance is derived from the ledger, never stored: the sum of its postings on
//! `PATIENT_AR` (debit positive: what the patient owes).

#![forbid(unsafe_code)]

pub mod aging;
pub mod model;
pub mod service;
pub mod store;

pub use model::{
    Account, AccountFilter, AccountStatus, EntryKind, JournalEntry, LedgerAccount, LedgerError,
    NewAccount, NewJournalEntry, Posting,
};
pub use service::CollectionsService;
pub use store::{CollectionsStore, SqlCollectionsStore, StoreError, open_store};
