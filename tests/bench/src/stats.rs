//! Min / median / max over repeats: every figure the bench prints is one of these.

use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub min: f64,
    pub median: f64,
    pub max: f64,
    pub n: usize,
}

impl Summary {
    /// `None` for no samples (a variant that never ran); NaNs are ignored.
    pub fn of(samples: &[f64]) -> Option<Summary> {
        let mut v: Vec<f64> = samples.iter().copied().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Summary {
            min: v[0],
            median,
            max: v[n - 1],
            n,
        })
    }

    pub fn json(&self) -> Value {
        json!({ "min": self.min, "median": self.median, "max": self.max, "n": self.n })
    }

    /// `median (min–max)` with `digits` decimals, the form every table cell uses.
    pub fn cell(&self, digits: usize) -> String {
        if self.n == 1 {
            return format!("{:.*}", digits, self.median);
        }
        format!(
            "{:.*} ({:.*}–{:.*})",
            digits, self.median, digits, self.min, digits, self.max
        )
    }
}

/// The JSON of an optional summary (`null` when nothing ran).
pub fn json_opt(s: Option<Summary>) -> Value {
    s.map_or(Value::Null, |s| s.json())
}

/// A table cell for an optional summary.
pub fn cell_opt(s: Option<Summary>, digits: usize) -> String {
    s.map_or_else(|| "–".into(), |s| s.cell(digits))
}

/// Ratios of paired samples (repeat i of `a` over repeat i of `b`): the runs were taken
/// back to back, so pairing cancels slow drifts that summarising each side alone keeps.
pub fn paired_ratio(a: &[f64], b: &[f64]) -> Option<Summary> {
    let r: Vec<f64> = a
        .iter()
        .zip(b)
        .filter(|(_, d)| **d > 0.0)
        .map(|(n, d)| n / d)
        .collect();
    Summary::of(&r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let s = Summary::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.min, s.median, s.max, s.n), (1.0, 2.0, 3.0, 3));
        assert_eq!(Summary::of(&[4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
        assert!(Summary::of(&[]).is_none());
        assert!(Summary::of(&[f64::NAN]).is_none());
    }

    #[test]
    fn paired_ratio_pairs_repeats_and_skips_zero_denominators() {
        let r = paired_ratio(&[6.0, 8.0, 1.0], &[1.0, 2.0, 0.0]).unwrap();
        assert_eq!((r.min, r.max, r.n), (4.0, 6.0, 2));
    }

    #[test]
    fn cell_shows_the_range_only_with_several_samples() {
        assert_eq!(Summary::of(&[1.234]).unwrap().cell(1), "1.2");
        assert_eq!(Summary::of(&[1.0, 2.0, 4.0]).unwrap().cell(0), "2 (1–4)");
    }
}
