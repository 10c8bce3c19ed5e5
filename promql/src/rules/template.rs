//! The Go text/template subset that Prometheus rule labels and annotations
//! use: text, `{{ pipeline }}` actions with `{{-`/`-}}` trimming, comments,
//! `if`/`else if`/`else`/`end`, variables (`$labels`, `$value`,
//! `$externalLabels`, `$externalURL`) and fields (`.Labels.x`, `.Value`),
//! string and number literals, pipes, parentheses, and the functions
//! `humanize`, `humanize1024`, `humanizePercentage`, `humanizeDuration`,
//! `humanizeTimestamp`, `printf`, `toUpper`, `toLower`, `title`,
//! `stripPort`, `reReplaceAll`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `and`,
//! `or`, `not`.
//!
//! Missing map keys print as the empty string (Prometheus runs templates
//! with `missingkey=zero`). `query` and `range` are not supported: a
//! template using them fails to parse, so `check` reports it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

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
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Action(Pipeline),
    If { cond: Pipeline, then: Vec<Node>, els: Vec<Node> },
}

type Pipeline = Vec<Cmd>;

#[derive(Debug, Clone, PartialEq)]
struct Cmd {
    args: Vec<Arg>,
    offset: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Func(&'static str),
    /// A variable (`labels`, `value`, ...; `""` for `.`) and a field chain.
    Var(String, Vec<String>),
    Str(String),
    Num(f64),
    Bool(bool),
    Paren(Pipeline),
}

const FUNCS: &[&str] = &[
    "humanize", "humanize1024", "humanizePercentage", "humanizeDuration", "humanizeTimestamp", "printf", "toUpper",
    "toLower", "title", "stripPort", "reReplaceAll", "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not",
];

const VARS: &[&str] = &["labels", "value", "externalLabels", "externalURL"];
const FIELDS: &[&str] = &["Labels", "Value", "ExternalLabels", "ExternalURL"];

/// Longest template accepted, in bytes, and deepest `if`/parenthesis nesting.
const MAX_LEN: usize = 64 * 1024;
const MAX_DEPTH: usize = 32;

impl Template {
    /// Parses template text.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        if source.len() > MAX_LEN {
            return Err(TemplateError { offset: 0, message: format!("template longer than {MAX_LEN} bytes") });
        }
        let items = split(source)?;
        let mut pos = 0;
        let (nodes, end) = build(&items, &mut pos, 0)?;
        if let Some((off, kw)) = end {
            return Err(TemplateError { offset: off, message: format!("unexpected {{{{{kw}}}}}") });
        }
        Ok(Template { source: source.to_string(), nodes })
    }

    /// The text it was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the template is plain text (no actions).
    pub fn is_static(&self) -> bool {
        self.nodes.iter().all(|n| matches!(n, Node::Text(_)))
    }

    /// Expands the template. Errors at run time (a function given the wrong
    /// type) are returned as text, as Prometheus does:
    /// `<error expanding template: ...>`.
    pub fn render(&self, data: &TemplateData) -> String {
        let mut out = String::new();
        match exec(&self.nodes, data, &mut out) {
            Ok(()) => out,
            Err(e) => format!("<error expanding template: {e}>"),
        }
    }
}

/// One lexical piece of template text.
enum Item {
    Text(String),
    Action { offset: usize, body: String },
}

fn split(src: &str) -> Result<Vec<Item>, TemplateError> {
    let mut items = Vec::new();
    let mut rest = 0;
    let mut trim_next = false;
    while rest < src.len() {
        let Some(open) = src[rest..].find("{{").map(|i| i + rest) else {
            let mut t = &src[rest..];
            if trim_next {
                t = t.trim_start();
            }
            items.push(Item::Text(t.to_string()));
            break;
        };
        let mut text = &src[rest..open];
        if trim_next {
            text = text.trim_start();
        }
        let mut body_start = open + 2;
        if src[body_start..].starts_with("- ") || src[body_start..].starts_with("-\t") || src[body_start..].starts_with("-\n") {
            text = text.trim_end();
            body_start += 1;
        }
        items.push(Item::Text(text.to_string()));
        // Find the closing braces outside string literals.
        let close = find_close(src, body_start)
            .ok_or_else(|| TemplateError { offset: open, message: "unclosed action".into() })?;
        let mut body_end = close;
        trim_next = false;
        if src[..close].ends_with(" -") || src[..close].ends_with("\t-") || src[..close].ends_with("\n-") {
            body_end -= 1;
            trim_next = true;
        }
        let raw = &src[body_start..body_end.max(body_start)];
        let body = raw.trim();
        let lead = raw.len() - raw.trim_start().len();
        if !(body.starts_with("/*") && body.ends_with("*/")) {
            items.push(Item::Action { offset: body_start + lead, body: body.to_string() });
        }
        rest = close + 2;
    }
    Ok(items)
}

