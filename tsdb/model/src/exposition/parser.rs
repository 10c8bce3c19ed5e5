//! The streaming tokenizer for text 0.0.4 and OpenMetrics 1.0.
//!
//! The parser checks everything that can be checked on one line: syntax,
//! names, quoting and escapes, numbers, timestamps, exemplar syntax and size,
//! `# EOF`. Rules that span lines (family grouping, histogram structure,
//! counter values, ...) are checked by
//! [`parse_families`](super::parse_families).

use std::borrow::Cow;
use std::fmt;

use super::float::parse_go_float;
use super::{Format, MetricType};
use crate::{Label, Labels, METRIC_NAME};

/// Maximum combined length, in characters, of an exemplar's label names and
/// values (OpenMetrics 1.0).
pub const MAX_EXEMPLAR_LABELS_CHARS: usize = 128;

/// A parse error, with the 1-based line and column (in characters) where it
/// was detected.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("line {line}, column {column}: {kind}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// What is wrong.
    pub kind: ParseErrorKind,
}

/// What a [`ParseError`] is about.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The line is not valid UTF-8.
    #[error("invalid UTF-8")]
    InvalidUtf8,
    /// A token was expected and something else found.
    #[error("expected {0}")]
    Expected(&'static str),
    /// A metric name is malformed.
    #[error("invalid metric name {0:?}")]
    InvalidMetricName(String),
    /// A label name is malformed.
    #[error("invalid label name {0:?}")]
    InvalidLabelName(String),
    /// A label name appears twice in one label set.
    #[error("duplicate label name {0:?}")]
    DuplicateLabel(String),
    /// A label value's closing quote is missing.
    #[error("unterminated label value")]
    UnterminatedLabelValue,
    /// A sample value is not a number of the format.
    #[error("invalid value {0:?}")]
    InvalidValue(String),
    /// A timestamp is not valid for the format.
    #[error("invalid timestamp {0:?}")]
    InvalidTimestamp(String),
    /// Unknown word in a `# TYPE` line.
    #[error("invalid metric type {0:?}")]
    InvalidType(String),
    /// A `# UNIT` value with characters outside `[a-zA-Z0-9_:]`.
    #[error("invalid unit {0:?}")]
    InvalidUnit(String),
    /// A `#` line that OpenMetrics does not allow (only HELP, TYPE, UNIT
    /// and EOF exist).
    #[error("invalid metadata line (OpenMetrics allows only # HELP, # TYPE, # UNIT and # EOF)")]
    InvalidMetadataLine,
    /// An empty line in OpenMetrics.
    #[error("blank line (not allowed in OpenMetrics)")]
    BlankLine,
    /// OpenMetrics input without the final `# EOF`.
    #[error("missing \"# EOF\" at end of input")]
    MissingEof,
    /// Something after `# EOF`.
    #[error("text after \"# EOF\"")]
    TextAfterEof,
    /// Exemplar labels longer than 128 characters.
    #[error("exemplar labels have {0} characters, more than the 128 allowed")]
    ExemplarTooLong(usize),
    /// Anything else on the line after its last token.
    #[error("unexpected text {0:?} at end of line")]
    TrailingText(String),
    /// A rule about families or series spanning lines (from
    /// [`parse_families`](super::parse_families)).
    #[error("metric family {family:?}: {message}")]
    Family {
        /// The family concerned.
        family: String,
        /// The rule that is broken.
        message: String,
    },
}

/// One entry of an exposition.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry<'a> {
    /// `# HELP name text` (text unescaped).
    Help {
        /// The family name.
        name: &'a str,
        /// The help text, unescaped.
        text: Cow<'a, str>,
    },
    /// `# TYPE name type`.
    Type {
        /// The family name.
        name: &'a str,
        /// The type.
        kind: MetricType,
    },
    /// `# UNIT name unit` (OpenMetrics).
    Unit {
        /// The family name.
        name: &'a str,
        /// The unit (may be empty).
        unit: &'a str,
    },
    /// A sample line.
    Sample(SampleEntry<'a>),
    /// Any other `#` line of text 0.0.4 (the text after `#`).
    Comment(&'a str),
}

/// A sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleEntry<'a> {
    /// The raw text of the metric name and label set, exactly as in the
    /// input (e.g. `up{job="node"}`): a cheap cache key for the series.
    pub series: &'a str,
    /// The metric name (the sample name, e.g. `x_bucket`).
    pub name: &'a str,
    /// The raw label set including its braces, or `""` when absent.
    pub labels_text: &'a str,
    /// The value.
    pub value: f64,
    /// Timestamp in milliseconds (OpenMetrics seconds are converted,
    /// rounding down, and saturate at the `i64` range).
    pub timestamp_ms: Option<i64>,
    /// The exemplar (OpenMetrics).
    pub exemplar: Option<Exemplar<'a>>,
    /// The timestamp in nanoseconds, for exact ordering checks.
    pub(crate) timestamp_ns: Option<i128>,
    pub(crate) format: Format,
    pub(crate) line: usize,
}

impl<'a> SampleEntry<'a> {
    /// The labels, including `__name__`, with values unescaped. Fails on a
    /// repeated label name.
    pub fn labels(&self) -> Result<Labels, ParseError> {
        let mut v = Vec::with_capacity(8);
        v.push(Label::new(METRIC_NAME, self.name));
        self.push_labels(&mut v)?;
        finish_labels(v).map_err(|mut e| {
            e.line = self.line;
            e.column = self.name.chars().count() + 1;
            e
        })
    }

