//! The audit trail: who read or changed what (see docs/audit.md).
//!
//! Every call to a medbill service is recorded, generically, with no code in the handlers:
//!
//! - [`AuditLayer`] (installed by the server inside the auth layer) gives each call an
//!   [`AuditContext`] (tenant, subject, peer, service and method, trace id) and keeps it, with a
//!   [`Touched`] set, in scope while the handler runs and while the response body is sent;
//! - the generated codec notes the resource ids of every message that passes (see
//!   `medbill_proto::audit`): ids only, never PHI values;
//! - a mutation's record is written by `crate::idempotent` in the transaction of the change
//!   (so it exists exactly when the change does), and marks the context;
//! - when the call ends, the layer hands every other call's record (reads, replays, failures,
//!   calls abandoned before answering) to the service's [`AuditWriter`], which writes batches
//!   (every `flush_ms` or `batch_rows`) and, on shutdown, writes what it holds before it stops.
//!
//! Each service's records go to its own database (`platform_audit`); in a process that runs
//! several services the layer picks the writer by the service the call is for.

mod list;

pub use list::{AuditApi, to_proto};

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use medbill_proto::audit::{self as touched_scope, AuditSchema, Touched};
use medbill_storage::Database;
use medbill_storage::audit::AuditRecord;
use opentelemetry::trace::TraceContextExt as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::body::Body;
use tower::{Layer, Service};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::auth::{Subject, Tenant};

/// The `[audit]` section.
///
/// ```toml
/// [audit]
/// enabled = true
/// retention_days = 2190   # six years; `medbill audit purge` deletes older records
/// flush_ms = 200          # a batch of read records is written at least this often
/// batch_rows = 500        # ... or as soon as it holds this many
/// queue_rows = 10000      # records waiting for a write before callers wait for room
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Records every call when true.
    pub enabled: bool,
    /// How long records are kept: `medbill audit purge` without a date deletes older ones.
    /// Nothing is deleted on its own.
    pub retention_days: u32,
    /// Longest time a record waits before its batch is written (milliseconds, at least 1).
    pub flush_ms: u64,
    /// Most records written in one transaction (at least 1).
    pub batch_rows: usize,
    /// Records that may wait for the writer (at least 1); beyond it records still are not
    /// dropped, they wait in tasks of their own.
    pub queue_rows: usize,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            retention_days: 2190,
            flush_ms: 200,
            batch_rows: 500,
            queue_rows: 10_000,
        }
    }
}

tokio::task_local! {
    static CONTEXT: Arc<AuditContext>;
}

/// Returns the audit context of the call being served on this task (none when auditing is
/// off, or outside a call).
pub fn current() -> Option<Arc<AuditContext>> {
    CONTEXT.try_with(Arc::clone).ok()
}

/// What the audit trail knows about one call while it runs.
#[derive(Debug)]
pub struct AuditContext {
    tenant: Tenant,
    subject: String,
    peer: Option<String>,
    service: String,
    method: String,
    trace_id: Option<String>,
    touched: Arc<Touched>,
    written_in_transaction: AtomicBool,
}

impl AuditContext {
    /// Builds the record of this call ending with `code`.
    fn record(&self, code: tonic::Code) -> AuditRecord {
        let (ids, truncated) = self.touched.snapshot();
        AuditRecord {
            id: uuid::Uuid::now_v7().to_string(),
            occurred_at: medbill_storage::time::now_micros(),
            tenant_id: self.tenant.as_str().to_owned(),
            subject: self.subject.clone(),
            peer: self.peer.clone(),
            service: self.service.clone(),
            method: self.method.clone(),
            resources: ids
                .into_iter()
                .map(|(kind, id)| (kind.to_owned(), id))
                .collect(),
            resources_truncated: truncated,
            code: code as i32,
            trace_id: self.trace_id.clone(),
        }
    }

    /// Writes the record of this call's success in `tx`, the transaction of its change, noting
    /// the ids in `response` (encoded) first. The layer then writes no second record for it.
    pub(crate) async fn record_in<Resp: AuditSchema>(
        &self,
        tx: &mut medbill_storage::Tx,
        response: &[u8],
    ) -> Result<(), medbill_storage::StorageError> {
        self.touched.note_encoded(Resp::SCHEMA, response);
        medbill_storage::audit::insert(tx, &self.record(tonic::Code::Ok)).await
    }

    /// Marks the record as written with the change (only a successful call skips the layer's
    /// record; a call that fails after this still gets one, as its transaction rolled back).
    pub(crate) fn mark_written(&self) {
        self.written_in_transaction.store(true, Ordering::Release);
    }
}

/// Writes one database's records in batches (see the module docs). Cheap to clone.
#[derive(Clone, Debug)]
pub struct AuditWriter {
    inner: Arc<WriterInner>,
}

