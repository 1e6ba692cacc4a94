//! What a caller may do: the one table naming the scope every medbill RPC needs.
//!
//! [`crate::auth::AuthLayer`] looks the called method up here after authenticating the caller
//! and answers PERMISSION_DENIED, naming the scope, when the caller's token does not carry it.
//! A method missing from the table is refused ("deny by default"): a new RPC cannot reach
//! production unguarded, and the `every_rpc_has_a_scope` test fails the build's tests first.
//! Health and reflection are exempt (they are reachable without a token at all), and dev mode
//! (no authentication configured) grants every scope.
//!
//! Privileged scopes are kept apart from the everyday ones so the person who records a payment
//! is not the one who can refund it: refunds, write-offs and agency placement need
//! [`COLLECTIONS_PRIVILEGED`], posting an unbalanced ERA needs [`REMITTANCE_PRIVILEGED`].

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

/// Read coverages, eligibility checks, estimates and prior authorisations.
pub const ELIGIBILITY_READ: &str = "eligibility.read";
/// Create coverages, run eligibility checks, estimates and prior-authorisation requests.
pub const ELIGIBILITY_WRITE: &str = "eligibility.write";
/// Read claims, providers, submission batches and claim history.
pub const CLAIMS_READ: &str = "claims.read";
/// Create, correct, void, submit and follow up claims; record acknowledgements and
/// adjudication.
pub const CLAIMS_WRITE: &str = "claims.write";
/// Read ERAs, claim payments, denials and deposit reconciliations.
pub const REMITTANCE_READ: &str = "remittance.read";
/// Ingest ERAs, match payments, reconcile deposits and work denials.
pub const REMITTANCE_POST: &str = "remittance.post";
/// Post an ERA whose totals do not balance (an override, kept apart from everyday posting).
pub const REMITTANCE_PRIVILEGED: &str = "remittance.privileged";
/// Read patient accounts, ledgers, statements, plans and aging.
pub const COLLECTIONS_READ: &str = "collections.read";
/// Open accounts, post responsibility, bill, record payments, statements, plans, dunning, holds.
pub const COLLECTIONS_PAYMENTS: &str = "collections.payments";
/// Issue refunds, write off balances, place accounts with (and recall them from) an agency.
pub const COLLECTIONS_PRIVILEGED: &str = "collections.privileged";
/// Read the PHI access audit trail (the compliance officer's scope).
pub const AUDIT_READ: &str = "audit.read";

/// Every scope medbill knows, in the order the documentation lists them.
pub const ALL: &[&str] = &[
    ELIGIBILITY_READ,
    ELIGIBILITY_WRITE,
    CLAIMS_READ,
    CLAIMS_WRITE,
    REMITTANCE_READ,
    REMITTANCE_POST,
    REMITTANCE_PRIVILEGED,
    COLLECTIONS_READ,
    COLLECTIONS_PAYMENTS,
    COLLECTIONS_PRIVILEGED,
    AUDIT_READ,
];

/// The scopes that move money out or override a control; granted only by name.
pub const PRIVILEGED: &[&str] = &[REMITTANCE_PRIVILEGED, COLLECTIONS_PRIVILEGED, AUDIT_READ];

/// The audit trail's listing method, served by every process.
pub const LIST_AUDIT_EVENTS: &str = "medbill.audit.v1.AuditService/ListAuditEvents";

