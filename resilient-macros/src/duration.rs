//! Duration strings such as `"250ms"` or `"1m30s"`, read at compile time.

use std::fmt;

/// The units a duration string may use, largest first, with their length in nanoseconds.
const UNITS: [(&str, u64); 6] = [
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

/// Why a duration string could not be read. `Display` gives the sentence shown to the user.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DurationError {
    Empty,
    Space,
    MissingUnit(String),
    UnknownUnit(String),
    /// A decimal point: `"1.5s"`.
    Fraction,
    MissingNumber(String),
    OutOfOrder(String),
    TooLong,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const FORM: &str = "write numbers with units h, m, s, ms, us or ns, largest first, \
                            like \"250ms\", \"2s\" or \"1m30s\"";
        match self {
            DurationError::Empty => write!(f, "empty duration: {FORM}"),
            DurationError::Space => write!(f, "remove the spaces: {FORM}"),
            DurationError::MissingUnit(number) => {
                write!(
                    f,
                    "`{number}` has no unit: write \"{number}s\" or \"{number}ms\""
                )
            }
            DurationError::UnknownUnit(unit) => write!(f, "unknown unit `{unit}`: {FORM}"),
            DurationError::Fraction => write!(
                f,
                "fractions are not allowed: write a smaller unit instead (`\"1500ms\"` for 1.5 s)"
            ),
            DurationError::MissingNumber(unit) => {
                write!(f, "unit `{unit}` has no number in front of it: {FORM}")
            }
            DurationError::OutOfOrder(unit) => write!(
                f,
                "unit `{unit}` is repeated or comes after a smaller unit: {FORM}"
            ),
            DurationError::TooLong => {
                f.write_str("duration too long: the limit is about 584 years")
            }
        }
    }
}

/// Reads `text` as a sum of `<integer><unit>` parts, units strictly decreasing, into nanoseconds.
pub(crate) fn parse(text: &str) -> Result<u64, DurationError> {
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    if text.contains(char::is_whitespace) {
        return Err(DurationError::Space);
    }
    let mut rest = text;
    let mut total: u64 = 0;
    // Units must shrink from part to part, which rules out "1s1s" and "30s1m" alike.
    let mut smallest_so_far = usize::MAX;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        let letters = after
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(letters);

        if number.is_empty() {
            return Err(DurationError::MissingNumber(unit.to_owned()));
        }
        if unit.is_empty() {
            return Err(DurationError::MissingUnit(number.to_owned()));
        }
        let Some(rank) = UNITS.iter().position(|(name, _)| *name == unit) else {
            if unit.starts_with(['.', ',']) {
                return Err(DurationError::Fraction);
            }
            return Err(DurationError::UnknownUnit(unit.to_owned()));
        };
        if smallest_so_far != usize::MAX && rank <= smallest_so_far {
            return Err(DurationError::OutOfOrder(unit.to_owned()));
        }
        smallest_so_far = rank;

        let part = number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(UNITS[rank].1))
            .ok_or(DurationError::TooLong)?;
        total = total.checked_add(part).ok_or(DurationError::TooLong)?;
        rest = next;
    }
    Ok(total)
}

/// `nanos` written the way a person would, for messages: `1.5s`, `250ms`.
pub(crate) fn display(nanos: u64) -> String {
    format!("{:?}", std::time::Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const S: u64 = 1_000 * MS;

    #[test]
    fn reads_every_unit() {
        assert_eq!(parse("250ms"), Ok(250 * MS));
        assert_eq!(parse("2s"), Ok(2 * S));
        assert_eq!(parse("1m"), Ok(60 * S));
        assert_eq!(parse("1h"), Ok(3_600 * S));
        assert_eq!(parse("500us"), Ok(500_000));
        assert_eq!(parse("7ns"), Ok(7));
        assert_eq!(parse("0s"), Ok(0));
    }

    #[test]
    fn adds_up_compound_durations() {
        assert_eq!(parse("1m30s"), Ok(90 * S));
        assert_eq!(parse("1h2m3s500ms"), Ok(3_723 * S + 500 * MS));
        assert_eq!(parse("1s1ms1us1ns"), Ok(S + MS + 1_001));
    }

    #[test]
    fn rejects_malformed_strings() {
        assert_eq!(parse(""), Err(DurationError::Empty));
        assert_eq!(parse("30"), Err(DurationError::MissingUnit("30".into())));
        assert_eq!(parse("1m30"), Err(DurationError::MissingUnit("30".into())));
        assert_eq!(parse("5sec"), Err(DurationError::UnknownUnit("sec".into())));
        assert_eq!(parse("2 s"), Err(DurationError::Space));
        assert_eq!(parse("1.5s"), Err(DurationError::Fraction));
        assert_eq!(parse("ms"), Err(DurationError::MissingNumber("ms".into())));
        assert_eq!(parse("-1s"), Err(DurationError::MissingNumber("-".into())));
        assert_eq!(parse("30s1m"), Err(DurationError::OutOfOrder("m".into())));
        assert_eq!(parse("1s1s"), Err(DurationError::OutOfOrder("s".into())));
    }

    #[test]
    fn rejects_overflow() {
        assert_eq!(parse("99999999999999999999s"), Err(DurationError::TooLong));
        assert_eq!(parse("5124096h"), Err(DurationError::TooLong));
        assert!(parse("5124095h").is_ok());
    }

    #[test]
    fn messages_show_the_fix() {
        assert_eq!(
            DurationError::MissingUnit("30".into()).to_string(),
            "`30` has no unit: write \"30s\" or \"30ms\""
        );
        assert_eq!(display(90 * S), "90s");
        assert_eq!(display(250 * MS), "250ms");
    }

    use proptest::prelude::*;

    proptest! {
        /// Whatever a user types between the quotes, the attribute gets a duration or an error
        /// to show on the literal, never a panic inside the compiler.
        #[test]
        fn any_text_parses_or_errs(
            text in prop_oneof![
                "[0-9hmsunµ. ]{0,24}",
                any::<String>(),
                prop::collection::vec(any::<u8>(), 0..32)
                    .prop_map(|bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned()),
            ]
        ) {
            let _ = parse(&text);
        }

        #[test]
        fn compound_durations_add_up(
            h in 0u64..1_000,
            m in 0u64..60,
            s in 0u64..60,
            ms in 0u64..1_000,
        ) {
            let text = format!("{h}h{m}m{s}s{ms}ms");
            let expected = ((h * 60 + m) * 60 + s) * S + ms * MS;
            prop_assert_eq!(parse(&text).ok(), Some(expected));
        }
    }
}
