//! X12 5010 reader and writer: envelopes, typed 835/837/270/271/276/277/278/999/TA1, 835 balancing.
//!
//! # Reading
//!
//! The core is zero-copy: every [`Segment`] borrows its bytes from the input.
//!
//! - [`Delimiters`] are read from each ISA ([`Delimiters::from_isa`]): any
//!   element, component, repetition and segment characters, including a newline
//!   terminator. Input without an ISA (a bare `ST..SE`) is read with delimiters
//!   guessed from its first segment, and a warning says so.
//! - [`Tokenizer`] iterates over the segments of a byte slice, tolerating CR/LF,
//!   blank lines and indentation between segments, re-reading delimiters at every
//!   ISA, and collecting problems (junk segment ids, missing final terminator,
//!   segments over [`MAX_SEGMENT_LEN`]).
//! - [`Segment`]: `id()`, `element(n)` 1-based as in X12 (`ISA01` is
//!   `element(1)`, `element(0)` the id), `text(n)` (`""` when absent),
//!   `split_into` (fast one-pass split), `index()` (1-based ordinal in the input),
//!   `offset()` (byte offset), `position_at(n)` (for problems). [`Element`] has
//!   `component(n)` (1-based), `components()` and `repetitions()`.
//! - [`Document::parse`] builds the lossless tree: [`Interchange`] (ISA, TA1s,
//!   groups, IEA) -> [`Group`] (GS, sets, GE) -> [`TransactionSet`] (segments ST..SE
//!   inclusive). Unknown and misplaced segments are kept (`other` lists), never
//!   dropped. Envelope checks ([`envelope`]) run while the tree is built.
//! - Problems are [`Error`] values: severity, [`Position`] (segment index, segment
//!   id, element, component, byte offset) and [`ErrorKind`]. Readers collect them
//!   in a list and go on wherever they can.
//!
//! A typed reader walks a [`TransactionSet`]'s segments (or receives them one
//! at a time from the streaming reader) and records its own problems with
//! [`Segment::position_at`].
//!
//! # 835 remittances
//!
//! - [`transactions::era835::read_835`] reads one set of the tree into a
//!   [`transactions::era835::Remittance`] (payment, trace, payer, payee, LX/TS3/TS2,
//!   claims with CAS, names, MIA/MOA, dates, references, amounts, service lines with
//!   SVC/SVC06, DTM, CAS, REF*6R, AMT*B6, LQ; PLB pairs). Text borrows from the
//!   input; amounts are exact `Decimal`s.
//! - [`transactions::era835::for_each_835`] and
//!   [`transactions::era835::read_all_835`] read every 835 set of an input in one
//!   pass without the tree (the fast path).
//! - [`balance::balance`] checks line, claim and transaction balancing and reports
//!   each imbalance (level, claim, expected, actual, difference); it never plugs.
//! - [`stream::Era835Stream`] reads any `std::io::Read` and yields one claim at a
//!   time with its imbalances: memory is bounded by one claim plus a 256 KiB read
//!   buffer (and [`MAX_SEGMENT_LEN`] for a pathological segment), whatever the file size.
//! - [`inspect::inspect`] and [`inspect::validate`] back `medbill x12 inspect` and
//!   `medbill x12 validate` (JSON shape and exit codes: `docs/x12-cli.md`).
//! - [`bench_data::write_835`] generates large valid 835s for benchmarks.
//!
//! ```
//! let input = b"ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240101*1200*^*00501*000000001*0*P*:~\
//! GS*HP*S*R*20240101*1200*1*X*005010X221A1~ST*835*0001~BPR*I*0*C*NON************20240101~SE*3*0001~GE*1*1~IEA*1*000000001~";
//! let doc = medbill_x12::Document::parse(input);
//! assert!(doc.problems.is_empty());
//! let (_, group, set) = doc.sets().next().unwrap();
//! assert_eq!(group.gs.unwrap().text(8), "005010X221A1");
//! assert_eq!(set.set_id(), "835");
//! assert_eq!(set.body()[0].element(2).unwrap().text(), "0");
//! ```

pub mod balance;
pub mod bench_data;
pub mod decimal;
pub mod delimiters;
pub mod envelope;
pub mod error;
pub mod inspect;
pub mod model;
pub mod segment;
pub mod stream;
pub mod tokenizer;
pub mod transactions;
pub mod tree;
mod validator;
mod window;
pub mod write;

pub use delimiters::Delimiters;
pub use error::{Error, ErrorKind, MAX_PROBLEMS, Position, Severity};
pub use segment::{Element, Segment};
pub use tokenizer::{MAX_SEGMENT_LEN, Tokenizer};
pub use tree::{Document, Group, Interchange, TransactionSet};
