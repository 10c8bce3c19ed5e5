//! Go-compatible float formatting and the number grammar of the text formats.
//!
//! Prometheus and node_exporter print sample values with Go's
//! `strconv.FormatFloat(v, 'g', -1, 64)`: the shortest decimal digits that
//! read back to the same `f64`, in exponent form when the decimal exponent is
//! below -4 or at least 6 (Go uses precision 6 for that decision when the
//! precision is "shortest"), otherwise in plain form. The exponent has a sign
//! and at least two digits: `1e+06`, `1.305e-06`, `3.831959552e+09`.

use std::fmt;

/// Formats `v` exactly as Go's `strconv.FormatFloat(v, 'g', -1, 64)`.
///
/// `+Inf`, `-Inf` and `NaN` are spelled as Go spells them; negative zero
/// prints as `-0`.
///
/// ```
/// use model::exposition::format_go_float;
/// assert_eq!(format_go_float(1e6), "1e+06");
/// assert_eq!(format_go_float(123456.0), "123456");
/// assert_eq!(format_go_float(0.0001), "0.0001");
/// assert_eq!(format_go_float(0.00001), "1e-05");
/// assert_eq!(format_go_float(f64::INFINITY), "+Inf");
/// ```
pub fn format_go_float(v: f64) -> String {
    let mut s = String::with_capacity(24);
    push_go_float(&mut s, v);
    s
}

/// Appends `v` formatted as [`format_go_float`] does, without allocating
/// beyond the growth of `out`.
pub fn push_go_float(out: &mut String, v: f64) {
    let mut buf = FloatBuf::new();
    out.push_str(buf.format(v));
}

/// A [`Display`](fmt::Display) adapter printing an `f64` as
/// [`format_go_float`] does, for `write!` into any writer without a heap
/// allocation.
///
/// ```
/// use model::exposition::GoFloat;
/// assert_eq!(format!("{} {}", GoFloat(1.5e-7), GoFloat(-2.0)), "1.5e-07 -2");
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GoFloat(pub f64);

impl fmt::Display for GoFloat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = FloatBuf::new();
        f.write_str(buf.format(self.0))
    }
}

/// A fixed stack buffer: the longest output is 24 bytes
/// (`-1.2345678901234567e-308`).
pub(crate) struct FloatBuf {
    buf: [u8; 40],
    len: usize,
}

impl fmt::Write for FloatBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl FloatBuf {
    pub(crate) fn new() -> Self {
        FloatBuf { buf: [0; 40], len: 0 }
    }

    fn push(&mut self, b: u8) {
        // The buffer is sized for the longest possible output (see above).
        if self.len < self.buf.len() {
            self.buf[self.len] = b;
            self.len += 1;
        }
    }

    /// Formats `v` Go-style into the buffer and returns the text.
    pub(crate) fn format(&mut self, v: f64) -> &str {
        self.len = 0;
        if v.is_nan() {
            return "NaN";
        }
        if v.is_infinite() {
            return if v > 0.0 { "+Inf" } else { "-Inf" };
        }
        // Shortest round-trip digits from Rust's `{:e}` (same contract as
        // Go's shortest formatting: fewest digits that parse back exactly,
        // closest to the true value).
        let mut sci = FloatBuf::new();
        let _ = fmt::Write::write_fmt(&mut sci, format_args!("{:e}", v.abs()));
        let sci = &sci.buf[..sci.len];
        let e_pos = sci.iter().position(|&b| b == b'e').unwrap_or(sci.len());
        let mut digits = [0u8; 24];
        let mut nd = 0;
        for &b in &sci[..e_pos] {
            if b.is_ascii_digit() && nd < digits.len() {
                digits[nd] = b;
                nd += 1;
            }
        }
        let mut exp: i32 = 0;
        let mut exp_neg = false;
        for &b in sci.get(e_pos + 1..).unwrap_or(&[]) {
            match b {
                b'-' => exp_neg = true,
                b'0'..=b'9' => exp = exp * 10 + i32::from(b - b'0'),
                _ => {}
            }
        }
        if exp_neg {
            exp = -exp;
        }
        if v.is_sign_negative() {
            self.push(b'-');
        }
        let digits = &digits[..nd.max(1)];
        if !(-4..6).contains(&exp) {
            // %e form: d[.ddd]e±XX
            self.push(digits[0]);
            if digits.len() > 1 {
                self.push(b'.');
                for &d in &digits[1..] {
                    self.push(d);
                }
            }
            self.push(b'e');
            self.push(if exp < 0 { b'-' } else { b'+' });
            let a = exp.unsigned_abs();
            if a >= 100 {
                self.push(b'0' + (a / 100) as u8);
            }
            self.push(b'0' + ((a / 10) % 10) as u8);
            self.push(b'0' + (a % 10) as u8);
        } else {
            // %f form with exactly the shortest digits.
            let dp = exp + 1; // digits before the decimal point
            if dp <= 0 {
                self.push(b'0');
                self.push(b'.');
                for _ in 0..(-dp) {
                    self.push(b'0');
                }
                for &d in digits {
                    self.push(d);
                }
            } else {
                let dp = dp as usize;
                for i in 0..dp {
                    self.push(digits.get(i).copied().unwrap_or(b'0'));
                }
                if digits.len() > dp {
                    self.push(b'.');
                    for &d in &digits[dp..] {
                        self.push(d);
                    }
                }
            }
        }
        // Only ASCII bytes were pushed.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("NaN")
    }
}

