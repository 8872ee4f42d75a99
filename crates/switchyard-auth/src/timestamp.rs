//! Reading the many timestamp shapes CPA-format auth files carry (RFC 3339 strings, Go-style
//! "2006-01-02 15:04[:05]" strings, unix seconds or milliseconds as numbers or numeric strings).

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;

/// Numbers above this are unix milliseconds, below it unix seconds (1e12 s is the year 33658).
const MILLIS_THRESHOLD: f64 = 1e12;

/// Parses one timestamp value; `None` for anything unparseable, zero or negative.
pub(crate) fn parse(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::Number(n) => from_unix(n.as_f64()?),
        Value::String(s) => parse_str(s.trim()),
        _ => None,
    }
}

fn parse_str(s: &str) -> Option<DateTime<Utc>> {
    if s.is_empty() {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    // Go's time.Parse reads zone-less layouts as UTC; CPA relies on that for these two.
    for layout in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, layout) {
            return Some(t.and_utc());
        }
    }
    from_unix(s.parse::<f64>().ok()?)
}

fn from_unix(n: f64) -> Option<DateTime<Utc>> {
    if !n.is_finite() || n <= 0.0 {
        return None;
    }
    let millis = if n > MILLIS_THRESHOLD { n } else { n * 1000.0 };
    // Values beyond i64 milliseconds cannot be a real expiry.
    if millis >= i64::MAX as f64 {
        return None;
    }
    DateTime::from_timestamp_millis(millis.round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rejects_junk_and_non_positive() {
        for v in [json!(null), json!(true), json!(""), json!("soon"), json!(0), json!(-5), json!([])] {
            assert_eq!(parse(&v), None, "{v}");
        }
    }

    #[test]
    fn fractional_seconds_keep_millis() {
        let t = parse(&json!(1_755_853_200.25)).unwrap();
        assert_eq!(t.timestamp_millis(), 1_755_853_200_250);
    }
}