/// Full method name (`package.Service/Method`) -> the scope it needs.
pub const RPC_SCOPES: &[(&str, &str)] = &[
    // eligibility
    (
        "medbill.eligibility.v1.EligibilityService/CreateCoverage",
        ELIGIBILITY_WRITE,
    ),
    (
        "medbill.eligibility.v1.EligibilityService/GetCoverage",
        ELIGIBILITY_READ,
    ),
    (
        "medbill.eligibility.v1.EligibilityService/ListCoverages",
        ELIGIBILITY_READ,
    ),
    (
        "medbill.eligibility.v1.EligibilityService/CheckEligibility",
        ELIGIBILITY_WRITE,
    ),
    (
        "medbill.eligibility.v1.EligibilityService/GetEligibilityCheck",
        ELIGIBILITY_READ,
    ),
    (
        "medbill.eligibility.v1.EligibilityService/ListEligibilityChecks",
        ELIGIBILITY_READ,
    ),
    (
        "medbill.eligibility.v1.EligibilityService/EstimatePatientCost",
        ELIGIBILITY_WRITE,
    ),
    (
        "medbill.eligibility.v1.EligibilityService/GetCostEstimate",
        ELIGIBILITY_READ,
    ),
    (
        "medbill.eligibility.v1.EligibilityService/RequestPriorAuthorization",
        ELIGIBILITY_WRITE,
    ),
    (
        "medbill.eligibility.v1.EligibilityService/GetPriorAuthorization",
        ELIGIBILITY_READ,
    ),
    (
        "medbill.eligibility.v1.EligibilityService/ListPriorAuthorizations",
        ELIGIBILITY_READ,
    ),
    (
        "medbill.eligibility.v1.EligibilityService/RefreshPriorAuthorization",
        ELIGIBILITY_WRITE,
    ),
    // claims
    ("medbill.claims.v1.ClaimsService/CreateClaim", CLAIMS_WRITE),
    ("medbill.claims.v1.ClaimsService/GetClaim", CLAIMS_READ),
    (
        "medbill.claims.v1.ClaimsService/GetClaimsByPatientControlNumbers",
        CLAIMS_READ,
    ),
    ("medbill.claims.v1.ClaimsService/ListClaims", CLAIMS_READ),
    ("medbill.claims.v1.ClaimsService/ScrubClaim", CLAIMS_WRITE),
    ("medbill.claims.v1.ClaimsService/CreateClaims", CLAIMS_WRITE),
    ("medbill.claims.v1.ClaimsService/ScrubClaims", CLAIMS_WRITE),
    ("medbill.claims.v1.ClaimsService/SubmitClaims", CLAIMS_WRITE),
    (
        "medbill.claims.v1.ClaimsService/GetSubmissionBatch",
        CLAIMS_READ,
    ),
    (
        "medbill.claims.v1.ClaimsService/IngestAcknowledgement",
        CLAIMS_WRITE,
    ),
    ("medbill.claims.v1.ClaimsService/CorrectClaim", CLAIMS_WRITE),
    ("medbill.claims.v1.ClaimsService/VoidClaim", CLAIMS_WRITE),
    (
        "medbill.claims.v1.ClaimsService/ApplyAdjudication",
        CLAIMS_WRITE,
    ),
    (
        "medbill.claims.v1.ClaimsService/ApplyAdjudications",
        CLAIMS_WRITE,
    ),
    ("medbill.claims.v1.ClaimsService/WatchClaims", CLAIMS_READ),
    (
        "medbill.claims.v1.ClaimsService/CreateProvider",
        CLAIMS_WRITE,
    ),
    (
        "medbill.claims.v1.ClaimsService/UpdateProvider",
        CLAIMS_WRITE,
    ),
    ("medbill.claims.v1.ClaimsService/GetProvider", CLAIMS_READ),
    ("medbill.claims.v1.ClaimsService/ListProviders", CLAIMS_READ),
    (
        "medbill.claims.v1.ClaimsService/ListClaimEvents",
        CLAIMS_READ,
    ),
    (
        "medbill.claims.v1.ClaimsService/GetInsuranceAging",
        CLAIMS_READ,
    ),
    (
        "medbill.claims.v1.ClaimsService/FollowUpClaim",
        CLAIMS_WRITE,
    ),
    (
        "medbill.claims.v1.ClaimsService/ListClaimFollowUps",
        CLAIMS_READ,
    ),
    // remittance
    (
        "medbill.remittance.v1.RemittanceService/IngestEra",
        REMITTANCE_POST,
    ),
    (
        "medbill.remittance.v1.RemittanceService/IngestEraStream",
        REMITTANCE_POST,
    ),
    (
        "medbill.remittance.v1.RemittanceService/GetEra",
        REMITTANCE_READ,
    ),
    (
        "medbill.remittance.v1.RemittanceService/ListEras",
        REMITTANCE_READ,
    ),
    (
        "medbill.remittance.v1.RemittanceService/ListClaimPayments",
        REMITTANCE_READ,
    ),
    (
        "medbill.remittance.v1.RemittanceService/ListDenials",
        REMITTANCE_READ,
    ),
    (
        "medbill.remittance.v1.RemittanceService/ReconcileDeposit",
        REMITTANCE_POST,
    ),
    (
        "medbill.remittance.v1.RemittanceService/MatchClaimPayment",
        REMITTANCE_POST,
    ),
    (
        "medbill.remittance.v1.RemittanceService/PostUnbalancedEra",
        REMITTANCE_PRIVILEGED,
    ),
    (
        "medbill.remittance.v1.RemittanceService/UpdateDenial",
        REMITTANCE_POST,
    ),
    (
        "medbill.remittance.v1.RemittanceService/ListDepositReconciliations",
        REMITTANCE_READ,
    ),
    // collections
    (
        "medbill.collections.v1.CollectionsService/OpenAccount",
        COLLECTIONS_PAYMENTS,
    ),
    (
        "medbill.collections.v1.CollectionsService/GetAccount",
        COLLECTIONS_READ,
    ),
    (
        "medbill.collections.v1.CollectionsService/ListAccounts",
        COLLECTIONS_READ,
    ),
    (
        "medbill.collections.v1.CollectionsService/ListLedgerEntries",
        COLLECTIONS_READ,
    ),
    (
        "medbill.collections.v1.CollectionsService/PostPatientResponsibility",
        COLLECTIONS_PAYMENTS,
    ),
    (
        "medbill.collections.v1.CollectionsService/PostPatientResponsibilities",
        COLLECTIONS_PAYMENTS,
    ),
    (
        "medbill.collections.v1.CollectionsService/BillSelfPay",
        COLLECTIONS_PAYMENTS,
    ),
    (
        "medbill.collections.v1.CollectionsService/RecordPayment",
        COLLECTIONS_PAYMENTS,
    ),
    (
        "medbill.collections.v1.CollectionsService/RecordPayments",
        COLLECTIONS_PAYMENTS,
    ),
    (
        "medbill.collections.v1.CollectionsService/IssueRefund",
        COLLECTIONS_PRIVILEGED,
    ),
    (
        "medbill.collections.v1.CollectionsService/WriteOff",
        COLLECTIONS_PRIVILEGED,
    ),
    (
        "medbill.collections.v1.CollectionsService/GenerateStatements",
        COLLECTIONS_PAYMENTS,
    ),
    (
        "medbill.collections.v1.CollectionsService/GetStatement",
        COLLECTIONS_READ,
    ),
    (
        "medbill.collections.v1.CollectionsService/GetStatementPrintFile",
        COLLECTIONS_READ,
    ),
    (
        "medbill.collections.v1.CollectionsService/CreatePaymentPlan",
        COLLECTIONS_PAYMENTS,
    ),
    (
        "medbill.collections.v1.CollectionsService/GetPaymentPlan",
        COLLECTIONS_READ,
    ),
    (
        "medbill.collections.v1.CollectionsService/CancelPaymentPlan",
        COLLECTIONS_PAYMENTS,
    ),
    (
        "medbill.collections.v1.CollectionsService/RunDunning",
        COLLECTIONS_PAYMENTS,
    ),
    (
        "medbill.collections.v1.CollectionsService/PlaceWithAgency",
        COLLECTIONS_PRIVILEGED,
    ),
    (
        "medbill.collections.v1.CollectionsService/RecallPlacement",
        COLLECTIONS_PRIVILEGED,
    ),
    (
        "medbill.collections.v1.CollectionsService/SetAccountHolds",
        COLLECTIONS_PAYMENTS,
    ),
    (
        "medbill.collections.v1.CollectionsService/AgingReport",
        COLLECTIONS_READ,
    ),
    // audit (served by every process)
    (LIST_AUDIT_EVENTS, AUDIT_READ),
];

