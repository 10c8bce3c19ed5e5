//! `time`: the system clock, the local time zone offset, and the kernel's
//! clocksources from sysfs.

use std::sync::OnceLock;

use chrono::{Local, Offset};

use crate::collector::{Collector, Sink};
use crate::error::Error;
use crate::root::{list_dir, Root};

pub(crate) struct Time;

impl Collector for Time {
    fn name(&self) -> &'static str {
        "time"
    }

    fn collect(&self, root: &Root, out: &mut Sink) -> Result<(), Error> {
        let now = Local::now();
        let secs = now.timestamp() as f64 + f64::from(now.timestamp_subsec_nanos()) / 1e9;
        out.gauge("node_time_seconds", "System time in seconds since epoch (1970).", &[], secs);
        let offset = now.offset().fix().local_minus_utc();
        let zone = zone_name(offset);
        out.gauge(
            "node_time_zone_offset_seconds",
            "System time zone offset in seconds.",
            &[("time_zone", &zone)],
            f64::from(offset),
        );

        // Clocksources are optional (not every kernel or container has them).
        let dir = root.sys_path("devices/system/clocksource");
        let Ok(entries) = list_dir(&dir) else { return Ok(()) };
        for name in entries {
            let Some(device) = name.strip_prefix("clocksource") else { continue };
            let base = dir.join(&name);
            let available = root.read(&base.join("available_clocksource"))?;
            for cs in available.split_whitespace() {
                out.gauge(
                    "node_time_clocksource_available_info",
                    "Available clocksources read from '/sys/devices/system/clocksource'.",
                    &[("clocksource", cs), ("device", device)],
                    1.0,
                );
            }
            let current = root.read(&base.join("current_clocksource"))?;
            let current = current.trim();
            if !current.is_empty() {
                out.gauge(
                    "node_time_clocksource_current_info",
                    "Current clocksource read from '/sys/devices/system/clocksource'.",
                    &[("clocksource", current), ("device", device)],
                    1.0,
                );
            }
        }
        Ok(())
    }
}

/// The local zone's abbreviation (`UTC`, `CET`, `CEST`), as Go's
/// `time.Now().Zone()` reports it: from `$TZ` or `/etc/localtime`, using
/// the POSIX TZ rule at the end of TZif files to pick the standard or the
/// daylight-saving name from the current offset.
///
/// The zone file is read once per process, as Go loads `time.Local` once.
fn zone_name(offset: i32) -> String {
    static TZIF: OnceLock<Option<Vec<u8>>> = OnceLock::new();
    let tzif = TZIF.get_or_init(|| {
        let tz_file = match std::env::var("TZ") {
            Ok(tz) if tz.is_empty() || tz == "UTC" => return None,
            Ok(tz) => {
                let p = if tz.starts_with('/') { tz } else { format!("/usr/share/zoneinfo/{}", tz.trim_start_matches(':')) };
                std::path::PathBuf::from(p)
            }
            Err(_) => std::path::PathBuf::from("/etc/localtime"),
        };
        std::fs::read(tz_file).ok()
    });
    match tzif {
        Some(bytes) => posix_rule_name(bytes, offset).unwrap_or_else(|| fallback_name(offset)),
        None => "UTC".into(),
    }
}

fn fallback_name(offset: i32) -> String {
    if offset == 0 {
        return "UTC".into();
    }
    // Go prints numeric abbreviations as e.g. "+0530".
    let sign = if offset < 0 { '-' } else { '+' };
    let a = offset.unsigned_abs();
    match a % 3600 {
        0 => format!("{sign}{:02}", a / 3600),
        rest => format!("{sign}{:02}{:02}", a / 3600, rest / 60),
    }
}

/// Reads the footer TZ string of a TZif v2+ file (`\nCET-1CEST,M3...\n`).
fn posix_rule_name(tzif: &[u8], offset: i32) -> Option<String> {
    if !tzif.starts_with(b"TZif") || tzif.last() != Some(&b'\n') {
        return None;
    }
    let body = &tzif[..tzif.len() - 1];
    let start = body.iter().rposition(|&b| b == b'\n')? + 1;
    let rule = std::str::from_utf8(&body[start..]).ok()?;
    let (std_name, rest) = take_name(rule)?;
    let num_end = rest.find(|c: char| !(c.is_ascii_digit() || "+-:".contains(c))).unwrap_or(rest.len());
    let std_offset = -parse_hms(&rest[..num_end])?;
    let rest = &rest[num_end..];
    if offset == std_offset || rest.is_empty() {
        return Some(std_name.to_string());
    }
    let (dst_name, _) = take_name(rest)?;
    Some(dst_name.to_string())
}

fn take_name(s: &str) -> Option<(&str, &str)> {
    if let Some(r) = s.strip_prefix('<') {
        let end = r.find('>')?;
        return Some((&r[..end], &r[end + 1..]));
    }
    let end = s.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(s.len());
    (end >= 3).then(|| (&s[..end], &s[end..]))
}

fn parse_hms(s: &str) -> Option<i32> {
    let (sign, s) = match s.as_bytes().first()? {
        b'-' => (-1, &s[1..]),
        b'+' => (1, &s[1..]),
        _ => (1, s),
    };
    let mut total = 0i32;
    for (i, part) in s.split(':').enumerate() {
        let v: i32 = part.parse().ok()?;
        total += v * [3600, 60, 1].get(i)?;
    }
    Some(sign * total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posix_rules() {
        let f = b"TZif2....\nCET-1CEST,M3.5.0,M10.5.0/3\n";
        assert_eq!(posix_rule_name(f, 3600).as_deref(), Some("CET"));
        assert_eq!(posix_rule_name(f, 7200).as_deref(), Some("CEST"));
        assert_eq!(posix_rule_name(b"TZif2..\nUTC0\n", 0).as_deref(), Some("UTC"));
        assert_eq!(posix_rule_name(b"TZif2..\n<+0530>-5:30\n", 19800).as_deref(), Some("+0530"));
        assert_eq!(posix_rule_name(b"garbage", 0), None);
        assert_eq!(fallback_name(19800), "+0530");
        assert_eq!(fallback_name(-3600), "-01");
    }
}
