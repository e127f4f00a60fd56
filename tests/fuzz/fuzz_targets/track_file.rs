//! Track files' contents (`track::file::parse`, what `read_blocking` applies to the at
//! most 65 bytes it reads), and what the value does to an instance's priority
//! (`vrrp::tracking`).
//!
//! Beyond "never panics": only an optionally signed decimal integer with blanks around
//! it, in at most `MAX_BYTES` bytes, is a value; and for every weight, `reverse` and
//! priority (the owner's 255 included), the outcome is keepalived's arithmetic: value ×
//! weight (× −1 with `reverse`) added, the result kept in 1..=254, 255 left alone, and a
//! weight-0 file faulting on any non-zero value.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vipd::config::{Config, FakeHost, Instance};
use vipd::track::file::{MAX_BYTES, Reading, parse};
use vipd::vrrp::tracking::{TrackItem, TrackState};

/// Instances tracking one file, across the weight range, both ways, at the edges of the
/// priority range.
fn instances() -> &'static [Instance] {
    static ALL: OnceLock<Vec<Instance>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut all = Vec::new();
        for priority in [1, 100, 254, 255] {
            for weight in [0, 1, -1, 7, 254, -254] {
                for reverse in [false, true] {
                    let text = format!(
                        "[global]\nrouter_id = \"r1\"\n\n[[vrrp]]\nname = \"gw\"\n\
                         interface = \"eth0\"\nvrid = 51\npriority = {priority}\n\
                         vips = [\"192.0.2.1/24\"]\ntrack_files = [{{ path = \"/run/prio\", \
                         weight = {weight}, reverse = {reverse} }}]\n"
                    );
                    let config = Config::parse(&text, "t.toml", &FakeHost::lab())
                        .unwrap_or_else(|e| panic!("{e}\n{text}"));
                    all.extend(config.instances);
                }
            }
        }
        all
    })
}

fuzz_target!(|contents: &[u8]| {
    let reading = parse(contents);
    match &reading {
        Reading::Value(v) => {
            assert!(contents.len() <= MAX_BYTES);
            let text = std::str::from_utf8(contents)
                .expect("a value is text")
                .trim();
            let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
            assert!(!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
            assert_eq!(text.parse::<i64>(), Ok(*v));
        }
        Reading::Refused(_) => {}
        Reading::Missing => panic!("contents never read as a missing file"),
    }
    if contents.len() > MAX_BYTES {
        assert!(matches!(reading, Reading::Refused(_)));
    }
    let value = reading.value();
    for instance in instances() {
        let mut state = TrackState::new(instance);
        state.apply(&TrackItem::File { index: 0, value });
        let outcome = state.outcome(instance);
        let file = &instance.track_files[0];
        let signed = i128::from(value.unwrap_or(0)) * if file.reverse { -1 } else { 1 };
        let (fault, priority) = if file.weight == 0 {
            (signed != 0, instance.priority)
        } else if instance.priority == 255 {
            (false, 255)
        } else {
            let p = i128::from(instance.priority) + signed * i128::from(file.weight);
            (false, p.clamp(1, 254) as u8)
        };
        assert_eq!(
            (outcome.fault, outcome.priority),
            (fault, priority),
            "{value:?} {file:?}"
        );
    }
});
