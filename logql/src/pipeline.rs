//! Compiled log pipelines: line filters, parsers, label filters, formatters.
//!
//! Label precedence follows Loki: a name goes to the highest-precedence
//! source (stream > structured metadata > parsed); a value that loses the
//! name is kept under `<name>_extracted`, where parsed beats metadata beats
//! stream. Failing stages set `__error__` / `__error_details__` (the first
//! failure owns them).

use crate::ast::{
    FilterValue, LabelFilter, LabelFmt, LineFilter, LineFilterOp, NameOrMatcher, ParserStage, Stage, StageNode,
};
use crate::json::{self, JVal, PathPart};
use crate::pattern::Pattern;
use crate::template::{Context, Template};
use crate::units::{parse_bytes, parse_go_duration, parse_go_float};
use model::{Label, Labels};
use regex::Regex;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// `__error__`.
pub const ERROR_LABEL: &str = "__error__";
/// `__error_details__`.
pub const ERROR_DETAILS_LABEL: &str = "__error_details__";
/// Error of the json and unpack parsers.
pub const JSON_PARSER_ERR: &str = "JSONParserErr";
/// Error of the logfmt parser (`--strict`).
pub const LOGFMT_PARSER_ERR: &str = "LogfmtParserErr";
/// Error of a converting label filter.
pub const LABEL_FILTER_ERR: &str = "LabelFilterErr";
/// Error of an unwrap conversion.
pub const SAMPLE_EXTRACTION_ERR: &str = "SampleExtractionErr";
/// Error of a `line_format`/`label_format` template.
pub const TEMPLATE_FORMAT_ERR: &str = "TemplateFormatErr";

/// The labels of one line as it moves through a pipeline.
#[derive(Clone, Debug)]
pub struct LineLabels<'s> {
    stream: &'s Labels,
    metadata_names: Vec<String>,
    /// Current labels (stream, metadata and parsed, resolved).
    pub labels: BTreeMap<String, String>,
    /// `__error__`, when a stage failed.
    pub err: Option<String>,
    /// `__error_details__`.
    pub details: Option<String>,
}

impl<'s> LineLabels<'s> {
    /// Starts from stream labels and an entry's structured metadata.
    pub fn new(stream: &'s Labels, metadata: &Labels) -> Self {
        let mut labels: BTreeMap<String, String> =
            stream.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
        let mut metadata_names = Vec::new();
        for m in metadata.iter() {
            if stream.contains(&m.name) {
                labels.insert(format!("{}_extracted", m.name), m.value.clone());
            } else {
                labels.insert(m.name.clone(), m.value.clone());
            }
            metadata_names.push(m.name.clone());
        }
        LineLabels { stream, metadata_names, labels, err: None, details: None }
    }

    fn protected(&self, name: &str) -> bool {
        self.stream.contains(name) || self.metadata_names.iter().any(|m| m == name)
    }

    /// Adds a parsed label, resolving clashes; it replaces any value the
    /// (resolved) name has.
    fn add_parsed(&mut self, name: &str, value: &str) {
        let key: Cow<'_, str> =
            if self.protected(name) { Cow::Owned(format!("{name}_extracted")) } else { Cow::Borrowed(name) };
        match self.labels.get_mut(key.as_ref()) {
            Some(v) => {
                v.clear();
                v.push_str(value);
            }
            None => {
                self.labels.insert(key.into_owned(), value.to_string());
            }
        }
    }

    /// Adds the labels one parser found on a line, in line order: when a
    /// (resolved) name occurs more than once, the first value wins, as in
    /// Loki. Inserting in reverse order gives exactly that without keeping
    /// a set of the names seen.
    fn add_all_parsed<K: AsRef<str>, V: AsRef<str>>(&mut self, pairs: &[(K, V)]) {
        for (k, v) in pairs.iter().rev() {
            self.add_parsed(k.as_ref(), v.as_ref());
        }
    }

