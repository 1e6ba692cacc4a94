//! Generated protobuf and gRPC code for the medbill v1 contracts.
