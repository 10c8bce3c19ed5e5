//! Lexical primitives shared by the expression parser and the test-script
//! parser: numbers, durations and quoted strings (built on `nom`).

use nom::branch::alt;
use nom::bytes::complete::{tag, tag_no_case, take_while1};
use nom::character::complete::{char, digit0, digit1, hex_digit1, one_of};
use nom::combinator::{opt, recognize};
use nom::sequence::{pair, tuple};
use nom::IResult;

/// Recognises a decimal float (`1`, `1.5`, `.5`, `1e3`, `1.5E-3`) without sign.
fn decimal(i: &str) -> IResult<&str, &str> {
    recognize(tuple((
        alt((recognize(tuple((digit1, opt(pair(char('.'), digit0))))), recognize(pair(char('.'), digit1)))),
        opt(tuple((one_of("eE"), opt(one_of("+-")), digit1))),
    )))(i)
}

/// Recognises a hexadecimal integer `0x1F`.
fn hex(i: &str) -> IResult<&str, &str> {
    recognize(pair(tag_no_case("0x"), hex_digit1))(i)
}

/// Parses an unsigned number literal at the start of `i`: hex, decimal, or
/// `Inf`/`NaN` in any case. Returns the value and the bytes consumed.
pub fn number(i: &str) -> Option<(f64, usize)> {
    if let Ok((rest, h)) = hex(i) {
        if !rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            let v = u64::from_str_radix(&h[2..], 16).ok()? as f64;
            return Some((v, h.len()));
        }
    }
    if let Ok((_, d)) = decimal(i) {
        return d.parse::<f64>().ok().map(|v| (v, d.len()));
    }
    let word_len = i.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).unwrap_or(i.len());
    let word = &i[..word_len];
    if word.eq_ignore_ascii_case("inf") {
        return Some((f64::INFINITY, 3));
    }
    if word.eq_ignore_ascii_case("nan") {
        return Some((f64::NAN, 3));
    }
    None
}

fn unit_ms(u: &str) -> i64 {
    match u {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        "y" => 365 * 86_400_000,
        _ => 0,
    }
}

fn duration_part(i: &str) -> IResult<&str, (&str, &str)> {
    pair(digit1, alt((tag("ms"), tag("s"), tag("m"), tag("h"), tag("d"), tag("w"), tag("y"))))(i)
}

/// Parses a Prometheus duration (`5m`, `1h30m`, `10ms`) at the start of `i`.
/// Units must appear in decreasing order, each at most once. Returns the
/// milliseconds and the bytes consumed, or `None` if there is no duration.
pub fn duration(i: &str) -> Option<(i64, usize)> {
    let mut rest = i;
    let mut total: i64 = 0;
    let mut last_unit = i64::MAX;
    let mut any = false;
    while let Ok((r, (digits, unit))) = duration_part(rest) {
        // A unit followed by more identifier characters is not a duration.
        let u = unit_ms(unit);
        if u >= last_unit {
            return None;
        }
        last_unit = u;
        let n: i64 = digits.parse().ok()?;
        total = total.checked_add(n.checked_mul(u)?)?;
        rest = r;
        any = true;
    }
    if !any || rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
        return None;
    }
    Some((total, i.len() - rest.len()))
}

/// Parses a whole string as a duration (for test scripts and APIs).
pub fn parse_duration(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    match duration(s) {
        Some((ms, n)) if n == s.len() => Some(ms),
        _ => None,
    }
}

/// Formats milliseconds the way Prometheus prints durations (`1h30m`, `5m`,
/// `10ms`, `0s`).
pub fn format_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    let mut rest = ms.unsigned_abs();
    if ms < 0 {
        out.push('-');
    }
    for (unit, size) in [("y", 365 * 86_400_000u64), ("w", 7 * 86_400_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)] {
        if rest >= size {
            out.push_str(&(rest / size).to_string());
            out.push_str(unit);
            rest %= size;
        }
    }
    out
}

/// Where a string literal failed to lex, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct StringError {
    /// Byte offset of the problem relative to the literal's opening quote.
    pub offset: usize,
    /// What was wrong.
    pub message: String,
}

