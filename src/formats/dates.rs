//! Dates as feeds and wires write them, read leniently but never guessed:
//! RFC 822/2822 with the usual liberties (no seconds, `UT`, North American
//! zone names, `24:00:00`, a wrong or missing weekday, two-digit years),
//! RFC 3339 / ISO 8601 (also without a zone, read as UTC), and the ISO basic
//! format of NewsML 1.2 (`20130731T153200+0000`). Anything else is an error
//! naming the text, so that the caller reports the item instead of
//! replacing its time with "now".

use std::sync::LazyLock;

use jiff::{
    Timestamp as Instant,
    civil::{Date, DateTime, Time},
    tz::Offset,
};
use regex::Regex;

use crate::proto::Timestamp;

/// `[Day,] DD Mon YYYY HH:MM[:SS] [zone]`
static RFC822: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:[A-Za-z]{2,9}\.?,?\s+)?(\d{1,2})\s+([A-Za-z]{3,9})\.?,?\s+(\d{2,4}),?\s+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?\s*([A-Za-z]{1,5}|[+-]\d{2}:?\d{2})?$",
    )
    .unwrap_or_else(|e| unreachable!("a constant regex: {e}"))
});

/// `YYYYMMDDTHHMMSS[zone]` (ISO 8601 basic format).
static BASIC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})?(Z|[+-]\d{2}:?\d{2})?$")
        .unwrap_or_else(|e| unreachable!("a constant regex: {e}"))
});

/// Reads a date and time; the error says what could not be read.
pub fn parse(text: &str) -> Result<Timestamp, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("an empty date".into());
    }
    parse_instant(trimmed)
        .map(|at| Timestamp {
            seconds: at.as_second(),
            nanos: at.subsec_nanosecond(),
        })
        .ok_or_else(|| format!("the date {trimmed:?} is not one Pressroom can read"))
}

fn parse_instant(text: &str) -> Option<Instant> {
    if let Ok(at) = text.parse::<Instant>() {
        return Some(at);
    }
    if let Some(found) = RFC822.captures(text) {
        let day: i8 = found[1].parse().ok()?;
        let month = month(&found[2])?;
        let year = match found[3].parse::<i16>().ok()? {
            y @ 0..=49 if found[3].len() == 2 => 2000 + y,
            y @ 50..=99 if found[3].len() == 2 => 1900 + y,
            y => y,
        };
        let hour: i8 = found[4].parse().ok()?;
        let minute: i8 = found[5].parse().ok()?;
        let second: i8 = found.get(6).map_or(Some(0), |s| s.as_str().parse().ok())?;
        let offset = match found.get(7) {
            Some(zone) => zone_offset(zone.as_str())?,
            None => Offset::UTC,
        };
        return local(year, month, day, hour, minute, second, offset);
    }
    if let Some(found) = BASIC.captures(text) {
        let number = |i: usize| -> Option<i16> { found.get(i)?.as_str().parse().ok() };
        let offset = match found.get(7) {
            Some(zone) => zone_offset(zone.as_str())?,
            None => Offset::UTC,
        };
        return local(
            number(1)?,
            i8::try_from(number(2)?).ok()?,
            i8::try_from(number(3)?).ok()?,
            i8::try_from(number(4)?).ok()?,
            i8::try_from(number(5)?).ok()?,
            i8::try_from(number(6).unwrap_or(0)).ok()?,
            offset,
        );
    }
    // ISO 8601 without a zone, or a bare date: read as UTC.
    if let Ok(civil) = text.parse::<DateTime>() {
        return Offset::UTC.to_timestamp(civil).ok();
    }
    if let Ok(date) = text.parse::<Date>() {
        return Offset::UTC
            .to_timestamp(date.to_datetime(Time::midnight()))
            .ok();
    }
    None
}

/// A wall-clock time at a fixed offset; `24:00:00` is the next midnight.
fn local(
    year: i16,
    month: i8,
    day: i8,
    hour: i8,
    minute: i8,
    second: i8,
    offset: Offset,
) -> Option<Instant> {
    let date = Date::new(year, month, day).ok()?;
    let (date, hour) = if (hour, minute, second) == (24, 0, 0) {
        (date.tomorrow().ok()?, 0)
    } else {
        (date, hour)
    };
    let time = Time::new(hour, minute, second.min(59), 0).ok()?;
    let civil = DateTime::from_parts(date, time);
    offset.to_timestamp(civil).ok()
}