    /// The 1-based line number of this sample.
    pub fn line(&self) -> usize {
        self.line
    }

    /// Appends the labels of the label set (without `__name__`) to `out`,
    /// unsorted and unchecked for duplicates.
    pub(crate) fn push_labels(&self, out: &mut Vec<Label>) -> Result<(), ParseError> {
        push_label_set(self.labels_text, self.format, out)
    }
}

/// An exemplar: `# {labels} value [timestamp]` after an OpenMetrics sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Exemplar<'a> {
    /// The raw label set including braces.
    pub labels_text: &'a str,
    /// The exemplar value.
    pub value: f64,
    /// The exemplar timestamp in milliseconds.
    pub timestamp_ms: Option<i64>,
    pub(crate) line: usize,
}

impl Exemplar<'_> {
    /// The exemplar's labels, unescaped. Fails on a repeated label name.
    pub fn labels(&self) -> Result<Labels, ParseError> {
        let mut v = Vec::new();
        push_label_set(self.labels_text, Format::OpenMetrics, &mut v)?;
        finish_labels(v).map_err(|mut e| {
            e.line = self.line;
            e
        })
    }
}

fn finish_labels(mut v: Vec<Label>) -> Result<Labels, ParseError> {
    v.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(w) = v.windows(2).find(|w| w[0].name == w[1].name) {
        // Callers set the real line and column.
        return Err(ParseError {
            line: 1,
            column: 1,
            kind: ParseErrorKind::DuplicateLabel(w[0].name.clone()),
        });
    }
    // Sorted with unique names, checked just above.
    Labels::from_sorted(v).ok_or(ParseError {
        line: 1,
        column: 1,
        kind: ParseErrorKind::Expected("sorted labels"),
    })
}

/// Decodes a label set already validated by the parser.
fn push_label_set(text: &str, format: Format, out: &mut Vec<Label>) -> Result<(), ParseError> {
    if text.is_empty() {
        return Ok(());
    }
    let mut cur = Cursor { s: text.as_bytes(), i: 0 };
    // The text was validated by the parser; errors here would be internal.
    let (_, labels) = scan_label_set(&mut cur, format, Scan::Decode)
        .map_err(|(off, kind)| ParseError { line: 1, column: off + 1, kind })?;
    out.extend(labels);
    Ok(())
}

/// A streaming parser over an exposition in memory.
///
/// Strings in entries borrow from the input; no heap allocation happens per
/// sample (HELP text with escapes is the only allocation). Errors carry
/// 1-based line and column.
#[derive(Debug, Clone)]
pub struct Parser<'a> {
    input: &'a [u8],
    /// The longest valid UTF-8 prefix of `input` (all of it, normally).
    valid: &'a str,
    pos: usize,
    line: usize,
    format: Format,
    done: bool,
}

impl<'a> Parser<'a> {
    /// A parser over `input` in `format`.
    pub fn new(input: &'a [u8], format: Format) -> Self {
        // Validate UTF-8 once; a line reaching past the valid prefix is an
        // error when the parser gets to it.
        let valid = match std::str::from_utf8(input) {
            Ok(s) => s,
            Err(e) => std::str::from_utf8(&input[..e.valid_up_to()]).unwrap_or(""),
        };
        Parser { input, valid, pos: 0, line: 0, format, done: false }
    }

    /// The 1-based number of the line of the last entry returned (0 before
    /// the first).
    pub fn line_number(&self) -> usize {
        self.line
    }

    /// The format being parsed.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The next entry, `Ok(None)` at the end (for OpenMetrics, at `# EOF`).
    /// After an error the parser is finished.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        let r = self.next_inner();
        if r.is_err() {
            self.done = true;
        }
        r
    }

    fn next_inner(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        loop {
            if self.done {
                return Ok(None);
            }
            if self.pos >= self.input.len() {
                self.done = true;
                if self.format == Format::OpenMetrics {
                    return Err(ParseError {
                        line: self.line + 1,
                        column: 1,
                        kind: ParseErrorKind::MissingEof,
                    });
                }
                return Ok(None);
            }
            let start = self.pos;
            let (end, next) = match find_newline(&self.input[start..]) {
                Some(i) => (start + i, start + i + 1),
                None => (self.input.len(), self.input.len()),
            };
            self.pos = next;
            self.line += 1;
            let line = match self.valid.get(start..end) {
                Some(l) => l,
                None => {
                    let ok = self.valid.get(start..).unwrap_or("");
                    let col = ok.chars().count() + 1;
                    return Err(ParseError {
                        line: self.line,
                        column: col,
                        kind: ParseErrorKind::InvalidUtf8,
                    });
                }
            };
            let res = match self.format {
                Format::Text004 => text_line(line),
                Format::OpenMetrics => {
                    if line == "# EOF" {
                        self.done = true;
                        if self.pos < self.input.len() {
                            return Err(ParseError {
                                line: self.line + 1,
                                column: 1,
                                kind: ParseErrorKind::TextAfterEof,
                            });
                        }
                        return Ok(None);
                    }
                    om_line(line).map(Some)
                }
            };
            match res {
                Ok(Some(mut e)) => {
                    if let Entry::Sample(s) = &mut e {
                        s.line = self.line;
                        if let Some(x) = &mut s.exemplar {
                            x.line = self.line;
                        }
                    }
                    return Ok(Some(e));
                }
                Ok(None) => continue,
                Err((off, kind)) => {
                    let col = line[..off.min(line.len())].chars().count() + 1;
                    return Err(ParseError { line: self.line, column: col, kind });
                }
            }
        }
    }
}

