//! The failover timelines as a hand-written SVG: one panel per advert interval, one row
//! per (failure, implementation), each probe coloured by who answered it, so gaps (no
//! answer) and overlaps (both routers) show at a glance. Time is relative to the failure;
//! each panel's axis spans the same multiple of its Master_Down_Interval.

use std::fmt::Write as _;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Unanswered.
    None,
    R1,
    R2,
    /// Answered by both routers.
    Both,
    /// Answered, but no capture said by which router (a shared VMAC, a dropped capture).
    Unattributed,
}

impl Class {
    fn colour(self) -> &'static str {
        match self {
            Class::None => "#d9d9d9",
            Class::R1 => "#4e79a7",
            Class::R2 => "#f28e2b",
            Class::Both => "#d62728",
            Class::Unattributed => "#9467bd",
        }
    }
}

/// Consecutive probes with the same answerers, in ms relative to the failure.
#[derive(Clone, Debug)]
pub struct Segment {
    pub from: f64,
    pub to: f64,
    pub class: Class,
}

#[derive(Clone, Debug)]
pub struct Timeline {
    /// Panel it belongs to (the advert interval).
    pub group: String,
    pub title: String,
    pub mdi_ms: f64,
    pub segments: Vec<Segment>,
}

const WIDTH: f64 = 1000.0;
const LABEL: f64 = 230.0;
const PLOT: f64 = WIDTH - LABEL - 20.0;
const ROW: f64 = 14.0;
const ROW_GAP: f64 = 5.0;
/// Axis span in Master_Down_Intervals: before and after the failure.
const BEFORE: f64 = 0.25;
const AFTER: f64 = 1.75;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Tick positions at a round step (1, 2 or 5 × 10^k ms), about six across `lo..=hi`.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let raw = (hi - lo) / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let mut v = Vec::new();
    let mut t = (lo / step).ceil() * step;
    while t <= hi + 1e-9 {
        // + 0.0 turns a -0 into 0, which prints without the sign.
        v.push(t + 0.0);
        t += step;
    }
    v
}

pub fn render(timelines: &[&Timeline]) -> String {
    let mut groups: Vec<(String, Vec<&Timeline>)> = Vec::new();
    for t in timelines {
        match groups.iter_mut().find(|(g, _)| *g == t.group) {
            Some((_, v)) => v.push(t),
            None => groups.push((t.group.clone(), vec![t])),
        }
    }
    let mut body = String::new();
    let mut y = 72.0;
    for (group, rows) in &groups {
        let mdi = rows.iter().map(|t| t.mdi_ms).fold(0.0, f64::max).max(1.0);
        let (lo, hi) = (-BEFORE * mdi, AFTER * mdi);
        let x = |t: f64| LABEL + (t.clamp(lo, hi) - lo) / (hi - lo) * PLOT;
        let _ = writeln!(
            body,
            r#"<text x="10" y="{:.1}" font-weight="bold">advert interval {}</text>"#,
            y + 4.0,
            esc(group)
        );
        y += 14.0;
        let top = y;
        for t in rows {
            let _ = writeln!(
                body,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                LABEL - 8.0,
                y + ROW - 3.0,
                esc(&t.title)
            );
            for s in &t.segments {
                if s.to < lo || s.from > hi {
                    continue;
                }
                let (a, b) = (x(s.from), x(s.to));
                let _ = writeln!(
                    body,
                    r#"<rect x="{a:.2}" y="{y:.1}" width="{:.2}" height="{ROW}" fill="{}"/>"#,
                    (b - a).max(0.5),
                    s.class.colour()
                );
            }
            y += ROW + ROW_GAP;
        }
        let bottom = y - ROW_GAP;
        // The failure, and the backup's Master_Down_Interval after it.
        let _ = writeln!(
            body,
            r##"<line x1="{0:.1}" y1="{top:.1}" x2="{0:.1}" y2="{bottom:.1}" stroke="#000" stroke-width="1.5"/>"##,
            x(0.0)
        );
        let _ = writeln!(
            body,
            r##"<line x1="{0:.1}" y1="{top:.1}" x2="{0:.1}" y2="{bottom:.1}" stroke="#000" stroke-dasharray="4 3"/>"##,
            x(mdi)
        );
        // Axis: round ticks in ms.
        let axis = bottom + 4.0;
        let _ = writeln!(
            body,
            r##"<line x1="{LABEL}" y1="{axis:.1}" x2="{:.1}" y2="{axis:.1}" stroke="#555"/>"##,
            LABEL + PLOT
        );
        for t in ticks(lo, hi) {
            let _ = writeln!(
                body,
                r##"<line x1="{0:.1}" y1="{axis:.1}" x2="{0:.1}" y2="{1:.1}" stroke="#555"/><text x="{0:.1}" y="{2:.1}" text-anchor="middle" fill="#555">{3:.0} ms</text>"##,
                x(t),
                axis + 4.0,
                axis + 15.0,
                t
            );
        }
        y = axis + 34.0;
    }
    let height = y + 10.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        s,
        r#"<rect width="100%" height="100%" fill="white"/><text x="10" y="18" font-size="14" font-weight="bold">Failover timelines: who answered each ARP probe (time from the failure)</text>"#
    );
    let legend = [
        (Class::R1, "r1 (old master)"),
        (Class::R2, "r2 (backup)"),
        (Class::Both, "both: overlap"),
        (Class::None, "nobody: outage"),
        (Class::Unattributed, "answered, router unknown"),
    ];
    let mut lx = 10.0;
    for (c, label) in legend {
        let _ = writeln!(
            s,
            r#"<rect x="{lx}" y="28" width="12" height="12" fill="{}"/><text x="{}" y="38">{label}</text>"#,
            c.colour(),
            lx + 16.0
        );
        lx += if label.len() > 18 { 175.0 } else { 125.0 };
    }
    let _ = writeln!(
        s,
        r#"<text x="10" y="54">solid line: the failure · dashed: r2's Master_Down_Interval after it</text>"#
    );
    if timelines.is_empty() {
        let _ = writeln!(s, r#"<text x="10" y="70">no failover runs</text>"#);
    }
    s.push_str(&body);
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_fall_on_round_values_inside_the_range() {
        assert_eq!(ticks(-9.0, 63.0), vec![0.0, 20.0, 40.0, 60.0]);
        assert_eq!(ticks(-900.0, 6300.0), vec![0.0, 2000.0, 4000.0, 6000.0]);
        assert!(ticks(-900.0, 6300.0)[0].is_sign_positive());
        assert_eq!(ticks(-90.0, 630.0)[0], -0.0);
    }

    #[test]
    fn renders_one_rect_per_visible_segment_and_escapes_titles() {
        let t = Timeline {
            group: "10 ms".into(),
            title: "kill -9 · a<b".into(),
            mdi_ms: 36.1,
            segments: vec![
                Segment {
                    from: -5.0,
                    to: 0.0,
                    class: Class::R1,
                },
                Segment {
                    from: 0.0,
                    to: 36.0,
                    class: Class::None,
                },
                Segment {
                    from: 36.0,
                    to: 60.0,
                    class: Class::R2,
                },
                Segment {
                    from: 500.0,
                    to: 600.0,
                    class: Class::Both,
                },
            ],
        };
        let svg = render(&[&t]);
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("a&lt;b"));
        // The legend has one swatch per class; the off-axis segment is not drawn.
        assert_eq!(svg.matches("<rect").count(), 1 + 5 + 3);
    }
}