fn find_close(src: &str, from: usize) -> Option<usize> {
    let b = src.as_bytes();
    let mut i = from;
    while i + 1 < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if b[i + 1] == b'}' => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

type Block = (Vec<Node>, Option<(usize, String)>);

/// Builds nodes until `{{end}}`/`{{else ...}}` (returned) or the end.
fn build(items: &[Item], pos: &mut usize, depth: usize) -> Result<Block, TemplateError> {
    if depth > MAX_DEPTH {
        return Err(TemplateError { offset: 0, message: "template nested too deeply".into() });
    }
    let mut nodes = Vec::new();
    while *pos < items.len() {
        let item = &items[*pos];
        *pos += 1;
        match item {
            Item::Text(t) => {
                if !t.is_empty() {
                    nodes.push(Node::Text(t.clone()));
                }
            }
            Item::Action { offset, body } => {
                let word = body.split_whitespace().next().unwrap_or("");
                match word {
                    "end" | "else" => return Ok((nodes, Some((*offset, body.clone())))),
                    "if" => nodes.push(parse_if(&body[2..], *offset + 2, items, pos, depth)?),
                    "range" | "with" | "define" | "template" | "block" | "break" | "continue" => {
                        return Err(TemplateError { offset: *offset, message: format!("{word:?} is not supported") })
                    }
                    "" => return Err(TemplateError { offset: *offset, message: "missing value for command".into() }),
                    _ => nodes.push(Node::Action(parse_pipeline(body, *offset, depth)?)),
                }
            }
        }
    }
    Ok((nodes, None))
}

fn parse_if(cond: &str, offset: usize, items: &[Item], pos: &mut usize, depth: usize) -> Result<Node, TemplateError> {
    let cond = parse_pipeline(cond, offset, depth)?;
    let (then, end) = build(items, pos, depth + 1)?;
    let Some((off, kw)) = end else {
        return Err(TemplateError { offset, message: "unexpected EOF: missing {{end}}".into() });
    };
    let els = if kw == "end" {
        Vec::new()
    } else if kw == "else" {
        let (els, end) = build(items, pos, depth + 1)?;
        match end {
            Some((_, k)) if k == "end" => els,
            _ => return Err(TemplateError { offset: off, message: "expected {{end}} after {{else}}".into() }),
        }
    } else if let Some(rest) = kw.strip_prefix("else if ") {
        vec![parse_if(rest, off + 8, items, pos, depth + 1)?]
    } else {
        return Err(TemplateError { offset: off, message: format!("unexpected {{{{{kw}}}}}") });
    };
    Ok(Node::If { cond, then, els })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Pipe,
    Open,
    Close,
    Word(String),
    Str(String),
    Num(f64),
}

fn tokenize(s: &str, base: usize) -> Result<Vec<(usize, Tok)>, TemplateError> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |i: usize, m: String| TemplateError { offset: base + i, message: m };
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'|' => {
                out.push((i, Tok::Pipe));
                i += 1;
            }
            b'(' => {
                out.push((i, Tok::Open));
                i += 1;
            }
            b')' => {
                out.push((i, Tok::Close));
                i += 1;
            }
            b'"' => {
                let (v, n) = crate::lexer::string(&s[i..]).map_err(|e| err(i + e.offset, e.message))?;
                out.push((i, Tok::Str(v)));
                i += n;
            }
            b'`' => {
                let end = s[i + 1..].find('`').ok_or_else(|| err(i, "unterminated raw string".into()))?;
                out.push((i, Tok::Str(s[i + 1..i + 1 + end].to_string())));
                i += end + 2;
            }
            b'0'..=b'9' | b'-' | b'+' => {
                let end = s[i..].find(|ch: char| ch.is_whitespace() || ch == ')' || ch == '|').map_or(s.len(), |e| e + i);
                let v: f64 = s[i..end].parse().map_err(|_| err(i, format!("bad number syntax: {:?}", &s[i..end])))?;
                out.push((i, Tok::Num(v)));
                i = end;
            }
            b'$' | b'.' | b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let end = s[i..]
                    .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_' || ch == '.' || ch == '$'))
                    .map_or(s.len(), |e| e + i);
                out.push((i, Tok::Word(s[i..end].to_string())));
                i = end;
            }
            _ => return Err(err(i, format!("unexpected {:?} in command", c as char))),
        }
    }
    Ok(out)
}

