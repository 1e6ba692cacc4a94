//! Prints the problems `Document::parse` finds in each file given on the command line.

fn main() {
    for path in std::env::args().skip(1) {
        let Ok(input) = std::fs::read(&path) else {
            eprintln!("{path}: cannot read");
            continue;
        };
        let doc = medbill_x12::Document::parse(&input);
        println!(
            "{path}: {} interchanges, {} sets, {} segments",
            doc.interchanges.len(),
            doc.sets().count(),
            doc.segment_count()
        );
        for p in &doc.problems {
            println!("  {p}");
        }
    }
}
