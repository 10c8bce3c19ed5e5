//! Maintenance windows: fixed start/end, or a cron recurrence with a
//! duration. Pure: callers pass `now` (Unix ms).
//!
//! Cron expressions have the classic five fields, evaluated in UTC:
//! `minute hour day-of-month month day-of-week`. Each field is a comma list of
//! `*`, `N`, `N-M`, with an optional `/step` (`*/15`, `10-50/10`, `5/20` =
//! from 5 to the field's maximum in steps of 20). Months accept `JAN`..`DEC`
//! and days of week `SUN`..`SAT` (0 and 7 are both Sunday). As in Vixie cron,
//! when both day-of-month and day-of-week are restricted (neither is `*`), a
//! day matches if *either* matches.
//!
//! A recurring window is active at `now` when the expression fired at some
//! minute `s` with `s <= now < s + duration`.

use chrono::{Datelike, NaiveDate, TimeZone, Timelike, Utc};
use thiserror::Error;

/// Longest recurring window accepted (366 days), which also bounds the
/// backwards search in [`MaintenanceWindow::is_active`].
pub const MAX_DURATION_MS: i64 = 366 * 24 * 3600 * 1000;

/// An error in a cron expression.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CronError {
    /// Not exactly five fields.
    #[error("cron expression {expr:?} has {found} fields; expected 5 (minute hour day-of-month month day-of-week)")]
    FieldCount {
        /// The expression.
        expr: String,
        /// Fields found.
        found: usize,
    },
    /// A field item could not be parsed or is out of range.
    #[error("cron field {field} ({item:?}): {reason}")]
    Field {
        /// Which field (`minute`, `hour`, ...).
        field: &'static str,
        /// The offending item.
        item: String,
        /// What is wrong.
        reason: String,
    },
}

/// A parsed five-field cron expression (UTC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    days_of_month: u32,
    months: u16,
    days_of_week: u8,
    dom_star: bool,
    dow_star: bool,
}

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn parse_value(field: &'static str, s: &str, names: &[&str], names_base: u32) -> Result<u32, CronError> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        return Ok(i as u32 + names_base);
    }
    s.parse::<u32>().map_err(|_| CronError::Field {
        field,
        item: s.to_string(),
        reason: "not a number".into(),
    })
}

/// Parse one field into a bit set of allowed values in `min..=max`.
fn parse_field(
    field: &'static str,
    text: &str,
    min: u32,
    max: u32,
    names: &[&str],
    names_base: u32,
) -> Result<(u64, bool), CronError> {
    let err = |item: &str, reason: String| CronError::Field { field, item: item.to_string(), reason };
    let mut bits = 0u64;
    let star = text == "*";
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| err(item, "step is not a number".into()))?;
                if step == 0 {
                    return Err(err(item, "step must be at least 1".into()));
                }
                (r, step)
            }
            None => (item, 1),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (parse_value(field, a, names, names_base)?, parse_value(field, b, names, names_base)?)
        } else {
            let v = parse_value(field, range, names, names_base)?;
            // `5/20` means from 5 to the maximum in steps of 20.
            if item.contains('/') {
                (v, max)
            } else {
                (v, v)
            }
        };
        if lo < min || hi > max {
            return Err(err(item, format!("out of range {min}-{max}")));
        }
        if lo > hi {
            return Err(err(item, format!("range start {lo} is after its end {hi}")));
        }
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            match v.checked_add(step) {
                Some(n) => v = n,
                None => break,
            }
        }
    }
    Ok((bits, star))
}

impl Cron {
    /// Parse a five-field expression.
    pub fn parse(expr: &str) -> Result<Cron, CronError> {
        let fields: Vec<&str> = expr.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(CronError::FieldCount { expr: expr.to_string(), found: fields.len() });
        }
        let (minutes, _) = parse_field("minute", fields[0], 0, 59, &[], 0)?;
        let (hours, _) = parse_field("hour", fields[1], 0, 23, &[], 0)?;
        let (dom, dom_star) = parse_field("day-of-month", fields[2], 1, 31, &[], 0)?;
        let (months, _) = parse_field("month", fields[3], 1, 12, &MONTHS, 1)?;
        let (mut dow, dow_star) = parse_field("day-of-week", fields[4], 0, 7, &DAYS, 0)?;
        if dow & (1 << 7) != 0 {
            dow = (dow | 1) & 0x7f;
        }
        Ok(Cron {
            minutes,
            hours: hours as u32,
            days_of_month: dom as u32,
            months: months as u16,
            days_of_week: dow as u8,
            dom_star,
            dow_star,
        })
    }

    fn day_matches(&self, d: NaiveDate) -> bool {
        if self.months & (1 << d.month()) == 0 {
            return false;
        }
        let dom = self.days_of_month & (1 << d.day()) != 0;
        let dow = self.days_of_week & (1 << d.weekday().num_days_from_sunday()) != 0;
        match (self.dom_star, self.dow_star) {
            (false, false) => dom || dow,
            _ => dom && dow,
        }
    }

    /// Whether the expression fires at the minute containing `t` (Unix ms).
    pub fn matches(&self, t: i64) -> bool {
        let Some(dt) = Utc.timestamp_millis_opt(t).single() else { return false };
        self.day_matches(dt.date_naive())
            && self.hours & (1 << dt.hour()) != 0
            && self.minutes & (1 << dt.minute()) != 0
    }

    /// The latest firing time (Unix ms, whole minute) in `(after, at]`, if any.
    pub fn latest_in(&self, after: i64, at: i64) -> Option<i64> {
        let at_dt = Utc.timestamp_millis_opt(at).single()?;
        let mut day = at_dt.date_naive();
        loop {
            let day_start = day.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis();
            if day_start + 24 * 3600 * 1000 <= after {
                return None;
            }
            if self.day_matches(day) {
                for h in (0..24u32).rev().filter(|h| self.hours & (1 << h) != 0) {
                    for m in (0..60u32).rev().filter(|m| self.minutes & (1 << m) != 0) {
                        let t = day_start + (h as i64 * 60 + m as i64) * 60_000;
                        if t > at {
                            continue;
                        }
                        if t <= after {
                            return None;
                        }
                        return Some(t);
                    }
                }
            }
            day = day.pred_opt()?;
        }
    }
}

