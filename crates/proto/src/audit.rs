//! Which resources a call touched, read from the messages themselves for the audit trail.
//!
//! The build script classifies every id-like field of every medbill message (`claim_id`,
//! `patient_ref`, a message's own `id`, ...; never PHI such as `member_id`) and emits a
//! [`MessageSchema`] per message plus an [`AuditSchema`] impl for every RPC's request and
//! response. Every generated client and server encodes and decodes through [`AuditCodec`]:
//! while a call's [`Touched`] is in scope (the server's audit layer puts it there for the
//! handler and for the response body), each message that passes is walked on the wire for those
//! fields and their values noted. No handler does anything, and a new RPC is covered the moment
//! its proto is written.
//!
//! Only ids are read: the walk skips every other field without decoding it.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use prost::Message;
use prost::bytes::{Buf as _, BufMut as _};
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic_prost::{ProstDecoder, ProstEncoder};

/// Most resource ids one call records; a call that names more (a long list page) keeps the
/// first ones and is marked truncated.
pub const MAX_RESOURCES: usize = 200;

/// Deepest message nesting walked; deeper fields are not read (no medbill message nests so far).
const MAX_DEPTH: usize = 12;

/// What a field holds, as far as the audit trail cares.
#[derive(Debug)]
pub enum FieldRole {
    /// The id of a resource of this kind (`claim`, `patient_ref`, ...).
    Id(&'static str),
    /// A message that holds ids somewhere.
    Message(&'static MessageSchema),
}

/// The fields of one message the audit trail reads, by field number.
#[derive(Debug)]
pub struct MessageSchema {
    /// Field number and role; fields not listed are skipped.
    pub fields: &'static [(u32, FieldRole)],
}

/// A message an RPC sends or receives, with its audit schema (generated for every one).
pub trait AuditSchema {
    /// Where its resource ids are.
    const SCHEMA: &'static MessageSchema;
}

/// The resource ids one call touched: `(kind, id)`, each once, in the order first seen.
#[derive(Debug, Default)]
pub struct Touched {
    inner: Mutex<TouchedInner>,
}

#[derive(Debug, Default)]
struct TouchedInner {
    ids: Vec<(&'static str, String)>,
    truncated: bool,
}

impl Touched {
    /// Starts an empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes one id (empty ids are no resource).
    pub fn note(&self, kind: &'static str, id: &str) {
        if id.is_empty() {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner.ids.iter().any(|(k, v)| *k == kind && v == id) {
            return;
        }
        if inner.ids.len() >= MAX_RESOURCES {
            inner.truncated = true;
            return;
        }
        inner.ids.push((kind, id.to_owned()));
    }

    /// Notes the ids in `bytes`, an encoded message of schema `schema`.
    pub fn note_encoded(&self, schema: &MessageSchema, bytes: &[u8]) {
        walk(schema, bytes, 0, &mut |kind, id| self.note(kind, id));
    }

    /// Returns the ids noted so far and whether some were left out.
    pub fn snapshot(&self) -> (Vec<(&'static str, String)>, bool) {
        self.inner
            .lock()
            .map(|inner| (inner.ids.clone(), inner.truncated))
            .unwrap_or_default()
    }
}

tokio::task_local! {
    static TOUCHED: Arc<Touched>;
}

/// Runs `future` with `touched` collecting the ids of every message that passes the codec.
pub async fn scope<F: Future>(touched: Arc<Touched>, future: F) -> F::Output {
    TOUCHED.scope(touched, future).await
}

/// Runs `f` with `touched` collecting ids (for polling a response body).
pub fn sync_scope<R>(touched: Arc<Touched>, f: impl FnOnce() -> R) -> R {
    TOUCHED.sync_scope(touched, f)
}

/// Returns the set of the call being served on this task, if any.
pub fn current() -> Option<Arc<Touched>> {
    TOUCHED.try_with(Arc::clone).ok()
}

/// Reads the ids of one encoded message; stops quietly at anything malformed (the decoder
/// reports that).
fn walk(
    schema: &MessageSchema,
    mut bytes: &[u8],
    depth: usize,
    note: &mut dyn FnMut(&'static str, &str),
) {
    if depth > MAX_DEPTH {
        return;
    }
    while !bytes.is_empty() {
        let Some(key) = varint(&mut bytes) else {
            return;
        };
        let number = (key >> 3) as u32;
        match key & 7 {
            0 => {
                if varint(&mut bytes).is_none() {
                    return;
                }
            }
            1 => {
                if bytes.len() < 8 {
                    return;
                }
                bytes = &bytes[8..];
            }
            5 => {
                if bytes.len() < 4 {
                    return;
                }
                bytes = &bytes[4..];
            }
            2 => {
                let Some(len) = varint(&mut bytes).and_then(|l| usize::try_from(l).ok()) else {
                    return;
                };
                if bytes.len() < len {
                    return;
                }
                let (value, rest) = bytes.split_at(len);
                bytes = rest;
                match schema.fields.iter().find(|(n, _)| *n == number) {
                    Some((_, FieldRole::Id(kind))) => {
                        if let Ok(id) = std::str::from_utf8(value) {
                            note(kind, id);
                        }
                    }
                    Some((_, FieldRole::Message(inner))) => walk(inner, value, depth + 1, note),
                    None => {}
                }
            }
            // Groups (3, 4) do not occur in proto3; anything else is malformed.
            _ => return,
        }
    }
}

fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// tonic's prost codec, noting the resource ids of each message while a call's [`Touched`] is
/// in scope (see the module docs).
#[derive(Debug)]
pub struct AuditCodec<T, U> {
    _marker: PhantomData<(T, U)>,
}

impl<T, U> Default for AuditCodec<T, U> {
    fn default() -> Self {
        Self {
            _marker: PhantomData,
        }
    }
}

impl<T, U> Codec for AuditCodec<T, U>
where
    T: Message + AuditSchema + Send + 'static,
    U: Message + AuditSchema + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = AuditEncoder<T>;
    type Decoder = AuditDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        AuditEncoder(ProstEncoder::new(BufferSettings::default()))
    }

    fn decoder(&mut self) -> Self::Decoder {
        AuditDecoder(ProstDecoder::new(BufferSettings::default()))
    }
}

/// The encoder of [`AuditCodec`].
#[derive(Debug)]
pub struct AuditEncoder<T>(ProstEncoder<T>);

impl<T: Message + AuditSchema> Encoder for AuditEncoder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        match current() {
            Some(touched) => {
                // Encoded once, read, then copied: the buffer cannot be read back.
                let bytes = item.encode_to_vec();
                touched.note_encoded(T::SCHEMA, &bytes);
                buf.put_slice(&bytes);
                Ok(())
            }
            None => self.0.encode(item, buf),
        }
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}

/// The decoder of [`AuditCodec`].
#[derive(Debug)]
pub struct AuditDecoder<U>(ProstDecoder<U>);

impl<U: Message + AuditSchema + Default> Decoder for AuditDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        if let Some(touched) = current() {
            // The message is one contiguous chunk; reading it does not consume it.
            touched.note_encoded(U::SCHEMA, buf.chunk());
        }
        self.0.decode(buf)
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::v1 as claims;

    #[test]
    fn ids_are_read_from_requests_and_nested_responses_but_never_phi() {
        let touched = Touched::new();
        let request = claims::GetClaimRequest { id: "c-1".into() };
        touched.note_encoded(
            <claims::GetClaimRequest as AuditSchema>::SCHEMA,
            &request.encode_to_vec(),
        );
        let response = claims::GetClaimResponse {
            claim: Some(claims::Claim {
                id: "c-1".into(),
                patient_ref: "MRN-7".into(),
                ..Default::default()
            }),
        };
        touched.note_encoded(
            <claims::GetClaimResponse as AuditSchema>::SCHEMA,
            &response.encode_to_vec(),
        );
        let (ids, truncated) = touched.snapshot();
        assert_eq!(
            ids,
            vec![
                ("claim", "c-1".to_owned()),
                ("patient_ref", "MRN-7".to_owned())
            ]
        );
        assert!(!truncated);
    }

    #[test]
    fn a_long_list_is_cut_and_marked() {
        let touched = Touched::new();
        for i in 0..MAX_RESOURCES + 5 {
            touched.note("claim", &format!("c-{i}"));
        }
        let (ids, truncated) = touched.snapshot();
        assert_eq!(ids.len(), MAX_RESOURCES);
        assert!(truncated);
    }

    #[test]
    fn malformed_bytes_stop_the_walk_quietly() {
        let touched = Touched::new();
        let schema = <claims::GetClaimRequest as AuditSchema>::SCHEMA;
        for bytes in [&[0x0a, 0x05, b'a'][..], &[0xff; 11][..], &[0x0b][..]] {
            touched.note_encoded(schema, bytes);
        }
        assert!(touched.snapshot().0.is_empty());
    }
}