    /// Records a failure; the first one wins.
    pub fn set_err(&mut self, err: &str, details: impl Into<String>) {
        if self.err.is_none() {
            self.err = Some(err.to_string());
        }
        if self.details.is_none() {
            self.details = Some(details.into());
        }
    }

    /// The value a string matcher sees (absent = "").
    fn string_value(&self, name: &str) -> &str {
        match name {
            ERROR_LABEL => self.err.as_deref().unwrap_or(""),
            ERROR_DETAILS_LABEL => self.details.as_deref().unwrap_or(""),
            _ => self.labels.get(name).map_or("", String::as_str),
        }
    }

    /// The final label set, with error labels; `skip` is left out.
    pub fn to_labels(&self, skip: Option<&str>) -> Labels {
        let mut v: Vec<Label> = self
            .labels
            .iter()
            .filter(|(k, _)| Some(k.as_str()) != skip)
            .map(|(k, v)| Label::new(k.clone(), v.clone()))
            .collect();
        if let Some(e) = &self.err {
            v.push(Label::new(ERROR_LABEL, e.clone()));
            if let Some(d) = &self.details {
                v.push(Label::new(ERROR_DETAILS_LABEL, d.clone()));
            }
        }
        Labels::new(v)
    }
}

enum CLineFilter {
    Contains(Vec<String>, bool),
    Regex(Vec<Regex>, bool),
    Pattern(Vec<Pattern>, bool),
    Ip(Vec<FilterValue>, bool),
}

impl CLineFilter {
    fn compile(lf: &LineFilter) -> Result<CLineFilter, String> {
        let neg = lf.op.is_negative();
        if lf.values.iter().any(|v| matches!(v, FilterValue::Ip(_))) {
            return Ok(CLineFilter::Ip(lf.values.clone(), neg));
        }
        let strs: Vec<&str> = lf
            .values
            .iter()
            .filter_map(|v| match v {
                FilterValue::Str(s) => Some(s.as_str()),
                FilterValue::Ip(_) => None,
            })
            .collect();
        Ok(match lf.op {
            LineFilterOp::Contains | LineFilterOp::NotContains => {
                CLineFilter::Contains(strs.iter().map(|s| s.to_string()).collect(), neg)
            }
            LineFilterOp::Regex | LineFilterOp::NotRegex => CLineFilter::Regex(
                strs.iter().map(|s| Regex::new(s).map_err(|e| e.to_string())).collect::<Result<_, _>>()?,
                neg,
            ),
            LineFilterOp::Pattern | LineFilterOp::NotPattern => {
                CLineFilter::Pattern(strs.iter().map(|s| Pattern::parse(s)).collect::<Result<_, _>>()?, neg)
            }
        })
    }

    fn keep(&self, line: &str) -> bool {
        let (any, neg) = match self {
            CLineFilter::Contains(v, n) => (v.iter().any(|s| line.contains(s.as_str())), *n),
            CLineFilter::Regex(v, n) => (v.iter().any(|r| r.is_match(line)), *n),
            CLineFilter::Pattern(v, n) => (v.iter().any(|p| p.matches(line)), *n),
            CLineFilter::Ip(v, n) => (
                v.iter().any(|fv| match fv {
                    FilterValue::Str(s) => line.contains(s.as_str()),
                    FilterValue::Ip(p) => p.matches_text(line),
                }),
                *n,
            ),
        };
        any != neg
    }
}

/// Compiles a `regexp` parser expression, checking Loki's rules.
pub fn compile_regexp_parser(expr: &str) -> Result<(Regex, Vec<String>), String> {
    // Find named groups ourselves so duplicates get Loki's message.
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("(?P<").or_else(|| rest.find("(?<")) {
        let after = &rest[i..];
        let start = after.find('<').map_or(0, |p| p + 1);
        if let Some(end) = after[start..].find('>') {
            let name = &after[start..start + end];
            if names.iter().any(|n| n == name) {
                return Err(format!("invalid extracted label name '{name}': duplicate extracted label name"));
            }
            names.push(name.to_string());
        }
        rest = &rest[i + 3..];
    }
    let re = Regex::new(expr).map_err(|e| format!("error parsing regexp: {e}"))?;
    let names: Vec<String> = re.capture_names().flatten().map(str::to_string).collect();
    if names.is_empty() {
        return Err("at least one named capture must be supplied".into());
    }
    Ok((re, names))
}

