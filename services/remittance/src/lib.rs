//! The medbill remittance service.
