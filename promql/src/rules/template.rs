//! The Go text/template language of Prometheus rule labels and
//! annotations, on the shared engine in [`gotemplate`]: this module
//! supplies Prometheus's data and functions.
//!
//! Templates see the variables `$labels`, `$value`, `$externalLabels`,
//! `$externalURL` and the fields `.Labels.x`, `.Value`,
//! `.ExternalLabels.x`, `.ExternalURL`; they can declare their own
//! (`{{ $x := ... }}`). The language: text, `{{ pipeline }}` actions with
//! `{{-`/`-}}` trimming, `{{/* comments */}}`, `if`/`else if`/`else`/
//! `end`, string, number and bool literals, pipes, parentheses. The
//! functions: `humanize`, `humanize1024`, `humanizePercentage`,
//! `humanizeDuration`, `humanizeTimestamp`, `toUpper`, `toLower`,
//! `title`, `stripPort`, `reReplaceAll`, and Go's builtins `printf`,
//! `print`, `println`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `and`, `or`,
//! `not`, `len`, `index`.
//!
//! Missing map keys print as the empty string (Prometheus runs templates
//! with `missingkey=zero`). `query` and `range` are not supported: a
//! template using them fails to parse, so `check` reports it.

use gotemplate::{Arity, FuncError, ParserBuilder, Value};
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// A template that does not parse, with the byte offset in its source.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("template: {offset}: {message}")]
#[non_exhaustive]
pub struct TemplateError {
    /// Byte offset in the template text.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

/// What a template sees: `$labels`, `$value`, `$externalLabels`,
/// `$externalURL`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TemplateData {
    /// The alert's series labels (`$labels`, `.Labels`).
    pub labels: BTreeMap<String, String>,
    /// The sample value (`$value`, `.Value`).
    pub value: f64,
    /// `$externalLabels` / `.ExternalLabels`.
    pub external_labels: BTreeMap<String, String>,
    /// `$externalURL` / `.ExternalURL`.
    pub external_url: String,
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    source: String,
    inner: gotemplate::Template,
}

/// Longest template accepted, in bytes, and deepest `if`/parenthesis nesting.
const MAX_LEN: usize = 64 * 1024;
const MAX_DEPTH: usize = 32;

/// Prometheus's functions beside Go's builtins, and the variables it
/// defines before every template.
static PARSER: LazyLock<gotemplate::Parser> = LazyLock::new(|| {
    let humanizers = ["humanize", "humanize1024", "humanizePercentage", "humanizeDuration", "humanizeTimestamp"];
    ParserBuilder::new()
        .functions(&humanizers, Arity::Exact(1))
        .functions(&["toUpper", "toLower", "title", "stripPort"], Arity::Exact(1))
        .function("reReplaceAll", Arity::Exact(3))
        .variables(&["labels", "value", "externalLabels", "externalURL"])
        .range(false)
        .size_limit(MAX_LEN)
        .nest_limit(MAX_DEPTH)
        .build()
});

impl Template {
    /// Parses template text.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        match PARSER.parse(source) {
            Ok(inner) => Ok(Template { source: source.to_string(), inner }),
            Err(e) => Err(TemplateError { offset: e.offset(), message: e.kind().to_string() }),
        }
    }

    /// The text it was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the template is plain text (no actions).
    pub fn is_static(&self) -> bool {
        self.inner.is_static()
    }

    /// Expands the template. Errors at run time (a function given the wrong
    /// type) are returned as text, as Prometheus does:
    /// `<error expanding template: ...>`.
    pub fn render(&self, data: &TemplateData) -> String {
        match self.inner.render(&Data(data)) {
            Ok(out) => out,
            Err(e) => format!("<error expanding template: {}>", e.kind()),
        }
    }
}

/// [`TemplateData`] as the engine reads it.
struct Data<'a>(&'a TemplateData);

fn map(m: &BTreeMap<String, String>) -> Value {
    Value::Map(m.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect())
}

impl gotemplate::Env for Data<'_> {
    fn call(&self, name: &str, args: Vec<Value>) -> Result<Value, FuncError> {
        call(name, args)
    }

    fn root(&self) -> Value {
        let fields = ["Labels", "Value", "ExternalLabels", "ExternalURL"];
        Value::Map(fields.iter().filter_map(|f| Some((f.to_string(), self.field(f)?))).collect())
    }

    fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "Labels" => map(&self.0.labels),
            "Value" => Value::Float(self.0.value),
            "ExternalLabels" => map(&self.0.external_labels),
            "ExternalURL" => Value::from(self.0.external_url.as_str()),
            _ => return None,
        })
    }

    fn variable(&self, name: &str) -> Value {
        let field = match name {
            "labels" => "Labels",
            "value" => "Value",
            "externalLabels" => "ExternalLabels",
            _ => "ExternalURL",
        };
        self.field(field).unwrap_or(Value::Nil)
    }

    /// `missingkey=zero` on `map[string]string`: the empty string.
    fn missing_key(&self, _: &str) -> Value {
        Value::Str(String::new())
    }
}

