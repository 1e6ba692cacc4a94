//! Reads 837P (005010X222A1) and 837I (005010X223A2) sets back into the models the writers
//! take ([`crate::model::claim`]), so written claims round-trip and received claims can be imported.
//!
//! Loops are found by their leading segment and qualifier: HL 20/22/23 set the billing provider,
//! subscriber and patient; CLM starts a claim; NM1 before the first 2320 starts a 2310 loop
//! (providers, ambulance pick-up PW and drop-off 45); SBR after CLM starts an other-payer loop
//! (2320), whose 2330 NM1s never count as claim providers; LX starts a line; NM1 82, QB, 77,
//! DQ, DK or DN on a professional line starts a 2420 loop; SVD starts a line adjudication
//! (2430). Segments the model does not hold (PER in 2010AA, NM1*87 pay-to address, REF*G2, the
//! DME PWK and TPO NTE of 2400, line-level CR1, ...) are skipped.

mod draft;
mod segments;
mod walk;

use crate::model::claim::{InstitutionalClaimSet, ProfessionalClaimSet};
use crate::tree::TransactionSet;

use super::read::Parsed;

/// An 837 set of either kind (serialised as the set itself, without a tag).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum ClaimSet {
    /// 837P.
    Professional(ProfessionalClaimSet),
    /// 837I.
    Institutional(InstitutionalClaimSet),
}

/// Reads an 837 set, telling professional from institutional by ST03 (X222 / X223), else by
/// the first SV1/SV2 or CL1 segment.
pub fn read_837(set: &TransactionSet<'_>) -> Parsed<ClaimSet> {
    if is_institutional(set) {
        let p = read_837i(set);
        Parsed {
            value: ClaimSet::Institutional(p.value),
            problems: p.problems,
        }
    } else {
        let p = read_837p(set);
        Parsed {
            value: ClaimSet::Professional(p.value),
            problems: p.problems,
        }
    }
}

fn is_institutional(set: &TransactionSet<'_>) -> bool {
    let version = set.st().map(|s| s.text(3).into_owned()).unwrap_or_default();
    if version.contains("X223") {
        return true;
    }
    if version.contains("X222") {
        return false;
    }
    set.body()
        .iter()
        .find(|s| s.is("SV1") || s.is("SV2") || s.is("CL1"))
        .is_some_and(|s| !s.is("SV1"))
}

/// Reads an 837P set.
pub fn read_837p(set: &TransactionSet<'_>) -> Parsed<ProfessionalClaimSet> {
    let (header, drafts, mut problems) = walk::walk(set);
    let mut claims = Vec::with_capacity(drafts.len());
    for d in drafts {
        if let Some(c) = d.into_professional(&mut problems) {
            claims.push(c);
        }
    }
    Parsed {
        value: ProfessionalClaimSet { header, claims },
        problems: problems.0,
    }
}

/// Reads an 837I set.
pub fn read_837i(set: &TransactionSet<'_>) -> Parsed<InstitutionalClaimSet> {
    let (header, drafts, mut problems) = walk::walk(set);
    let mut claims = Vec::with_capacity(drafts.len());
    for d in drafts {
        if let Some(c) = d.into_institutional(&mut problems) {
            claims.push(c);
        }
    }
    Parsed {
        value: InstitutionalClaimSet { header, claims },
        problems: problems.0,
    }
}

/// Returns the 837 loop id (`2300`, `2400`, `2010BA`, ...) the segment at `position` (1-based
/// within the set, ST = 1, as IK302 counts) belongs to, for IK303; `None` in the header.
pub fn loop_at(set: &TransactionSet<'_>, position: usize) -> Option<&'static str> {
    let institutional = is_institutional(set);
    let mut current: Option<&'static str> = None;
    // Where the last HL / CLM / SBR / LX put us: NM1 loops depend on it.
    let mut level = "";
    for seg in set.segments.iter().take(position) {
        let q = seg.text(1);
        current = match seg.id() {
            "NM1" => match (level, q.as_ref()) {
                ("", "41") => Some("1000A"),
                ("", "40") => Some("1000B"),
                ("2000A", "85") => Some("2010AA"),
                ("2000A", "87") => Some("2010AB"),
                ("2000A", "PE") => Some("2010AC"),
                ("2000B", "IL") => Some("2010BA"),
                ("2000B", "PR") => Some("2010BB"),
                ("2000C", "QC") => Some("2010CA"),
                ("2300", "DN") if !institutional => Some("2310A"),
                ("2300", "71") => Some("2310A"),
                ("2300", "72") => Some("2310B"),
                ("2300", "82") => Some(if institutional { "2310D" } else { "2310B" }),
                ("2300", "77") => Some(if institutional { "2310E" } else { "2310C" }),
                ("2300", "ZZ") => Some("2310C"),
                ("2300", "DQ") => Some("2310D"),
                ("2300", "PW") => Some("2310E"),
                ("2300", "45") => Some("2310F"),
                ("2320", "IL") => Some("2330A"),
                ("2320", "PR") => Some("2330B"),
                ("2400", _) => Some("2420"),
                _ => current,
            },
            "HL" => {
                level = match seg.text(3).as_ref() {
                    "20" => "2000A",
                    "22" => "2000B",
                    "23" => "2000C",
                    _ => level,
                };
                Some(level)
            }
            "CLM" => {
                level = "2300";
                Some(level)
            }
            "SBR" if level == "2300" || level == "2320" => {
                level = "2320";
                Some(level)
            }
            "LX" => {
                level = "2400";
                Some(level)
            }
            "LIN" => Some("2410"),
            "SVD" => Some("2430"),
            "SE" => None,
            _ => current,
        };
    }
    current
}
