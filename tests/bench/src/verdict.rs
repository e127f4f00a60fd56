//! Every goal's result, computed in one place and by one set of rules (pure: figures in,
//! a [`Goal`] out), so every item's rows, present and future, read the same way:
//!
//! - **miss** whenever vipd did not do the thing: a run of vipd that failed for any reason
//!   not proven to be the harness's ([`HarnessFault`]) is a miss with its cause, even when
//!   other repeats succeeded;
//! - **n/a** only for a fault of the harness, with its whole cause: no vipd run that the
//!   harness could measure, or no baseline run to compare with (a comparison with nothing
//!   is never a pass), or fewer repeats than a decision needs ([`MIN_DECISION_REPEATS`]);
//! - a limit is stated in the goal's text ([`at_most`], [`at_least`]); a comparison's
//!   tolerance is appended to it by [`never_worse`], which decides on ranges: "miss" only
//!   when vipd's whole range lies above the baseline's range plus the tolerance, "no
//!   measurable difference" when the ranges overlap and vipd's median is the worse one.

use std::fmt;

use super::{Goal, stats::Summary};

/// Repeats a "never worse than" row needs on each side before it decides anything.
pub const MIN_DECISION_REPEATS: usize = 5;

/// An error the harness raised about itself (a namespace that could not be built, a
/// capture that did not start): the only kind of failed run that makes a goal "n/a".
/// Anything else that fails in a run of vipd counts against vipd.
#[derive(Debug)]
pub struct HarnessFault(pub String);

impl fmt::Display for HarnessFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "harness fault: {}", self.0)
    }
}

impl std::error::Error for HarnessFault {}

/// Marks `e` as the harness's fault (for `map_err` on setup steps).
pub fn harness(e: impl fmt::Display) -> anyhow::Error {
    anyhow::Error::new(HarnessFault(format!("{e:#}")))
}

/// Whether a failed run was the harness's fault (a [`HarnessFault`] in its chain).
pub fn is_harness(e: &anyhow::Error) -> bool {
    e.chain()
        .any(|c| c.downcast_ref::<HarnessFault>().is_some())
}

/// What one implementation produced for one goal, over its repeats.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Side {
    /// One figure per run that did the thing.
    pub samples: Vec<f64>,
    /// Runs that ran and did not do the thing (no takeover, a stream that never flowed):
    /// for vipd, a miss.
    pub failed: Vec<String>,
    /// Runs the harness could not measure, with their causes.
    pub faults: Vec<String>,
    /// Why the implementation did not run at all (vipd without `run`, a quick run).
    pub not_run: Option<String>,
}

impl Side {
    pub fn samples(samples: impl IntoIterator<Item = f64>) -> Side {
        Side {
            samples: samples.into_iter().collect(),
            ..Default::default()
        }
    }

    pub fn not_run(why: impl Into<String>) -> Side {
        Side {
            not_run: Some(why.into()),
            ..Default::default()
        }
    }

    /// Files a failed run by its cause: the harness's, or the implementation's. The
    /// cause goes into a table cell: its first line (the whole context chain; a message's
    /// diagnostics after it stay in the item's list of failed runs), pipes escaped.
    pub fn record_error(&mut self, e: &anyhow::Error) {
        let cause = cell_text(&format!("{e:#}"));
        if is_harness(e) {
            self.faults.push(cause);
        } else {
            self.failed.push(cause);
        }
    }

    /// Why there is nothing to judge, when there is nothing.
    fn missing(&self) -> Option<String> {
        if !self.samples.is_empty() {
            return None;
        }
        Some(if let Some(w) = &self.not_run {
            format!("not run: {w}")
        } else if !self.faults.is_empty() {
            format!("no run measured: {}", self.faults.join("; "))
        } else {
            "no run".to_string()
        })
    }

    fn runs(&self) -> usize {
        self.samples.len() + self.failed.len() + self.faults.len()
    }
}

/// `s` as one markdown table cell.
fn cell_text(s: &str) -> String {
    s.lines().next().unwrap_or("").replace('|', "\\|")
}

/// A comparison's tolerance: `rel` of the baseline's figure plus `abs` (in the unit).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    pub abs: f64,
    pub rel: f64,
    pub unit: &'static str,
}

impl Tolerance {
    pub const fn abs(abs: f64, unit: &'static str) -> Tolerance {
        Tolerance {
            abs,
            rel: 0.0,
            unit,
        }
    }

    fn over(&self, base: f64) -> f64 {
        base * (1.0 + self.rel) + self.abs
    }
}

impl fmt::Display for Tolerance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.rel > 0.0, self.abs > 0.0) {
            (true, true) => write!(
                f,
                "+ {:.0} % + {} {}",
                self.rel * 100.0,
                self.abs,
                self.unit
            ),
            (true, false) => write!(f, "+ {:.0} %", self.rel * 100.0),
            _ => write!(f, "+ {} {}", self.abs, self.unit),
        }
    }
}

