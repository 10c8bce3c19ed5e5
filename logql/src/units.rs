//! Number, duration, byte-size and IP-pattern parsing with the semantics Loki
//! inherits from Go (`strconv.ParseFloat`, `time.ParseDuration`,
//! `humanize.ParseBytes`), including Go's error texts, which surface in
//! `__error_details__`.

use std::net::IpAddr;

/// Parses a float like Go's `strconv.ParseFloat(s, 64)`: decimal with
/// optional exponent, `inf`/`infinity`/`nan` (any case, optional sign) and
/// hexadecimal floats with a mandatory `p` exponent.
pub fn parse_go_float(s: &str) -> Result<f64, String> {
    let err = || format!("strconv.ParseFloat: parsing {s:?}: invalid syntax");
    if s.is_empty() {
        return Err(err());
    }
    let (neg, body) = match s.as_bytes()[0] {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let v = if lower == "inf" || lower == "infinity" {
        f64::INFINITY
    } else if lower == "nan" {
        f64::NAN
    } else {
        let v = if let Some(hex) = lower.strip_prefix("0x") {
            parse_hex_float(hex).ok_or_else(err)?
        } else {
            // Rust accepts the same decimal syntax; reject what Go rejects.
            if !body.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-')) {
                return Err(err());
            }
            body.parse::<f64>().map_err(|_| err())?
        };
        // A finite number too large for a float: Go's ErrRange.
        if v.is_infinite() {
            return Err(format!("strconv.ParseFloat: parsing {s:?}: value out of range"));
        }
        v
    };
    Ok(if neg { -v } else { v })
}

/// Parses the part of a hex float after `0x` (lowercase): `h[.h]p[+-]d`.
fn parse_hex_float(s: &str) -> Option<f64> {
    let (mant, exp) = s.split_once('p')?;
    let exp: i32 = exp.parse().ok()?;
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    if v == 0.0 {
        // Any exponent: zero (2^exp alone may be infinite, and 0 * inf is
        // NaN).
        return Some(0.0);
    }
    // In two halves, so that a large mantissa with a negative exponent (or
    // the reverse) does not overflow or underflow on the way.
    let half = exp / 2;
    Some(v * 2f64.powi(half) * 2f64.powi(exp - half))
}

const NS: f64 = 1.0;
const US: f64 = 1e3;
const MS: f64 = 1e6;
const S: f64 = 1e9;
const M: f64 = 60e9;
const H: f64 = 3600e9;

fn go_unit(u: &str) -> Option<f64> {
    Some(match u {
        "ns" => NS,
        "us" | "µs" | "μs" => US,
        "ms" => MS,
        "s" => S,
        "m" => M,
        "h" => H,
        _ => return None,
    })
}

fn query_unit(u: &str) -> Option<f64> {
    go_unit(u).or(match u {
        "d" => Some(24.0 * H),
        "w" => Some(7.0 * 24.0 * H),
        "y" => Some(365.0 * 24.0 * H),
        _ => None,
    })
}

fn parse_duration_with(s: &str, unit: fn(&str) -> Option<f64>) -> Result<f64, String> {
    let orig = s;
    let invalid = || format!("time: invalid duration {orig:?}");
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0.0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').count();
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(invalid());
        }
        let value: f64 = num.parse().map_err(|_| invalid())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(rest.len(), |(i, _)| i);
        let u = &rest[..unit_len];
        if u.is_empty() {
            return Err(format!("time: missing unit in duration {orig:?}"));
        }
        let mult = unit(u).ok_or_else(|| format!("time: unknown unit {u:?} in duration {orig:?}"))?;
        total += value * mult;
        rest = &rest[unit_len..];
    }
    Ok(if neg { -total } else { total })
}

/// Parses a value like Go's `time.ParseDuration`; returns nanoseconds.
pub fn parse_go_duration(s: &str) -> Result<f64, String> {
    parse_duration_with(s, go_unit)
}

/// Parses a duration literal of a query (Go units plus `d`, `w`, `y`);
/// returns nanoseconds.
pub fn parse_query_duration(s: &str) -> Result<f64, String> {
    parse_duration_with(s, query_unit)
}

