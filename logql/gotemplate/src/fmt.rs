//! Go's number formatting (`strconv.FormatFloat`) and `fmt.Sprintf`, for
//! the `printf` builtin and for hosts that print numbers as Go does.

use crate::exec::Env;
use crate::value::Value;
use std::fmt::Write as _;
use std::iter::Peekable;
use std::str::Chars;

/// Go's `strconv.FormatFloat(v, verb, prec, 64)`: `verb` is `'e'`, `'E'`,
/// `'f'`, `'F'`, `'g'` or `'G'` (anything else reads as `'g'`), and
/// `prec: None` asks for the fewest digits that read back as `v` (Go's
/// `-1`). `None` with `'g'` is how Go's `%v` prints a float64: `0.5`,
/// `123456`, `1e+06`, `1e-05`. NaN and infinities print as `NaN`, `+Inf`,
/// `-Inf`.
///
/// ```
/// use gotemplate::format_float;
/// assert_eq!(format_float(1234567.0, 'g', None), "1.234567e+06");
/// assert_eq!(format_float(12345.0, 'g', Some(4)), "1.234e+04");
/// assert_eq!(format_float(0.1, 'e', Some(2)), "1.00e-01");
/// assert_eq!(format_float(2.5, 'f', None), "2.5");
/// ```
pub fn format_float(v: f64, verb: char, prec: Option<usize>) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    match verb {
        'e' | 'E' => {
            let s = exponent_form(v, prec);
            if verb == 'E' {
                s.to_uppercase()
            } else {
                s
            }
        }
        'f' | 'F' => match prec {
            None => format!("{v}"),
            Some(p) => format!("{v:.p$}"),
        },
        _ => {
            let s = general_form(v, prec);
            if verb == 'G' {
                s.to_uppercase()
            } else {
                s
            }
        }
    }
}

/// `%e`: Rust's `1.5e3` written Go's way, `1.5e+03`.
fn exponent_form(v: f64, prec: Option<usize>) -> String {
    let s = match prec {
        None => format!("{v:e}"),
        Some(p) => format!("{v:.p$e}"),
    };
    match s.split_once('e') {
        Some((mant, exp)) => {
            let n: i32 = exp.parse().unwrap_or(0);
            format!("{mant}e{}{:02}", if n < 0 { '-' } else { '+' }, n.abs())
        }
        None => s,
    }
}

/// `%g`: the exponent form for exponents below -4 or at least the
/// precision (6 when shortest), else the plain form, without trailing
/// zeros.
fn general_form(v: f64, prec: Option<usize>) -> String {
    if v == 0.0 {
        return if v.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    // The significant digits, rounded to the precision, and the exponent.
    let e = match prec {
        None => format!("{:e}", v.abs()),
        Some(p) => format!("{:.*e}", p.max(1) - 1, v.abs()),
    };
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let nd = digits.len() as i32;
    let dp = exp + 1;
    let eprec = match prec {
        None => 6,
        Some(p) => {
            let p = p.max(1) as i32;
            if p > nd && nd >= dp {
                nd
            } else {
                p
            }
        }
    };
    let sign = if v < 0.0 { "-" } else { "" };
    if exp < -4 || exp >= eprec {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.abs());
    }
    let s = if dp <= 0 {
        format!("0.{}{digits}", "0".repeat((-dp) as usize))
    } else if dp >= nd {
        format!("{digits}{}", "0".repeat((dp - nd) as usize))
    } else {
        format!("{}.{}", &digits[..dp as usize], &digits[dp as usize..])
    };
    format!("{sign}{s}")
}

/// Widths and precisions above this print `%!(BADWIDTH)` /
/// `%!(BADPREC)`, as in Go: they would only allocate.
const MAX_WIDTH: usize = 1_000_000;