/// Lexes a quoted string at the start of `i` (`"..."`, `'...'` or
/// `` `...` ``), with Go escapes in the first two. Returns the unquoted value
/// and the bytes consumed.
pub fn string(i: &str) -> Result<(String, usize), StringError> {
    let quote = i.chars().next().ok_or_else(|| StringError { offset: 0, message: "expected string".into() })?;
    if !matches!(quote, '"' | '\'' | '`') {
        return Err(StringError { offset: 0, message: "expected string".into() });
    }
    let mut out = String::new();
    let mut it = i.char_indices().skip(1).peekable();
    if quote == '`' {
        for (pos, c) in it {
            if c == '`' {
                return Ok((out, pos + 1));
            }
            out.push(c);
        }
        return Err(StringError { offset: 0, message: "unterminated raw string".into() });
    }
    while let Some((pos, c)) = it.next() {
        if c == quote {
            return Ok((out, pos + 1));
        }
        if c == '\n' {
            return Err(StringError { offset: pos, message: "unterminated quoted string".into() });
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some((epos, e)) = it.next() else { break };
        let bad = |m: &str| StringError { offset: epos, message: m.to_string() };
        match e {
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\x0b'),
            '\\' => out.push('\\'),
            '"' | '\'' if e == quote => out.push(e),
            'x' | 'u' | 'U' | '0'..='7' => {
                let (n, radix) = match e {
                    'x' => (2, 16),
                    'u' => (4, 16),
                    'U' => (8, 16),
                    _ => (2, 8),
                };
                let mut digits = String::new();
                if radix == 8 {
                    digits.push(e);
                }
                for _ in 0..n {
                    match it.next() {
                        Some((_, d)) if d.is_digit(radix) => digits.push(d),
                        _ => return Err(bad("invalid escape sequence")),
                    }
                }
                let v = u32::from_str_radix(&digits, radix).map_err(|_| bad("invalid escape sequence"))?;
                if e == 'x' || radix == 8 {
                    if v > 255 {
                        return Err(bad("octal escape value > 255"));
                    }
                    // A byte escape: only ASCII forms a valid UTF-8 string on its own.
                    out.push(char::from_u32(v).filter(|_| v < 128).unwrap_or('\u{fffd}'));
                } else {
                    out.push(char::from_u32(v).ok_or_else(|| bad("invalid Unicode code point in escape"))?);
                }
            }
            _ => return Err(bad("unknown escape sequence")),
        }
    }
    Err(StringError { offset: 0, message: "unterminated quoted string".into() })
}

/// Quotes a string for PromQL with double quotes and Go-style escapes.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether `s` is a valid metric-name identifier (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn is_metric_ident(s: &str) -> bool {
    let mut it = s.chars();
    matches!(it.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && it.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Length of the identifier (letters, digits, `_`, `:`) at the start of `i`.
pub fn ident_len(i: &str) -> usize {
    let first_ok = i.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == ':');
    if !first_ok {
        return 0;
    }
    let r = take_while1::<_, _, nom::error::Error<&str>>(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':')(i);
    r.map(|(_, w)| w.len()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(number("0x1F"), Some((31.0, 4)));
        assert_eq!(number("1.5e3 "), Some((1500.0, 5)));
        assert_eq!(number(".5"), Some((0.5, 2)));
        assert_eq!(number("InF"), Some((f64::INFINITY, 3)));
        assert!(number("nAn").unwrap().0.is_nan());
        assert_eq!(number("info"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m"), Some(5_400_000));
        assert_eq!(parse_duration("10ms"), Some(10));
        assert_eq!(parse_duration("1m1h"), None);
        assert_eq!(parse_duration("5"), None);
        assert_eq!(format_duration(5_400_000), "1h30m");
        assert_eq!(format_duration(90_061_001), "1d1h1m1s1ms");
    }

    #[test]
    fn strings() {
        assert_eq!(string(r#""a\"b\n\u00e9" x"#).unwrap(), ("a\"b\né".to_string(), 14));
        assert_eq!(string("'it\\'s'").unwrap().0, "it's");
        assert_eq!(string("`a\\b`").unwrap().0, "a\\b");
        assert!(string("\"abc").is_err());
        assert!(string("\"\\q\"").is_err());
        assert_eq!(string(&quote("x\"\\\ny\t")).unwrap().0, "x\"\\\ny\t");
    }
}