/// Reports whether `scope` is one medbill knows.
pub fn is_known(scope: &str) -> bool {
    ALL.contains(&scope)
}

/// The scope table the auth layer enforces: [`RPC_SCOPES`], plus entries a server adds for
/// services outside the medbill protos (tests' own services).
#[derive(Clone, Debug)]
pub struct ScopeTable {
    entries: Arc<Vec<(&'static str, &'static str)>>,
}

impl Default for ScopeTable {
    fn default() -> Self {
        Self::medbill()
    }
}

impl ScopeTable {
    /// The medbill table ([`RPC_SCOPES`]).
    pub fn medbill() -> Self {
        Self {
            entries: Arc::new(RPC_SCOPES.to_vec()),
        }
    }

    /// Adds `(full method, scope)` entries, e.g. for a service a test serves.
    pub fn with(mut self, extra: &[(&'static str, &'static str)]) -> Self {
        Arc::make_mut(&mut self.entries).extend_from_slice(extra);
        self
    }

    /// Returns the scope a request path (`/package.Service/Method`) needs, or None when the
    /// method is not in the table.
    pub fn required(&self, path: &str) -> Option<&'static str> {
        let method = path.strip_prefix('/').unwrap_or(path);
        self.entries
            .iter()
            .find(|(name, _)| *name == method)
            .map(|(_, scope)| *scope)
    }
}

