//! The medbill collections service.
