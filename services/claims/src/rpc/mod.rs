//! The gRPC faces of the RPCs after submission, called from [`crate::service`]'s trait impl:
//! ApplyAdjudication, CorrectClaim and VoidClaim, ListClaimEvents and WatchClaims,
//! GetInsuranceAging.

pub(crate) mod adjudication;
pub(crate) mod aging;
pub(crate) mod corrections;
pub(crate) mod events;