fn parse_pipeline(s: &str, base: usize, depth: usize) -> Result<Pipeline, TemplateError> {
    let toks = tokenize(s, base)?;
    let mut pos = 0;
    let p = pipeline(&toks, &mut pos, base, depth)?;
    if pos < toks.len() {
        return Err(TemplateError { offset: base + toks[pos].0, message: "unexpected \")\" in command".into() });
    }
    Ok(p)
}

fn pipeline(toks: &[(usize, Tok)], pos: &mut usize, base: usize, depth: usize) -> Result<Pipeline, TemplateError> {
    if depth > MAX_DEPTH {
        return Err(TemplateError { offset: base, message: "template nested too deeply".into() });
    }
    let mut cmds = Vec::new();
    loop {
        let offset = base + toks.get(*pos).map_or(0, |t| t.0);
        let mut args = Vec::new();
        while let Some((off, t)) = toks.get(*pos) {
            let off = base + off;
            match t {
                Tok::Pipe | Tok::Close => break,
                Tok::Open => {
                    *pos += 1;
                    let inner = pipeline(toks, pos, base, depth + 1)?;
                    if !matches!(toks.get(*pos), Some((_, Tok::Close))) {
                        return Err(TemplateError { offset: off, message: "unclosed left paren".into() });
                    }
                    *pos += 1;
                    args.push(Arg::Paren(inner));
                    continue;
                }
                Tok::Str(v) => args.push(Arg::Str(v.clone())),
                Tok::Num(v) => args.push(Arg::Num(*v)),
                Tok::Word(w) => args.push(word(w, off)?),
            }
            *pos += 1;
        }
        if args.is_empty() {
            return Err(TemplateError { offset, message: "missing value for command".into() });
        }
        if args.len() > 1 && !matches!(args[0], Arg::Func(_)) {
            return Err(TemplateError { offset, message: "can't give argument to non-function".into() });
        }
        cmds.push(Cmd { args, offset });
        match toks.get(*pos) {
            Some((_, Tok::Pipe)) => *pos += 1,
            _ => return Ok(cmds),
        }
    }
}

fn word(w: &str, off: usize) -> Result<Arg, TemplateError> {
    let err = |m: String| TemplateError { offset: off, message: m };
    if let Some(v) = w.strip_prefix('$') {
        let mut parts = v.split('.');
        let name = parts.next().unwrap_or("");
        if !VARS.contains(&name) {
            return Err(err(format!("undefined variable \"${name}\"")));
        }
        return Ok(Arg::Var(name.to_string(), parts.map(str::to_string).collect()));
    }
    if let Some(v) = w.strip_prefix('.') {
        if v.is_empty() {
            return Ok(Arg::Var(String::new(), Vec::new()));
        }
        let mut parts = v.split('.');
        let field = parts.next().unwrap_or("");
        let Some(i) = FIELDS.iter().position(|f| *f == field) else {
            return Err(err(format!("can't evaluate field {field}")));
        };
        return Ok(Arg::Var(VARS[i].to_string(), parts.map(str::to_string).collect()));
    }
    match w {
        "true" => Ok(Arg::Bool(true)),
        "false" => Ok(Arg::Bool(false)),
        _ => match FUNCS.iter().find(|f| **f == w) {
            Some(f) => Ok(Arg::Func(f)),
            None => Err(err(format!("function {w:?} not defined"))),
        },
    }
}

/// A run-time value.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Str(String),
    Num(f64),
    Bool(bool),
    Map(BTreeMap<String, String>),
    Root,
}

impl Val {
    fn truthy(&self) -> bool {
        match self {
            Val::Str(s) => !s.is_empty(),
            Val::Num(v) => *v != 0.0,
            Val::Bool(b) => *b,
            Val::Map(m) => !m.is_empty(),
            Val::Root => true,
        }
    }

