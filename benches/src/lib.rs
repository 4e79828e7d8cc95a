//! framewire-benches: criterion micro-benchmarks of the framewire crates (`benches/`). The library
//! itself is empty; the package exists so `cargo bench -p framewire-benches` builds the benchmarks
//! as a workspace member.
