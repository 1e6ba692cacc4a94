//! `medbill x12 inspect|validate FILE`: the X12 tools of the medbill binary.
//!
//! Exit codes (documented in docs/x12-cli.md): 0 the file has no error (warnings
//! may be printed), 1 the file has at least one error (envelope, syntax, typed
//! reader or 835 balancing), 2 the file could not be read.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use medbill_x12::inspect::{inspect, validate_read};

/// X12 tools.
#[derive(Debug, clap::Subcommand)]
pub enum X12Command {
    /// Prints a JSON report: one entry per interchange, group and transaction set
    /// (for an 835: payer, payee, payment, claims, provider adjustments, balance).
    Inspect {
        /// The X12 file to read.
        file: PathBuf,
    },
    /// Prints one line per problem (segment position and what is wrong) and exits
    /// non-zero when there is any error.
    Validate {
        /// The X12 file to read.
        file: PathBuf,
    },
}

/// Runs an X12 command and returns the process exit code.
pub fn run(cmd: X12Command) -> ExitCode {
    match cmd {
        X12Command::Inspect { file } => run_inspect(&file),
        X12Command::Validate { file } => run_validate(&file),
    }
}

fn read(file: &Path) -> Result<Vec<u8>, ExitCode> {
    std::fs::read(file).map_err(|e| cannot_read(file, &e))
}

/// Says why `file` could not be read; the exit code for it.
fn cannot_read(file: &Path, e: &std::io::Error) -> ExitCode {
    eprintln!("{}: cannot read: {e}", file.display());
    ExitCode::from(2)
}

fn run_inspect(file: &Path) -> ExitCode {
    let input = match read(file) {
        Ok(input) => input,
        Err(code) => return code,
    };
    let report = inspect(&input);
    let mut out = std::io::stdout().lock();
    let written = serde_json::to_writer_pretty(&mut out, &report).map_err(std::io::Error::from);
    if let Err(e) = written.and_then(|()| writeln!(out)) {
        eprintln!("cannot write the report: {e}");
        return ExitCode::from(2);
    }
    if report.summary.errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn run_validate(file: &Path) -> ExitCode {
    // Read in windows rather than whole: memory stays about 1 MiB whatever
    // the file's size (plus the largest non-835 transaction set).
    let input = match std::fs::File::open(file) {
        Ok(input) => input,
        Err(e) => return cannot_read(file, &e),
    };
    let problems = validate_read(input);
    // A read error part way through is printed with the rest, and the file
    // counts as not read.
    let unreadable = problems
        .iter()
        .any(|p| matches!(p.kind, medbill_x12::ErrorKind::Io(_)));
    let mut out = std::io::stdout().lock();
    let name = file.display();
    let mut errors = 0usize;
    for p in &problems {
        if p.is_error() {
            errors += 1;
        }
        if writeln!(out, "{name}: {p}").is_err() {
            return ExitCode::from(2);
        }
    }
    let warnings = problems.len() - errors;
    let verdict = if errors == 0 { "ok" } else { "INVALID" };
    if writeln!(
        out,
        "{name}: {verdict}: {errors} error(s), {warnings} warning(s)"
    )
    .is_err()
    {
        return ExitCode::from(2);
    }
    if unreadable {
        ExitCode::from(2)
    } else if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
