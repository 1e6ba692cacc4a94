//! The medbill binary's library half: `serve` starts services, so the end-to-end tests run
//! exactly the code the binary runs.

pub mod serve;
