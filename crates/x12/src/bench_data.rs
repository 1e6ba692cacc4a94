//! Generates large, valid, balanced 835 files for benchmarks and memory tests.
//!
//! The output is deterministic for a seed: one interchange, groups of up to 250
//! transaction sets, 20 to 400 claims per set, 1 to 4 service lines per claim,
//! with contractual and patient-responsibility CAS, denials (CLP02 = 4),
//! secondary payments, reversals (CLP02 = 22, negated amounts), REF*6R, AMT*B6,
//! LQ*HE, and PLB adjustments; every line, claim and set balances and every
//! envelope count is right. Names and ids are invented.

use std::io::{self, Write};

/// What [`write_835`] produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Generated {
    /// Bytes written.
    pub bytes: usize,
    /// Transaction sets written.
    pub sets: usize,
    /// Claims written.
    pub claims: usize,
    /// Service lines written.
    pub lines: usize,
    /// Segments written.
    pub segments: usize,
}

/// Small deterministic generator (xorshift64*), so the data needs no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'s>(&mut self, items: &[&'s str]) -> &'s str {
        let i = usize::try_from(self.below(items.len() as u64)).unwrap_or(0);
        items.get(i).copied().unwrap_or("")
    }
}

/// Formats cents as a decimal amount (`12345` -> `123.45`, `-5` -> `-0.05`).
fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}{}.{:02}", c / 100, c % 100)
}

const CPT: &[&str] = &[
    "99213", "99214", "99203", "97110", "93000", "80053", "85025", "36415", "71046", "99285",
];
const MODS: &[&str] = &["", "", "", "25", "59", "GP", "26"];
const RARC: &[&str] = &["N130", "M15", "N381", "MA130", "N59"];
const LAST: &[&str] = &[
    "SMITH", "JONES", "GARCIA", "NGUYEN", "BROWN", "MILLER", "DAVIS", "LOPEZ",
];
const FIRST: &[&str] = &[
    "ALEX", "SAM", "JORDAN", "TAYLOR", "CASEY", "RILEY", "JAMIE", "MORGAN",
];

struct Writer<'w, W: Write> {
    out: &'w mut W,
    stats: Generated,
    set_segments: usize,
}

impl<W: Write> Writer<'_, W> {
    fn seg(&mut self, s: &str) -> io::Result<()> {
        self.out.write_all(s.as_bytes())?;
        self.out.write_all(b"~\n")?;
        self.stats.bytes += s.len() + 2;
        self.stats.segments += 1;
        self.set_segments += 1;
        Ok(())
    }
}

/// Writes an 835 of about `target_bytes` (it stops after the first set that
/// reaches the target) to `out`.
pub fn write_835<W: Write>(out: &mut W, target_bytes: usize, seed: u64) -> io::Result<Generated> {
    let mut rng = Rng(seed | 1);
    let mut w = Writer {
        out,
        stats: Generated::default(),
        set_segments: 0,
    };
    w.seg("ISA*00*          *00*          *ZZ*BENCHPAYER     *ZZ*BENCHPROVIDER  *240315*0930*^*00501*000000001*0*P*:")?;
    let mut groups = 0usize;
    let mut pcn = 0u64;
    'outer: loop {
        groups += 1;
        w.seg(&format!(
            "GS*HP*BENCHPAYER*BENCHPROVIDER*20240315*0930*{groups}*X*005010X221A1"
        ))?;
        let mut sets_in_group = 0usize;
        while sets_in_group < 250 {
            sets_in_group += 1;
            w.stats.sets += 1;
            let set_no = w.stats.sets;
            pcn = write_set(&mut w, &mut rng, set_no, pcn)?;
            if w.stats.bytes >= target_bytes {
                w.seg(&format!("GE*{sets_in_group}*{groups}"))?;
                break 'outer;
            }
        }
        w.seg(&format!("GE*{sets_in_group}*{groups}"))?;
    }
    w.seg(&format!("IEA*{groups}*000000001"))?;
    Ok(w.stats)
}

/// Generates an 835 of about `target_bytes` in memory.
pub fn generate_835(target_bytes: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(target_bytes + 64 * 1024);
    // Writing to a Vec cannot fail.
    let _ = write_835(&mut out, target_bytes, seed);
    out
}