/// The index of the first `\n` in `b`, eight bytes at a time.
fn find_newline(b: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const NL: u64 = LO * b'\n' as u64;
    let mut chunks = b.chunks_exact(8);
    let mut base = 0;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let x = u64::from_le_bytes(w) ^ NL;
        // A zero byte in x is a newline in the chunk.
        if (x.wrapping_sub(LO) & !x & HI) != 0 {
            return c.iter().position(|&x| x == b'\n').map(|i| base + i);
        }
        base += 8;
    }
    chunks.remainder().iter().position(|&x| x == b'\n').map(|i| base + i)
}

/// An error at a byte offset within the line.
type LineError = (usize, ParseErrorKind);

struct Cursor<'s> {
    s: &'s [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }
}

/// Byte classes: bit 0 metric-name start, bit 1 metric-name char, bit 2
/// label-name start, bit 3 label-name char.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let alpha = b.is_ascii_alphabetic() || b == b'_';
        let digit = b.is_ascii_digit();
        let colon = b == b':';
        t[i] = (alpha || colon) as u8
            | (((alpha || colon || digit) as u8) << 1)
            | ((alpha as u8) << 2)
            | (((alpha || digit) as u8) << 3);
        i += 1;
    }
    t
};

fn is_name_start(b: u8) -> bool {
    CLASS[b as usize] & 1 != 0
}
fn is_name_char(b: u8) -> bool {
    CLASS[b as usize] & 2 != 0
}
fn is_label_start(b: u8) -> bool {
    CLASS[b as usize] & 4 != 0
}
fn is_label_char(b: u8) -> bool {
    CLASS[b as usize] & 8 != 0
}

/// Scans a metric name at the cursor; returns its byte range. The name
/// ends at the first byte that is not a name character.
fn scan_metric_name(cur: &mut Cursor<'_>, line: &str) -> Result<(usize, usize), LineError> {
    let start = cur.i;
    match cur.peek() {
        Some(b) if is_name_start(b) => cur.i += 1,
        _ => {
            let tok = token_at(line, start);
            return Err(if tok.is_empty() {
                (start, ParseErrorKind::Expected("metric name"))
            } else {
                (start, ParseErrorKind::InvalidMetricName(tok.to_string()))
            });
        }
    }
    while matches!(cur.peek(), Some(b) if is_name_char(b)) {
        cur.i += 1;
    }
    Ok((start, cur.i))
}

/// The error for a metric name at `start` followed by the unexpected byte
/// at `pos`: a name with a bad character in it, or a missing separator.
fn bad_after_name(line: &str, start: usize, pos: usize) -> LineError {
    let b = line.as_bytes().get(pos).copied().unwrap_or(b' ');
    if b.is_ascii_graphic() || !b.is_ascii() {
        (start, ParseErrorKind::InvalidMetricName(token_at(line, start).to_string()))
    } else {
        (pos, ParseErrorKind::Expected("' ' after the metric name"))
    }
}

/// The run of bytes from `start` up to whitespace or end (for messages).
fn token_at(line: &str, start: usize) -> &str {
    let rest = line.get(start..).unwrap_or("");
    let end = rest.find([' ', '\t']).unwrap_or(rest.len());
    &rest[..end]
}

/// What [`scan_label_set`] does besides validating.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// Only validate (the hot path: no allocation, no counting).
    Validate,
    /// Also count the characters of names and unescaped values (exemplars).
    Count,
    /// Also decode the labels.
    Decode,
}