enum CStage {
    LineFilter(CLineFilter),
    Json(Vec<(String, Vec<PathPart>)>),
    Logfmt { strict: bool, keep_empty: bool, params: Vec<(String, String)> },
    Regexp(Regex),
    Pattern(Pattern),
    Unpack,
    LabelFilter(LabelFilter),
    LineFormat(Template),
    LabelFormat(Vec<(String, Result<String, Template>)>),
    Drop(Vec<NameOrMatcher>),
    Keep(Vec<NameOrMatcher>),
    Decolorize(Regex),
}

/// A compiled pipeline.
pub struct Pipeline {
    stages: Vec<CStage>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pipeline({} stages)", self.stages.len())
    }
}

impl Pipeline {
    /// Compiles stages (validated by the parser already).
    pub fn compile(stages: &[StageNode]) -> Result<Pipeline, String> {
        let mut out = Vec::with_capacity(stages.len());
        for s in stages {
            out.push(match &s.stage {
                Stage::LineFilter(lf) => CStage::LineFilter(CLineFilter::compile(lf)?),
                Stage::Parser(ParserStage::Json(params)) => CStage::Json(
                    params
                        .iter()
                        .map(|e| Ok((e.label.clone(), json::parse_path(&e.expr)?)))
                        .collect::<Result<_, String>>()?,
                ),
                Stage::Parser(ParserStage::Logfmt { strict, keep_empty, params }) => CStage::Logfmt {
                    strict: *strict,
                    keep_empty: *keep_empty,
                    params: params.iter().map(|e| (e.label.clone(), e.expr.clone())).collect(),
                },
                Stage::Parser(ParserStage::Regexp(r)) => CStage::Regexp(compile_regexp_parser(r)?.0),
                Stage::Parser(ParserStage::Pattern(p)) => CStage::Pattern(Pattern::parse(p)?),
                Stage::Parser(ParserStage::Unpack) => CStage::Unpack,
                Stage::LabelFilter(f) => CStage::LabelFilter(f.clone()),
                Stage::LineFormat(t) => CStage::LineFormat(Template::parse(t)?),
                Stage::LabelFormat(items) => CStage::LabelFormat(
                    items
                        .iter()
                        .map(|it| match it {
                            LabelFmt::Rename { dst, src } => Ok((dst.clone(), Ok(src.clone()))),
                            LabelFmt::Template { dst, template } => Ok((dst.clone(), Err(Template::parse(template)?))),
                        })
                        .collect::<Result<_, String>>()?,
                ),
                Stage::Drop(items) => CStage::Drop(items.clone()),
                Stage::Keep(items) => CStage::Keep(items.clone()),
                Stage::Decolorize => CStage::Decolorize(ansi_regex()?),
            });
        }
        Ok(Pipeline { stages: out })
    }

    /// Whether every stage is a line filter (labels pass through unchanged).
    pub fn is_line_filter_only(&self) -> bool {
        self.stages.iter().all(|s| matches!(s, CStage::LineFilter(_)))
    }