fn write_set<W: Write>(
    w: &mut Writer<'_, W>,
    rng: &mut Rng,
    set_no: usize,
    mut pcn: u64,
) -> io::Result<u64> {
    w.set_segments = 0;
    let control = format!("{set_no:09}");
    w.seg(&format!("ST*835*{control}*005010X221A1"))?;
    // The BPR needs the total, so the claims are built first.
    let claims = 20 + rng.below(381);
    let mut body: Vec<String> = Vec::with_capacity(claims as usize * 12);
    let mut paid_total: i64 = 0;
    let mut lines_total = 0usize;
    for _ in 0..claims {
        pcn += 1;
        let status_roll = rng.below(100);
        let (status, sign) = match status_roll {
            0..=79 => ("1", 1),
            80..=89 => ("2", 1),
            90..=96 => ("4", 1),
            _ => ("22", -1),
        };
        let nlines = 1 + rng.below(4);
        let mut claim_charge = 0i64;
        let mut claim_paid = 0i64;
        let mut claim_pr = 0i64;
        let mut lines: Vec<String> = Vec::new();
        for l in 0..nlines {
            let charge = 5_000 + i64::try_from(rng.below(95_000)).unwrap_or(0);
            let (co, pr) = if status == "4" {
                (charge, 0)
            } else {
                let co = charge * i64::try_from(10 + rng.below(40)).unwrap_or(10) / 100;
                let pr = if rng.below(3) == 0 {
                    (charge - co) * i64::try_from(rng.below(30)).unwrap_or(0) / 100
                } else {
                    0
                };
                (co, pr)
            };
            let paid = charge - co - pr;
            claim_charge += charge;
            claim_paid += paid;
            claim_pr += pr;
            let code = rng.pick(CPT);
            let modifier = rng.pick(MODS);
            let composite = if modifier.is_empty() {
                format!("HC:{code}")
            } else {
                format!("HC:{code}:{modifier}")
            };
            let units = 1 + rng.below(3);
            lines.push(format!(
                "SVC*{composite}*{}*{}**{units}",
                money(sign * charge),
                money(sign * paid)
            ));
            lines.push(format!("DTM*472*202403{:02}", 1 + rng.below(28)));
            let co_reason = if status == "4" {
                rng.pick(&["50", "97", "16", "29"])
            } else {
                "45"
            };
            lines.push(format!("CAS*CO*{co_reason}*{}", money(sign * co)));
            if pr > 0 {
                lines.push(format!(
                    "CAS*PR*{}*{}",
                    rng.pick(&["1", "2", "3"]),
                    money(sign * pr)
                ));
            }
            lines.push(format!("REF*6R*{pcn}L{}", l + 1));
            if status != "4" {
                lines.push(format!("AMT*B6*{}", money(sign * (charge - co))));
            }
            if rng.below(5) == 0 {
                lines.push(format!("LQ*HE*{}", rng.pick(RARC)));
            }
        }
        lines_total += nlines as usize;
        paid_total += sign * claim_paid;
        body.push(format!(
            "CLP*PCN{pcn:08}*{status}*{}*{}*{}*12*PCC{pcn:010}*11*1",
            money(sign * claim_charge),
            money(sign * claim_paid),
            money(sign * claim_pr)
        ));
        body.push(format!(
            "NM1*QC*1*{}*{}****MI*M{:09}",
            rng.pick(LAST),
            rng.pick(FIRST),
            rng.below(1_000_000_000)
        ));
        body.push(format!(
            "NM1*82*1*{}*{}****XX*1{:09}",
            rng.pick(LAST),
            rng.pick(FIRST),
            rng.below(1_000_000_000)
        ));
        body.push("DTM*050*20240310".to_string());
        body.extend(lines);
    }
    let plb = if rng.below(4) == 0 {
        let a = i64::try_from(rng.below(5_000)).unwrap_or(0);
        let b = i64::try_from(rng.below(500)).unwrap_or(0);
        Some((a, b))
    } else {
        None
    };
    let bpr_amount = paid_total - plb.map_or(0, |(a, b)| a - b);
    // A set that pays nothing (or takes money back) is a notification without payment.
    let (handling, method) = if bpr_amount > 0 {
        (
            "I",
            "ACH*CCP*01*011000015*DA*123456789*1234567890**01*021000021*DA*987654321",
        )
    } else {
        ("H", "NON***********")
    };
    let credit = if bpr_amount >= 0 { "C" } else { "D" };
    w.seg(&format!(
        "BPR*{handling}*{}*{credit}*{method}*20240320",
        money(bpr_amount)
    ))?;
    w.seg(&format!("TRN*1*EFT{set_no:010}*1234567890"))?;
    w.seg("DTM*405*20240315")?;
    w.seg("N1*PR*BENCH HEALTH PLAN*XV*BENCH01")?;
    w.seg("N3*100 BENCHMARK WAY")?;
    w.seg("N4*HARTFORD*CT*06101")?;
    w.seg("PER*BL*PROVIDER SERVICES*TE*8005551212")?;
    w.seg("N1*PE*BENCH CLINIC*XX*1234567893")?;
    w.seg("N3*1 CLINIC ROAD")?;
    w.seg("N4*BOSTON*MA*02101")?;
    w.seg("REF*TJ*123456789")?;
    w.seg("LX*1")?;
    for s in &body {
        w.seg(s)?;
    }
    if let Some((a, b)) = plb {
        w.seg(&format!(
            "PLB*1234567893*20241231*WO:PCC{:010}*{}*L6:INTEREST*{}",
            pcn,
            money(a),
            money(-b)
        ))?;
    }
    let count = w.set_segments + 1;
    w.seg(&format!("SE*{count}*{control}"))?;
    w.stats.claims += claims as usize;
    w.stats.lines += lines_total;
    Ok(pcn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::validate;

    #[test]
    fn generated_data_is_valid_and_balanced() {
        let data = generate_835(300_000, 7);
        let problems = validate(&data);
        assert!(
            problems.is_empty(),
            "{:?}",
            &problems[..problems.len().min(5)]
        );
        let mut out = Vec::new();
        let stats = write_835(&mut out, 300_000, 7).unwrap();
        assert_eq!(out, data);
        assert_eq!(stats.bytes, data.len());
        assert!(stats.claims > 100 && stats.sets >= 1, "{stats:?}");
    }
}