/// The number of a month named in English, in full or abbreviated
/// (`Oct`, `Sept`, `October`).
pub fn month(name: &str) -> Option<i8> {
    let lower = name.to_ascii_lowercase();
    let months = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let at = months.iter().position(|m| lower.starts_with(m))?;
    // "Sept" and full names are fine; "Mayday" is not a month.
    let full = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    (lower.len() == 3 || full[at].starts_with(&lower)).then(|| at as i8 + 1)
}

/// Zone names and numeric offsets as feeds write them.
fn zone_offset(zone: &str) -> Option<Offset> {
    let hours = |h: i8| Offset::from_hours(h).ok();
    match zone.to_ascii_uppercase().as_str() {
        "Z" | "UT" | "UTC" | "GMT" => Some(Offset::UTC),
        "EDT" => hours(-4),
        "EST" | "CDT" => hours(-5),
        "CST" | "MDT" => hours(-6),
        "MST" | "PDT" => hours(-7),
        "PST" => hours(-8),
        "BST" | "CET" => hours(1),
        "CEST" => hours(2),
        numeric if numeric.starts_with(['+', '-']) => {
            let sign: i32 = if numeric.starts_with('-') { -1 } else { 1 };
            let digits: String = numeric[1..].chars().filter(char::is_ascii_digit).collect();
            if digits.len() != 4 {
                return None;
            }
            let h: i32 = digits[..2].parse().ok()?;
            let m: i32 = digits[2..].parse().ok()?;
            if h > 23 || m > 59 {
                return None;
            }
            Offset::from_seconds(sign * (h * 3600 + m * 60)).ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seconds(text: &str) -> i64 {
        parse(text)
            .map(|t| t.seconds)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_liberties_feeds_take() {
        // 2021-02-20T00:05:00Z, as GlobeNewswire writes it (no seconds).
        let at = 1_613_779_500;
        assert_eq!(seconds("Sat, 20 Feb 2021 00:05 GMT"), at);
        assert_eq!(seconds("Sat, 20 Feb 2021 00:05:00 UT"), at);
        assert_eq!(seconds("Fri, 19 Feb 2021 19:05:00 EST"), at);
        assert_eq!(seconds("Fri, 19 Feb 2021 20:05:00 EDT"), at);
        assert_eq!(seconds("20 Feb 2021 00:05:00 +0000"), at);
        assert_eq!(
            seconds("Mon, 20 Feb 2021 00:05:00 +00:00"),
            at,
            "wrong weekday"
        );
        assert_eq!(seconds("Fri, 19 Feb 2021 24:00:00 GMT"), at - 300);
        assert_eq!(seconds("Sat, 20 Feb 21 00:05:00 GMT"), at);
        assert_eq!(seconds("Sat, 20 February 2021 00:05:00 GMT"), at);
        assert_eq!(seconds("Tue, 27 Jun 2017 15:05:00 +0100"), 1_498_572_300);
        assert_eq!(seconds("2021-02-20T00:05:00Z"), at);
        assert_eq!(seconds("2021-02-19T19:05:00-05:00"), at);
        assert_eq!(seconds("2021-02-20T00:05:00"), at);
        assert_eq!(seconds("20130731T153200+0000"), 1_375_284_720);
        assert_eq!(seconds("2021-02-20"), at - 300);
    }

    #[test]
    fn what_cannot_be_read_is_an_error_naming_it() {
        for odd in [
            "",
            "yesterday",
            "Sat, 20 Foo 2021 00:05 GMT",
            "Sat, 31 Feb 2021 00:05 GMT",
            "Sat, 20 Feb 2021 25:05 GMT",
            "Sat, 20 Feb 2021 00:05 XYZ",
        ] {
            let error = parse(odd).err().unwrap_or_default();
            assert!(!error.is_empty(), "{odd:?} was read");
        }
        assert!(
            parse("next Tuesday")
                .err()
                .is_some_and(|e| e.contains("\"next Tuesday\""))
        );
    }
}