    /// Substrings every line this pipeline keeps contains, as the line
    /// was stored: the single-value `|=` filters met before any stage that
    /// rewrites the line (`line_format`, `unpack`, `decolorize`). A
    /// storage may skip lines lacking one; the pipeline still checks them.
    pub fn required_substrings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.stages {
            match s {
                CStage::LineFilter(CLineFilter::Contains(v, false)) => {
                    if let [one] = v.as_slice() {
                        if !one.is_empty() {
                            out.push(one.clone());
                        }
                    }
                }
                CStage::LineFormat(_) | CStage::Unpack | CStage::Decolorize(_) => break,
                _ => {}
            }
        }
        out
    }

    /// Applies only the line filters (for [`Pipeline::is_line_filter_only`]
    /// pipelines); whether the line is kept.
    pub fn keep_line(&self, line: &str) -> bool {
        self.stages.iter().all(|s| match s {
            CStage::LineFilter(f) => f.keep(line),
            _ => true,
        })
    }

    /// Runs a line through the pipeline; `None` when a stage drops it. The
    /// line comes back borrowed unless a stage rewrote it.
    pub fn process<'a, 's>(
        &self,
        ts: i64,
        line: &'a str,
        stream: &'s Labels,
        metadata: &Labels,
    ) -> Option<(Cow<'a, str>, LineLabels<'s>)> {
        let mut lbs = LineLabels::new(stream, metadata);
        let mut line: Cow<'a, str> = Cow::Borrowed(line);
        for st in &self.stages {
            match st {
                CStage::LineFilter(f) => {
                    if !f.keep(&line) {
                        return None;
                    }
                }
                CStage::Json(params) => parse_json(&line, params, &mut lbs),
                CStage::Logfmt { strict, keep_empty, params } => parse_logfmt(&line, *strict, *keep_empty, params, &mut lbs),
                CStage::Regexp(re) => {
                    if let Some(caps) = re.captures(&line) {
                        let pairs: Vec<(Cow<'_, str>, &str)> = re
                            .capture_names()
                            .flatten()
                            .map(|name| (sanitize_key_cow(name), caps.name(name).map_or("", |m| m.as_str())))
                            .collect();
                        lbs.add_all_parsed(&pairs);
                    }
                }
                CStage::Pattern(p) => {
                    let pairs: Vec<(&str, &str)> = p.extract(&line).into_iter().collect();
                    lbs.add_all_parsed(&pairs);
                }
                CStage::Unpack => {
                    if let Some(entry) = unpack(&line, &mut lbs) {
                        line = Cow::Owned(entry);
                    }
                }
                CStage::LabelFilter(f) => {
                    if !eval_label_filter(f, &mut lbs) {
                        return None;
                    }
                }
                CStage::LineFormat(t) => {
                    let ctx = Context { labels: &lbs.labels, line: &line, ts };
                    match t.render(&ctx) {
                        Ok(s) => line = Cow::Owned(s),
                        Err(e) => lbs.set_err(TEMPLATE_FORMAT_ERR, e),
                    }
                }
                CStage::LabelFormat(items) => {
                    let snapshot = lbs.labels.clone();
                    let mut renamed = Vec::new();
                    for (dst, how) in items {
                        match how {
                            Ok(src) => {
                                let v = lbs.string_value(src).to_string();
                                renamed.push(src.clone());
                                lbs.labels.insert(dst.clone(), v);
                            }
                            Err(t) => {
                                let ctx = Context { labels: &snapshot, line: &line, ts };
                                match t.render(&ctx) {
                                    Ok(v) => {
                                        lbs.labels.insert(dst.clone(), v);
                                    }
                                    Err(e) => lbs.set_err(TEMPLATE_FORMAT_ERR, e),
                                }
                            }
                        }
                    }
                    for src in renamed {
                        if !items.iter().any(|(d, _)| *d == src) {
                            lbs.labels.remove(&src);
                        }
                    }
                }
                CStage::Drop(items) => {
                    for it in items {
                        let (name, matches) = match it {
                            NameOrMatcher::Name(n) => (n.as_str(), true),
                            NameOrMatcher::Matcher(m) => (m.name.as_str(), m.matches(lbs.string_value(&m.name))),
                        };
                        if !matches {
                            continue;
                        }
                        match name {
                            ERROR_LABEL => lbs.err = None,
                            ERROR_DETAILS_LABEL => lbs.details = None,
                            _ => {
                                lbs.labels.remove(name);
                            }
                        }
                    }
                }
                CStage::Keep(items) => {
                    lbs.labels.retain(|k, v| {
                        items.iter().any(|it| match it {
                            NameOrMatcher::Name(n) => n == k,
                            NameOrMatcher::Matcher(m) => m.name == *k && m.matches(v),
                        })
                    });
                }
                CStage::Decolorize(re) => {
                    if line.contains('\x1b') {
                        line = Cow::Owned(re.replace_all(&line, "").into_owned());
                    }
                }
            }
        }
        Some((line, lbs))
    }
}

