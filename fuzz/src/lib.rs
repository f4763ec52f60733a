//! Shared code of the fuzz targets in `fuzz_targets/`: the checks a target runs when they are
//! more than a few lines ([`wire`]), and the seed inputs each target's corpus starts from
//! ([`seeds`], written to `corpus/<target>/` by `cargo test --manifest-path fuzz/Cargo.toml
//! -- --ignored write_seed_corpora`).

pub mod seeds;
pub mod wire;
