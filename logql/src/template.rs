//! The template language of `line_format` and `label_format`: Go's
//! `text/template` on the shared engine in [`gotemplate`] (`{{.label}}`,
//! pipelines with `|`, `if`/`else if`/`else`/`end`, `range`, variables,
//! comments, `{{-`/`-}}` trimming), with Loki's function set, which this
//! module supplies.
//!
//! `.name` reads a label (a missing one prints `<no value>`, and reads as
//! empty text in functions); `.` and `$` are the map of labels;
//! `__line__` and `__timestamp__` are the entry's line and time. Floats
//! print without an exponent (`1e6` prints `1000000`).

use gotemplate::{Arity, FuncError, ParserBuilder};
use std::collections::BTreeMap;
use std::sync::LazyLock;

pub use gotemplate::Value;

/// A parsed template.
#[derive(Clone, Debug)]
pub struct Template {
    inner: gotemplate::Template,
}

/// The data a template renders with.
pub struct Context<'a> {
    /// Labels by name.
    pub labels: &'a BTreeMap<String, String>,
    /// The current line (`__line__`).
    pub line: &'a str,
    /// The entry timestamp in nanoseconds (`__timestamp__`).
    pub ts: i64,
}

/// Loki's functions by arity. `printf`, `print`, `println`, `len`, `and`,
/// `or` and `not` are Go's builtins; the comparisons are Loki's own, which
/// compare a number with a numeric string.
static PARSER: LazyLock<gotemplate::Parser> = LazyLock::new(|| {
    let strings = ["ToLower", "ToUpper", "lower", "upper", "title", "Title", "TrimSpace", "trim", "toString"];
    let codecs = ["quote", "squote", "b64enc", "b64dec", "urlencode", "urldecode", "fromJson"];
    let trims = ["Trim", "TrimLeft", "TrimRight", "TrimPrefix", "TrimSuffix", "trimAll", "trimPrefix", "trimSuffix"];
    let pairs = ["default", "contains", "hasPrefix", "hasSuffix", "trunc", "repeat", "toDate", "date", "count"];
    let layout = ["alignLeft", "alignRight", "indent", "nindent", "split", "join"];
    let numbers = ["max", "min", "maxf", "minf", "ceil", "floor", "int", "float64"];
    let epochs = ["unixEpoch", "unixEpochMillis", "unixEpochNanos"];
    let arithmetic = ["add", "sub", "mul", "div", "mod", "addf", "subf", "mulf", "divf"];
    ParserBuilder::new()
        .functions(&["__line__", "__timestamp__", "now"], Arity::AtLeast(0))
        .functions(&strings, Arity::Exact(1))
        .functions(&codecs, Arity::Exact(1))
        .functions(&["abs", "unixToTime", "bytes", "duration", "duration_seconds"], Arity::Exact(1))
        .functions(&trims, Arity::Exact(2))
        .functions(&pairs, Arity::Exact(2))
        .functions(&layout, Arity::Exact(2))
        .functions(&["ne", "lt", "le", "gt", "ge"], Arity::Exact(2))
        .functions(&["replace", "regexReplaceAll", "regexReplaceAllLiteral", "substr"], Arity::Exact(3))
        .function("Replace", Arity::Exact(4))
        .functions(&numbers, Arity::AtLeast(1))
        .functions(&epochs, Arity::AtLeast(1))
        .functions(&arithmetic, Arity::AtLeast(2))
        .function("eq", Arity::AtLeast(2))
        .function("round", Arity::Between(1, 2))
        .build()
});

impl Template {
    /// Parses a template.
    pub fn parse(src: &str) -> Result<Template, String> {
        PARSER.parse(src).map(|inner| Template { inner }).map_err(|e| e.to_string())
    }

    /// Renders with a context.
    pub fn render(&self, ctx: &Context<'_>) -> Result<String, String> {
        self.inner.render(&Env(ctx)).map_err(|e| e.to_string())
    }
}

/// A [`Context`] as the engine reads it.
struct Env<'a, 'b>(&'a Context<'b>);

impl gotemplate::Env for Env<'_, '_> {
    fn call(&self, name: &str, args: Vec<Value>) -> Result<Value, FuncError> {
        call(self.0, name, args)
    }

    fn root(&self) -> Value {
        Value::Map(self.0.labels.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect())
    }