    fn print(&self, out: &mut String) {
        match self {
            Val::Str(s) => out.push_str(s),
            Val::Num(v) => out.push_str(&go_float(*v, None)),
            Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Val::Map(m) => {
                out.push_str("map[");
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    let _ = write!(out, "{k}:{v}");
                }
                out.push(']');
            }
            Val::Root => out.push_str("{}"),
        }
    }

    fn to_float(&self, func: &str) -> Result<f64, String> {
        match self {
            Val::Num(v) => Ok(*v),
            Val::Str(s) => s.trim().parse().map_err(|_| format!("error calling {func}: strconv.ParseFloat: parsing {s:?}: invalid syntax")),
            other => Err(format!("error calling {func}: can't convert {} to float", kind(other))),
        }
    }

    fn to_str(&self) -> String {
        let mut s = String::new();
        self.print(&mut s);
        s
    }
}

fn kind(v: &Val) -> &'static str {
    match v {
        Val::Str(_) => "string",
        Val::Num(_) => "float64",
        Val::Bool(_) => "bool",
        Val::Map(_) => "map[string]string",
        Val::Root => "struct",
    }
}

fn exec(nodes: &[Node], data: &TemplateData, out: &mut String) -> Result<(), String> {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => eval_pipeline(p, data)?.print(out),
            Node::If { cond, then, els } => {
                if eval_pipeline(cond, data)?.truthy() {
                    exec(then, data, out)?;
                } else {
                    exec(els, data, out)?;
                }
            }
        }
    }
    Ok(())
}

fn eval_pipeline(p: &Pipeline, data: &TemplateData) -> Result<Val, String> {
    let mut prev: Option<Val> = None;
    for cmd in p {
        let v = eval_cmd(cmd, data, prev.take())?;
        prev = Some(v);
    }
    prev.ok_or_else(|| "empty pipeline".to_string())
}

fn eval_arg(a: &Arg, data: &TemplateData) -> Result<Val, String> {
    Ok(match a {
        Arg::Str(s) => Val::Str(s.clone()),
        Arg::Num(v) => Val::Num(*v),
        Arg::Bool(b) => Val::Bool(*b),
        Arg::Paren(p) => eval_pipeline(p, data)?,
        Arg::Func(f) => call(f, Vec::new())?,
        Arg::Var(name, fields) => {
            let mut v = match name.as_str() {
                "labels" => Val::Map(data.labels.clone()),
                "value" => Val::Num(data.value),
                "externalLabels" => Val::Map(data.external_labels.clone()),
                "externalURL" => Val::Str(data.external_url.clone()),
                _ => Val::Root,
            };
            for f in fields {
                v = match v {
                    // missingkey=zero: an absent label is "".
                    Val::Map(m) => Val::Str(m.get(f).cloned().unwrap_or_default()),
                    other => return Err(format!("can't evaluate field {f} in type {}", kind(&other))),
                };
            }
            v
        }
    })
}

fn eval_cmd(cmd: &Cmd, data: &TemplateData, piped: Option<Val>) -> Result<Val, String> {
    match &cmd.args[0] {
        Arg::Func(f) => {
            let mut args = Vec::with_capacity(cmd.args.len());
            for a in &cmd.args[1..] {
                args.push(eval_arg(a, data)?);
            }
            args.extend(piped);
            call(f, args)
        }
        a => {
            if piped.is_some() {
                return Err(format!("at offset {}: can't give argument to non-function", cmd.offset));
            }
            eval_arg(a, data)
        }
    }
}

fn arity(f: &str, args: &[Val], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!("wrong number of args for {f}: want {n} got {}", args.len()));
    }
    Ok(())
}

