//! Writes a generated 835 of about N megabytes: `gen_835 OUT MB [SEED]`.

use std::io::BufWriter;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(out), Some(mb)) = (
        args.next(),
        args.next().and_then(|m| m.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: gen_835 OUT MB [SEED]");
        std::process::exit(2);
    };
    let seed = args.next().and_then(|s| s.parse().ok()).unwrap_or(42);
    let mut w = BufWriter::new(std::fs::File::create(&out)?);
    let stats = medbill_x12::bench_data::write_835(&mut w, mb * 1_000_000, seed)?;
    eprintln!("{out}: {stats:?}");
    Ok(())
}