/// Scans a label set starting at `{`; see [`Scan`] for what else it does.
/// OpenMetrics: no whitespace, no trailing comma. Text 0.0.4: whitespace
/// between tokens, trailing comma allowed. Returns the character count
/// ([`Scan::Count`]) and the labels ([`Scan::Decode`]).
fn scan_label_set(
    cur: &mut Cursor<'_>,
    format: Format,
    mode: Scan,
) -> Result<(usize, Vec<Label>), LineError> {
    let om = format == Format::OpenMetrics;
    let mut out = Vec::new();
    let mut chars = 0usize;
    if !cur.eat(b'{') {
        return Err((cur.i, ParseErrorKind::Expected("'{'")));
    }
    if !om {
        cur.skip_ws();
    }
    if cur.eat(b'}') {
        return Ok((0, out));
    }
    loop {
        if !om {
            cur.skip_ws();
        }
        // Label name.
        let start = cur.i;
        match cur.peek() {
            Some(b) if is_label_start(b) => cur.i += 1,
            None => return Err((start, ParseErrorKind::Expected("label name"))),
            Some(_) => {
                let s = std::str::from_utf8(&cur.s[start..]).unwrap_or("");
                let end = s.find(['=', ',', '}', ' ', '"']).unwrap_or(s.len());
                return Err(if end == 0 {
                    (start, ParseErrorKind::Expected("label name"))
                } else {
                    (start, ParseErrorKind::InvalidLabelName(s[..end].to_string()))
                });
            }
        }
        while matches!(cur.peek(), Some(b) if is_label_char(b)) {
            cur.i += 1;
        }
        let name_end = cur.i;
        if !om {
            cur.skip_ws();
        }
        if !cur.eat(b'=') {
            if matches!(cur.peek(), Some(b) if !matches!(b, b'=' | b',' | b'}' | b'"' | b' ')) {
                let s = std::str::from_utf8(&cur.s[start..]).unwrap_or("");
                let end = s.find(['=', ',', '}', ' ', '"']).unwrap_or(s.len());
                return Err((start, ParseErrorKind::InvalidLabelName(s[..end].to_string())));
            }
            return Err((cur.i, ParseErrorKind::Expected("'=' after label name")));
        }
        if !om {
            cur.skip_ws();
        }
        if !cur.eat(b'"') {
            return Err((cur.i, ParseErrorKind::Expected("'\"' to open the label value")));
        }
        let vstart = cur.i;
        let mut escapes = false;
        loop {
            match cur.peek() {
                None => return Err((vstart - 1, ParseErrorKind::UnterminatedLabelValue)),
                Some(b'"') => break,
                Some(b'\\') => {
                    escapes = true;
                    cur.i += 1;
                    if cur.peek().is_none() {
                        return Err((vstart - 1, ParseErrorKind::UnterminatedLabelValue));
                    }
                    cur.i += 1;
                }
                Some(_) => cur.i += 1,
            }
        }
        let vend = cur.i;
        cur.i += 1; // closing quote
        if mode != Scan::Validate {
            // Inputs are &str slices, and the cut points are ASCII bytes.
            let name = std::str::from_utf8(&cur.s[start..name_end]).unwrap_or("");
            let raw = std::str::from_utf8(&cur.s[vstart..vend]).unwrap_or("");
            if mode == Scan::Decode {
                let value = if escapes { unescape_label(raw) } else { raw.to_string() };
                out.push(Label { name: name.to_string(), value });
            } else {
                chars += name.len() + unescaped_chars(raw);
            }
        }
        if !om {
            cur.skip_ws();
        }
        match cur.peek() {
            Some(b',') => {
                cur.i += 1;
                if om && cur.peek() == Some(b'}') {
                    return Err((cur.i, ParseErrorKind::Expected("label name after ','")));
                }
                if !om {
                    cur.skip_ws();
                    if cur.eat(b'}') {
                        return Ok((chars, out));
                    }
                }
            }
            Some(b'}') => {
                cur.i += 1;
                return Ok((chars, out));
            }
            _ => return Err((cur.i, ParseErrorKind::Expected("',' or '}' after label value"))),
        }
    }
}

/// Unescapes `\\`, `\"` and `\n`; other backslash sequences stay as they
/// are (as Prometheus and the OpenMetrics reference parser do).
fn unescape_label(raw: &str) -> String {
    let mut s = String::with_capacity(raw.len());
    let mut it = raw.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('\\') => s.push('\\'),
                Some('"') => s.push('"'),
                Some('n') => s.push('\n'),
                Some(o) => {
                    s.push('\\');
                    s.push(o);
                }
                None => s.push('\\'),
            }
        } else {
            s.push(c);
        }
    }
    s
}

/// Characters of the unescaped form of a label value.
fn unescaped_chars(raw: &str) -> usize {
    let mut n = 0;
    let mut it = raw.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('\\' | '"' | 'n') => n += 1,
                Some(_) => n += 2,
                None => n += 1,
            }
        } else {
            n += 1;
        }
    }
    n
}

/// Unescapes HELP text: `\\` and `\n` (plus `\"` in OpenMetrics); other
/// sequences stay as they are.
fn unescape_help(text: &str, om: bool) -> Cow<'_, str> {
    if !text.contains('\\') {
        return Cow::Borrowed(text);
    }
    let mut s = String::with_capacity(text.len());
    let mut it = text.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            s.push(c);
            continue;
        }
        match it.next() {
            Some('\\') => s.push('\\'),
            Some('n') => s.push('\n'),
            Some('"') if om => s.push('"'),
            Some(o) => {
                s.push('\\');
                s.push(o);
            }
            None => s.push('\\'),
        }
    }
    Cow::Owned(s)
}

// ---------------------------------------------------------------- text 0.0.4

fn text_line(line: &str) -> Result<Option<Entry<'_>>, LineError> {
    let b = line.as_bytes();
    let mut cur = Cursor { s: b, i: 0 };
    cur.skip_ws();
    match cur.peek() {
        None => Ok(None),
        Some(b'#') => text_comment(line, cur.i + 1).map(Some),
        Some(_) => text_sample(line, cur).map(|s| Some(Entry::Sample(s))),
    }
}

