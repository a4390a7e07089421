//! Durations on the command line: `500ms`, `30s`, `2m`, `1h`, `1.5s`, and
//! the deadlines they make.

use std::time::{Duration, Instant};

/// Parses a duration written as a number followed by a unit (`ms`, `s`, `m`,
/// `h`). A bare number means seconds. Fractions are allowed (`1.5s`). One
/// longer than a `Duration` holds (some 585 billion years) is the longest
/// one: like those the clock cannot count to ([`deadline`]), it never
/// expires.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return Err(format!(
            "'{text}' is not a duration (examples: 500ms, 30s, 2m)"
        ));
    }
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (examples: 500ms, 30s, 2m)"))?;
    let scale = match unit {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "'{text}': unknown unit '{unit}' (use ms, s, m or h)"
            ))
        }
    };
    match Duration::try_from_secs_f64(value * scale) {
        // Zero, or less than a nanosecond, which rounds to zero.
        Ok(d) if d.is_zero() => Err(format!("'{text}': a timeout must be longer than zero")),
        Ok(d) => Ok(d),
        // Digits only: no NaN, nothing negative; what fails is too long.
        Err(_) => Ok(Duration::MAX),
    }
}

/// The instant `timeout` after `start`: every deadline is made here. A
/// timeout too long for the monotonic clock (past some 292 billion years,
/// `--timeout 3000000000000000h`) gives the farthest instant it can count
/// to within half the way, a deadline that never comes in effect, instead
/// of the overflow panic of `start + timeout`.
pub fn deadline(start: Instant, timeout: Duration) -> Instant {
    let mut reach = timeout;
    loop {
        match start.checked_add(reach) {
            Some(deadline) => return deadline,
            // Ends: `start + 0` is `start`.
            None => reach /= 2,
        }
    }
}

/// Shows a duration the way the command line takes it (`2s`, `500ms`, `1.5s`).
pub fn show(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::{deadline, parse};
    use std::time::{Duration, Instant};

    #[test]
    fn deadlines_past_the_clock_do_not_overflow() {
        let now = Instant::now();
        assert_eq!(
            deadline(now, Duration::from_secs(30)),
            now + Duration::from_secs(30)
        );
        assert_eq!(deadline(now, Duration::ZERO), now);
        let century = Duration::from_secs(100 * 365 * 24 * 3600);
        for far in [
            parse("3000000000000000h").unwrap(),
            Duration::from_secs(u64::MAX),
            Duration::MAX,
        ] {
            assert!(now.checked_add(far).is_none(), "{far:?} fits the clock");
            assert!(deadline(now, far) > now + century, "{far:?}");
        }
    }

    #[test]
    fn units() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn malformed() {
        for bad in [
            "", "s", "ms", "-1s", "1.s", ".5s", "5x", "5 s", "1e3s", "0s", "0", "1..2s",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn too_long_for_a_duration_is_the_longest() {
        for far in ["99999999999999999999h", &"9".repeat(400)] {
            assert_eq!(parse(far), Ok(Duration::MAX), "{far}");
        }
        assert_eq!(
            parse("3000000000000000h"),
            Ok(Duration::from_secs(3_000_000_000_000_000 * 3600))
        );
    }

    /// Less than a nanosecond was taken as a timeout of zero, which the
    /// fuzzer found.
    #[test]
    fn less_than_a_nanosecond_is_zero() {
        for tiny in ["0.0000000001s", "0.0000001ms", "000.0000000000000001"] {
            let e = parse(tiny).unwrap_err();
            assert!(e.contains("longer than zero"), "{tiny}: {e}");
        }
        assert_eq!(parse("0.000001ms"), Ok(Duration::from_nanos(1)));
    }
}