/// Formats nanoseconds as a compact duration (`1h30m`, `500ms`).
pub fn format_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    let mut rest = ns.unsigned_abs();
    if ns < 0 {
        out.push('-');
    }
    for (unit, size) in [
        ("y", 365 * 24 * 3_600_000_000_000u64),
        ("w", 7 * 24 * 3_600_000_000_000),
        ("d", 24 * 3_600_000_000_000),
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

fn bytes_unit(u: &str) -> Option<f64> {
    Some(match u {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "ki" | "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mi" | "mib" => 1024f64.powi(2),
        "g" | "gb" => 1e9,
        "gi" | "gib" => 1024f64.powi(3),
        "t" | "tb" => 1e12,
        "ti" | "tib" => 1024f64.powi(4),
        "p" | "pb" => 1e15,
        "pi" | "pib" => 1024f64.powi(5),
        "e" | "eb" => 1e18,
        "ei" | "eib" => 1024f64.powi(6),
        _ => return None,
    })
}

/// Parses a human byte size like go-humanize's `ParseBytes` (`3MB`,
/// `2 KiB`, `1,000`); units are case-insensitive.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let digits = s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.' || *c == ','))
        .map_or(s.len(), |(i, _)| i);
    let num = s[..digits].replace(',', "");
    let f = parse_go_float(&num)?;
    let extra = s[digits..].trim().to_lowercase();
    match bytes_unit(&extra) {
        Some(m) => {
            let v = f * m;
            if v >= u64::MAX as f64 {
                Err(format!("too large: {s}"))
            } else {
                Ok(v as u64)
            }
        }
        None => Err(format!("unhandled size name: {extra}")),
    }
}

/// The byte-size units a query literal may carry (case-sensitive).
pub const QUERY_BYTES_UNITS: &[&str] = &[
    "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "kB", "KB", "MB", "GB", "TB", "PB", "EB", "B",
];

/// An `ip("...")` pattern: one address, an inclusive range, or a CIDR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IpPattern {
    /// A single address.
    Single(IpAddr),
    /// `a-b`, inclusive, same family.
    Range(IpAddr, IpAddr),
    /// `addr/prefix`.
    Cidr(IpAddr, u8),
}

impl IpPattern {
    /// Parses a pattern; the error is Loki's `ip: invalid pattern`.
    pub fn parse(s: &str) -> Result<IpPattern, String> {
        let bad = || format!("ip: invalid pattern: {s:?}");
        let s = s.trim();
        if let Some((a, b)) = s.split_once('-') {
            let a: IpAddr = a.trim().parse().map_err(|_| bad())?;
            let b: IpAddr = b.trim().parse().map_err(|_| bad())?;
            if a.is_ipv4() != b.is_ipv4() || ip_key(&a) > ip_key(&b) {
                return Err(bad());
            }
            return Ok(IpPattern::Range(a, b));
        }
        if let Some((a, p)) = s.split_once('/') {
            let a: IpAddr = a.parse().map_err(|_| bad())?;
            let p: u8 = p.parse().map_err(|_| bad())?;
            let max = if a.is_ipv4() { 32 } else { 128 };
            if p > max {
                return Err(bad());
            }
            return Ok(IpPattern::Cidr(a, p));
        }
        s.parse().map(IpPattern::Single).map_err(|_| bad())
    }

    /// Whether `ip` is covered.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        match self {
            IpPattern::Single(a) => a == ip,
            IpPattern::Range(a, b) => {
                a.is_ipv4() == ip.is_ipv4() && ip_key(a) <= ip_key(ip) && ip_key(ip) <= ip_key(b)
            }
            IpPattern::Cidr(a, p) => {
                if a.is_ipv4() != ip.is_ipv4() {
                    return false;
                }
                let bits = if a.is_ipv4() { 32 } else { 128 };
                let shift = bits - u32::from(*p);
                let mask = if shift >= 128 { 0 } else { u128::MAX << shift };
                ip_key(a) & mask == ip_key(ip) & mask
            }
        }
    }

    /// Whether any IP address found inside `text` is covered.
    pub fn matches_text(&self, text: &str) -> bool {
        find_ips(text).iter().any(|ip| self.contains(ip))
    }
}