fn ansi_regex() -> Result<Regex, String> {
    Regex::new(r"\x1b\[[0-9;]*[A-Za-z]").map_err(|e| e.to_string())
}

/// Loki's label-key sanitizer: non-word characters become `_`, and a
/// leading digit gets a `_` prefix.
pub fn sanitize_key(k: &str) -> String {
    sanitize_key_cow(k).into_owned()
}

/// [`sanitize_key`], borrowing the (trimmed) key when it is already clean.
fn sanitize_key_cow(k: &str) -> Cow<'_, str> {
    let k = k.trim();
    let clean = |k: &str| {
        !k.starts_with(|c: char| c.is_ascii_digit()) && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    if clean(k) {
        return Cow::Borrowed(k);
    }
    let mut out = String::with_capacity(k.len() + 1);
    if k.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    for c in k.chars() {
        out.push(if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' });
    }
    Cow::Owned(out)
}

fn parse_json(line: &str, params: &[(String, Vec<PathPart>)], lbs: &mut LineLabels<'_>) {
    let v = match json::parse(line) {
        Ok(v @ JVal::Obj(..)) => v,
        Ok(_) => {
            lbs.set_err(JSON_PARSER_ERR, "Value looks like object, but can't find closing '}' symbol");
            return;
        }
        Err(e) => {
            lbs.set_err(JSON_PARSER_ERR, e);
            return;
        }
    };
    if !params.is_empty() {
        let pairs: Vec<(&str, String)> = params
            .iter()
            .map(|(label, path)| {
                let value = match json::lookup(&v, path) {
                    Some(JVal::Null) | None => String::new(),
                    Some(x) => x.text(),
                };
                (label.as_str(), value)
            })
            .collect();
        lbs.add_all_parsed(&pairs);
        return;
    }
    fn walk<'v>(prefix: &str, v: &'v JVal<'_>, out: &mut Vec<(Cow<'v, str>, String)>) {
        if let JVal::Obj(fields, _) = v {
            for (k, val) in fields {
                let key = if prefix.is_empty() {
                    sanitize_key_cow(k)
                } else {
                    Cow::Owned(format!("{prefix}_{}", sanitize_key_cow(k)))
                };
                match val {
                    JVal::Obj(..) => walk(&key, val, out),
                    JVal::Arr(..) | JVal::Null => {}
                    other => out.push((key, other.text())),
                }
            }
        }
    }
    let mut pairs = Vec::new();
    walk("", &v, &mut pairs);
    lbs.add_all_parsed(&pairs);
}

fn unpack(line: &str, lbs: &mut LineLabels<'_>) -> Option<String> {
    let fields = match json::parse(line) {
        Ok(JVal::Obj(fields, _)) => fields,
        Ok(_) => {
            lbs.set_err(JSON_PARSER_ERR, "unpack: line is not a json object");
            return None;
        }
        Err(e) => {
            lbs.set_err(JSON_PARSER_ERR, e);
            return None;
        }
    };
    let mut entry = None;
    let mut pairs = Vec::new();
    for (k, v) in fields {
        if let JVal::Str(s) = v {
            if k == "_entry" {
                entry.get_or_insert(s);
            } else {
                pairs.push((sanitize_key(&k), s));
            }
        }
    }
    lbs.add_all_parsed(&pairs);
    entry
}

/// A logfmt key and value, borrowed from the line unless the value has
/// escapes.
type LogfmtPair<'a> = (&'a str, Cow<'a, str>);

