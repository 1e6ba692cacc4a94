//! Generated protobuf messages and tonic gRPC clients and servers for the
//! medbill v1 contracts (`proto/medbill/**/v1/*.proto`).
//!
//! The full module tree mirrors the protobuf packages
//! (`medbill_proto::medbill::claims::v1`); short re-exports such as
//! `medbill_proto::claims::v1` point at the same modules.
//! [`FILE_DESCRIPTOR_SET`] holds the encoded descriptors for gRPC server
//! reflection.

/// Encoded `google.protobuf.FileDescriptorSet` of every medbill v1 file and
/// its imports (with source info, so reflection clients see the doc
/// comments). Pass it to `tonic_reflection`'s
/// `Builder::register_encoded_file_descriptor_set`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/medbill_descriptor.bin"));

/// Generated code, one module per protobuf package.
#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    rustdoc::all
)]
pub mod medbill {
    /// `medbill.audit.v1`: the audit trail every process serves.
    pub mod audit {
        /// Messages, `audit_service_client` and `audit_service_server`.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/medbill.audit.v1.rs"));
        }
    }
    /// `medbill.common.v1`: shared value types.
    pub mod common {
        /// Shared value types (names, addresses, providers, dates, adjustments).
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/medbill.common.v1.rs"));
        }
    }
    /// `medbill.eligibility.v1`: coverages, eligibility checks, estimates,
    /// prior authorizations.
    pub mod eligibility {
        /// Messages, `eligibility_service_client` and
        /// `eligibility_service_server`.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/medbill.eligibility.v1.rs"));
        }
    }
    /// `medbill.claims.v1`: claims, scrubbing, submission, acknowledgements.
    pub mod claims {
        /// Messages, `claims_service_client` and `claims_service_server`.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/medbill.claims.v1.rs"));
        }
    }
    /// `medbill.remittance.v1`: ERAs, payments, denials, deposits.
    pub mod remittance {
        /// Messages, `remittance_service_client` and
        /// `remittance_service_server`.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/medbill.remittance.v1.rs"));
        }
    }
    /// `medbill.collections.v1`: accounts, ledger, statements, plans, dunning.
    pub mod collections {
        /// Messages, `collections_service_client` and
        /// `collections_service_server`.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/medbill.collections.v1.rs"));
        }
    }
}

pub mod audit;

pub use medbill::{claims, collections, common, eligibility, remittance};

/// The request of a mutating RPC: it carries an `idempotency_key`, and a retry with the same key
/// and the same request replays the first response.
///
/// Implemented (by the build script, from the descriptors) for every unary RPC whose request
/// has an `idempotency_key` field; `medbill_runtime::idempotent` is the one place that uses it.
pub trait IdempotentRequest: prost::Message + Clone + Default {
    /// The RPC's response message, stored and replayed.
    type Response: prost::Message + Default + audit::AuditSchema;
    /// The full gRPC method name, `package.Service/Method`: the scope of the key.
    const METHOD: &'static str;
    /// Returns the key as sent (possibly empty).
    fn idempotency_key(&self) -> &str;
    /// Clears the key, leaving what identifies "the same request".
    fn clear_idempotency_key(&mut self);
    /// Returns the canonical bytes of the request: its encoding with the key cleared.
    fn canonical_bytes(&self) -> Vec<u8> {
        let mut canonical = self.clone();
        canonical.clear_idempotency_key();
        canonical.encode_to_vec()
    }
}

#[allow(missing_docs, clippy::all)]
mod audit_schemas {
    include!(concat!(env!("OUT_DIR"), "/audit_schemas.rs"));
}

#[allow(missing_docs, clippy::all)]
mod idempotent_requests {
    include!(concat!(env!("OUT_DIR"), "/idempotent_requests.rs"));
}

/// Fully qualified gRPC service names, as used by health checks and
/// reflection.
pub mod service_names {
    /// `medbill.eligibility.v1.EligibilityService`.
    pub const ELIGIBILITY: &str = "medbill.eligibility.v1.EligibilityService";
    /// `medbill.claims.v1.ClaimsService`.
    pub const CLAIMS: &str = "medbill.claims.v1.ClaimsService";
    /// `medbill.remittance.v1.RemittanceService`.
    pub const REMITTANCE: &str = "medbill.remittance.v1.RemittanceService";
    /// `medbill.collections.v1.CollectionsService`.
    pub const COLLECTIONS: &str = "medbill.collections.v1.CollectionsService";
    /// `medbill.audit.v1.AuditService`, served by every process.
    pub const AUDIT: &str = "medbill.audit.v1.AuditService";
    /// All four, in the order eligibility, claims, remittance, collections.
    pub const ALL: [&str; 4] = [ELIGIBILITY, CLAIMS, REMITTANCE, COLLECTIONS];
}
