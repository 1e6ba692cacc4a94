//! Per-payer connections built from configuration: what the services hold and call.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::config::{PayerConnection, TransportConfig};
use crate::envelope::PayloadType;
use crate::error::{ConfigError, ConnectError};
use crate::http::client::CoreHttpClient;
use crate::mailbox::{Mailbox, MailboxSide};
use crate::transport::{
    BatchTransport, InboundFile, InboundKind, OutboundFile, RealTimeRequest, RealTimeResponse,
    RealTimeTransport, SubmissionReceipt,
};

/// The transports of one payer.
#[derive(Clone)]
pub struct Connection {
    payer_id: String,
    real_time: Option<Arc<dyn RealTimeTransport>>,
    real_time_kind: &'static str,
    batch: Arc<dyn BatchTransport>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("payer_id", &self.payer_id)
            .field("real_time", &self.real_time.is_some())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Builds the transports of `config`: reads secrets and CA files, creates mailbox folders.
    pub fn open(config: &PayerConnection) -> Result<Self, ConfigError> {
        config.validate()?;
        let (real_time, primary_batch): (
            Option<Arc<dyn RealTimeTransport>>,
            Arc<dyn BatchTransport>,
        ) = match &config.transport {
            TransportConfig::CoreHttp(http) => {
                let client = Arc::new(CoreHttpClient::new(config, http)?);
                (Some(client.clone()), client)
            }
            TransportConfig::Mailbox(mailbox) => (
                None,
                Arc::new(Mailbox::open(&mailbox.dir, MailboxSide::Provider)?),
            ),
        };
        let batch: Arc<dyn BatchTransport> = match &config.batch_transport {
            None => primary_batch,
            Some(TransportConfig::CoreHttp(http)) => Arc::new(CoreHttpClient::new(config, http)?),
            Some(TransportConfig::Mailbox(mailbox)) => {
                Arc::new(Mailbox::open(&mailbox.dir, MailboxSide::Provider)?)
            }
        };
        Ok(Self {
            payer_id: config.payer_id.clone(),
            real_time,
            real_time_kind: config.transport.kind_name(),
            batch,
        })
    }

    /// Builds a connection from transports made elsewhere (tests of the services, custom transports).
    pub fn from_transports(
        payer_id: impl Into<String>,
        real_time: Option<Arc<dyn RealTimeTransport>>,
        batch: Arc<dyn BatchTransport>,
    ) -> Self {
        Self {
            payer_id: payer_id.into(),
            real_time,
            real_time_kind: "custom",
            batch,
        }
    }

    /// Returns the payer id.
    pub fn payer_id(&self) -> &str {
        &self.payer_id
    }

    /// Sends one real-time X12 request (270, 276) and returns the payer's answer.
    pub async fn exchange(
        &self,
        payload_type: PayloadType,
        payload: Bytes,
    ) -> Result<RealTimeResponse, ConnectError> {
        let transport = self
            .real_time
            .as_ref()
            .ok_or_else(|| ConnectError::Unsupported {
                payer_id: self.payer_id.clone(),
                operation: "real-time exchange",
                transport: self.real_time_kind,
            })?;
        transport
            .exchange(RealTimeRequest {
                payload_type,
                payload,
            })
            .await
    }

    /// Submits a batch file (837) through the batch transport.
    pub async fn submit_batch(
        &self,
        file: OutboundFile,
    ) -> Result<SubmissionReceipt, ConnectError> {
        self.batch.submit(file).await
    }

    /// Returns the oldest unacknowledged inbound batch file (999, 277CA, 835), if any.
    pub async fn next_inbound(&self) -> Result<Option<InboundFile>, ConnectError> {
        self.batch.next_inbound(InboundKind::Any).await
    }

    /// Returns the oldest unacknowledged inbound batch file of `kind`, if any.
    pub async fn next_inbound_of(
        &self,
        kind: InboundKind,
    ) -> Result<Option<InboundFile>, ConnectError> {
        self.batch.next_inbound(kind).await
    }

    /// Marks an inbound file processed so it is not returned again.
    pub async fn acknowledge(&self, file_id: &str) -> Result<(), ConnectError> {
        self.batch.acknowledge(file_id).await
    }
}

/// All payer connections, by payer id.
#[derive(Clone, Debug, Default)]
pub struct Connections {
    by_payer: HashMap<String, Connection>,
}

impl Connections {
    /// Opens a connection for each configured payer; fails on the first bad one or a duplicate payer id.
    pub fn open<'a>(
        configs: impl IntoIterator<Item = &'a PayerConnection>,
    ) -> Result<Self, ConfigError> {
        let mut by_payer = HashMap::new();
        for config in configs {
            let connection = Connection::open(config)?;
            if by_payer
                .insert(config.payer_id.clone(), connection)
                .is_some()
            {
                return Err(ConfigError::DuplicatePayer(config.payer_id.clone()));
            }
        }
        Ok(Self { by_payer })
    }

    /// Adds or replaces one connection.
    pub fn insert(&mut self, connection: Connection) {
        self.by_payer
            .insert(connection.payer_id.clone(), connection);
    }

    /// Returns the connection of `payer_id`, or [`ConnectError::UnknownPayer`].
    pub fn get(&self, payer_id: &str) -> Result<&Connection, ConnectError> {
        self.by_payer
            .get(payer_id)
            .ok_or_else(|| ConnectError::UnknownPayer(payer_id.to_owned()))
    }

    /// Returns the configured payer ids.
    pub fn payer_ids(&self) -> impl Iterator<Item = &str> {
        self.by_payer.keys().map(String::as_str)
    }
}
