//! Durations are written the humantime way (`"1s"`, `"250ms"`, `"1m 30s"`, `"1.5s"`) and
//! printed back in a form that parses to the same value, so `vipd check` output can be fed
//! back to the daemon unchanged.

use std::time::Duration;

/// Parses a duration string, or says what a valid one looks like.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        format!("{text:?} is not a duration ({e}); write a number and a unit, e.g. \"1s\", \"250ms\", \"1m 30s\"")
    })
}

/// Exact inverse of [`parse`], in one unit where that is exact ("1500ms", "60s") so
/// messages quote durations the way operators tend to write them.
pub(crate) fn format(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        humantime::format_duration(d).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatted_durations_parse_back_to_the_same_value() {
        for ms in [0, 10, 990, 1_000, 1_010, 40_950, 255_000, 3_600_000] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse(&format(d)), Ok(d), "{ms} ms");
        }
        let odd = Duration::new(3, 1);
        assert_eq!(parse(&format(odd)), Ok(odd));
    }

    #[test]
    fn whole_units_are_printed_in_one_unit() {
        assert_eq!(format(Duration::from_millis(1_500)), "1500ms");
        assert_eq!(format(Duration::from_secs(3_600)), "3600s");
        assert_eq!(format(Duration::ZERO), "0s");
    }

    #[test]
    fn fractions_and_compound_forms_are_accepted() {
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1_500)));
        assert_eq!(parse("40s 950ms"), Ok(Duration::from_millis(40_950)));
    }

    #[test]
    fn garbage_is_an_error_that_shows_an_example() {
        let err = parse("fast").unwrap_err();
        assert!(err.contains("\"1s\""), "{err}");
        assert!(parse("-1s").is_err());
        assert!(parse("99999999999999999999999y").is_err());
    }
}
