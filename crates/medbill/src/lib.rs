//! The medbill binary's library half: `serve` starts services (so the end-to-end tests run
//! exactly the code the binary runs) `bench` drives a running suite and `demo` runs a synthetic hospital's day through it.

pub mod bench;
pub mod demo;
pub mod serve;
