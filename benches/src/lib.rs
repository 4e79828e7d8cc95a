//! framewire-benches: criterion micro-benchmarks of the framewire crates (`benches/`), and the
//! end-to-end comparison runners ([`e2e`], with binaries in `src/bin/`).
//!
//! It measures; it does not assert. Goals live in the issue tracker and the numbers in
//! docs/BENCHMARKS.md.

#![allow(
    clippy::cast_precision_loss,
    reason = "counts and times become rates reported to three significant digits"
)]

pub mod e2e;
