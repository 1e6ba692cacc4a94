//! The image's Dockerfile, checked for its structure on every test run (the image itself is
//! built in CI only where a Docker daemon runs): multi-stage, non-root, `medbill` as entrypoint
//! with no default that starts services, OCI labels, the data directory as a volume, a health
//! check, and a `.dockerignore` where the build reads it.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One Dockerfile instruction: its keyword and arguments, continuation lines joined.
struct Instruction {
    keyword: String,
    args: String,
}

fn instructions() -> Vec<Instruction> {
    let text =
        std::fs::read_to_string(root().join("deploy/Dockerfile")).expect("deploy/Dockerfile");
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && pending.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(start) => pending.push_str(start),
            None => {
                pending.push_str(line);
                let (keyword, args) = pending.split_once(' ').unwrap_or((&pending, ""));
                out.push(Instruction {
                    keyword: keyword.to_ascii_uppercase(),
                    args: args.trim().to_owned(),
                });
                pending.clear();
            }
        }
    }
    out
}

/// The instructions of the last stage (from its FROM on).
fn final_stage(all: &[Instruction]) -> &[Instruction] {
    let last_from = all
        .iter()
        .rposition(|i| i.keyword == "FROM")
        .expect("a FROM");
    &all[last_from..]
}

/// Parses an exec-form JSON array (`["a", "b"]`).
fn exec_form(args: &str) -> Vec<String> {
    serde_json::from_str(args).unwrap_or_else(|e| panic!("{args} is not exec form: {e}"))
}

#[test]
fn the_build_is_multi_stage_and_copies_only_from_named_stages() {
    let all = instructions();
    let stages: Vec<&str> = all
        .iter()
        .filter(|i| i.keyword == "FROM")
        .filter_map(|i| i.args.split_once(" AS ").map(|(_, name)| name.trim()))
        .collect();
    assert!(
        stages.len() >= 2,
        "named build and runtime stages: {stages:?}"
    );
    for copy in all.iter().filter(|i| i.keyword == "COPY") {
        if let Some(rest) = copy.args.strip_prefix("--from=") {
            let stage = rest.split_whitespace().next().unwrap_or_default();
            assert!(
                stages.contains(&stage),
                "COPY --from={stage}: no such stage"
            );
        }
    }
    // The builder's Rust is the toolchain the repository pins.
    let toolchain = std::fs::read_to_string(root().join("rust-toolchain.toml")).expect("toolchain");
    let channel = toolchain
        .lines()
        .find_map(|l| l.trim().strip_prefix("channel = "))
        .map(|v| v.trim_matches('"').to_owned())
        .expect("a pinned channel");
    let minor = channel
        .rsplit_once('.')
        .map_or(channel.as_str(), |(mm, _)| mm);
    assert!(
        all.iter()
            .any(|i| i.keyword == "FROM" && i.args.starts_with(&format!("rust:{minor}"))),
        "the build stage uses rust:{minor}"
    );
}

#[test]
fn the_runtime_stage_runs_medbill_as_a_non_root_user_with_no_default_service() {
    let all = instructions();
    let runtime = final_stage(&all);
    let user = runtime
        .iter()
        .rfind(|i| i.keyword == "USER")
        .map(|i| i.args.clone())
        .expect("USER in the runtime stage");
    let uid = user.split(':').next().unwrap_or_default();
    assert!(
        uid != "0" && uid != "root" && uid.parse::<u32>().is_ok(),
        "a numeric non-root user (Kubernetes runAsNonRoot checks it): {user}"
    );

    let entrypoint = runtime
        .iter()
        .rfind(|i| i.keyword == "ENTRYPOINT")
        .map(|i| exec_form(&i.args))
        .expect("ENTRYPOINT");
    assert_eq!(entrypoint, ["/usr/local/bin/medbill"]);
    let cmd = runtime
        .iter()
        .rfind(|i| i.keyword == "CMD")
        .map(|i| exec_form(&i.args))
        .unwrap_or_default();
    assert!(
        !cmd.iter().any(|a| a == "serve"),
        "no default that starts services (and payer-sim with --target all): {cmd:?}"
    );

    let healthcheck = runtime
        .iter()
        .find(|i| i.keyword == "HEALTHCHECK")
        .expect("HEALTHCHECK");
    assert!(
        healthcheck
            .args
            .contains(r#"["/usr/local/bin/medbill", "health"]"#),
        "{}",
        healthcheck.args
    );
}

#[test]
fn the_runtime_stage_has_oci_labels_and_its_data_directory_as_a_volume() {
    let all = instructions();
    let runtime = final_stage(&all);
    let labels: String = runtime
        .iter()
        .filter(|i| i.keyword == "LABEL")
        .map(|i| i.args.as_str())
        .collect();
    for key in [
        "title",
        "description",
        "licenses",
        "version",
        "revision",
        "source",
    ] {
        assert!(
            labels.contains(&format!("org.opencontainers.image.{key}=")),
            "label org.opencontainers.image.{key}"
        );
    }
    let cargo = std::fs::read_to_string(root().join("Cargo.toml")).expect("Cargo.toml");
    let license = cargo
        .lines()
        .find_map(|l| l.strip_prefix("license = "))
        .expect("workspace license");
    assert!(
        labels.contains(&format!("org.opencontainers.image.licenses={license}")),
        "the licence label says {license}"
    );

    let env: String = runtime
        .iter()
        .filter(|i| i.keyword == "ENV")
        .map(|i| i.args.as_str())
        .collect();
    let data_dir = env
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("MEDBILL_DATA_DIR="))
        .expect("MEDBILL_DATA_DIR");
    let volumes = runtime
        .iter()
        .find(|i| i.keyword == "VOLUME")
        .map(|i| exec_form(&i.args))
        .expect("VOLUME");
    assert!(volumes.iter().any(|v| v == data_dir), "{volumes:?}");
}

#[test]
fn the_dockerignore_is_where_the_build_reads_it_and_leaves_build_output_out() {
    // `docker build -f deploy/Dockerfile .` reads .dockerignore at the context root only.
    assert!(
        !root().join("deploy/.dockerignore").exists(),
        "deploy/.dockerignore would be ignored by the build"
    );
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).expect(".dockerignore");
    let patterns: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for needed in ["**/target", ".git", "node_modules"] {
        assert!(
            patterns.contains(&needed),
            "{needed} excluded: {patterns:?}"
        );
    }
}
