//! The medbill eligibility service.