/// Flags, width and precision of one verb.
#[derive(Default)]
struct Spec {
    plus: bool,
    minus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%v %s %q %t %d %b %o
/// %O %x %X %c %U %e %E %f %F %g %G %%`, the flags `+ - # space 0`, width
/// and precision. `%v` and `%s` print through [`Env::write_value`].
/// Numeric verbs also take numeric strings and floats (`%d` truncates);
/// other mismatches print Go's `%!d(string=abc)`, and missing or extra
/// arguments `%!d(MISSING)` / `%!(EXTRA int=1)`. Output longer than
/// `limit` bytes is an error, so wide verbs cannot exhaust memory.
pub(crate) fn sprintf<E: Env + ?Sized>(env: &E, format: &str, args: &[Value], limit: usize) -> Result<String, String> {
    let mut out = String::with_capacity(format.len());
    let mut chars = format.chars().peekable();
    let mut next = 0;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '+' => spec.plus = true,
                '-' => spec.minus = true,
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = true,
                _ => break,
            }
            chars.next();
        }
        // Go pads only to the left with zeros.
        spec.zero &= !spec.minus;
        spec.width = number(&mut chars, &mut out, "%!(BADWIDTH)");
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.prec = Some(number(&mut chars, &mut out, "%!(BADPREC)").unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        next += 1;
        format_arg(env, &spec, verb, arg, &mut out);
        if out.len() > limit {
            return Err(format!("output longer than {limit} bytes"));
        }
    }
    if next < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, a) in args[next..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            typed(env, a, &mut out);
        }
        out.push(')');
    }
    Ok(out)
}

/// Reads a width or precision; `None` if there are no digits or the
/// number is too large (then the `bad` marker is written).
fn number(chars: &mut Peekable<Chars<'_>>, out: &mut String, bad: &str) -> Option<usize> {
    let mut n: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        chars.next();
        n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(d as usize));
    }
    match n {
        Some(n) if n > MAX_WIDTH => {
            out.push_str(bad);
            None
        }
        n => n,
    }
}

/// `type=value` as Go's error verbs print an argument (`<nil>` alone).
fn typed<E: Env + ?Sized>(env: &E, v: &Value, out: &mut String) {
    if matches!(v, Value::Nil) {
        out.push_str("<nil>");
        return;
    }
    out.push_str(v.type_name());
    out.push('=');
    env.write_value(v, out);
}

fn text<E: Env + ?Sized>(env: &E, v: &Value) -> String {
    let mut s = String::new();
    env.write_value(v, &mut s);
    s
}

fn format_arg<E: Env + ?Sized>(env: &E, spec: &Spec, verb: char, arg: &Value, out: &mut String) {
    match verb {
        'v' | 's' => {
            let mut t = text(env, arg);
            if verb == 's' {
                if let Some(p) = spec.prec {
                    t = t.chars().take(p).collect();
                }
            }
            if matches!(arg, Value::Int(_) | Value::Float(_)) {
                let (neg, body) = match t.strip_prefix('-') {
                    Some(rest) => (true, rest.to_string()),
                    None => (false, t),
                };
                let finite = !matches!(arg, Value::Float(f) if !f.is_finite());
                pad(out, spec, sign(spec, neg), &body, finite);
            } else {
                pad(out, spec, "", &t, true);
            }
        }
        't' => {
            let t = match arg {
                Value::Bool(b) => b.to_string(),
                other => text(env, other),
            };
            pad(out, spec, "", &t, true);
        }
        'q' => {
            let t = match arg {
                Value::Int(i) => quote_char(*i),
                Value::Str(s) => quote(s),
                other => quote(&text(env, other)),
            };
            pad(out, spec, "", &t, true);
        }
        'x' | 'X' if matches!(arg, Value::Str(_)) => {
            let s = arg.as_str().unwrap_or_default();
            let bytes = &s.as_bytes()[..spec.prec.unwrap_or(usize::MAX).min(s.len())];
            let mut t = String::with_capacity(bytes.len() * 2 + 2);
            if spec.sharp {
                t.push_str(if verb == 'x' { "0x" } else { "0X" });
            }
            for b in bytes {
                let _ = if verb == 'x' { write!(t, "{b:02x}") } else { write!(t, "{b:02X}") };
            }
            pad(out, spec, "", &t, true);
        }
        'd' | 'b' | 'o' | 'O' | 'x' | 'X' | 'c' | 'U' => match to_int(arg) {
            Some(i) => format_int(i, verb, spec, out),
            None => bad_verb(env, verb, arg, out),
        },
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' => match to_float(arg) {
            Some(f) => format_float_verb(f, verb, spec, out),
            None => bad_verb(env, verb, arg, out),
        },
        _ => bad_verb(env, verb, arg, out),
    }
}

fn bad_verb<E: Env + ?Sized>(env: &E, verb: char, arg: &Value, out: &mut String) {
    let _ = write!(out, "%!{verb}(");
    typed(env, arg, out);
    out.push(')');
}

