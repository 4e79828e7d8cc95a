//! One section of the comparison's report: a markdown table for people, and the same rows as
//! JSON lines for machines.

use std::fmt::Write as _;

/// A table of results.
#[derive(Debug, Clone, Default)]
pub struct Section {
    /// What was measured and how (printed above the table).
    pub title: String,
    /// The column names.
    pub columns: Vec<&'static str>,
    /// The cells, row by row, as printed.
    pub rows: Vec<Vec<String>>,
    /// One JSON object per row.
    pub json: Vec<String>,
}

impl Section {
    /// The section as markdown: its title, then the table.
    pub fn markdown(&self) -> String {
        let mut out = format!("{}\n\n| {} |\n|", self.title, self.columns.join(" | "));
        for _ in &self.columns {
            out.push_str("---|");
        }
        out.push('\n');
        for row in &self.rows {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        out
    }
}

/// `s` as a JSON string.
pub fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A ratio for the table: `2.31x`, or `-` when it cannot be computed.
pub fn ratio(ours: f64, theirs: f64) -> String {
    let r = ours / theirs;
    if r.is_finite() && r < 0.1 {
        format!("{r:.3}x")
    } else if r.is_finite() {
        format!("{r:.2}x")
    } else {
        "-".to_string()
    }
}