#[derive(Debug)]
struct WriterInner {
    sender: RwLock<Option<mpsc::Sender<AuditRecord>>>,
    task: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

impl AuditWriter {
    /// Starts the writer of `db` on the current runtime.
    pub fn start(db: Database, config: &AuditConfig) -> Self {
        let (sender, receiver) = mpsc::channel(config.queue_rows.max(1));
        let task = tokio::spawn(write_batches(
            db,
            receiver,
            config.batch_rows.max(1),
            Duration::from_millis(config.flush_ms.max(1)),
        ));
        Self {
            inner: Arc::new(WriterInner {
                sender: RwLock::new(Some(sender)),
                task: tokio::sync::Mutex::new(Some(task)),
            }),
        }
    }

    /// Queues `record`. A full queue does not drop it: it waits in a task of its own.
    pub fn send(&self, record: AuditRecord) {
        let Some(sender) = self.inner.sender.read().ok().and_then(|s| s.clone()) else {
            tracing::error!(
                service = %record.service,
                method = %record.method,
                "audit record after the writer closed; not written"
            );
            return;
        };
        if let Err(mpsc::error::TrySendError::Full(record)) = sender.try_send(record) {
            tokio::spawn(async move {
                let _ = sender.send(record).await;
            });
        }
    }

    /// Stops taking records, writes every one queued and waits until they are written.
    pub async fn close(&self) {
        if let Ok(mut sender) = self.inner.sender.write() {
            sender.take();
        }
        if let Some(task) = self.inner.task.lock().await.take() {
            let _ = task.await;
        }
    }
}

/// The writer's loop: a batch starts with the first record and is written when full or when
/// `flush_every` has passed; a closed queue is drained before the loop ends.
async fn write_batches(
    db: Database,
    mut receiver: mpsc::Receiver<AuditRecord>,
    batch_rows: usize,
    flush_every: Duration,
) {
    let mut batch = Vec::with_capacity(batch_rows);
    while let Some(first) = receiver.recv().await {
        batch.push(first);
        let deadline = tokio::time::Instant::now() + flush_every;
        while batch.len() < batch_rows {
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Some(record)) => batch.push(record),
                Ok(None) | Err(_) => break,
            }
        }
        write_with_retries(&db, &mut batch).await;
    }
}

/// Writes a batch, retrying a failed write a few times (the database may be restarting).
async fn write_with_retries(db: &Database, batch: &mut Vec<AuditRecord>) {
    const ATTEMPTS: u32 = 5;
    for attempt in 1..=ATTEMPTS {
        match medbill_storage::audit::insert_batch(db, batch).await {
            Ok(()) => {
                batch.clear();
                return;
            }
            Err(error) if attempt < ATTEMPTS => {
                tracing::warn!(%error, attempt, rows = batch.len(), "audit batch not written; retrying");
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
            Err(error) => {
                tracing::error!(%error, rows = batch.len(), "audit batch not written; records lost");
            }
        }
    }
    batch.clear();
}

/// The audit trail of one process: a writer per service it runs, and the databases
/// `ListAuditEvents` reads. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct AuditTrail {
    writers: Arc<BTreeMap<String, AuditWriter>>,
    databases: Arc<Vec<(String, Database)>>,
}

impl AuditTrail {
    /// Builds the trail of the services named (fully qualified gRPC names) with their databases.
    pub fn start(services: Vec<(String, Database)>, config: &AuditConfig) -> Self {
        let writers = services
            .iter()
            .map(|(name, db)| (name.clone(), AuditWriter::start(db.clone(), config)))
            .collect();
        Self {
            writers: Arc::new(writers),
            databases: Arc::new(services),
        }
    }

    /// Returns the databases holding the records, with the service each belongs to.
    pub fn databases(&self) -> &[(String, Database)] {
        &self.databases
    }

    /// Returns the writer for calls to `service`: its own, or for a service with no database of
    /// its own (the audit service) that of the first service by name.
    fn writer_for(&self, service: &str) -> Option<&AuditWriter> {
        self.writers.get(service).or_else(|| {
            (service == medbill_proto::service_names::AUDIT)
                .then(|| self.writers.values().next())
                .flatten()
        })
    }

    /// Writes every record still queued and stops the writers (after the server drained).
    pub async fn close(&self) {
        for writer in self.writers.values() {
            writer.close().await;
        }
    }
}

/// Tower layer that records every call to a service of its [`AuditTrail`] (see the module
/// docs). Install it inside the auth layer, which resolves the tenant and subject.
#[derive(Clone, Debug)]
pub struct AuditLayer {
    trail: AuditTrail,
}

impl AuditLayer {
    /// Records into `trail`.
    pub fn new(trail: AuditTrail) -> Self {
        Self { trail }
    }
}

impl<S> Layer<S> for AuditLayer {
    type Service = AuditService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuditService {
            inner,
            trail: self.trail.clone(),
        }
    }
}

