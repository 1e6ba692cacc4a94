//! Typed readers, one module per transaction set.
//!
//! Each reader takes a [`crate::TransactionSet`] from the lossless tree and
//! returns its typed model with the problems found on the way.

pub mod ack999;
pub mod claim837;
pub mod claim_status277;
pub mod eligibility271;
pub mod era835;
pub mod inquiry270;
pub mod read;
pub mod review278;
pub mod status276;
pub mod ta1;

pub use read::Parsed;
