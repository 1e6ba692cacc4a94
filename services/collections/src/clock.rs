//! Today's date as the service sees it. Statements, dunning and the 501(r) guard count days
//! from it; the running service reads the system clock, tests set the date to walk a
//! months-long collection story in seconds.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{NaiveDate, Utc};

/// The service's source of today's date (UTC).
#[derive(Clone, Debug, Default)]
pub struct Clock {
    fixed: Option<Arc<Mutex<NaiveDate>>>,
}

impl Clock {
    /// Reads the system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// Starts at `today` and moves only when [`Clock::set`] says so.
    pub fn fixed(today: NaiveDate) -> Self {
        Self {
            fixed: Some(Arc::new(Mutex::new(today))),
        }
    }

    /// Moves a fixed clock (and every clone of it) to `today`; a system clock ignores it.
    pub fn set(&self, today: NaiveDate) {
        if let Some(fixed) = &self.fixed {
            *fixed.lock().unwrap_or_else(PoisonError::into_inner) = today;
        }
    }

    /// Returns today's date.
    pub fn today(&self) -> NaiveDate {
        match &self.fixed {
            Some(fixed) => *fixed.lock().unwrap_or_else(PoisonError::into_inner),
            None => Utc::now().date_naive(),
        }
    }
}