/// Parses a sample value as Prometheus' text parsers accept it (Go's
/// `strconv.ParseFloat` grammar): decimal and exponent forms, optional sign,
/// `Inf`/`Infinity`/`NaN` in any letter case, hexadecimal floats, and `_`
/// separators between digits. Returns `None` for anything else.
pub(crate) fn parse_go_float(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if b.is_empty() {
        return None;
    }
    // Fast path: plain decimal.
    if let Ok(v) = s.parse::<f64>() {
        // Rust accepts "inf", "infinity", "nan" (any case) with an optional
        // sign, and decimal/exponent forms, which Go also accepts. It also
        // accepts forms such as "1." and ".5", as Go does.
        return Some(v);
    }
    let (neg, rest) = match b[0] {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    let v = if rest.len() > 2 && (rest.starts_with("0x") || rest.starts_with("0X")) {
        parse_hex_float(&rest[2..])?
    } else if rest.contains('_') {
        // Go allows '_' only between digits, and only with a base prefix;
        // plain decimal with underscores is rejected by ParseFloat.
        return None;
    } else {
        return None;
    };
    Some(if neg { -v } else { v })
}

/// Parses the part after `0x` of a Go hexadecimal float: hex mantissa with an
/// optional point, and a mandatory binary exponent `p±N`. Underscores are
/// allowed between digits.
fn parse_hex_float(s: &str) -> Option<f64> {
    let s = s.replace('_', "");
    let (mant, exp) = match s.find(['p', 'P']) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => return None,
    };
    let exp: i32 = exp.parse().ok()?;
    let (int_part, frac_part) = match mant.find('.') {
        Some(i) => (&mant[..i], &mant[i + 1..]),
        None => (mant, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let mut m: f64 = 0.0;
    for c in int_part.chars() {
        m = m * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac_part.chars() {
        m += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    Some(m * 2f64.powi(exp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_examples() {
        let cases: &[(f64, &str)] = &[
            (3.831959552e9, "3.831959552e+09"),
            (1.305e-6, "1.305e-06"),
            (329204.0, "329204"),
            (0.0, "0"),
            (-0.0, "-0"),
            (1e6, "1e+06"),
            (999999.0, "999999"),
            (123456.0, "123456"),
            (123456789.0, "1.23456789e+08"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (0.001, "0.001"),
            (0.0001, "0.0001"),
            (1e-5, "1e-05"),
            (1.8446744073709552e19, "1.8446744073709552e+19"),
            (-9.223372036854776e17, "-9.223372036854776e+17"),
            (0.10400000000000001, "0.10400000000000001"),
            (1.5, "1.5"),
            (-1.0, "-1"),
            (100.0, "100"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (1e100, "1e+100"),
            (1.234e-100, "1.234e-100"),
            (12.5, "12.5"),
            (0.5, "0.5"),
        ];
        for &(v, want) in cases {
            assert_eq!(format_go_float(v), want, "formatting {v:?}");
            assert_eq!(GoFloat(v).to_string(), want);
        }
    }

    #[test]
    fn parse_forms() {
        assert_eq!(parse_go_float("1.5"), Some(1.5));
        assert_eq!(parse_go_float("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_go_float("-inf"), Some(f64::NEG_INFINITY));
        assert!(parse_go_float("NaN").is_some_and(f64::is_nan));
        assert_eq!(parse_go_float("1e+06"), Some(1e6));
        assert_eq!(parse_go_float("0x1p-2"), Some(0.25));
        assert_eq!(parse_go_float("-0x1.8p1"), Some(-3.0));
        assert_eq!(parse_go_float(""), None);
        assert_eq!(parse_go_float("1_000"), None);
        assert_eq!(parse_go_float("abc"), None);
        assert_eq!(parse_go_float("0x1"), None);
    }

    #[test]
    fn round_trips_shortest() {
        for &v in &[0.1, 0.2, 0.3, 1.0 / 3.0, 2.0f64.powi(60), 1e21, 1e22, 4.35e-7] {
            let s = format_go_float(v);
            assert_eq!(s.parse::<f64>().ok(), Some(v), "{s}");
        }
    }
}
