//! Rebuilds the crate when a migration file is added: `sqlx::migrate!` embeds the directory, but
//! cargo only watches files the compiler reads.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