fn text_comment(line: &str, after_hash: usize) -> Result<Entry<'_>, LineError> {
    let mut cur = Cursor { s: line.as_bytes(), i: after_hash };
    cur.skip_ws();
    let rest = &line[cur.i..];
    let kw = if rest.starts_with("HELP") {
        "HELP"
    } else if rest.starts_with("TYPE") {
        "TYPE"
    } else {
        return Ok(Entry::Comment(&line[after_hash..]));
    };
    cur.i += 4;
    if !matches!(cur.peek(), Some(b' ' | b'\t')) {
        // "# HELPER" or "# HELP" alone: an ordinary comment.
        return Ok(Entry::Comment(&line[after_hash..]));
    }
    cur.skip_ws();
    let (ns, ne) = scan_metric_name(&mut cur, line)?;
    let name = &line[ns..ne];
    match cur.peek() {
        None | Some(b' ' | b'\t') => {}
        Some(_) => return Err(bad_after_name(line, ns, cur.i)),
    }
    if kw == "HELP" {
        // One separator; the rest of the line is the text.
        if matches!(cur.peek(), Some(b' ' | b'\t')) {
            cur.i += 1;
        }
        let text = &line[cur.i..];
        Ok(Entry::Help { name, text: unescape_help(text, false) })
    } else {
        cur.skip_ws();
        let ts = cur.i;
        while matches!(cur.peek(), Some(b) if b != b' ' && b != b'\t') {
            cur.i += 1;
        }
        let word = &line[ts..cur.i];
        cur.skip_ws();
        if cur.peek().is_some() {
            return Err((cur.i, ParseErrorKind::TrailingText(line[cur.i..].to_string())));
        }
        match MetricType::parse(word, Format::Text004) {
            Some(kind) => Ok(Entry::Type { name, kind }),
            None if word.is_empty() => Err((ts, ParseErrorKind::Expected("metric type"))),
            None => Err((ts, ParseErrorKind::InvalidType(word.to_string()))),
        }
    }
}

fn text_sample<'a>(line: &'a str, mut cur: Cursor<'_>) -> Result<SampleEntry<'a>, LineError> {
    let (ns, ne) = scan_metric_name(&mut cur, line)?;
    let name = &line[ns..ne];
    let mut ws = cur.i;
    cur.skip_ws();
    let mut labels_text = "";
    let mut series_end = ne;
    if cur.peek() == Some(b'{') {
        let ls = cur.i;
        scan_label_set(&mut cur, Format::Text004, Scan::Validate)?;
        labels_text = &line[ls..cur.i];
        series_end = cur.i;
        ws = cur.i;
        cur.skip_ws();
    }
    match cur.peek() {
        None => return Err((cur.i, ParseErrorKind::Expected("value"))),
        Some(_) if cur.i == ws => {
            return Err(bad_after_name(line, ns, cur.i));
        }
        Some(_) => {}
    }
    let vs = cur.i;
    while matches!(cur.peek(), Some(b) if b != b' ' && b != b'\t') {
        cur.i += 1;
    }
    let vtext = &line[vs..cur.i];
    let value = parse_go_float(vtext)
        .ok_or_else(|| (vs, ParseErrorKind::InvalidValue(vtext.to_string())))?;
    cur.skip_ws();
    let mut timestamp_ms = None;
    if cur.peek().is_some() {
        let ts = cur.i;
        while matches!(cur.peek(), Some(b) if b != b' ' && b != b'\t') {
            cur.i += 1;
        }
        let t = &line[ts..cur.i];
        timestamp_ms = Some(
            parse_go_int(t).ok_or_else(|| (ts, ParseErrorKind::InvalidTimestamp(t.to_string())))?,
        );
        cur.skip_ws();
        if cur.peek().is_some() {
            return Err((cur.i, ParseErrorKind::TrailingText(line[cur.i..].to_string())));
        }
    }
    Ok(SampleEntry {
        series: &line[ns..series_end],
        name,
        labels_text,
        value,
        timestamp_ms,
        exemplar: None,
        timestamp_ns: timestamp_ms.map(|t| i128::from(t) * 1_000_000),
        format: Format::Text004,
        line: 0,
    })
}

/// Go's `strconv.ParseInt(s, 10, 64)`: optional sign, decimal digits.
fn parse_go_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

// ------------------------------------------------------------- OpenMetrics

fn om_line(line: &str) -> Result<Entry<'_>, LineError> {
    if line.is_empty() {
        return Err((0, ParseErrorKind::BlankLine));
    }
    if line.as_bytes()[0] == b'#' {
        return om_metadata(line);
    }
    om_sample(line).map(Entry::Sample)
}

fn om_metadata(line: &str) -> Result<Entry<'_>, LineError> {
    let kw = if line.starts_with("# HELP") {
        "HELP"
    } else if line.starts_with("# TYPE") {
        "TYPE"
    } else if line.starts_with("# UNIT") {
        "UNIT"
    } else {
        return Err((0, ParseErrorKind::InvalidMetadataLine));
    };
    let mut cur = Cursor { s: line.as_bytes(), i: 6 };
    if !cur.eat(b' ') {
        if cur.peek().is_none() {
            return Err((cur.i, ParseErrorKind::Expected("' ' and a metric name")));
        }
        return Err((0, ParseErrorKind::InvalidMetadataLine));
    }
    let (ns, ne) = scan_metric_name(&mut cur, line)?;
    let name = &line[ns..ne];
    match cur.peek() {
        Some(b' ') => cur.i += 1,
        None => return Err((cur.i, ParseErrorKind::Expected("' ' after the metric name"))),
        Some(_) => return Err(bad_after_name(line, ns, cur.i)),
    }
    let rest = &line[cur.i..];
    match kw {
        "HELP" => Ok(Entry::Help { name, text: unescape_help(rest, true) }),
        "TYPE" => match MetricType::parse(rest, Format::OpenMetrics) {
            Some(kind) => Ok(Entry::Type { name, kind }),
            None => Err((cur.i, ParseErrorKind::InvalidType(rest.to_string()))),
        },
        _ => {
            if let Some(p) = rest.bytes().position(|b| !is_name_char(b)) {
                return Err((cur.i + p, ParseErrorKind::InvalidUnit(rest.to_string())));
            }
            Ok(Entry::Unit { name, unit: rest })
        }
    }
}

