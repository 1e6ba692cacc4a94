//! Progress bars per stage (on a terminal; hidden otherwise, e.g. in tests and CI logs).

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bars of one run.
pub struct Progress {
    bars: Option<MultiProgress>,
}

impl Progress {
    /// Bars on standard error when `shown` (and standard error is a terminal).
    pub fn new(shown: bool) -> Self {
        Self {
            bars: shown.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        }
    }

    /// Says on standard error that a stage ended, when no bars are drawn (`--quiet`, a log): a
    /// long day shows where it is, and a run stopped part way keeps the stages it finished.
    pub fn finished(&self, stage: &str, items: u64, seconds: f64) {
        if self.bars.is_none() {
            eprintln!("stage {stage}: {items} items in {seconds:.2} s");
        }
    }

    /// A bar for a stage of `len` items (0 when not yet known).
    pub fn bar(&self, stage: &str, len: u64) -> ProgressBar {
        let Some(bars) = &self.bars else {
            return ProgressBar::hidden();
        };
        let bar = bars.add(ProgressBar::new(len));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>24} [{bar:30}] {pos:>7}/{len:7} {elapsed:>4}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(stage.to_owned());
        bar
    }
}
