//! The medbill claims service: professional (837P) and institutional (837I) claims, their diagnoses and
//! service lines, and the history of their status changes.
//!
//! - [`coverage`]: [`CoverageClient`], CreateClaim's coverage check with the eligibility service over
//!   gRPC (the caller's token forwarded, reads retried).
//! - [`lifecycle`]: which claim status may follow which, and why.
//! - [`model`]: the claim and its validation rules (CLM01, diagnosis pointers, modifiers, total charge).
//! - [`service`]: [`ClaimsService`], the gRPC service (CreateClaim, GetClaim, ListClaims; the rest answer
//!   UNIMPLEMENTED saying what is not built yet).
//! - [`store`]: the [`ClaimStore`] trait and its PostgreSQL/SQLite implementation.

pub mod coverage;
pub mod lifecycle;
pub mod model;
pub mod service;
pub mod store;

pub use coverage::{CoverageClient, CoverageError};
pub use model::{
    Claim, ClaimFilter, ClaimLine, ClaimStatus, ClaimType, FrequencyCode, NewClaim, NewClaimLine,
    StatusChange, StatusChangeSource,
};
pub use service::ClaimsService;
pub use store::{ClaimStore, ClaimStoreError, SqlClaimStore, open_store};