/// The scopes a caller was granted.
#[derive(Clone, PartialEq, Eq)]
pub enum Granted {
    /// Every scope: dev mode, and the legacy `auth.tokens` form (see docs/configuration.md).
    All,
    /// Exactly these scopes (a token's `scope`/`scp` claim, or a static token's `scopes`).
    Only(Arc<BTreeSet<String>>),
}

impl Granted {
    /// Grants exactly `scopes`.
    pub fn only<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::Only(Arc::new(scopes.into_iter().map(Into::into).collect()))
    }

    /// Reports whether `scope` is granted.
    pub fn allows(&self, scope: &str) -> bool {
        match self {
            Granted::All => true,
            Granted::Only(scopes) => scopes.contains(scope),
        }
    }
}

impl fmt::Debug for Granted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Granted::All => f.write_str("Granted::All"),
            Granted::Only(scopes) => f.debug_set().entries(scopes.iter()).finish(),
        }
    }
}

/// Why an authenticated call may not run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The method is in the table and the caller lacks its scope.
    #[error(
        "permission denied: {method} needs the scope `{scope}`, which this token does not carry"
    )]
    MissingScope {
        /// The full method name.
        method: String,
        /// The scope it needs.
        scope: &'static str,
    },
    /// The method is not in the table (deny by default).
    #[error("permission denied: no scope is defined for {method}")]
    Undefined {
        /// The full method name.
        method: String,
    },
}

impl From<Denied> for tonic::Status {
    fn from(denied: Denied) -> Self {
        tonic::Status::permission_denied(denied.to_string())
    }
}

/// Checks that `granted` allows calling `path` under `table`.
pub fn check(table: &ScopeTable, path: &str, granted: &Granted) -> Result<(), Denied> {
    let method = path.strip_prefix('/').unwrap_or(path);
    match table.required(path) {
        Some(scope) if granted.allows(scope) => Ok(()),
        Some(scope) => Err(Denied::MissingScope {
            method: method.to_owned(),
            scope,
        }),
        None => Err(Denied::Undefined {
            method: method.to_owned(),
        }),
    }
}

/// Tower layer that checks every call's scope against a [`ScopeTable`], answering
/// PERMISSION_DENIED naming the scope lacked (or that the method has none). It sits inside the
/// auth layer, which puts the caller's [`Granted`] scopes in the request extensions, and inside
/// the audit layer, so a refused call is on the audit record. A non-exempt call without granted
/// scopes (no auth layer in front) is refused: the check fails closed.
#[derive(Clone, Debug)]
pub struct ScopeLayer {
    table: ScopeTable,
    enforce: bool,
}

impl ScopeLayer {
    /// Checks calls against `table`; `enforce = false` (dev mode, no auth configured) lets every
    /// call through, unknown methods included (they answer UNIMPLEMENTED).
    pub fn new(table: ScopeTable, enforce: bool) -> Self {
        Self { table, enforce }
    }
}

impl<S> tower::Layer<S> for ScopeLayer {
    type Service = ScopeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ScopeService {
            inner,
            layer: self.clone(),
        }
    }
}

