//! The library behind the `framewire` tool: capture inspection and replay, kept out of the binary
//! so they can be tested and fuzzed on their own.
//!
//! [`capture`] reads no files or sockets: the binary reads the file and hands the bytes in.
//! [`replay`] reads what to do out of an inspected capture (sans-IO), and its driver opens one
//! socket per session it re-creates.

pub mod capture;
pub mod replay;