/// The n/a or miss a side forces before any figure is looked at: vipd's failed runs are
/// a miss; nothing measured, an n/a with the cause.
fn vipd_gate(text: &str, vipd: &Side) -> Option<Goal> {
    if !vipd.failed.is_empty() {
        return Some(Goal::judged(
            text,
            false,
            format!(
                "vipd did not do it in {} of {} run(s): {}",
                vipd.failed.len(),
                vipd.runs(),
                vipd.failed.join("; ")
            ),
        ));
    }
    vipd.missing()
        .map(|why| Goal::unjudged(text, format!("vipd {why}")))
}

fn faults_note(side: &Side, who: &str) -> String {
    if side.faults.is_empty() {
        String::new()
    } else {
        format!(
            "; {} {} run(s) lost to the harness: {}",
            who,
            side.faults.len(),
            side.faults.join("; ")
        )
    }
}

/// "vipd's worst ≤ `limit`": the limit is in `text`, written by the caller.
pub fn at_most(text: &str, vipd: &Side, limit: f64, unit: &str) -> Goal {
    if let Some(g) = vipd_gate(text, vipd) {
        return g;
    }
    let s = Summary::of(&vipd.samples).expect("gate passed: samples");
    Goal::judged(
        text,
        s.max <= limit,
        format!(
            "worst {:.1} {unit} (median {:.1}, {} run(s)) vs limit {limit:.1} {unit}{}",
            s.max,
            s.median,
            s.n,
            faults_note(vipd, "vipd")
        ),
    )
}

/// "vipd's worst ≥ `limit`" (a rate, a ratio): the limit is in `text`.
pub fn at_least(text: &str, vipd: &Side, limit: f64, unit: &str) -> Goal {
    if let Some(g) = vipd_gate(text, vipd) {
        return g;
    }
    let s = Summary::of(&vipd.samples).expect("gate passed: samples");
    Goal::judged(
        text,
        s.median >= limit,
        format!(
            "median {:.2}{unit} ({:.2}–{:.2}, {} run(s)) vs limit {limit:.2}{unit}{}",
            s.median,
            s.min,
            s.max,
            s.n,
            faults_note(vipd, "vipd")
        ),
    )
}

