//! Compiles the medbill v1 protobuf contracts with protox (no protoc needed)
//! and generates prost messages plus tonic clients and servers.

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};

use prost::Message;

/// Directory holding `medbill/<svc>/v1/*.proto`, relative to this crate.
const PROTO_ROOT: &str = "../../proto";

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    println!("cargo:rerun-if-changed=build.rs");

    let root = Path::new(PROTO_ROOT);
    let mut files = Vec::new();
    collect_protos(root, &mut files)?;
    files.sort();
    for file in &files {
        // Directory mtimes do not change when a file is edited in place.
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let relative: Vec<PathBuf> = files
        .iter()
        .map(|f| f.strip_prefix(root).map(Path::to_path_buf))
        .collect::<Result<_, _>>()?;

    let mut compiler = protox::Compiler::new([root])?;
    // Source info carries the doc comments into rustdoc and into the
    // reflection descriptors; imports make the set self-contained
    // (google/protobuf/timestamp.proto) for reflection clients.
    compiler.include_source_info(true);
    compiler.include_imports(true);
    compiler.open_files(&relative)?;
    let fds = compiler.file_descriptor_set();

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    fs::write(out_dir.join("medbill_descriptor.bin"), fds.encode_to_vec())?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .build_transport(true)
        .compile_fds(fds)?;
    Ok(())
}

/// Collects every `.proto` file below `dir`.
fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
