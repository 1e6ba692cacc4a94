//! `medbill serve` as a child process: start it with a clean environment, read what it prints,
//! stop it. Shared by the test files that run the binary.

#![allow(dead_code)] // each test file uses its own part

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `medbill serve` command with no `MEDBILL_*` or `RUST_LOG` from the test's environment.
pub fn medbill(args: &[&str]) -> Command {
    medbill_command("serve", args)
}

/// A `medbill <subcommand>` command with no `MEDBILL_*` or `RUST_LOG` from the test's
/// environment, its output piped.
pub fn medbill_command(subcommand: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_medbill"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("MEDBILL_") {
            cmd.env_remove(name);
        }
    }
    // Tests run side by side: each process takes a free port for /metrics, not the default.
    cmd.env("MEDBILL_METRICS__LISTEN", "127.0.0.1:0")
        .env_remove("RUST_LOG")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .arg(subcommand)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Returns a loopback address nothing listens on (bound and released).
pub fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address")
}

/// Reads the child's stdout until a line contains `marker`; returns the lines read. Panics
/// (with stderr) when the process ends first.
pub fn stdout_until(child: &mut Child, marker: &str) -> Vec<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("UTF-8 stdout");
        let done = line.contains(marker);
        lines.push(line);
        if done {
            return lines;
        }
    }
    let _ = child.kill();
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    panic!("medbill ended before printing {marker:?}; stdout {lines:?}; stderr:\n{stderr}");
}

/// Spawns `cmd`, waits until it prints that it listens, and from then on reads its output to
/// the end in the background (a closed or full pipe would stop it). Panics when it ends first.
pub fn spawn_listening(mut cmd: Command) -> Child {
    let mut child = cmd.spawn().expect("medbill starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let started = stdout
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line.contains("medbill listening on"));
    assert!(started, "medbill ended before listening");
    std::thread::spawn(move || stdout.for_each(drop));
    let mut stderr = child.stderr.take().expect("piped stderr");
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    child
}

/// Stops the child and returns its stderr.
pub fn stop(mut child: Child) -> String {
    let _ = child.kill();
    let out = child.wait_with_output().expect("medbill exits");
    String::from_utf8(out.stderr).expect("UTF-8 stderr")
}

/// Stops the child the way Kubernetes does (SIGTERM), waits for it to drain and exit, and
/// returns its stderr. Panics when it does not exit within 60 s or exits unsuccessfully.
pub fn stop_gracefully(child: Child) -> String {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "SIGTERM not delivered");
    let (done, waited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let out = waited
        .recv_timeout(Duration::from_secs(60))
        .expect("medbill exits within 60 s of SIGTERM")
        .expect("medbill exits");
    let stderr = String::from_utf8(out.stderr).expect("UTF-8 stderr");
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    stderr
}

/// Runs a command that must fail; returns its stderr.
pub fn failure(mut cmd: Command) -> String {
    let out = cmd.output().expect("medbill runs");
    let stderr = String::from_utf8(out.stderr).expect("UTF-8 stderr");
    assert!(
        !out.status.success(),
        "expected a failure; stderr:\n{stderr}"
    );
    stderr
}

pub fn connects(addr: SocketAddr) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