fn to_int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Float(f) if f.is_finite() => Some(f.trunc() as i64),
        Value::Str(s) => {
            let s = s.trim();
            s.parse::<i64>().ok().or_else(|| s.parse::<f64>().ok().filter(|f| f.is_finite()).map(|f| f.trunc() as i64))
        }
        Value::Time(ns) => Some(*ns),
        _ => None,
    }
}

fn to_float(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        Value::Str(s) => s.trim().parse().ok(),
        Value::Time(ns) => Some(*ns as f64),
        _ => None,
    }
}

fn sign(spec: &Spec, negative: bool) -> &'static str {
    if negative {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    }
}

/// Writes `sign body` padded to the width: spaces on the right with `-`,
/// zeros between sign and body with `0` (when `zero_ok`), else spaces on
/// the left. Widths count characters, as Go counts runes.
fn pad(out: &mut String, spec: &Spec, sign: &str, body: &str, zero_ok: bool) {
    let len = sign.chars().count() + body.chars().count();
    let fill = spec.width.unwrap_or(0).saturating_sub(len);
    if spec.minus {
        out.push_str(sign);
        out.push_str(body);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if spec.zero && zero_ok {
        out.push_str(sign);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(body);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(sign);
        out.push_str(body);
    }
}

fn format_int(i: i64, verb: char, spec: &Spec, out: &mut String) {
    let mag = i.unsigned_abs();
    let mut digits = match verb {
        'c' => {
            let c = u32::try_from(i).ok().and_then(char::from_u32).unwrap_or('\u{FFFD}');
            return pad(out, spec, "", c.encode_utf8(&mut [0; 4]), false);
        }
        'U' => return pad(out, spec, "", &format!("U+{mag:04X}"), false),
        'b' => format!("{mag:b}"),
        'o' | 'O' => format!("{mag:o}"),
        'x' => format!("{mag:x}"),
        'X' => format!("{mag:X}"),
        _ => mag.to_string(),
    };
    let sign = sign(spec, i < 0);
    // A precision is a minimum digit count; `0` flag pads digits to the
    // width (leaving room for the sign), before any `0x` prefix, as Go does.
    let min = match (spec.prec, spec.width) {
        (Some(p), _) => p,
        (None, Some(w)) if spec.zero => w.saturating_sub(sign.len()),
        _ => 0,
    };
    if spec.prec == Some(0) && i == 0 {
        digits.clear();
    }
    if digits.len() < min {
        digits.insert_str(0, &"0".repeat(min - digits.len()));
    }
    let prefix = match (spec.sharp, verb) {
        (true, 'x') => "0x",
        (true, 'X') => "0X",
        (true, 'b') => "0b",
        (true, 'o') if !digits.starts_with('0') => "0",
        (_, 'O') => "0o",
        _ => "",
    };
    pad(out, spec, sign, &format!("{prefix}{digits}"), false);
}

fn format_float_verb(f: f64, verb: char, spec: &Spec, out: &mut String) {
    if f.is_nan() || f.is_infinite() {
        // Not numbers to pad with zeros; NaN shows a sign only if asked.
        let body = if f.is_nan() { "NaN" } else { "Inf" };
        let s = if f.is_nan() {
            sign(spec, false)
        } else if f < 0.0 {
            "-"
        } else if spec.space && !spec.plus {
            " "
        } else {
            "+"
        };
        return pad(out, spec, s, body, false);
    }
    let prec = match verb {
        'g' | 'G' => spec.prec,
        _ => Some(spec.prec.unwrap_or(6)),
    };
    let body = format_float(f.abs(), verb, prec);
    pad(out, spec, sign(spec, f.is_sign_negative()), &body, true);
}

/// Go's `strconv.Quote`: a double-quoted string with Go escapes.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        escape(c, '"', &mut out);
    }
    out.push('"');
    out
}

/// Go's `strconv.QuoteRune` of a code point (`%q` of an integer).
fn quote_char(i: i64) -> String {
    let c = u32::try_from(i).ok().and_then(char::from_u32).unwrap_or('\u{FFFD}');
    let mut out = String::from('\'');
    escape(c, '\'', &mut out);
    out.push('\'');
    out
}