/// A number argument: a number, or a string that reads as one.
fn float(v: &Value) -> Result<f64, FuncError> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Str(s) => {
            s.trim().parse().map_err(|_| format!("strconv.ParseFloat: parsing {s:?}: invalid syntax").into())
        }
        other => Err(format!("can't convert {} to float", other.type_name()).into()),
    }
}

/// Runs one of the functions [`PARSER`] declares; the engine has checked
/// the argument count.
fn call(name: &str, args: Vec<Value>) -> Result<Value, FuncError> {
    let text = |i: usize| args.get(i).map(Value::to_string).unwrap_or_default();
    let num = || args.first().map_or(Ok(0.0), float);
    Ok(Value::Str(match name {
        "humanize" => humanize(num()?),
        "humanize1024" => humanize1024(num()?),
        "humanizePercentage" => format!("{}%", go_float(num()? * 100.0, Some(4))),
        "humanizeDuration" => humanize_duration(num()?),
        "humanizeTimestamp" => humanize_timestamp(num()?),
        "toUpper" => text(0).to_uppercase(),
        "toLower" => text(0).to_lowercase(),
        "title" => title(&text(0)),
        "stripPort" => strip_port(&text(0)),
        "reReplaceAll" => {
            let re = regex::Regex::new(&text(0))?;
            re.replace_all(&text(2), text(1).as_str()).into_owned()
        }
        _ => return Err(format!("function {name:?} not defined").into()),
    }))
}

/// Each word's first letter upper-cased, as Prometheus's `title` does
/// (`_` and `'` do not end a word).
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !(c.is_alphanumeric() || c == '_' || c == '\'');
    }
    out
}

fn strip_port(s: &str) -> String {
    if let Some(rest) = s.strip_prefix('[') {
        if let Some(end) = rest.find(']') {
            return rest[..end].to_string();
        }
    }
    match s.rfind(':') {
        Some(i) if s[..i].find(':').is_none() => s[..i].to_string(),
        _ => s.to_string(),
    }
}

/// Go's `%g` (`prec = None`: shortest, as `%v` prints a float64).
pub(crate) fn go_float(v: f64, prec: Option<usize>) -> String {
    gotemplate::format_float(v, 'g', prec)
}

/// Prometheus's `humanize`: SI prefixes, 4 significant digits.
pub fn humanize(v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return go_float(v, Some(4));
    }
    let mut v = v;
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", go_float(v, Some(4)))
}

/// Prometheus's `humanize1024`: binary prefixes.
pub fn humanize1024(v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return go_float(v, Some(4));
    }
    let mut v = v;
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", go_float(v, Some(4)))
}

/// Prometheus's `humanizeDuration`: seconds as `1d 2h 3m 4s`, or with a
/// sub-second prefix (`15ms`).
pub fn humanize_duration(v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return go_float(v, Some(4));
    }
    if v == 0.0 {
        return format!("{}s", go_float(v, Some(4)));
    }
    if v.abs() >= 1.0 {
        let (sign, v) = if v < 0.0 { ("-", -v) } else { ("", v) };
        let d = v as i64;
        let (secs, mins, hours, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86_400);
        if days != 0 {
            return format!("{sign}{days}d {hours}h {mins}m {secs}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {mins}m {secs}s");
        }
        if mins != 0 {
            return format!("{sign}{mins}m {secs}s");
        }
        return format!("{sign}{}s", go_float(v, Some(4)));
    }
    let mut v = v;
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", go_float(v, Some(4)))
}

