//! Today's date as the service sees it. Statements, dunning and the 501(r) guard count days
//! from it; the running service reads the system clock, tests set the date to walk a
//! months-long collection story in seconds, and a training environment may read it from a
//! file (`[collections.training_clock]`, see docs/collections.md).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{NaiveDate, Utc};

/// The service's source of today's date (UTC).
#[derive(Clone, Debug, Default)]
pub struct Clock {
    source: Source,
}

#[derive(Clone, Debug, Default)]
enum Source {
    #[default]
    System,
    Fixed(Arc<Mutex<NaiveDate>>),
    /// The date written in a file, read at each call; the last date read stands in while the
    /// file is being rewritten or holds no date.
    File {
        path: PathBuf,
        last: Arc<Mutex<NaiveDate>>,
    },
}

impl Clock {
    /// Reads the system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// Starts at `today` and moves only when [`Clock::set`] says so.
    pub fn fixed(today: NaiveDate) -> Self {
        Self {
            source: Source::Fixed(Arc::new(Mutex::new(today))),
        }
    }

    /// Reads today's date (`YYYY-MM-DD`) from the file at `path` at each call: a training
    /// environment's clock, moved by rewriting the file.
    ///
    /// # Errors
    /// A message naming the file when it cannot be read or holds no date.
    pub fn date_file(path: &Path) -> Result<Self, String> {
        let today = read_date(path)?;
        Ok(Self {
            source: Source::File {
                path: path.to_owned(),
                last: Arc::new(Mutex::new(today)),
            },
        })
    }

    /// Moves a fixed clock (and every clone of it) to `today`; other clocks ignore it.
    pub fn set(&self, today: NaiveDate) {
        if let Source::Fixed(fixed) = &self.source {
            *fixed.lock().unwrap_or_else(PoisonError::into_inner) = today;
        }
    }

    /// Returns today's date.
    pub fn today(&self) -> NaiveDate {
        match &self.source {
            Source::System => Utc::now().date_naive(),
            Source::Fixed(fixed) => *fixed.lock().unwrap_or_else(PoisonError::into_inner),
            Source::File { path, last } => {
                let mut last = last.lock().unwrap_or_else(PoisonError::into_inner);
                match read_date(path) {
                    Ok(today) => *last = today,
                    Err(reason) => {
                        tracing::warn!(%reason, "training clock unreadable; keeping its last date")
                    }
                }
                *last
            }
        }
    }
}

fn read_date(path: &Path) -> Result<NaiveDate, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|e| format!("{}: not a YYYY-MM-DD date ({e})", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_file_moves_the_clock_and_a_bad_one_keeps_the_last_date() {
        let dir = std::env::temp_dir().join(format!("medbill-clock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let file = dir.join("today");
        assert!(
            Clock::date_file(&file).is_err(),
            "no file: refused at start"
        );
        std::fs::write(&file, "2027-01-31\n").unwrap_or_else(|e| panic!("{e}"));
        let clock = Clock::date_file(&file).unwrap_or_else(|e| panic!("{e}"));
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default();
        assert_eq!(clock.today(), day("2027-01-31"));
        std::fs::write(&file, "2027-03-02").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(clock.today(), day("2027-03-02"));
        std::fs::write(&file, "").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            clock.today(),
            day("2027-03-02"),
            "a half-written file changes nothing"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
