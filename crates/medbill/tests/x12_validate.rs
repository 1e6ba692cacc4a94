//! `medbill x12 validate FILE`, run as a process: output lines, verdict and
//! exit codes (docs/x12-cli.md).

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../x12/tests/fixtures")
        .join(path)
}

/// Runs `medbill x12 validate file`: exit code and stdout lines.
fn validate(file: &Path) -> (Option<i32>, Vec<String>) {
    let out = Command::new(env!("CARGO_BIN_EXE_medbill"))
        .args(["x12", "validate"])
        .arg(file)
        .output()
        .expect("medbill runs");
    let lines = String::from_utf8(out.stdout)
        .expect("UTF-8 output")
        .lines()
        .map(str::to_string)
        .collect();
    (out.status.code(), lines)
}

#[test]
fn a_clean_file_prints_ok_and_exits_0() {
    let file = fixture("synthetic/multi-st.835");
    let (code, lines) = validate(&file);
    assert_eq!(code, Some(0), "{lines:?}");
    assert_eq!(
        lines,
        [format!("{}: ok: 0 error(s), 0 warning(s)", file.display())]
    );
}

#[test]
fn a_broken_file_prints_each_problem_as_the_library_finds_it_and_exits_1() {
    // A bad amount in an 835 claim and one in an 837 claim (a set the
    // validator holds until its SE), behind more than a 1 MiB window of
    // clean 835s, so the problems are found in a later window of the file.
    let mut input = Vec::new();
    let clean = std::fs::read(fixture("lfh-x12/managed-care.835")).expect("fixture");
    while input.len() < 1_500_000 {
        input.extend_from_slice(&clean);
        input.push(b'\n');
    }
    let broken_835 = String::from_utf8(clean)
        .expect("ASCII")
        .replacen("CLP*", "CLP*X*", 1);
    input.extend_from_slice(broken_835.as_bytes());
    let claim = std::fs::read_to_string(fixture("lfh-x12/demo.example1.837")).expect("fixture");
    input.extend_from_slice(
        claim
            .replace("CLM*26463774*100.00*", "CLM*26463774*1X0*")
            .as_bytes(),
    );
    let dir = std::env::temp_dir().join(format!("medbill-x12-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("broken.x12");
    std::fs::write(&file, &input).expect("temp file");
    let (code, lines) = validate(&file);
    std::fs::remove_dir_all(&dir).ok();
    let name = file.display().to_string();
    let want: Vec<String> = medbill_x12::inspect::validate(&input)
        .iter()
        .map(|p| format!("{name}: {p}"))
        .collect();
    assert!(want.len() >= 2, "{want:?}");
    assert!(want.iter().any(|l| l.contains("(CLM")), "{want:?}");
    assert_eq!(code, Some(1), "{lines:?}");
    assert_eq!(lines[..lines.len() - 1], want[..]);
    let errors = medbill_x12::inspect::validate(&input)
        .iter()
        .filter(|p| p.is_error())
        .count();
    assert_eq!(
        lines.last().expect("a verdict"),
        &format!(
            "{name}: INVALID: {errors} error(s), {} warning(s)",
            want.len() - errors
        )
    );
}

#[test]
fn a_file_that_cannot_be_read_exits_2() {
    let (code, lines) = validate(Path::new("/nonexistent/medbill/file.835"));
    assert_eq!(code, Some(2));
    assert!(lines.is_empty(), "{lines:?}");
}