/// Prometheus's `humanizeTimestamp`: Unix seconds as a UTC time.
pub fn humanize_timestamp(v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return go_float(v, Some(4));
    }
    // Prometheus converts through nanoseconds to a millisecond timestamp.
    let ns = v * 1e9;
    if ns >= i64::MAX as f64 || ns <= i64::MIN as f64 {
        return go_float(v, Some(4));
    }
    let ms = (ns as i64) / 1_000_000;
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => {
            let frac = ms.rem_euclid(1000);
            let frac = if frac == 0 { String::new() } else { format!(".{frac:03}").trim_end_matches('0').to_string() };
            format!("{}{frac} +0000 UTC", t.format("%Y-%m-%d %H:%M:%S"))
        }
        None => go_float(v, Some(4)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn data() -> TemplateData {
        TemplateData {
            labels: [("instance".to_string(), "host:9100".to_string()), ("job".to_string(), "node".to_string())].into(),
            value: 0.8512,
            external_labels: [("cluster".to_string(), "eu1".to_string())].into(),
            external_url: "http://prom".into(),
        }
    }

    fn r(t: &str) -> String {
        Template::parse(t).unwrap_or_else(|e| panic!("{t}: {e}")).render(&data())
    }

    #[test]
    fn variables_fields_and_pipes() {
        assert_eq!(r("{{ $labels.instance }} of {{ .Labels.job }}"), "host:9100 of node");
        assert_eq!(r("{{ $value }}"), "0.8512");
        assert_eq!(r("{{ $value | humanizePercentage }}"), "85.12%");
        assert_eq!(r("{{ $labels.nope }}|"), "|");
        assert_eq!(r("{{ $externalLabels.cluster }} {{ $externalURL }}"), "eu1 http://prom");
        assert_eq!(r("{{ printf \"%.2f\" $value }}"), "0.85");
        assert_eq!(r("{{ $labels.instance | stripPort | toUpper }}"), "HOST");
        assert_eq!(r("a  {{- \" b \" -}}  c"), "a b c");
        assert_eq!(r("{{/* note */}}x"), "x");
        assert_eq!(r("{{ if gt $value 0.5 }}high{{ else }}low{{ end }}"), "high");
        assert_eq!(r("{{ if eq $labels.job \"x\" }}x{{ else if eq $labels.job \"node\" }}n{{ end }}"), "n");
        assert_eq!(r("{{ reReplaceAll \":.*\" \"\" $labels.instance }}"), "host");
        assert_eq!(r("{{ printf \"%s=%d %5.1f%%\" \"a\" 42 3.14159 }}"), "a=42   3.1%");
        assert_eq!(r("{{ (printf \"%v\" 3) | title }}"), "3");
    }

    #[test]
    fn humanizers_match_prometheus() {
        assert_eq!(humanize(1234567.0), "1.235M");
        assert_eq!(humanize(0.0012), "1.2m");
        assert_eq!(humanize(0.0), "0");
        assert_eq!(humanize(999.0), "999");
        assert_eq!(humanize1024(1048576.0), "1Mi");
        assert_eq!(humanize_duration(90061.0), "1d 1h 1m 1s");
        assert_eq!(humanize_duration(0.015), "15ms");
        assert_eq!(humanize_duration(59.5), "59.5s");
        assert_eq!(humanize_timestamp(1_435_065_584.128), "2015-06-23 13:19:44.128 +0000 UTC");
        assert_eq!(go_float(1e6, None), "1e+06");
        assert_eq!(go_float(123456.0, None), "123456");
        assert_eq!(go_float(0.0001, None), "0.0001");
        assert_eq!(go_float(0.00001, None), "1e-05");
        assert_eq!(go_float(12345.0, Some(4)), "1.234e+04");
        assert_eq!(go_float(120.0, Some(4)), "120");
    }

    #[test]
    fn parse_errors_have_offsets() {
        for (t, msg) in [
            ("{{ $labels.x ", "unclosed action"),
            ("{{ $lables.x }}", "undefined variable"),
            ("{{ nosuch 1 }}", "not defined"),
            ("{{ if 1 }}x", "missing {{end}}"),
            ("{{ end }}", "unexpected"),
            ("{{ range $labels }}{{ end }}", "not supported"),
            ("{{ (1 }}", "unclosed left paren"),
            ("{{ }}", "missing value"),
        ] {
            let e = Template::parse(t).unwrap_err();
            assert!(e.message.contains(msg), "{t}: {e}");
        }
        assert_eq!(Template::parse("ab{{ $x }}").unwrap_err().offset, 5);
    }

    #[test]
    fn runtime_errors_are_rendered_text() {
        let out = r("{{ humanize \"abc\" }}");
        assert!(out.starts_with("<error expanding template:"), "{out}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn parse_and_render_never_panic(s in "[{}$. a-zA-Z|()\"0-9-]{0,40}") {
            if let Ok(t) = Template::parse(&s) {
                let _ = t.render(&data());
            }
        }

        #[test]
        fn text_without_braces_renders_verbatim(s in "[^{}]{0,60}") {
            prop_assert_eq!(Template::parse(&s).unwrap().render(&data()), s);
        }
    }
}
