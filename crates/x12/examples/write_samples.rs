//! Writes one example interchange per writer into a directory, for independent validation
//! (`scripts/validate-with-pyx12.sh`) and for people to look at.
//!
//! Usage: `cargo run -p medbill-x12 --example write_samples -- DIR`

use std::path::PathBuf;

use medbill_x12::write::{self, Envelope, GroupHeader, InterchangeHeader, Separators, samples};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir: PathBuf = std::env::args_os()
        .nth(1)
        .ok_or("usage: write_samples DIR")?
        .into();
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let interchange = InterchangeHeader::test_default(1001);
    let group = GroupHeader::new(
        "SENDERAPP",
        "RECEIVERAPP",
        interchange.date,
        interchange.time,
        2001,
    );
    let env = Envelope {
        interchange: interchange.clone(),
        group,
        set_control_number: 1,
    };
    let sep = Separators {
        newline: true,
        ..Separators::default()
    };
    let files = [
        (
            "837p.x12",
            write::professional_interchange(sep, &env, &samples::professional_set())?,
        ),
        (
            "837i.x12",
            write::institutional_interchange(sep, &env, &samples::institutional_set())?,
        ),
        (
            "270.x12",
            write::eligibility_interchange(sep, &env, &samples::eligibility_inquiry())?,
        ),
        (
            "276.x12",
            write::claim_status_interchange(sep, &env, &samples::claim_status_inquiry())?,
        ),
        (
            "999.x12",
            write::ack_interchange(sep, &env, &samples::functional_ack())?,
        ),
        (
            "835.x12",
            write::remittance_interchange(sep, &env, &samples::remittance())?,
        ),
        (
            "ta1.x12",
            write::ta1_interchange(sep, &interchange, &samples::interchange_ack())?,
        ),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}