/// One maintenance window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MaintenanceWindow {
    /// Active for `start <= now < end` (Unix ms).
    Fixed {
        /// Start, Unix ms (inclusive).
        start: i64,
        /// End, Unix ms (exclusive).
        end: i64,
    },
    /// Active for `duration_ms` after each time the cron expression fires.
    Recurring {
        /// When windows start.
        cron: Cron,
        /// Window length in ms (at most [`MAX_DURATION_MS`]).
        duration_ms: i64,
    },
}

impl MaintenanceWindow {
    /// Whether the window is active at `now` (Unix ms).
    pub fn is_active(&self, now: i64) -> bool {
        match self {
            MaintenanceWindow::Fixed { start, end } => *start <= now && now < *end,
            MaintenanceWindow::Recurring { cron, duration_ms } => {
                cron.latest_in(now - duration_ms, now).is_some()
            }
        }
    }
}

/// Whether any of `windows` is active at `now`.
pub fn in_maintenance(windows: &[MaintenanceWindow], now: i64) -> bool {
    windows.iter().any(|w| w.is_active(now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    #[test]
    fn parses_fields_and_rejects_bad_ones() {
        assert!(Cron::parse("*/15 2 * * MON-FRI").is_ok());
        assert!(Cron::parse("0 0 1 JAN,jul *").is_ok());
        assert!(matches!(Cron::parse("* * * *"), Err(CronError::FieldCount { found: 4, .. })));
        let e = Cron::parse("60 * * * *").unwrap_err();
        assert!(e.to_string().contains("minute"), "{e}");
        assert!(Cron::parse("* * * * 8").is_err());
        assert!(Cron::parse("*/0 * * * *").is_err());
        assert!(Cron::parse("5-2 * * * *").is_err());
        assert!(Cron::parse("x * * * *").is_err());
        assert!(Cron::parse("* * 0 * *").is_err());
    }

    #[test]
    fn matches_minutes_and_weekdays() {
        let c = Cron::parse("30 3 * * SUN").unwrap();
        // 2026-11-22 is a Sunday.
        assert!(c.matches(ts("2026-11-22T03:30:59Z")));
        assert!(!c.matches(ts("2026-11-23T03:30:00Z")));
        let c7 = Cron::parse("30 3 * * 7").unwrap();
        assert!(c7.matches(ts("2026-11-22T03:30:00Z")));
    }

    #[test]
    fn dom_dow_or_semantics() {
        // The 1st of the month OR any Monday.
        let c = Cron::parse("0 0 1 * MON").unwrap();
        assert!(c.matches(ts("2026-12-01T00:00:00Z"))); // Tuesday, the 1st
        assert!(c.matches(ts("2026-11-23T00:00:00Z"))); // Monday
        assert!(!c.matches(ts("2026-11-24T00:00:00Z")));
        // Only day-of-week restricted: AND with `*` day-of-month.
        let c = Cron::parse("0 0 * * MON").unwrap();
        assert!(!c.matches(ts("2026-12-01T00:00:00Z")));
    }

    #[test]
    fn recurring_window_activity() {
        let w = MaintenanceWindow::Recurring {
            cron: Cron::parse("0 2 * * *").unwrap(),
            duration_ms: 90 * 60_000,
        };
        assert!(!w.is_active(ts("2026-11-24T01:59:59Z")));
        assert!(w.is_active(ts("2026-11-24T02:00:00Z")));
        assert!(w.is_active(ts("2026-11-24T03:29:59Z")));
        assert!(!w.is_active(ts("2026-11-24T03:30:00Z")));
        // Across midnight.
        let w = MaintenanceWindow::Recurring {
            cron: Cron::parse("30 23 * * *").unwrap(),
            duration_ms: 60 * 60_000,
        };
        assert!(w.is_active(ts("2026-11-25T00:10:00Z")));
        assert!(!w.is_active(ts("2026-11-25T00:31:00Z")));
    }

    #[test]
    fn fixed_window_is_half_open() {
        let w = MaintenanceWindow::Fixed { start: 100, end: 200 };
        assert!(!w.is_active(99));
        assert!(w.is_active(100));
        assert!(w.is_active(199));
        assert!(!w.is_active(200));
        assert!(in_maintenance(std::slice::from_ref(&w), 150));
        assert!(!in_maintenance(&[], 150));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn latest_in_agrees_with_minute_scan(
            minute in 0u32..60, hour in 0u32..24, step in 1u32..30,
            start in 1_700_000_000_000i64..1_800_000_000_000i64, span_min in 1i64..3000
        ) {
            let expr = format!("{}/{} {} * * *", minute, step, hour);
            let c = Cron::parse(&expr).unwrap();
            let at = start;
            let after = at - span_min * 60_000;
            let got = c.latest_in(after, at);
            // Naive: scan every whole minute in (after, at] backwards.
            let mut t = at - at.rem_euclid(60_000);
            let mut want = None;
            while t > after {
                if c.matches(t) { want = Some(t); break; }
                t -= 60_000;
            }
            prop_assert_eq!(got, want);
        }

        #[test]
        fn parse_never_panics(s in "[0-9*/,A-Za-z -]{0,30}") {
            let _ = Cron::parse(&s);
        }
    }
}