/// The logfmt pairs of a line, in order; `Err` for a malformed token.
fn logfmt_pairs(line: &str) -> Vec<Result<LogfmtPair<'_>, String>> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i] <= b' ' {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let ks = i;
        while i < b.len() && b[i] > b' ' && b[i] != b'=' && b[i] != b'"' {
            i += 1;
        }
        let key = &line[ks..i];
        if key.is_empty() || (i < b.len() && b[i] == b'"') {
            out.push(Err(format!("logfmt syntax error at pos {}: unexpected '{}'", i + 1, b[i] as char)));
            while i < b.len() && b[i] > b' ' {
                i += 1;
            }
            continue;
        }
        if i >= b.len() || b[i] != b'=' {
            out.push(Ok((key, Cow::Borrowed(""))));
            continue;
        }
        i += 1;
        if i < b.len() && b[i] == b'"' {
            i += 1;
            // Borrowed while no escape has been seen: `vs..i` is the value.
            let vs = i;
            let mut val: Option<String> = None;
            let mut closed = false;
            let mut bad = false;
            while i < b.len() {
                match b[i] {
                    b'"' => {
                        closed = true;
                        i += 1;
                        break;
                    }
                    b'\\' if i + 1 < b.len() => {
                        let val = val.get_or_insert_with(|| line[vs..i].to_string());
                        let next = line[i + 1..].chars().next().unwrap_or(' ');
                        match next {
                            'n' => val.push('\n'),
                            't' => val.push('\t'),
                            'r' => val.push('\r'),
                            '"' => val.push('"'),
                            '\\' => val.push('\\'),
                            '/' => val.push('/'),
                            _ => bad = true,
                        }
                        i += 1 + next.len_utf8();
                    }
                    _ => match &mut val {
                        Some(val) => {
                            let c = line[i..].chars().next().unwrap_or(' ');
                            val.push(c);
                            i += c.len_utf8();
                        }
                        // Bytes of multi-byte characters are never '"' or
                        // '\\', so stepping bytewise stays on boundaries
                        // wherever it stops.
                        None => i += 1,
                    },
                }
            }
            if !closed || bad {
                out.push(Err(format!("logfmt syntax error at pos {}: unterminated quoted value", i + 1)));
                continue;
            }
            let val = match val {
                Some(v) => Cow::Owned(v),
                // Without escapes the value is the text between the quotes.
                None => Cow::Borrowed(&line[vs..i - 1]),
            };
            out.push(Ok((key, val)));
        } else {
            let vs = i;
            let mut bad = false;
            while i < b.len() && b[i] > b' ' {
                if b[i] == b'"' {
                    bad = true;
                }
                i += 1;
            }
            if bad {
                out.push(Err(format!("logfmt syntax error at pos {}: unexpected '\"'", vs + 1)));
                continue;
            }
            out.push(Ok((key, Cow::Borrowed(&line[vs..i]))));
        }
    }
    out
}

fn parse_logfmt(line: &str, strict: bool, keep_empty: bool, params: &[(String, String)], lbs: &mut LineLabels<'_>) {
    let pairs = logfmt_pairs(line);
    if strict {
        if let Some(Err(e)) = pairs.iter().find(|p| p.is_err()) {
            lbs.set_err(LOGFMT_PARSER_ERR, e.clone());
            return;
        }
    }
    if !params.is_empty() {
        let mut found = Vec::with_capacity(params.len());
        for (label, key) in params {
            let v = pairs.iter().find_map(|p| match p {
                Ok((k, v)) if k == key => Some(v.as_ref()),
                _ => None,
            });
            if let Some(v) = v {
                if !v.is_empty() || keep_empty {
                    found.push((label.as_str(), v));
                }
            }
        }
        lbs.add_all_parsed(&found);
        return;
    }
    let mut found = Vec::with_capacity(pairs.len());
    for (k, v) in pairs.iter().flatten() {
        if v.is_empty() && !keep_empty {
            continue;
        }
        let key = sanitize_key_cow(k);
        if key.is_empty() {
            continue;
        }
        found.push((key, v.as_ref()));
    }
    lbs.add_all_parsed(&found);
}

