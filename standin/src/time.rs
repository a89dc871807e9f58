//! Dates without a date crate: Unix seconds, civil dates (UTC), and the
//! formats the providers' clients send and read.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(crate) const DAY: i64 = 86_400;

/// Seconds since the Unix epoch, now.
pub(crate) fn now() -> i64 {
    from_system(SystemTime::now())
}

pub(crate) fn from_system(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

pub(crate) fn to_system(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn parts(secs: i64) -> (i64, i64, i64, i64, i64, i64) {
    let (y, mo, d) = civil_from_days(secs.div_euclid(DAY));
    let s = secs.rem_euclid(DAY);
    (y, mo, d, s / 3600, s / 60 % 60, s % 60)
}

/// `2026-12-23T07:19:19Z`.
pub(crate) fn rfc3339(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = parts(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `2026-12-23T07:19:19.000000Z`, as Hubble-style services print dates.
pub(crate) fn rfc3339_millis(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = parts(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.000Z")
}

fn digits(s: &str, n: usize) -> Option<i64> {
    if s.len() == n && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// Parses `YYYY-MM-DD`, optionally followed by `T` or a space,
/// `HH:MM[:SS[.fraction]]` and a zone (`Z`, `±HH:MM`, `±HHMM`). A time
/// without a zone (what BentoCloud's and Nuclia's clients send: naive
/// local time) is read as UTC.
pub(crate) fn parse(input: &str) -> Option<i64> {
    let s = input.trim();
    let date = s.get(..10)?;
    let rest = s.get(10..)?;
    let mut dp = date.split('-');
    let y = digits(dp.next()?, 4)?;
    let mo = digits(dp.next()?, 2)?;
    let d = digits(dp.next()?, 2)?;
    if dp.next().is_some() || !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) {
        return None;
    }
    let midnight = days_from_civil(y, mo, d) * DAY;
    if rest.is_empty() {
        return Some(midnight);
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (time, zone) = rest.split_at(zone_at);
    let mut hms = time.split(':');
    let h = digits(hms.next()?, 2)?;
    let mi = digits(hms.next()?, 2)?;
    let sec = match hms.next() {
        None => 0,
        Some(sec) => {
            let (whole, fraction) = sec.split_once('.').unwrap_or((sec, "0"));
            if fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            digits(whole, 2)?
        }
    };
    if hms.next().is_some() || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let offset = match zone {
        "" | "Z" | "z" => 0,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let z = &z[1..];
            let (zh, zm) = match z.split_once(':') {
                Some((a, b)) => (digits(a, 2)?, digits(b, 2)?),
                None if z.len() == 4 => (digits(&z[..2], 2)?, digits(&z[2..], 2)?),
                None => (digits(z, 2)?, 0),
            };
            sign * (zh * 3600 + zm * 60)
        }
    };
    Some(midnight + h * 3600 + mi * 60 + sec - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_798_010_359), "2026-12-23T07:19:19Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339_millis(1_798_010_359), "2026-12-23T07:19:19.000Z");
        assert_eq!(parse("2026-12-23 07:19:19.108731"), Some(1_798_010_359));
        assert_eq!(parse("2026-12-23T07:19:19.108731"), Some(1_798_010_359));
        assert_eq!(parse("2026-12-23T09:19:19+02:00"), Some(1_798_010_359));
        assert_eq!(parse("2026-12-23T02:19:19-0500"), Some(1_798_010_359));
        assert_eq!(
            parse("2026-12-23"),
            Some(1_798_010_359 - 7 * 3600 - 19 * 60 - 19)
        );
        assert_eq!(parse("2024-02-29T00:00:00Z"), Some(1_709_164_800));
        for bad in [
            "",
            "2026",
            "2023-02-29",
            "2026-12-23X07:19",
            "2026-12-23T07:19:19.",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        for secs in [0, 1, 951_782_400, 1_798_010_359, 4_102_444_800] {
            assert_eq!(parse(&rfc3339(secs)), Some(secs));
        }
    }
}