fn call(f: &str, args: Vec<Val>) -> Result<Val, String> {
    let one = |args: &[Val]| -> Result<f64, String> {
        arity(f, args, 1)?;
        args[0].to_float(f)
    };
    Ok(match f {
        "humanize" => Val::Str(humanize(one(&args)?)),
        "humanize1024" => Val::Str(humanize1024(one(&args)?)),
        "humanizePercentage" => Val::Str(format!("{}%", go_float(one(&args)? * 100.0, Some(4)))),
        "humanizeDuration" => Val::Str(humanize_duration(one(&args)?)),
        "humanizeTimestamp" => Val::Str(humanize_timestamp(one(&args)?)),
        "toUpper" | "toLower" | "title" | "stripPort" => {
            arity(f, &args, 1)?;
            let s = args[0].to_str();
            Val::Str(match f {
                "toUpper" => s.to_uppercase(),
                "toLower" => s.to_lowercase(),
                "title" => title(&s),
                _ => strip_port(&s),
            })
        }
        "reReplaceAll" => {
            arity(f, &args, 3)?;
            let re = regex::Regex::new(&args[0].to_str()).map_err(|e| format!("error calling reReplaceAll: {e}"))?;
            Val::Str(re.replace_all(&args[2].to_str(), args[1].to_str().as_str()).into_owned())
        }
        "printf" => {
            let Some((fmt, rest)) = args.split_first() else {
                return Err("wrong number of args for printf: want at least 1 got 0".into());
            };
            Val::Str(printf(&fmt.to_str(), rest))
        }
        "not" => {
            arity(f, &args, 1)?;
            Val::Bool(!args[0].truthy())
        }
        "and" | "or" => {
            if args.is_empty() {
                return Err(format!("wrong number of args for {f}: want at least 1 got 0"));
            }
            let want = f == "or";
            let mut last = Val::Bool(false);
            for a in args {
                if a.truthy() == want {
                    return Ok(a);
                }
                last = a;
            }
            last
        }
        "eq" | "ne" | "lt" | "le" | "gt" | "ge" => {
            arity(f, &args, 2)?;
            let ord = match (&args[0], &args[1]) {
                (Val::Num(a), Val::Num(b)) => a.partial_cmp(b),
                (Val::Str(a), Val::Str(b)) => Some(a.cmp(b)),
                (Val::Bool(a), Val::Bool(b)) if f == "eq" || f == "ne" => Some(a.cmp(b)),
                (a, b) => return Err(format!("error calling {f}: incompatible types for comparison: {} and {}", kind(a), kind(b))),
            };
            use std::cmp::Ordering::*;
            Val::Bool(match f {
                "eq" => ord == Some(Equal),
                "ne" => ord != Some(Equal),
                "lt" => ord == Some(Less),
                "le" => matches!(ord, Some(Less | Equal)),
                "gt" => ord == Some(Greater),
                _ => matches!(ord, Some(Greater | Equal)),
            })
        }
        _ => return Err(format!("function {f:?} not defined")),
    })
}

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
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0".into() } else { "0".into() };
    }
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

/// Go's `fmt.Sprintf` for the verbs templates use: `%s %v %d %f %g %e %q %x
/// %%`, with width, precision and the `-`, `0`, `+` flags.
fn printf(fmt: &str, args: &[Val]) -> String {
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    let mut next = 0;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut left, mut zero, mut plus) = (false, false, false);
        while let Some(&f) = chars.peek() {
            match f {
                '-' => left = true,
                '0' => zero = true,
                '+' => plus = true,
                _ => break,
            }
            chars.next();
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut prec: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                chars.next();
            }
            prec = Some(p.parse().unwrap_or(0));
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
        let num = arg.to_float("printf").ok();
        let mut s = match (verb, arg) {
            ('s' | 'v', a) => match (prec, verb, a) {
                (Some(p), 's', _) => a.to_str().chars().take(p).collect(),
                _ => a.to_str(),
            },
            ('q', a) => format!("{:?}", a.to_str()),
            ('d', _) if num.is_some() => format!("{}", num.unwrap_or(0.0).trunc() as i64),
            ('f' | 'F', _) if num.is_some() => format!("{:.*}", prec.unwrap_or(6), num.unwrap_or(0.0)),
            ('e', _) if num.is_some() => {
                let s = format!("{:.*e}", prec.unwrap_or(6), num.unwrap_or(0.0));
                match s.split_once('e') {
                    Some((m, e)) => {
                        let n: i32 = e.parse().unwrap_or(0);
                        format!("{m}e{}{:02}", if n < 0 { '-' } else { '+' }, n.abs())
                    }
                    None => s,
                }
            }
            ('g', _) if num.is_some() => go_float(num.unwrap_or(0.0), prec),
            ('x', Val::Str(s)) => s.bytes().map(|b| format!("{b:02x}")).collect(),
            ('x', _) if num.is_some() => format!("{:x}", num.unwrap_or(0.0) as i64),
            (v, a) => format!("%!{v}({}={})", kind(a), a.to_str()),
        };
        if plus && num.is_some() && !s.starts_with('-') && verb != 's' && verb != 'v' {
            s.insert(0, '+');
        }
        let w: usize = width.parse().unwrap_or(0);
        let len = s.chars().count();
        if len < w {
            let pad = w - len;
            if left {
                s.push_str(&" ".repeat(pad));
            } else if zero && num.is_some() {
                let at = usize::from(s.starts_with(['-', '+']));
                s.insert_str(at, &"0".repeat(pad));
            } else {
                s.insert_str(0, &" ".repeat(pad));
            }
        }
        out.push_str(&s);
    }
    if next < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[next..].iter().map(|a| format!("{}={}", kind(a), a.to_str())).collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
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
