//! The medbill binary's library half: `serve` starts services (so the end-to-end tests run
//! exactly the code the binary runs) and `bench` drives a running suite.

pub mod bench;
pub mod serve;