/// Service produced by [`ScopeLayer`].
#[derive(Clone, Debug)]
pub struct ScopeService<S> {
    inner: S,
    layer: ScopeLayer,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for ScopeService<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        futures::future::Either<S::Future, futures::future::Ready<Result<S::Response, S::Error>>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let path = req.uri().path();
        if !self.layer.enforce || crate::auth::is_exempt(path) {
            return futures::future::Either::Left(self.inner.call(req));
        }
        let verdict = match req.extensions().get::<Granted>() {
            Some(granted) => check(&self.layer.table, path, granted),
            None => Err(Denied::Undefined {
                method: path.trim_start_matches('/').to_owned(),
            }),
        };
        match verdict {
            Ok(()) => futures::future::Either::Left(self.inner.call(req)),
            Err(denied) => {
                let subject = req.extensions().get::<crate::auth::Subject>();
                tracing::info!(path, subject = subject.map(crate::auth::Subject::as_str),
                    reason = %denied, "call rejected: permission denied");
                let response = tonic::Status::from(denied).into_http::<ResBody>();
                futures::future::Either::Right(futures::future::ready(Ok(response)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;
    use prost_types::FileDescriptorSet;

    /// Every RPC of every medbill service, as `package.Service/Method`.
    fn described_rpcs() -> BTreeSet<String> {
        let set = FileDescriptorSet::decode(medbill_proto::FILE_DESCRIPTOR_SET)
            .expect("descriptor set decodes");
        let mut out = BTreeSet::new();
        for file in &set.file {
            for service in &file.service {
                for method in &service.method {
                    out.insert(format!(
                        "{}.{}/{}",
                        file.package(),
                        service.name(),
                        method.name()
                    ));
                }
            }
        }
        out
    }

    #[test]
    fn every_rpc_has_a_scope_and_every_entry_is_an_rpc() {
        let described = described_rpcs();
        assert!(described.len() > 50, "{described:?}");
        let missing: Vec<&String> = described
            .iter()
            .filter(|rpc| !RPC_SCOPES.iter().any(|(name, _)| name == rpc))
            .collect();
        assert!(
            missing.is_empty(),
            "RPCs without a scope in crates/runtime/src/scopes.rs: {missing:?}"
        );
        assert!(described.contains(LIST_AUDIT_EVENTS), "{described:?}");
        for (name, scope) in RPC_SCOPES {
            assert!(described.contains(*name), "{name} is not an RPC");
            assert!(is_known(scope), "{name}: unknown scope {scope}");
        }
        let mut names: Vec<&str> = RPC_SCOPES.iter().map(|(name, _)| *name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "a method is listed twice");
    }

    #[test]
    fn privileged_money_movements_need_the_privileged_scopes() {
        let table = ScopeTable::medbill();
        for method in ["IssueRefund", "WriteOff", "PlaceWithAgency"] {
            assert_eq!(
                table.required(&format!(
                    "/medbill.collections.v1.CollectionsService/{method}"
                )),
                Some(COLLECTIONS_PRIVILEGED)
            );
        }
        assert_eq!(
            table.required("/medbill.remittance.v1.RemittanceService/PostUnbalancedEra"),
            Some(REMITTANCE_PRIVILEGED)
        );
        assert_eq!(
            table.required("/medbill.collections.v1.CollectionsService/RecordPayment"),
            Some(COLLECTIONS_PAYMENTS)
        );
    }

    #[test]
    fn checks_name_the_missing_scope_and_deny_unknown_methods() {
        let table = ScopeTable::medbill();
        let clerk = Granted::only([COLLECTIONS_READ, COLLECTIONS_PAYMENTS]);
        assert_eq!(
            check(
                &table,
                "/medbill.collections.v1.CollectionsService/RecordPayment",
                &clerk
            ),
            Ok(())
        );
        let denied = check(
            &table,
            "/medbill.collections.v1.CollectionsService/IssueRefund",
            &clerk,
        )
        .unwrap_err();
        let status = tonic::Status::from(denied);
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        assert!(
            status.message().contains("`collections.privileged`"),
            "{}",
            status.message()
        );

        let unknown = check(
            &table,
            "/medbill.claims.v1.ClaimsService/DropTables",
            &Granted::All,
        )
        .unwrap_err();
        assert_eq!(
            unknown.to_string(),
            "permission denied: no scope is defined for medbill.claims.v1.ClaimsService/DropTables"
        );
        let extended = table.with(&[("x.Y/Z", CLAIMS_READ)]);
        assert_eq!(
            check(&extended, "/x.Y/Z", &Granted::only([CLAIMS_READ])),
            Ok(())
        );
    }
}
