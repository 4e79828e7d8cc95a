//! The library behind the `framewire` tool: the parts of capture inspection and replay that are
//! plain logic, kept out of the binary so they can be tested and fuzzed on their own.
//!
//! It does not read files or sockets; the binary does, and hands the bytes in.

pub mod capture;
