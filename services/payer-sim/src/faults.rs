//! Fault switches: make payer-sim misbehave the ways real payers do, for tests.

use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

/// One way of misbehaving.
///
/// In TOML: `fault = { kind = "delay", ms = 3000 }`, `fault = { kind = "unable_to_respond" }`...
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Answers a 271 with AAA 42 (unable to respond at current time) in loop 2100A.
    UnableToRespond,
    /// Answers HTTP 503 Service Unavailable (clients retry it).
    Unavailable,
    /// Answers CORE `Receiver Down` (clients retry it).
    ReceiverDown,
    /// Waits `ms` milliseconds, then answers normally (drives client timeouts).
    Delay {
        /// The wait in milliseconds.
        ms: u64,
    },
    /// Answers a payload that is not X12 at all, labelled as a 271.
    Garbage,
    /// Answers a well-formed 271 about another member, with another trace number: an answer that
    /// does not answer the question asked.
    WrongMember,
}

#[derive(Debug, Default)]
struct State {
    fault: Option<Fault>,
    /// Requests the fault still applies to; `None` means until cleared.
    remaining: Option<u64>,
}

/// The fault switches of a running payer-sim, shared with its handle (cheap to clone).
#[derive(Clone, Debug, Default)]
pub struct Faults {
    state: Arc<Mutex<State>>,
}

impl Faults {
    /// Returns switches with `initial` on (until cleared), or all off.
    pub fn new(initial: Option<Fault>) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                fault: initial,
                remaining: None,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is two plain fields, always consistent: a panic elsewhere cannot corrupt it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Turns `fault` on for every request until [`Faults::clear`] (replacing any other fault).
    pub fn set(&self, fault: Fault) {
        *self.lock() = State {
            fault: Some(fault),
            remaining: None,
        };
    }

    /// Turns `fault` on for the next `requests` requests only, then off (e.g. 503 twice, then answer).
    pub fn set_for(&self, fault: Fault, requests: u64) {
        *self.lock() = State {
            fault: (requests > 0).then_some(fault),
            remaining: Some(requests),
        };
    }

    /// Turns every fault off.
    pub fn clear(&self) {
        *self.lock() = State::default();
    }

    /// Returns the fault on now, if any.
    pub fn current(&self) -> Option<Fault> {
        self.lock().fault.clone()
    }

    /// Returns the fault that applies to the request arriving now, counting it down.
    pub(crate) fn take(&self) -> Option<Fault> {
        let mut state = self.lock();
        let fault = state.fault.clone()?;
        if let Some(remaining) = state.remaining.as_mut() {
            *remaining = remaining.saturating_sub(1);
            if *remaining == 0 {
                state.fault = None;
                state.remaining = None;
            }
        }
        Some(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_for_counts_down_then_turns_off() {
        let f = Faults::default();
        assert_eq!(f.take(), None);
        f.set_for(Fault::Unavailable, 2);
        assert_eq!(f.take(), Some(Fault::Unavailable));
        assert_eq!(f.current(), Some(Fault::Unavailable));
        assert_eq!(f.take(), Some(Fault::Unavailable));
        assert_eq!(f.take(), None);
        assert_eq!(f.current(), None);
    }

    #[test]
    fn set_stays_until_cleared() {
        let f = Faults::new(Some(Fault::Garbage));
        for _ in 0..3 {
            assert_eq!(f.take(), Some(Fault::Garbage));
        }
        f.set(Fault::Delay { ms: 5 });
        assert_eq!(f.take(), Some(Fault::Delay { ms: 5 }));
        f.clear();
        assert_eq!(f.take(), None);
        f.set_for(Fault::WrongMember, 0);
        assert_eq!(f.take(), None);
    }

    #[test]
    fn faults_read_from_toml() {
        #[derive(Deserialize)]
        struct Root {
            fault: Fault,
        }
        let r: Root = toml::from_str(r#"fault = { kind = "delay", ms = 250 }"#).unwrap();
        assert_eq!(r.fault, Fault::Delay { ms: 250 });
        let r: Root = toml::from_str(r#"fault = { kind = "unable_to_respond" }"#).unwrap();
        assert_eq!(r.fault, Fault::UnableToRespond);
    }
}
