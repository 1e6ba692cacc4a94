//! The medbill claims service: professional (837P) and institutional (837I) claims, their diagnoses and
//! service lines, and the history of their status changes.
//!
//! - [`model`]: the claim and its validation rules (CLM01, diagnosis pointers, modifiers, total charge).

pub mod model;
