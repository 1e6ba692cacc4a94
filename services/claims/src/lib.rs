//! The medbill claims service.