/// Service produced by [`AuditLayer`].
#[derive(Clone, Debug)]
pub struct AuditService<S> {
    inner: S,
    trail: AuditTrail,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for AuditService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<tonic::codegen::StdError>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let Some(context) = context_of(&self.trail, &req) else {
            let future = self.inner.call(req);
            return Box::pin(async move { Ok(future.await?.map(Body::new)) });
        };
        let Some(writer) = self.trail.writer_for(&context.service).cloned() else {
            let future = self.inner.call(req);
            return Box::pin(async move { Ok(future.await?.map(Body::new)) });
        };
        let context = Arc::new(context);
        let touched = Arc::clone(&context.touched);
        let future = CONTEXT.sync_scope(Arc::clone(&context), || {
            touched_scope::sync_scope(Arc::clone(&touched), || self.inner.call(req))
        });
        let ending = Ending {
            context: Arc::clone(&context),
            writer,
            done: false,
        };
        Box::pin(async move {
            let response = CONTEXT
                .scope(context, touched_scope::scope(Arc::clone(&touched), future))
                .await;
            let mut ending = ending;
            let response = match response {
                Ok(response) => response,
                Err(error) => {
                    ending.end(tonic::Code::Unknown);
                    return Err(error);
                }
            };
            // A trailers-only answer (an error, usually) carries its status in the headers.
            if let Some(status) = tonic::Status::from_header_map(response.headers()) {
                ending.end(status.code());
                return Ok(response.map(Body::new));
            }
            Ok(response.map(|body| {
                Body::new(AuditedBody {
                    inner: Box::pin(body),
                    touched,
                    ending,
                })
            }))
        })
    }
}

/// Builds the context of a call to a medbill service that the auth layer let through; `None`
/// for health, reflection and anything without a tenant.
fn context_of<B>(trail: &AuditTrail, req: &http::Request<B>) -> Option<AuditContext> {
    let (service, method) = req.uri().path().strip_prefix('/')?.split_once('/')?;
    if trail.writers.is_empty() {
        return None;
    }
    let tenant = req.extensions().get::<Tenant>()?.clone();
    let subject = req
        .extensions()
        .get::<Subject>()
        .map_or_else(|| Subject::ANONYMOUS.to_owned(), |s| s.as_str().to_owned());
    let trace_id = tracing::Span::current()
        .context()
        .span()
        .span_context()
        .trace_id();
    let trace_id =
        (trace_id != opentelemetry::trace::TraceId::INVALID).then(|| trace_id.to_string());
    Some(AuditContext {
        tenant,
        subject,
        peer: peer_of(req.extensions()),
        service: service.to_owned(),
        method: method.to_owned(),
        trace_id,
        touched: Arc::new(Touched::new()),
        written_in_transaction: AtomicBool::new(false),
    })
}

/// The client's address, and over mutual TLS its certificate (named by the first bytes of its
/// SHA-256 digest, which identifies it without parsing it).
fn peer_of(extensions: &http::Extensions) -> Option<String> {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    if let Some(tls) = extensions.get::<TlsConnectInfo<TcpConnectInfo>>() {
        let addr = tls
            .get_ref()
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let cert = tls
            .peer_certs()
            .and_then(|certs| certs.first().map(|c| Sha256::digest(c.as_ref())));
        return Some(match cert {
            Some(digest) => {
                let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
                format!("cert:sha256:{hex} {addr}")
            }
            None => addr,
        });
    }
    extensions
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .map(|a| a.to_string())
}

/// Hands the call's record to the writer once, when the call ends; a call dropped before that
/// (abandoned at its deadline, or by the client) is recorded CANCELLED.
struct Ending {
    context: Arc<AuditContext>,
    writer: AuditWriter,
    done: bool,
}

impl Ending {
    fn end(&mut self, code: tonic::Code) {
        if self.done {
            return;
        }
        self.done = true;
        if code == tonic::Code::Ok && self.context.written_in_transaction.load(Ordering::Acquire) {
            return;
        }
        self.writer.send(self.context.record(code));
    }
}

impl Drop for Ending {
    fn drop(&mut self) {
        self.end(tonic::Code::Cancelled);
    }
}

/// A response body that keeps the call's [`Touched`] in scope while its messages are encoded
/// and ends the call's record with the status in its trailers.
struct AuditedBody<B> {
    inner: Pin<Box<B>>,
    touched: Arc<Touched>,
    ending: Ending,
}

impl<B> http_body::Body for AuditedBody<B>
where
    B: http_body::Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let polled = touched_scope::sync_scope(Arc::clone(&this.touched), || {
            this.inner.as_mut().poll_frame(cx)
        });
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    let code = tonic::Status::from_header_map(trailers)
                        .map_or(tonic::Code::Ok, |s| s.code());
                    this.ending.end(code);
                }
            }
            Poll::Ready(Some(Err(_))) => this.ending.end(tonic::Code::Internal),
            Poll::Ready(None) => this.ending.end(tonic::Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
