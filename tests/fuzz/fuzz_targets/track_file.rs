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

use libfuzzer_sys::fuzz_target;
use vipd::track::file::{MAX_BYTES, Reading, parse};
use vipd::vrrp::Time;
use vipd::vrrp::tracking::{TrackItem, TrackState, TrackedFile, Tracking};

/// One tracked file across the weight range, both ways, at the edges of the priority
/// range: (priority, what the instance tracks).
fn instances() -> impl Iterator<Item = (u8, Tracking)> {
    [1u8, 100, 254, 255].into_iter().flat_map(|priority| {
        [0i16, 1, -1, 7, 254, -254]
            .into_iter()
            .flat_map(move |weight| {
                [false, true].into_iter().map(move |reverse| {
                    let tracking = Tracking {
                        files: vec![TrackedFile {
                            key: "/run/fuzz".into(),
                            weight,
                            reverse,
                        }],
                        ..Tracking::default()
                    };
                    (priority, tracking)
                })
            })
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
    for (configured, tracking) in instances() {
        let mut state = TrackState::new(&tracking);
        state.apply(&tracking, Time::ZERO, &TrackItem::File { index: 0, value });
        let outcome = state.outcome(&tracking, configured);
        let file = &tracking.files[0];
        let signed = i128::from(value.unwrap_or(0)) * if file.reverse { -1 } else { 1 };
        let (fault, priority) = if file.weight == 0 {
            (signed != 0, configured)
        } else if configured == 255 {
            (false, 255)
        } else {
            let p = i128::from(configured) + signed * i128::from(file.weight);
            (false, p.clamp(1, 254) as u8)
        };
        assert_eq!(
            (outcome.fault, outcome.priority),
            (fault, priority),
            "{value:?} {file:?}"
        );
    }
});