/// The token from the cursor up to the next space (or end of line).
fn om_token<'a>(line: &'a str, cur: &mut Cursor<'_>) -> (usize, &'a str) {
    let s = cur.i;
    while matches!(cur.peek(), Some(b) if b != b' ') {
        cur.i += 1;
    }
    (s, &line[s..cur.i])
}

/// An OpenMetrics number: decimal or exponent form, or ±Inf/Infinity/NaN
/// in any letter case; no hexadecimal, no `_`, no spaces.
fn parse_om_number(s: &str) -> Option<f64> {
    let first = *s.as_bytes().first()?;
    if !(first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.' | b'i' | b'I' | b'n' | b'N'))
    {
        return None;
    }
    s.parse::<f64>().ok()
}

/// An OpenMetrics timestamp (decimal seconds, optionally with exponent) in
/// nanoseconds, truncated toward negative infinity at the nanosecond and
/// saturated at ±10^30 ns.
pub(crate) fn parse_om_timestamp_ns(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    // Fast path: whole seconds.
    if !b.is_empty() && b.len() <= 18 && b.iter().all(u8::is_ascii_digit) {
        let secs = b.iter().fold(0i64, |acc, &d| acc * 10 + i64::from(d - b'0'));
        return Some(i128::from(secs) * 1_000_000_000);
    }
    let mut i = 0;
    let neg = match b.first() {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut mant: i128 = 0;
    let mut mant_digits = 0usize; // significant digits kept
    let mut exp10: i64 = 0; // value = mant * 10^exp10
    let mut any = false;
    const MAX_DIGITS: usize = 36;
    while i < b.len() && b[i].is_ascii_digit() {
        any = true;
        if mant_digits < MAX_DIGITS {
            mant = mant * 10 + i128::from(b[i] - b'0');
            if mant != 0 {
                mant_digits += 1;
            }
        } else {
            exp10 += 1;
        }
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            any = true;
            if mant_digits < MAX_DIGITS {
                mant = mant * 10 + i128::from(b[i] - b'0');
                if mant != 0 {
                    mant_digits += 1;
                }
                exp10 -= 1;
            }
            i += 1;
        }
    }
    if !any {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        let eneg = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let es = i;
        let mut e: i64 = 0;
        while i < b.len() && b[i].is_ascii_digit() {
            e = (e * 10 + i64::from(b[i] - b'0')).min(1_000_000);
            i += 1;
        }
        if i == es {
            return None;
        }
        exp10 += if eneg { -e } else { e };
    }
    if i != b.len() {
        return None;
    }
    // ns = mant * 10^(exp10 + 9), floored.
    const LIMIT: i128 = 1_000_000_000_000_000_000_000_000_000_000; // 1e30
    let mut e = exp10 + 9;
    let mut v = mant;
    let mut inexact = false;
    while e > 0 && v != 0 {
        if v > LIMIT {
            v = LIMIT;
            break;
        }
        v *= 10;
        e -= 1;
    }
    while e < 0 && v != 0 {
        if v % 10 != 0 {
            inexact = true;
        }
        v /= 10;
        e += 1;
    }
    let v = v.min(LIMIT);
    Some(if neg { -v - i128::from(inexact) } else { v })
}

/// Nanoseconds to milliseconds, rounding down and saturating.
pub(crate) fn ns_to_ms(ns: i128) -> i64 {
    if let Ok(small) = i64::try_from(ns) {
        return small.div_euclid(1_000_000);
    }
    let ms = ns.div_euclid(1_000_000);
    ms.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

fn om_timestamp(line: &str, start: usize, t: &str) -> Result<i128, LineError> {
    if t.is_empty() {
        return Err((start, ParseErrorKind::Expected("timestamp")));
    }
    parse_om_timestamp_ns(t)
        .ok_or_else(|| (start, ParseErrorKind::InvalidTimestamp(token_at(line, start).to_string())))
}

fn om_sample(line: &str) -> Result<SampleEntry<'_>, LineError> {
    let mut cur = Cursor { s: line.as_bytes(), i: 0 };
    let (ns, ne) = scan_metric_name(&mut cur, line)?;
    let name = &line[ns..ne];
    let mut labels_text = "";
    if cur.peek() == Some(b'{') {
        scan_label_set(&mut cur, Format::OpenMetrics, Scan::Validate)?;
        labels_text = &line[ne..cur.i];
    }
    let series = &line[..cur.i];
    match cur.peek() {
        Some(b' ') => cur.i += 1,
        None => return Err((cur.i, ParseErrorKind::Expected("' ' and a value"))),
        Some(_) if labels_text.is_empty() => return Err(bad_after_name(line, 0, cur.i)),
        Some(_) => return Err((cur.i, ParseErrorKind::Expected("' ' after the label set"))),
    }
    let (vs, vtext) = om_token(line, &mut cur);
    if vtext.is_empty() {
        return Err((vs, ParseErrorKind::Expected("value")));
    }
    let value = parse_om_number(vtext)
        .ok_or_else(|| (vs, ParseErrorKind::InvalidValue(vtext.to_string())))?;
    let mut timestamp_ns = None;
    let mut exemplar = None;
    if cur.eat(b' ') {
        if cur.peek() != Some(b'#') {
            let (ts, t) = om_token(line, &mut cur);
            timestamp_ns = Some(om_timestamp(line, ts, t)?);
            if cur.eat(b' ') {
                if cur.peek() != Some(b'#') {
                    return Err((cur.i, ParseErrorKind::TrailingText(line[cur.i..].to_string())));
                }
            } else {
                debug_assert!(cur.peek().is_none());
            }
        }
        if cur.peek() == Some(b'#') {
            exemplar = Some(om_exemplar(line, &mut cur)?);
        }
    }
    if cur.peek().is_some() {
        return Err((cur.i, ParseErrorKind::TrailingText(line[cur.i..].to_string())));
    }
    Ok(SampleEntry {
        series,
        name,
        labels_text,
        value,
        timestamp_ms: timestamp_ns.map(ns_to_ms),
        exemplar,
        timestamp_ns,
        format: Format::OpenMetrics,
        line: 0,
    })
}

fn om_exemplar<'a>(line: &'a str, cur: &mut Cursor<'_>) -> Result<Exemplar<'a>, LineError> {
    cur.i += 1; // '#'
    if !cur.eat(b' ') {
        return Err((cur.i, ParseErrorKind::Expected("' ' after '#' of the exemplar")));
    }
    if cur.peek() != Some(b'{') {
        return Err((cur.i, ParseErrorKind::Expected("'{' to open the exemplar label set")));
    }
    let ls = cur.i;
    let (chars, _) = scan_label_set(cur, Format::OpenMetrics, Scan::Count)?;
    if chars > MAX_EXEMPLAR_LABELS_CHARS {
        return Err((ls, ParseErrorKind::ExemplarTooLong(chars)));
    }
    let labels_text = &line[ls..cur.i];
    if !cur.eat(b' ') {
        return Err((cur.i, ParseErrorKind::Expected("' ' and a value after the exemplar labels")));
    }
    let (vs, vtext) = om_token(line, cur);
    if vtext.is_empty() {
        return Err((vs, ParseErrorKind::Expected("exemplar value")));
    }
    let value = parse_om_number(vtext)
        .ok_or_else(|| (vs, ParseErrorKind::InvalidValue(vtext.to_string())))?;
    let mut timestamp_ms = None;
    if cur.eat(b' ') {
        let (ts, t) = om_token(line, cur);
        timestamp_ms = Some(ns_to_ms(om_timestamp(line, ts, t)?));
    }
    Ok(Exemplar { labels_text, value, timestamp_ms, line: 0 })
}

impl fmt::Display for Entry<'_> {
    /// A short description, for messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::Help { name, .. } => write!(f, "HELP {name}"),
            Entry::Type { name, kind } => write!(f, "TYPE {name} {kind}"),
            Entry::Unit { name, unit } => write!(f, "UNIT {name} {unit}"),
            Entry::Sample(s) => write!(f, "sample {}", s.series),
            Entry::Comment(c) => write!(f, "comment {c:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &str, format: Format) -> Result<Vec<Entry<'_>>, ParseError> {
        let mut p = Parser::new(input.as_bytes(), format);
        let mut v = Vec::new();
        while let Some(e) = p.next()? {
            v.push(e);
        }
        Ok(v)
    }

    fn sample(e: &Entry<'_>) -> SampleEntry<'static> {
        match e {
            Entry::Sample(s) => SampleEntry {
                series: Box::leak(s.series.to_string().into_boxed_str()),
                name: Box::leak(s.name.to_string().into_boxed_str()),
                labels_text: Box::leak(s.labels_text.to_string().into_boxed_str()),
                value: s.value,
                timestamp_ms: s.timestamp_ms,
                exemplar: None,
                timestamp_ns: s.timestamp_ns,
                format: s.format,
                line: s.line,
            },
            other => panic!("not a sample: {other:?}"),
        }
    }

    #[test]
    fn text_samples() {
        let v = all(
            "# a comment\n\nfoo 1\n  bar{a=\"x\",b = \"y\\\"\\n\\\\\\q\" , } -Inf 123\nbaz{} NaN\nqux\t2e3\t-5\n",
            Format::Text004,
        )
        .unwrap();
        assert_eq!(v[0], Entry::Comment(" a comment"));
        let s = sample(&v[1]);
        assert_eq!((s.name, s.value, s.timestamp_ms), ("foo", 1.0, None));
        let s = sample(&v[2]);
        assert_eq!(s.series, "bar{a=\"x\",b = \"y\\\"\\n\\\\\\q\" , }");
        assert_eq!(s.value, f64::NEG_INFINITY);
        assert_eq!(s.timestamp_ms, Some(123));
        let l = s.labels().unwrap();
        assert_eq!(l.get("b"), Some("y\"\n\\\\q"));
        assert_eq!(l.get("__name__"), Some("bar"));
        assert!(sample(&v[3]).value.is_nan());
        let s = sample(&v[4]);
        assert_eq!((s.value, s.timestamp_ms), (2000.0, Some(-5)));
    }

    #[test]
    fn text_metadata() {
        let v = all(
            "# HELP a some\\\\ \\n text\\t\n#\tTYPE a counter \n# HELPER x\n# HELP b\n",
            Format::Text004,
        )
        .unwrap();
        assert_eq!(v[0], Entry::Help { name: "a", text: Cow::Owned("some\\ \n text\\t".into()) });
        assert_eq!(v[1], Entry::Type { name: "a", kind: MetricType::Counter });
        assert_eq!(v[2], Entry::Comment(" HELPER x"));
        assert_eq!(v[3], Entry::Help { name: "b", text: Cow::Borrowed("") });
    }

    #[test]
    fn text_errors() {
        let cases: &[(&str, usize, usize, &str)] = &[
            ("a{b=\"c\" d=\"e\"} 1\n", 1, 9, "expected ',' or '}' after label value"),
            ("\n\nfoo{bar} 1\n", 3, 8, "expected '=' after label name"),
            ("foo 1 x\n", 1, 7, "invalid timestamp \"x\""),
            ("foo abc\n", 1, 5, "invalid value \"abc\""),
            ("foo\n", 1, 4, "expected value"),
            ("0foo 1\n", 1, 1, "invalid metric name \"0foo\""),
            ("foo{a=\"b} 1\n", 1, 7, "unterminated label value"),
            ("foo 1 2 3\n", 1, 9, "unexpected text \"3\" at end of line"),
            ("# TYPE foo bar\n", 1, 12, "invalid metric type \"bar\""),
            ("foo{1a=\"x\"} 1\n", 1, 5, "invalid label name \"1a\""),
            ("foo{a=x} 1\n", 1, 7, "expected '\"' to open the label value"),
            ("fo-o 1\n", 1, 1, "invalid metric name \"fo-o\""),
        ];
        for &(input, line, col, msg) in cases {
            let e = all(input, Format::Text004).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("line {line}, column {col}: {msg}"),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn om_lines() {
        let v = all(
            "# HELP a x\\\"y\n# TYPE a counter\n# UNIT a_s s\na_total{b=\"c\"} 1 1.5 # {t=\"1\"} 2 3\n# EOF\n",
            Format::OpenMetrics,
        )
        .unwrap();
        assert_eq!(v[0], Entry::Help { name: "a", text: Cow::Owned("x\"y".into()) });
        assert_eq!(v[2], Entry::Unit { name: "a_s", unit: "s" });
        let Entry::Sample(s) = &v[3] else { panic!() };
        assert_eq!(s.timestamp_ms, Some(1500));
        let ex = s.exemplar.as_ref().unwrap();
        assert_eq!((ex.value, ex.timestamp_ms), (2.0, Some(3000)));
        assert_eq!(ex.labels().unwrap().get("t"), Some("1"));
    }

    #[test]
    fn om_errors() {
        let cases: &[(&str, usize, usize, &str)] = &[
            ("a 1\n", 2, 1, "missing \"# EOF\" at end of input"),
            ("a 1\n# EOF\n\n", 3, 1, "text after \"# EOF\""),
            ("a 1\n\n# EOF\n", 2, 1, "blank line (not allowed in OpenMetrics)"),
            (
                "# foo\n# EOF\n",
                1,
                1,
                "invalid metadata line (OpenMetrics allows only # HELP, # TYPE, # UNIT and # EOF)",
            ),
            ("a  1\n# EOF\n", 1, 3, "expected value"),
            ("a 0x1\n# EOF\n", 1, 3, "invalid value \"0x1\""),
            ("a 1 NaN\n# EOF\n", 1, 5, "invalid timestamp \"NaN\""),
            ("a{b=\"c\",} 1\n# EOF\n", 1, 9, "expected label name after ','"),
            ("a{b = \"c\"} 1\n# EOF\n", 1, 4, "expected '=' after label name"),
            ("a\t1\n# EOF\n", 1, 2, "expected ' ' after the metric name"),
            ("# TYPE a\tgauge\n# EOF\n", 1, 9, "expected ' ' after the metric name"),
            ("a-b 1\n# EOF\n", 1, 1, "invalid metric name \"a-b\""),
        ];
        for &(input, line, col, msg) in cases {
            let e = all(input, Format::OpenMetrics).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("line {line}, column {col}: {msg}"),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn om_timestamps() {
        assert_eq!(parse_om_timestamp_ns("1"), Some(1_000_000_000));
        assert_eq!(parse_om_timestamp_ns("1.5e3"), Some(1_500_000_000_000));
        assert_eq!(parse_om_timestamp_ns("-1.1"), Some(-1_100_000_000));
        assert_eq!(parse_om_timestamp_ns("0.0000000001"), Some(0));
        assert_eq!(parse_om_timestamp_ns("-0.0000000001"), Some(-1));
        assert_eq!(parse_om_timestamp_ns("000"), Some(0));
        assert_eq!(
            parse_om_timestamp_ns("12345678901234567890.1234567890"),
            Some(12_345_678_901_234_567_890_123_456_789)
        );
        assert_eq!(parse_om_timestamp_ns("1e100"), Some(1_000_000_000_000_000_000_000_000_000_000));
        for bad in ["", "z", "1z", "1_2", "1.1.1", "NaN", "Inf", "0x1p-3", ".", "1e", "-"] {
            assert_eq!(parse_om_timestamp_ns(bad), None, "{bad}");
        }
        assert_eq!(ns_to_ms(-1), -1);
        assert_eq!(ns_to_ms(i128::MAX), i64::MAX);
    }
}