/// Evaluates a label filter; may record a conversion error (and then keep
/// the line, as Loki does).
pub fn eval_label_filter(f: &LabelFilter, lbs: &mut LineLabels<'_>) -> bool {
    match f {
        LabelFilter::And(a, b) => {
            let l = eval_label_filter(a, lbs);
            let r = eval_label_filter(b, lbs);
            l && r
        }
        LabelFilter::Or(a, b) => eval_label_filter(a, lbs) || eval_label_filter(b, lbs),
        LabelFilter::Matcher(m) => m.matches(lbs.string_value(&m.name)),
        LabelFilter::Number { name, op, value } => {
            let Some(v) = lbs.labels.get(name) else { return false };
            match parse_go_float(v) {
                Ok(x) => op.apply(x, *value),
                Err(e) => {
                    lbs.set_err(LABEL_FILTER_ERR, e);
                    true
                }
            }
        }
        LabelFilter::Duration { name, op, value } => {
            let Some(v) = lbs.labels.get(name) else { return false };
            match parse_go_duration(v) {
                Ok(x) => op.apply(x, *value),
                Err(e) => {
                    lbs.set_err(LABEL_FILTER_ERR, e);
                    true
                }
            }
        }
        LabelFilter::Bytes { name, op, value } => {
            let Some(v) = lbs.labels.get(name) else { return false };
            match parse_bytes(v) {
                Ok(x) => op.apply(x, *value),
                Err(e) => {
                    lbs.set_err(LABEL_FILTER_ERR, e);
                    true
                }
            }
        }
        LabelFilter::Ip { name, negate, pattern } => {
            if lbs.err.is_some() {
                return true;
            }
            let Some(v) = lbs.labels.get(name) else { return false };
            pattern.matches_text(v) != *negate
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::Expr;

    fn run(q: &str, stream: &Labels, line: &str) -> Option<(String, Labels)> {
        let Expr::Log(l) = crate::parse(q).unwrap() else { panic!() };
        let p = Pipeline::compile(&l.pipeline).unwrap();
        p.process(0, line, stream, &Labels::empty()).map(|(l, lb)| (l.into_owned(), lb.to_labels(None)))
    }

    #[test]
    fn logfmt_rules() {
        let s = Labels::from_pairs([("app", "a")]);
        let (_, l) = run(r#"{app="a"} | logfmt"#, &s, r#"a-b=1 9x=2 dup=first dup=second msg="hi there" empty="#).unwrap();
        assert_eq!(l.get("a_b"), Some("1"));
        assert_eq!(l.get("_9x"), Some("2"));
        assert_eq!(l.get("dup"), Some("first"));
        assert_eq!(l.get("msg"), Some("hi there"));
        assert_eq!(l.get("empty"), None);
        let (_, l) = run(r#"{app="a"} | logfmt --strict"#, &s, r#"good=1 bad="unterminated"#).unwrap();
        assert_eq!(l.get("__error__"), Some("LogfmtParserErr"));
    }

    #[test]
    fn json_and_clashes() {
        let s = Labels::from_pairs([("app", "a"), ("level", "stream")]);
        let (_, l) = run(r#"{app="a"} | json"#, &s, r#"{"level":"parsed","o":{"x":1},"arr":[1],"n":null}"#).unwrap();
        assert_eq!(l.get("level"), Some("stream"));
        assert_eq!(l.get("level_extracted"), Some("parsed"));
        assert_eq!(l.get("o_x"), Some("1"));
        assert_eq!(l.get("arr"), None);
        let (_, l) = run(r#"{app="a"} | json"#, &s, "broken").unwrap();
        assert_eq!(l.get("__error__"), Some("JSONParserErr"));
        assert!(run(r#"{app="a"} | json | __error__="""#, &s, "broken").is_none());
    }

    #[test]
    fn required_substrings_stop_at_line_rewrites() {
        let req = |q: &str| {
            let Expr::Log(l) = crate::parse(q).unwrap() else { panic!() };
            Pipeline::compile(&l.pipeline).unwrap().required_substrings()
        };
        assert_eq!(req(r#"{a="b"} |= "x" != "y" |~ "z" |= "w""#), ["x", "w"]);
        assert_eq!(req(r#"{a="b"} |= "x" or "y" |= """#), Vec::<String>::new());
        assert_eq!(req(r#"{a="b"} | logfmt | level="error" |= "x""#), ["x"]);
        assert_eq!(req(r#"{a="b"} |= "x" | line_format "{{.a}}" |= "y""#), ["x"]);
        assert_eq!(req(r#"{a="b"} | unpack |= "y""#), Vec::<String>::new());
        assert_eq!(req(r#"{a="b"} | decolorize |= "y""#), Vec::<String>::new());
    }

    #[test]
    fn filters_and_formats() {
        let s = Labels::from_pairs([("app", "a")]);
        assert!(run(r#"{app="a"} |= "x" or "y" != "z""#, &s, "has y").is_some());
        assert!(run(r#"{app="a"} |= "x" or "y" != "z""#, &s, "has y z").is_none());
        let (line, l) = run(r#"{app="a"} | logfmt | line_format "{{.a}}!" | label_format b=a, c="{{.a}}{{.a}}""#, &s, "a=1").unwrap();
        assert_eq!(line, "1!");
        assert_eq!((l.get("a"), l.get("b"), l.get("c")), (None, Some("1"), Some("11")));
        let (_, l) = run(r#"{app="a"} | logfmt | took > 1s"#, &s, "took=oops").unwrap();
        assert_eq!(l.get("__error__"), Some("LabelFilterErr"));
        let (line, _) = run(r#"{app="a"} | decolorize"#, &s, "\x1b[31mred\x1b[0m").unwrap();
        assert_eq!(line, "red");
        let (_, l) = run(r#"{app="a"} | logfmt | keep a | drop b"#, &s, "a=1 b=2").unwrap();
        assert_eq!(l, Labels::from_pairs([("a", "1")]));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn parsers_never_panic(line in r#"[a-z0-9 ="\\{}\[\]:,.é-]{0,60}"#) {
                let s = Labels::from_pairs([("app", "a"), ("x", "y")]);
                for q in [
                    r#"{app="a"} | json"#,
                    r#"{app="a"} | json a="x.y", b="z[1]""#,
                    r#"{app="a"} | logfmt --strict"#,
                    r#"{app="a"} | logfmt"#,
                    r#"{app="a"} | unpack"#,
                    r#"{app="a"} | pattern "<a> <_>=<b>""#,
                    r#"{app="a"} | regexp "(?P<x>[a-z]+)""#,
                    r#"{app="a"} |> "<_> <_>" | line_format "{{ __line__ | trunc 3 }}{{ .x | default \"d\" }}""#,
                ] {
                    let _ = run(q, &s, &line);
                }
            }

            #[test]
            fn logfmt_roundtrips_simple_pairs(pairs in proptest::collection::vec(("[a-z][a-z0-9_]{0,5}", "[a-zA-Z0-9 ]{1,6}"), 1..5)) {
                let line = pairs.iter().map(|(k, v)| format!("{k}={}", crate::ast::quote(v))).collect::<Vec<_>>().join(" ");
                let parsed: Vec<(String, String)> = logfmt_pairs(&line)
                    .into_iter()
                    .map(|p| p.map(|(k, v)| (k.to_string(), v.into_owned())))
                    .collect::<Result<_, _>>()
                    .map_err(TestCaseError::fail)?;
                let want: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                prop_assert_eq!(parsed, want);
            }

            #[test]
            fn units_never_panic(s in r#"[0-9a-zA-Zµ.,+ -]{0,12}"#) {
                let _ = parse_go_float(&s);
                let _ = parse_go_duration(&s);
                let _ = parse_bytes(&s);
                let _ = crate::units::IpPattern::parse(&s);
                let _ = crate::template::Template::parse(&s);
            }
        }
    }
}
