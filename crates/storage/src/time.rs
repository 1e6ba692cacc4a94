//! Timestamps as BIGINT unix microseconds: the portable representation in both backends.

use chrono::{DateTime, Utc};

/// Returns the current time as unix microseconds (UTC).
pub fn now_micros() -> i64 {
    to_micros(Utc::now())
}

/// Converts a UTC timestamp to unix microseconds.
pub fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// Converts unix microseconds to a UTC timestamp; `None` when out of chrono's range.
pub fn from_micros(micros: i64) -> Option<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp_micros(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_micros() {
        let t = DateTime::<Utc>::from_timestamp(1_700_000_000, 123_456_000).unwrap();
        let m = to_micros(t);
        assert_eq!(m, 1_700_000_000_123_456);
        assert_eq!(from_micros(m), Some(t));
    }
}