fn escape(c: char, quote: char, out: &mut String) {
    match c {
        '\\' => out.push_str("\\\\"),
        c if c == quote => {
            out.push('\\');
            out.push(c);
        }
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        c if printable(c) => out.push(c),
        c if (c as u32) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if (c as u32) < 0x10000 => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\U{:08x}", c as u32);
        }
    }
}

/// Close to Go's `strconv.IsPrint`: no control, format or separator
/// characters other than the ASCII space.
fn printable(c: char) -> bool {
    !(c.is_control()
        || (c.is_whitespace() && c != ' ')
        || matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Plain;
    impl Env for Plain {}

    fn p(format: &str, args: &[Value]) -> String {
        sprintf(&Plain, format, args, 1000).unwrap_or_else(|e| e)
    }

    #[test]
    fn floats_as_go_formats_them() {
        assert_eq!(format_float(1e6, 'g', None), "1e+06");
        assert_eq!(format_float(123456.0, 'g', None), "123456");
        assert_eq!(format_float(0.0001, 'g', None), "0.0001");
        assert_eq!(format_float(0.00001, 'g', None), "1e-05");
        assert_eq!(format_float(12345.0, 'g', Some(4)), "1.234e+04");
        assert_eq!(format_float(120.0, 'g', Some(4)), "120");
        assert_eq!(format_float(-0.0, 'g', None), "-0");
        assert_eq!(format_float(1e21, 'f', None), "1000000000000000000000");
        assert_eq!(format_float(-1234.5678, 'E', Some(3)), "-1.235E+03");
        assert_eq!(format_float(f64::INFINITY, 'f', Some(2)), "+Inf");
    }

    #[test]
    fn sprintf_verbs_flags_and_widths() {
        let i = Value::Int;
        let f = Value::Float;
        let s = |x: &str| Value::from(x);
        assert_eq!(p("%s=%d %5.1f%%", &[s("a"), i(42), f(2.34567)]), "a=42   2.3%");
        assert_eq!(p("%05.1f|%-4s|", &[f(2.34567), s("ab")]), "002.3|ab  |");
        assert_eq!(
            p(
                "%+d % d %05d %x %X %#x %o %#o %b %c %U",
                &[i(5), i(5), i(-42), i(255), i(255), i(255), i(8), i(8), i(5), i(65), i(65)]
            ),
            "+5  5 -0042 ff FF 0xff 10 010 101 A U+0041"
        );
        assert_eq!(
            p("%.3d|%8.3f|%-8.2e|%g|%.3g", &[i(7), f(-2.34567), f(1234.5), f(1e-7), f(1234.5)]),
            "007|  -2.346|1.23e+03|1e-07|1.23e+03"
        );
        assert_eq!(
            p("%q %q %x %.2s %t %v", &[s("a\"b\n"), i('x' as i64), s("hi"), s("abc"), Value::Bool(true), Value::Nil]),
            "\"a\\\"b\\n\" 'x' 6869 ab true <nil>"
        );
        assert_eq!(p("%d %d %5.1f", &[f(3.9), s("12"), s("2.25")]), "3 12   2.2");
        assert_eq!(p("%6.2f|%-6v|%06v", &[f(f64::INFINITY), f(f64::NAN), i(-12)]), "  +Inf|NaN   |-00012");
    }

    #[test]
    fn sprintf_reports_bad_arguments_as_go_does() {
        assert_eq!(p("%d", &[Value::from("abc")]), "%!d(string=abc)");
        assert_eq!(p("%d %s", &[Value::Int(1)]), "1 %!s(MISSING)");
        assert_eq!(p("%d", &[Value::Int(1), Value::from("x"), Value::Nil]), "1%!(EXTRA string=x, <nil>)");
        assert_eq!(p("100%", &[]), "100%!(NOVERB)");
        assert_eq!(p("%z", &[Value::Bool(true)]), "%!z(bool=true)");
        assert_eq!(p("%d", &[Value::Nil]), "%!d(<nil>)");
        assert_eq!(p("%99999999d", &[Value::Int(1)]), "%!(BADWIDTH)1");
        assert_eq!(p("%999d|%999d", &[Value::Int(1), Value::Int(2)]), "output longer than 1000 bytes");
    }

    #[test]
    fn quote_escapes_as_strconv_quote() {
        assert_eq!(quote("tab\there \u{1b}[0m é \u{a0}"), "\"tab\\there \\x1b[0m é \\u00a0\"");
    }
}
