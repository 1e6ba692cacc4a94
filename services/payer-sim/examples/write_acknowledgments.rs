//! Writes the 999s and 277CAs payer-sim answers for sample 837P and 837I batches into a
//! directory, for independent validation (`crates/x12/scripts/validate-with-pyx12.sh`).
//!
//! Usage: `cargo run -p medbill-payer-sim --example write_acknowledgments -- DIR`
//!
//! Files: `sim-999-accepted.x12`, `sim-277ca.x12` (one accepted and one rejected claim) from the
//! 837P, and `sim-277ca-837i.x12` from the 837I; then the 835s paying the accepted claims:
//! `sim-835-eft.x12` (SIMPPO, EFT: the 837P and 837I claims) and `sim-835-check.x12` (SIMHMO,
//! check: one more 837P claim).

use std::path::PathBuf;

use chrono::NaiveDate;
use medbill_connect::PayloadType;
use medbill_payer_sim::payment::ERA_PAYLOAD_TYPE;
use medbill_payer_sim::{Catalog, ClaimFront};
use medbill_x12::model::PersonName;
use medbill_x12::model::claim::ProfessionalClaim;
use medbill_x12::write::{self, Envelope, Separators, samples};

fn professional(pcn: &str, member_id: &str) -> ProfessionalClaim {
    let mut c = samples::professional_set().claims.remove(0);
    c.payer.id = "SIMPPO".into();
    c.subscriber.member_id = member_id.into();
    c.subscriber.name = PersonName::new("TESTPATIENT", "AVERY");
    c.claim.patient_control_number = pcn.into();
    c
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir: PathBuf = std::env::args_os()
        .nth(1)
        .ok_or("usage: write_acknowledgments DIR")?
        .into();
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let catalog = Catalog::default_catalog()?;
    let front = ClaimFront::new();
    let now = NaiveDate::from_ymd_opt(2026, 3, 3)
        .and_then(|d| d.and_hms_opt(10, 0, 0))
        .ok_or("date")?;
    let mut control = 100u32;
    let mut next = || {
        control += 1;
        control
    };

    let mut set = samples::professional_set();
    set.claims = vec![
        professional("PCN-OK", "SPX100000001"),
        professional("PCN-NOTFOUND", "SPX999999999"),
    ];
    let p837 = write::professional_interchange(
        Separators::default(),
        &Envelope::test_default(1, 1, 1),
        &set,
    )?;
    front.intake(
        &catalog,
        "SAMPLES",
        p837.as_bytes(),
        now,
        "MEDBILLSIM",
        &mut next,
    )?;

    let mut inst = samples::institutional_set();
    for c in &mut inst.claims {
        c.payer.id = "SIMPPO".into();
        c.subscriber.member_id = "SPX100000002".into();
    }
    let i837 = write::institutional_interchange(
        Separators::default(),
        &Envelope::test_default(2, 2, 1),
        &inst,
    )?;
    front.intake(
        &catalog,
        "SAMPLES",
        i837.as_bytes(),
        now,
        "MEDBILLSIM",
        &mut next,
    )?;

    let mut names = vec![
        "sim-999-accepted.x12",
        "sim-277ca.x12",
        "sim-999-837i.x12",
        "sim-277ca-837i.x12",
    ]
    .into_iter();
    while let Some(file) = front.next_file("SAMPLES", medbill_connect::InboundKind::Any) {
        let name = names.next().ok_or("more files than expected")?;
        let expected = if name.contains("277ca") {
            PayloadType::X12_277CA_RESPONSE
        } else {
            PayloadType::X12_999_RESPONSE
        };
        if file.payload_type != expected {
            return Err(format!("{name}: payer-sim wrote a {}", file.payload_type).into());
        }
        let text = String::from_utf8(file.contents.to_vec())?.replace('~', "~\n");
        std::fs::write(dir.join(name), text)?;
        front.acknowledge("SAMPLES", &file.file_id);
    }
    if names.next().is_some() {
        return Err("payer-sim wrote fewer files than expected".into());
    }

    let mut hmo = samples::professional_set();
    let mut c = professional("PCN-CHECK", "HMO0000001");
    c.payer.id = "SIMHMO".into();
    c.subscriber.name = PersonName::new("PLACEHOLDER", "QUINN");
    hmo.claims = vec![c];
    let h837 = write::professional_interchange(
        Separators::default(),
        &Envelope::test_default(3, 3, 1),
        &hmo,
    )?;
    front.intake(
        &catalog,
        "SAMPLES",
        h837.as_bytes(),
        now,
        "MEDBILLSIM",
        &mut next,
    )?;
    front.settle_due(&catalog, "SAMPLES", now, "MEDBILLSIM", &mut next)?;
    let mut eras = ["sim-835-eft.x12", "sim-835-check.x12"].into_iter();
    while let Some(file) = front.next_file("SAMPLES", medbill_connect::InboundKind::Any) {
        if file.payload_type.as_str() == ERA_PAYLOAD_TYPE {
            let name = eras.next().ok_or("more 835s than expected")?;
            let text = String::from_utf8(file.contents.to_vec())?.replace('~', "~\n");
            std::fs::write(dir.join(name), text)?;
        }
        front.acknowledge("SAMPLES", &file.file_id);
    }
    if eras.next().is_some() {
        return Err("payer-sim wrote fewer 835s than expected".into());
    }
    Ok(())
}
