//! The medbill remittance service: received 835 electronic remittance advice (ERA) files, kept raw and
//! summarised, with the places where they do not balance.
//!
//! - [`model`]: the ERA, its payment summary and balance problems.

pub mod model;