    /// A missing label is Go's missing value: printed as `<no value>`.
    fn field(&self, name: &str) -> Option<Value> {
        Some(self.0.labels.get(name).map_or(Value::Nil, |v| Value::from(v.as_str())))
    }

    fn write_value(&self, value: &Value, out: &mut String) {
        write_text(value, out);
    }
}

/// How Loki prints a value: floats without an exponent, a missing value
/// as nothing (an action alone prints it as `<no value>`).
fn write_text(value: &Value, out: &mut String) {
    match value {
        Value::Nil => {}
        Value::Float(f) => out.push_str(&loki_float(*f)),
        other => {
            use std::fmt::Write as _;
            let _ = write!(out, "{other}");
        }
    }
}

/// A float as text: whole numbers without a fraction or exponent.
fn loki_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if f == f.trunc() && f.abs() < 1e21 {
        format!("{}", f as i128)
    } else {
        format!("{f}")
    }
}

/// A function argument as text; a missing value reads as empty.
fn s(v: &Value) -> String {
    let mut out = String::new();
    write_text(v, &mut out);
    out
}

fn as_f64(v: &Value) -> f64 {
    match v {
        Value::Str(s) => s.trim().parse().unwrap_or(0.0),
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Time(ns) => *ns as f64,
        _ => 0.0,
    }
}

fn as_i64(v: &Value) -> i64 {
    match v {
        Value::Str(s) => s.trim().parse::<i64>().unwrap_or_else(|_| s.trim().parse::<f64>().map_or(0, |f| f as i64)),
        Value::Int(i) => *i,
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::Time(ns) => *ns,
        _ => 0,
    }
}

fn to_time(v: &Value) -> i64 {
    match v {
        Value::Time(t) => *t,
        other => as_i64(other),
    }
}

/// Loki's comparisons: strings with strings, anything else as numbers.
fn cmp_values(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => x.cmp(y),
        _ => as_f64(a).partial_cmp(&as_f64(b)).unwrap_or(std::cmp::Ordering::Equal),
    }
}

/// Go's `base64.StdEncoding`: the standard alphabet, padding required,
/// stray bits after the last symbol allowed (Go checks them only in
/// `Strict` mode).
const GO_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireCanonical)
        .with_decode_allow_trailing_bits(true),
);

fn b64_decode(s: &str) -> Result<Vec<u8>, FuncError> {
    use base64::Engine as _;
    // Go's decoder skips line breaks.
    let clean: String = s.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    GO_BASE64.decode(clean).map_err(|e| {
        let at = match e {
            base64::DecodeError::InvalidByte(at, _) | base64::DecodeError::InvalidLastSymbol(at, _) => at,
            base64::DecodeError::InvalidLength(len) => len,
            base64::DecodeError::InvalidPadding => s.len(),
        };
        format!("illegal base64 data at input byte {at}").into()
    })
}

/// What Go's `url.QueryEscape` leaves as it is: ASCII letters, digits
/// and `-_.~` (it writes a space as `+`).
const QUERY: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

fn query_escape(s: &str) -> String {
    let parts: Vec<String> =
        s.split(' ').map(|p| percent_encoding::utf8_percent_encode(p, QUERY).to_string()).collect();
    parts.join("+")
}

/// Go's `url.QueryUnescape`: `+` is a space, and every `%` must start a
/// two-digit hex escape.
fn query_unescape(s: &str) -> Result<String, FuncError> {
    let b = s.as_bytes();
    for (i, _) in s.match_indices('%') {
        if !b.get(i + 1..i + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
            let bad = String::from_utf8_lossy(&b[i..(i + 3).min(b.len())]).into_owned();
            return Err(format!("invalid URL escape {bad:?}").into());
        }
    }
    Ok(percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned())
}

/// Go's `strings.Title`, which Loki's `title` and `Title` are: a letter
/// after a separator is upper-cased. Separators are ASCII characters other
/// than letters, digits and `_`, and Unicode spaces.
fn title(t: &str) -> String {
    let separator = |c: char| if c.is_ascii() { !(c.is_ascii_alphanumeric() || c == '_') } else { c.is_whitespace() };
    let mut out = String::with_capacity(t.len());
    let mut prev = ' ';
    for c in t.chars() {
        if separator(prev) {
            out.extend(c.to_uppercase())
        } else {
            out.push(c)
        }
        prev = c;
    }
    out
}