/// "`subject` never worse than `base` (`tol`)", lower being better. Decides on ranges
/// over at least `min_repeats` runs on each side: a miss only when vipd's best run is
/// worse than the baseline's worst plus the tolerance.
pub fn never_worse(
    subject: &str,
    base_name: &str,
    vipd: &Side,
    base: &Side,
    tol: Tolerance,
    min_repeats: usize,
) -> Goal {
    let text = format!("{subject} never worse than {base_name} ({tol})");
    if let Some(g) = vipd_gate(&text, vipd) {
        return g;
    }
    if let Some(why) = base.missing() {
        let why = if base.failed.is_empty() {
            why
        } else {
            format!("{why}; its failed runs: {}", base.failed.join("; "))
        };
        return Goal::unjudged(text, format!("no {base_name} run to compare with ({why})"));
    }
    let v = Summary::of(&vipd.samples).expect("gate passed: samples");
    let b = Summary::of(&base.samples).expect("checked: samples");
    if v.n < min_repeats || b.n < min_repeats {
        return Goal::unjudged(
            text,
            format!(
                "{} vipd and {} {base_name} run(s) measured, a decision needs {min_repeats} \
                 each{}{}",
                v.n,
                b.n,
                faults_note(vipd, "vipd"),
                faults_note(base, base_name)
            ),
        );
    }
    let u = tol.unit;
    let figures = format!(
        "vipd {} {u}, {base_name} {} {u} (median (min–max) of {} and {} runs)",
        v.cell(1),
        b.cell(1),
        v.n,
        b.n
    );
    let (met, verdict) = if v.median <= tol.over(b.median) {
        (true, "")
    } else if v.min <= tol.over(b.max) {
        (true, "no measurable difference (the ranges overlap): ")
    } else {
        (false, "vipd measurably worse: ")
    };
    let base_failed = if base.failed.is_empty() {
        String::new()
    } else {
        format!(
            "; {base_name} failed {} run(s): {}",
            base.failed.len(),
            base.failed.join("; ")
        )
    };
    Goal::judged(
        text,
        met,
        format!(
            "{verdict}{figures}{base_failed}{}{}",
            faults_note(vipd, "vipd"),
            faults_note(base, base_name)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Tolerance = Tolerance::abs(1.0, "ms");

    fn five(x: f64) -> Side {
        Side::samples([x, x + 1.0, x + 2.0, x + 3.0, x + 4.0])
    }

    #[test]
    fn a_vipd_run_that_did_not_do_it_is_a_miss_even_beside_good_runs() {
        let mut v = five(10.0);
        v.record_error(&anyhow::anyhow!("r2 never answered"));
        let g = never_worse("x", "keepalived", &v, &five(50.0), MS, 5);
        assert_eq!(g.mark(), "miss");
        assert!(g.detail.contains("r2 never answered"), "{}", g.detail);
        assert_eq!(at_most("x ≤ 100 ms", &v, 100.0, "ms").mark(), "miss");
    }

    #[test]
    fn only_a_harness_fault_makes_n_a_and_it_carries_its_cause() {
        let mut v = Side::default();
        v.record_error(&harness("ip netns add: file exists"));
        v.record_error(&anyhow::Error::new(HarnessFault("tcpdump died".into())).context("run 2"));
        let g = at_most("x ≤ 1 ms", &v, 1.0, "ms");
        assert_eq!(g.mark(), "n/a");
        assert!(g.detail.contains("file exists") && g.detail.contains("tcpdump died"));
        assert_eq!(
            at_most("x", &Side::not_run("no `run`"), 1.0, "ms").mark(),
            "n/a"
        );
    }

    #[test]
    fn no_baseline_run_is_never_a_pass() {
        let g = never_worse("x", "frr", &five(1.0), &Side::default(), MS, 5);
        assert_eq!(g.mark(), "n/a");
        let mut b = Side::default();
        b.record_error(&anyhow::anyhow!("keepalived never took over"));
        let g = never_worse("x", "keepalived", &five(1.0), &b, MS, 5);
        assert_eq!(g.mark(), "n/a");
        assert!(g.detail.contains("never took over"), "{}", g.detail);
    }

    #[test]
    fn a_cause_fits_one_table_cell() {
        let mut v = Side::default();
        v.record_error(&anyhow::anyhow!(
            "no stream | flow\nclient neighbours:\n..."
        ));
        assert_eq!(v.failed, ["no stream \\| flow"]);
    }

    #[test]
    fn too_few_repeats_decide_nothing() {
        let g = never_worse("x", "k", &Side::samples([1.0, 2.0]), &five(9.0), MS, 5);
        assert_eq!(g.mark(), "n/a");
        assert!(g.detail.contains("needs 5"), "{}", g.detail);
    }

    #[test]
    fn ranges_decide_and_the_tolerance_is_in_the_text() {
        // Better median: pass, plain.
        let g = never_worse("outage", "k", &five(10.0), &five(11.0), MS, 5);
        assert_eq!(
            (g.mark(), g.text.as_str()),
            ("pass", "outage never worse than k (+ 1 ms)")
        );
        assert!(!g.detail.contains("no measurable"));
        // Worse median, overlapping ranges: no measurable difference.
        let g = never_worse("outage", "k", &five(14.0), &five(10.0), MS, 5);
        assert_eq!(g.mark(), "pass");
        assert!(
            g.detail.starts_with("no measurable difference"),
            "{}",
            g.detail
        );
        // vipd's best above the baseline's worst + tolerance: miss.
        let g = never_worse("outage", "k", &five(15.1), &five(10.0), MS, 5);
        assert_eq!(g.mark(), "miss");
        // Exactly at the tolerance is within it.
        let g = never_worse("outage", "k", &five(15.0), &five(10.0), MS, 5);
        assert_eq!(g.mark(), "pass");
        let t = Tolerance {
            abs: 2.0,
            rel: 0.05,
            unit: "ms",
        };
        assert_eq!(t.to_string(), "+ 5 % + 2 ms");
        let g = never_worse("s", "k", &five(106.0), &five(100.0), t, 5);
        // Median 108 ≤ 102 × 1.05 + 2: pass. Below, best run 112 > worst 104 × 1.05 + 2.
        assert_eq!(g.mark(), "pass");
        let g = never_worse("s", "k", &five(112.0), &five(100.0), t, 5);
        assert_eq!(g.mark(), "miss");
    }

    #[test]
    fn limits_use_the_worst_run_and_say_it() {
        let g = at_most("o ≤ 13 ms", &five(10.0), 13.0, "ms");
        assert_eq!(g.mark(), "miss");
        assert!(g.detail.starts_with("worst 14.0 ms"), "{}", g.detail);
        assert_eq!(at_most("o ≤ 14 ms", &five(10.0), 14.0, "ms").mark(), "pass");
        assert_eq!(at_least("r ≥ 12", &five(10.0), 12.0, "×").mark(), "pass");
        assert_eq!(at_least("r ≥ 12.5", &five(10.0), 12.5, "×").mark(), "miss");
    }
}
