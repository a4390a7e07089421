//! Durations on the command line: `500ms`, `30s`, `2m`, `1h`, `1.5s`.

use std::time::Duration;

/// The longest duration taken: 100 years of 365 days, far beyond any wait,
/// and short enough that a deadline (`Instant::now() + d`) cannot
/// overflow.
pub const MAX: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Parses a duration written as a number followed by a unit (`ms`, `s`, `m`,
/// `h`). A bare number means seconds. Fractions are allowed (`1.5s`).
/// Longer than [`MAX`] is refused.
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
        Ok(d) if d <= MAX => Ok(d),
        _ => Err(format!(
            "'{text}': duration out of range (at most {}h, 100 years)",
            MAX.as_secs() / 3600
        )),
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
    use super::parse;
    use std::time::Duration;

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
            "",
            "s",
            "ms",
            "-1s",
            "1.s",
            ".5s",
            "5x",
            "5 s",
            "1e3s",
            "0s",
            "0",
            "1..2s",
            "99999999999999999999h",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
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

    /// A duration taken makes a deadline: `Instant::now() + d` overflowed
    /// (a panic) for 3000000000000000h, which the fuzzer found.
    #[test]
    fn at_most_a_hundred_years() {
        assert_eq!(parse("876000h"), Ok(super::MAX));
        for huge in ["876000.001h", "3000000000000000h", "18446744073709551615s"] {
            let e = parse(huge).unwrap_err();
            assert!(e.contains("out of range"), "{huge}: {e}");
        }
        let d = parse("876000h").unwrap();
        assert!(std::time::Instant::now().checked_add(d).is_some());
    }
}