fn chars(v: &Value) -> Vec<char> {
    s(v).chars().collect()
}

/// Runs one of the functions [`PARSER`] declares; the engine has checked
/// the argument count.
fn call(ctx: &Context<'_>, name: &str, args: Vec<Value>) -> Result<Value, FuncError> {
    use Value::{Bool, Float, Int, List, Str, Time};
    Ok(match (name, args.as_slice()) {
        ("__line__", _) => Str(ctx.line.to_string()),
        ("__timestamp__", _) => Time(ctx.ts),
        ("now", _) => Time(chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)),
        ("ToLower" | "lower", [a]) => Str(s(a).to_lowercase()),
        ("ToUpper" | "upper", [a]) => Str(s(a).to_uppercase()),
        ("title" | "Title", [a]) => Str(title(&s(a))),
        ("TrimSpace" | "trim", [a]) => Str(s(a).trim().to_string()),
        ("toString", [a]) => Str(s(a)),
        ("quote", [a]) => Str(crate::ast::quote(&s(a))),
        ("squote", [a]) => Str(format!("'{}'", s(a))),
        ("Replace", [src, old, new, n]) => {
            let (src, old, new, n) = (s(src), s(old), s(new), as_i64(n));
            Str(if n < 0 { src.replace(&old, &new) } else { src.replacen(&old, &new, n as usize) })
        }
        ("replace", [old, new, src]) => Str(s(src).replace(&s(old), &s(new))),
        ("Trim", [src, cut]) => Str(s(src).trim_matches(chars(cut).as_slice()).to_string()),
        ("TrimLeft", [src, cut]) => Str(s(src).trim_start_matches(chars(cut).as_slice()).to_string()),
        ("TrimRight", [src, cut]) => Str(s(src).trim_end_matches(chars(cut).as_slice()).to_string()),
        ("trimAll", [cut, src]) => Str(s(src).trim_matches(chars(cut).as_slice()).to_string()),
        ("TrimPrefix", [src, fix]) | ("trimPrefix", [fix, src]) => {
            let (src, fix) = (s(src), s(fix));
            Str(src.strip_prefix(fix.as_str()).unwrap_or(&src).to_string())
        }
        ("TrimSuffix", [src, fix]) | ("trimSuffix", [fix, src]) => {
            let (src, fix) = (s(src), s(fix));
            Str(src.strip_suffix(fix.as_str()).unwrap_or(&src).to_string())
        }
        ("regexReplaceAll", [re, src, repl]) => {
            Str(regex::Regex::new(&s(re))?.replace_all(&s(src), s(repl).as_str()).into_owned())
        }
        ("regexReplaceAllLiteral", [re, src, repl]) => {
            Str(regex::Regex::new(&s(re))?.replace_all(&s(src), regex::NoExpand(&s(repl))).into_owned())
        }
        ("default", [fallback, v]) => {
            if v.truth() {
                v.clone()
            } else {
                fallback.clone()
            }
        }
        ("contains", [sub, src]) => Bool(s(src).contains(&s(sub))),
        ("hasPrefix", [fix, src]) => Bool(s(src).starts_with(&s(fix))),
        ("hasSuffix", [fix, src]) => Bool(s(src).ends_with(&s(fix))),
        ("trunc", [n, src]) => {
            let n = as_i64(n);
            let src: Vec<char> = chars(src);
            let len = src.len() as i64;
            Str(if n >= 0 {
                src[..n.min(len) as usize].iter().collect()
            } else {
                src[(len + n).max(0) as usize..].iter().collect()
            })
        }
        ("substr", [start, end, src]) => {
            let src: Vec<char> = chars(src);
            let len = src.len() as i64;
            let start = as_i64(start).max(0);
            let end = match as_i64(end) {
                e if e < 0 || e > len => len,
                e => e,
            };
            Str(if start >= end { String::new() } else { src[start as usize..end as usize].iter().collect() })
        }
        ("repeat", [n, src]) => Str(s(src).repeat(as_i64(n).clamp(0, 10_000) as usize)),
        ("abs", [Int(i)]) => Int(i.wrapping_abs()),
        ("abs", [v]) => Float(as_f64(v).abs()),
        ("add" | "sub" | "mul" | "div" | "mod", [first, rest @ ..]) => {
            let mut acc = as_i64(first);
            for v in rest {
                let x = as_i64(v);
                acc = match name {
                    "add" => acc.wrapping_add(x),
                    "sub" => acc.wrapping_sub(x),
                    "mul" => acc.wrapping_mul(x),
                    "div" => acc.checked_div(x).ok_or("integer divide by zero")?,
                    _ => acc.checked_rem(x).ok_or("integer divide by zero")?,
                };
            }
            Int(acc)
        }
        ("addf" | "subf" | "mulf" | "divf", [first, rest @ ..]) => {
            let mut acc = as_f64(first);
            for v in rest {
                let x = as_f64(v);
                acc = match name {
                    "addf" => acc + x,
                    "subf" => acc - x,
                    "mulf" => acc * x,
                    _ => acc / x,
                };
            }
            Float(acc)
        }
        ("max" | "min", [first, rest @ ..]) => {
            let pick = |m: i64, x: i64| if name == "max" { m.max(x) } else { m.min(x) };
            Int(rest.iter().map(as_i64).fold(as_i64(first), pick))
        }
        ("maxf" | "minf", [first, rest @ ..]) => {
            let pick = |m: f64, x: f64| if name == "maxf" { m.max(x) } else { m.min(x) };
            Float(rest.iter().map(as_f64).fold(as_f64(first), pick))
        }
        ("round", [v]) => Float(as_f64(v).round()),
        ("round", [prec, v]) => {
            let m = 10f64.powi(as_i64(prec) as i32);
            Float((as_f64(v) * m).round() / m)
        }
        ("ceil", [v, ..]) => Float(as_f64(v).ceil()),
        ("floor", [v, ..]) => Float(as_f64(v).floor()),
        ("int", [v, ..]) => Int(as_i64(v)),
        ("float64", [v, ..]) => Float(as_f64(v)),
        ("toDate", [layout, v]) => Time(parse_time(&s(layout), &s(v))?),
        ("date", [layout, t]) => Str(fmt_time(&s(layout), to_time(t))),
        ("unixEpoch", [t, ..]) => Int(to_time(t).div_euclid(1_000_000_000)),
        ("unixEpochMillis", [t, ..]) => Int(to_time(t).div_euclid(1_000_000)),
        ("unixEpochNanos", [t, ..]) => Int(to_time(t)),
        ("unixToTime", [v]) => {
            let t = s(v);
            let n: i64 = t.trim().parse().map_err(|_| format!("unable to parse epoch {t:?}"))?;
            // Loki picks the unit by digit count: s, ms, us, ns.
            Time(match t.trim().len() {
                0..=10 => n.saturating_mul(1_000_000_000),
                11..=13 => n.saturating_mul(1_000_000),
                14..=16 => n.saturating_mul(1_000),
                _ => n,
            })
        }
        ("b64enc", [v]) => Str(base64::Engine::encode(&GO_BASE64, s(v))),
        ("b64dec", [v]) => Str(String::from_utf8_lossy(&b64_decode(&s(v))?).into_owned()),
        ("urlencode", [v]) => Str(query_escape(&s(v))),
        ("urldecode", [v]) => Str(query_unescape(&s(v))?),
        ("alignLeft" | "alignRight", [n, src]) => {
            let n = as_i64(n).clamp(0, 10_000) as usize;
            let src: Vec<char> = chars(src);
            let left = name == "alignLeft";
            Str(if src.len() >= n {
                if left {
                    src[..n].iter().collect()
                } else {
                    src[src.len() - n..].iter().collect()
                }
            } else {
                let pad = " ".repeat(n - src.len());
                let t: String = src.iter().collect();
                if left {
                    t + &pad
                } else {
                    pad + &t
                }
            })
        }
        ("indent" | "nindent", [n, src]) => {
            let pad = " ".repeat(as_i64(n).clamp(0, 10_000) as usize);
            let body = s(src).lines().map(|l| format!("{pad}{l}")).collect::<Vec<_>>().join("\n");
            Str(if name == "nindent" { format!("\n{body}") } else { body })
        }
        ("count", [re, src]) => Int(regex::Regex::new(&s(re))?.find_iter(&s(src)).count() as i64),
        ("bytes", [v]) => Float(crate::units::parse_bytes(&s(v))? as f64),
        ("duration" | "duration_seconds", [v]) => Float(crate::units::parse_go_duration(&s(v))? / 1e9),
        ("split", [sep, src]) => List(s(src).split(&s(sep)).map(Value::from).collect()),
        ("join", [sep, List(l)]) => Str(l.iter().map(s).collect::<Vec<_>>().join(&s(sep))),
        ("join", [_, v]) => Str(s(v)),
        ("fromJson", [v]) => Str(crate::json::parse(&s(v)).map_err(|e| format!("fromJson: {e}"))?.text()),
        ("eq", [first, rest @ ..]) => Bool(rest.iter().any(|b| cmp_values(first, b).is_eq())),
        ("ne" | "lt" | "le" | "gt" | "ge", [a, b]) => {
            let o = cmp_values(a, b);
            Bool(match name {
                "ne" => !o.is_eq(),
                "lt" => o.is_lt(),
                "le" => o.is_le(),
                "gt" => o.is_gt(),
                _ => o.is_ge(),
            })
        }
        _ => return Err(format!("function {name:?} not defined").into()),
    })
}

