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

/// The number a flat JSON object gives `name` (`{"a":1,"b":2.5}`), as the C load generators print.
pub fn json_field(json: &str, name: &str) -> Option<f64> {
    let at = json.find(&format!("\"{name}\":"))?;
    let rest = &json[at + name.len() + 3..];
    let end = rest.find([',', '}'])?;
    rest[..end].parse().ok()
}

/// A number for the JSON lines: `null` where it could not be measured.
pub fn json_number(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "null".to_string()
    }
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

/// A ratio with the range of its round-by-round values: `0.81x (0.78-0.85)`. The range goes
/// unprinted when its ends look the same at two decimals.
pub fn ratio_with_range(ours: f64, theirs: f64, range: (f64, f64)) -> String {
    with_range(ratio(ours, theirs), range, 1.0)
}

/// A rate in millions with the range of its rounds: `2.87 M (2.73-3.05)`.
pub fn millions_with_range(median: f64, range: (f64, f64)) -> String {
    with_range(format!("{:.2} M", median / 1e6), range, 1e6)
}

fn with_range(value: String, (lo, hi): (f64, f64), unit: f64) -> String {
    if !(lo.is_finite() && hi.is_finite()) {
        return value;
    }
    let (lo, hi) = (format!("{:.2}", lo / unit), format!("{:.2}", hi / unit));
    if lo == hi {
        value
    } else {
        format!("{value} ({lo}-{hi})")
    }
}

#[cfg(test)]
mod tests {
    use super::super::{median, range, round_ratios};
    use super::*;

    #[test]
    fn a_median_ratio_is_printed_with_the_range_of_the_rounds() {
        let ours = [3.0e6, 2.8e6, 3.2e6];
        let theirs = [4.0e6, 3.5e6, 3.9e6];
        let per_round = round_ratios(&ours, &theirs);
        assert_eq!(per_round.len(), 3);
        let (lo, hi) = range(&per_round);
        assert!(
            (lo - 0.75).abs() < 1e-9 && (hi - 0.8205).abs() < 1e-3,
            "{lo} {hi}"
        );
        assert_eq!(
            ratio_with_range(median(ours.to_vec()), median(theirs.to_vec()), (lo, hi)),
            "0.77x (0.75-0.82)"
        );
        assert_eq!(
            millions_with_range(median(ours.to_vec()), range(&ours)),
            "3.00 M (2.80-3.20)"
        );
    }

    #[test]
    fn one_round_none_or_a_range_too_narrow_to_show_prints_no_range() {
        assert_eq!(millions_with_range(2.5e6, range(&[2.5e6])), "2.50 M");
        assert_eq!(millions_with_range(0.018e6, (0.0181e6, 0.0183e6)), "0.02 M");
        assert_eq!(ratio_with_range(1.01, 1.0, (1.011, 1.013)), "1.01x");
        assert_eq!(ratio_with_range(1.0, 2.0, range(&[0.5])), "0.50x");
        let (lo, hi) = range(&[]);
        assert!(lo.is_nan() && hi.is_nan());
        assert_eq!(ratio_with_range(1.0, 2.0, (lo, hi)), "0.50x");
    }
}