impl std::fmt::Display for IpPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IpPattern::Single(a) => write!(f, "{a}"),
            IpPattern::Range(a, b) => write!(f, "{a}-{b}"),
            IpPattern::Cidr(a, p) => write!(f, "{a}/{p}"),
        }
    }
}

fn ip_key(ip: &IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v) => u128::from(u32::from(*v)),
        IpAddr::V6(v) => u128::from(*v),
    }
}

/// Every IPv4/IPv6 address appearing as a token inside `text`.
pub fn find_ips(text: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    let is_ip_char = |c: char| c.is_ascii_hexdigit() || c == '.' || c == ':';
    for run in text.split(|c: char| !is_ip_char(c)).filter(|r| !r.is_empty()) {
        if let Ok(ip) = run.parse::<IpAddr>() {
            out.push(ip);
            continue;
        }
        // `10.0.0.7:80` and similar: try the dotted-digit pieces.
        for part in run.split(|c: char| !(c.is_ascii_digit() || c == '.')).filter(|p| p.contains('.')) {
            if let Ok(ip) = part.parse::<IpAddr>() {
                out.push(ip);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_floats() -> Result<(), String> {
        assert_eq!(parse_go_float("1.5e3")?, 1500.0);
        assert_eq!(parse_go_float("0x1.8p3")?, 12.0);
        assert!(parse_go_float("0x10").is_err());
        assert!(parse_go_float("NaN")?.is_nan());
        assert_eq!(parse_go_float("-Inf")?, f64::NEG_INFINITY);
        // Too large for a float: an error, as Go's ErrRange (found by
        // fuzzing: `5E540 % 1` parsed, and displayed as `+Inf % 1`, which
        // does not).
        assert_eq!(parse_go_float("5E540").unwrap_err(), r#"strconv.ParseFloat: parsing "5E540": value out of range"#);
        assert!(parse_go_float("-0x1p99999").is_err());
        assert_eq!(parse_go_float("1e308")?, 1e308);
        assert!(crate::parse("5E540 % 1").is_err());
        // Zero with any exponent is zero (found by fuzzing: `0x0P4972` was
        // NaN), and the exponent may outgrow the mantissa's reach.
        assert_eq!(parse_go_float("0x0P4972")?, 0.0);
        assert_eq!(parse_go_float("0x100p-1030")?, 2f64.powi(-1022));
        assert!(parse_go_float("0x1p1024").is_err());
        assert_eq!(parse_go_float("").unwrap_err(), "strconv.ParseFloat: parsing \"\": invalid syntax");
        Ok(())
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1h30m").unwrap(), 5400e9);
        assert_eq!(parse_go_duration("1.5s").unwrap(), 1.5e9);
        assert!(parse_go_duration("5").unwrap_err().contains("missing unit in duration"));
        assert!(parse_go_duration("1d").unwrap_err().contains("unknown unit"));
        assert!(parse_go_duration("oops").unwrap_err().contains("invalid duration"));
        assert_eq!(parse_query_duration("1d").unwrap(), 86400e9);
        assert_eq!(format_duration(5_400_000_000_000), "1h30m");
        assert_eq!(format_duration(500_000_000), "500ms");
    }

    #[test]
    fn bytes() {
        assert_eq!(parse_bytes("3MB").unwrap(), 3_000_000);
        assert_eq!(parse_bytes("2KiB").unwrap(), 2048);
        assert_eq!(parse_bytes("3 mb").unwrap(), 3_000_000);
        assert!(parse_bytes("oops").unwrap_err().contains("parsing \"\": invalid syntax"));
    }

    #[test]
    fn ips() {
        let p = IpPattern::parse("192.168.0.0/16").unwrap();
        assert!(p.matches_text("client 192.168.1.5:80"));
        assert!(!p.matches_text("10.0.0.1"));
        let r = IpPattern::parse("192.168.1.1-192.168.1.9").unwrap();
        assert!(r.matches_text("192.168.1.5"));
        assert!(IpPattern::parse("2001:db8::/32").unwrap().matches_text("2001:db8::1"));
        assert!(IpPattern::parse("bogus").is_err());
        assert!(IpPattern::parse("").is_err());
    }
}