/// Converts a Go layout (`2006-01-02T15:04:05Z07:00`) to a chrono format.
fn go_layout(layout: &str) -> String {
    let mut out = String::new();
    let mut rest = layout;
    const MAP: &[(&str, &str)] = &[
        ("2006", "%Y"),
        ("January", "%B"),
        ("Jan", "%b"),
        ("Monday", "%A"),
        ("Mon", "%a"),
        ("MST", "%Z"),
        ("Z07:00", "%:z"),
        ("-07:00", "%:z"),
        ("-0700", "%z"),
        (".000000000", "%.9f"),
        (".000000", "%.6f"),
        (".000", "%.3f"),
        ("01", "%m"),
        ("02", "%d"),
        ("15", "%H"),
        ("03", "%I"),
        ("04", "%M"),
        ("05", "%S"),
        ("06", "%y"),
        ("PM", "%p"),
        ("_2", "%e"),
    ];
    'outer: while !rest.is_empty() {
        for (g, c) in MAP {
            if let Some(r) = rest.strip_prefix(g) {
                out.push_str(c);
                rest = r;
                continue 'outer;
            }
        }
        let ch = rest.chars().next().unwrap_or(' ');
        if ch == '%' {
            out.push_str("%%");
        } else {
            out.push(ch);
        }
        rest = &rest[ch.len_utf8()..];
    }
    out
}

fn fmt_time(layout: &str, ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000) as u32;
    chrono::DateTime::from_timestamp(secs, nanos).map_or_else(String::new, |t| t.format(&go_layout(layout)).to_string())
}

fn parse_time(layout: &str, value: &str) -> Result<i64, String> {
    let f = go_layout(layout);
    if let Ok(t) = chrono::DateTime::parse_from_str(value, &f) {
        return t.timestamp_nanos_opt().ok_or_else(|| "time out of range".to_string());
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(value, &f) {
        return t.and_utc().timestamp_nanos_opt().ok_or_else(|| "time out of range".to_string());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(value, &f) {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return t.and_utc().timestamp_nanos_opt().ok_or_else(|| "time out of range".to_string());
        }
    }
    Err(format!("parsing time {value:?} as {layout:?}: cannot parse"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(t: &str, labels: &[(&str, &str)], line: &str) -> String {
        let labels: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Template::parse(t).unwrap().render(&Context { labels: &labels, line, ts: 1_500_000_000 }).unwrap()
    }

    #[test]
    fn renders() {
        assert_eq!(render("{{.a}}-{{ .b | ToUpper }}", &[("a", "x"), ("b", "y")], ""), "x-Y");
        assert_eq!(render(r#"{{ if eq .a "x" }}yes{{ else }}no{{ end }}"#, &[("a", "x")], ""), "yes");
        assert_eq!(render(r#"{{ if .missing }}yes{{ else if .a }}elif{{ end }}"#, &[("a", "x")], ""), "elif");
        assert_eq!(render("{{ __line__ | len }}", &[], "hello"), "5");
        assert_eq!(render(r#"{{ printf "%05.1f|%-4s|" 3.14159 "ab" }}"#, &[], ""), "003.1|ab  |");
        assert_eq!(render(r#"{{ .a | replace "x" "z" | trunc 1 }}"#, &[("a", "xx")], ""), "z");
        assert_eq!(render(r#"{{ add 1 2 | mul 3 }}"#, &[], ""), "9");
        assert_eq!(render(r#"{{ "aGk=" | b64dec }} {{ "hi" | b64enc }}"#, &[], ""), "hi aGk=");
        assert_eq!(render(r#"{{ __timestamp__ | unixEpoch }}"#, &[], ""), "1");
        assert_eq!(render(r#"{{ regexReplaceAll "(a+)" .x "<${1}>" }}"#, &[("x", "baab")], ""), "b<aa>b");
        assert_eq!(render(r#"{{ .x | default "none" }}"#, &[], ""), "none");
        assert_eq!(render("[{{ .missing }}]", &[], ""), "[<no value>]");
        assert_eq!(render("a {{- .x -}} b", &[("x", "1")], ""), "a1b");
        assert_eq!(render(r#"{{ range split "," .x }}[{{.}}]{{ end }}"#, &[("x", "a,b")], ""), "[a][b]");
        assert!(Template::parse("{{ nosuchfn }}").is_err());
        assert!(Template::parse("{{ if .a }}x").is_err());
        assert!(Template::parse("{{ .a ").is_err());
        assert!(Template::parse(&format!("{{{{ {}1{} }}}}", "(".repeat(5000), ")".repeat(5000))).is_err());
        assert!(Template::parse(&"{{ if 1 }}".repeat(5000)).is_err());
    }

    #[test]
    fn encodings_match_go() {
        // Go's base64.StdEncoding: padding required, line breaks skipped,
        // stray trailing bits allowed, the URL alphabet refused.
        assert_eq!(render(r#"{{ "hi?>" | b64enc }}"#, &[], ""), "aGk/Pg==");
        assert_eq!(
            render(r#"{{ "aGk=" | b64dec }}|{{ "aG\nk=" | b64dec }}|{{ "aGl=" | b64dec }}"#, &[], ""),
            "hi|hi|hi"
        );
        let labels = BTreeMap::new();
        let ctx = Context { labels: &labels, line: "", ts: 0 };
        for bad in ["aGk", "aGk_", "a=Gk"] {
            let t = Template::parse(&format!("{{{{ {bad:?} | b64dec }}}}")).unwrap();
            assert!(t.render(&ctx).unwrap_err().contains("illegal base64 data"), "{bad}");
        }
        // Go's url.QueryEscape / QueryUnescape.
        assert_eq!(render(r#"{{ "a b&c=d/é~*-_." | urlencode }}"#, &[], ""), "a+b%26c%3Dd%2F%C3%A9~%2A-_.");
        assert_eq!(render(r#"{{ "a+b%26c%3d%2B" | urldecode }}"#, &[], ""), "a b&c=+");
        let t = Template::parse(r#"{{ "a%2" | urldecode }}"#).unwrap();
        assert!(t.render(&ctx).unwrap_err().ends_with(r#"invalid URL escape "%2""#));
    }

    #[test]
    fn loki_printing_and_go_semantics() {
        assert_eq!(render("{{ mulf 1000 1000 }} {{ 1e6 }} {{ divf 1 4 }}", &[], ""), "1000000 1000000 0.25");
        assert_eq!(render(r#"{{ printf "%s|%v|%d" .missing .missing .n }}"#, &[("n", "12")], ""), "||12");
        assert_eq!(
            render(r#"{{ if eq .n 12 }}num{{ end }} {{ if gt .n "11" }}str{{ end }}"#, &[("n", "12")], ""),
            "num str"
        );
        assert_eq!(
            render(r#"{{ range $i, $e := split "," .x }}{{ $i }}{{ $e }}{{ end }}"#, &[("x", "a,b")], ""),
            "0a1b"
        );
        assert_eq!(render("{{ $x := .a }}{{ $x }}{{ . }}", &[("a", "1"), ("b", "2")], ""), "1map[a:1 b:2]");
        assert_eq!(
            render(r#"{{ __timestamp__ }}|{{ __timestamp__ | date "2006-01-02" }}"#, &[], ""),
            "1970-01-01 00:00:01.5 +0000 UTC|1970-01-01"
        );
        assert!(Template::parse("{{ $undefined }}").is_err());
        // Go's strings.Title: `_` joins words, other ASCII punctuation splits them.
        assert_eq!(render(r#"{{ "hello wORLD_x-y 1a" | title }}"#, &[], ""), "Hello WORLD_x-Y 1a");
    }
}
