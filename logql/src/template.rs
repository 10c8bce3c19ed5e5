//! The template language of `line_format` and `label_format`: a subset of
//! Go's `text/template` (`{{.label}}`, pipelines with `|`, `if`/`else if`/
//! `else`/`end`, `range`, comments, `{{-`/`-}}` trimming) with Loki's
//! function set.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A value inside a template.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A timestamp in nanoseconds since the epoch.
    Time(i64),
    /// A list (from `split` and the like).
    List(Vec<Value>),
    /// No value.
    Nil,
}

impl Value {
    fn truthy(&self) -> bool {
        match self {
            Value::Str(s) => !s.is_empty(),
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Bool(b) => *b,
            Value::Time(_) => true,
            Value::List(l) => !l.is_empty(),
            Value::Nil => false,
        }
    }

    fn to_text(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => go_float(*f),
            Value::Bool(b) => b.to_string(),
            Value::Time(ns) => go_time(*ns),
            Value::List(l) => format!("[{}]", l.iter().map(Value::to_text).collect::<Vec<_>>().join(" ")),
            Value::Nil => "<no value>".into(),
        }
    }

    fn as_f64(&self) -> f64 {
        match self {
            Value::Str(s) => s.trim().parse().unwrap_or(0.0),
            Value::Int(i) => *i as f64,
            Value::Float(f) => *f,
            Value::Bool(b) => f64::from(u8::from(*b)),
            Value::Time(ns) => *ns as f64,
            _ => 0.0,
        }
    }

    fn as_i64(&self) -> i64 {
        match self {
            Value::Str(s) => s.trim().parse::<i64>().unwrap_or_else(|_| s.trim().parse::<f64>().map_or(0, |f| f as i64)),
            Value::Int(i) => *i,
            Value::Float(f) => *f as i64,
            Value::Bool(b) => i64::from(*b),
            Value::Time(ns) => *ns,
            _ => 0,
        }
    }
}

fn go_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else if f == f.trunc() && f.abs() < 1e21 {
        format!("{}", f as i128)
    } else {
        format!("{f}")
    }
}

fn go_time(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000) as u32;
    match chrono::DateTime::from_timestamp(secs, nanos) {
        Some(t) => {
            let mut s = t.format("%Y-%m-%d %H:%M:%S").to_string();
            if nanos > 0 {
                let frac = format!("{nanos:09}");
                s.push('.');
                s.push_str(frac.trim_end_matches('0'));
            }
            s.push_str(" +0000 UTC");
            s
        }
        None => ns.to_string(),
    }
}

#[derive(Clone, Debug)]
enum Arg {
    Field(Vec<String>),
    Dot,
    Var(String),
    Lit(Value),
    Call(String),
    Sub(Box<Pipeline>),
}

#[derive(Clone, Debug)]
struct Command {
    args: Vec<Arg>,
}

#[derive(Clone, Debug)]
struct Pipeline {
    decl: Option<String>,
    cmds: Vec<Command>,
}

#[derive(Clone, Debug)]
enum Node {
    Text(String),
    Action(Pipeline),
    If(Vec<(Pipeline, Vec<Node>)>, Vec<Node>),
    Range(Pipeline, Vec<Node>, Vec<Node>),
}

/// A parsed template.
#[derive(Clone, Debug)]
pub struct Template {
    nodes: Vec<Node>,
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

const FUNCS: &[&str] = &[
    "__line__", "__timestamp__", "ToLower", "ToUpper", "lower", "upper", "title", "Title", "Replace", "replace",
    "Trim", "TrimLeft", "TrimRight", "TrimPrefix", "TrimSuffix", "TrimSpace", "trim", "trimAll", "trimPrefix",
    "trimSuffix", "regexReplaceAll", "regexReplaceAllLiteral", "default", "printf", "print", "println",
    "contains", "hasPrefix", "hasSuffix", "len", "trunc", "substr", "repeat", "abs", "add", "sub", "mul", "div",
    "mod", "addf", "subf", "mulf", "divf", "round", "ceil", "floor", "max", "min", "maxf", "minf", "toDate",
    "date", "unixEpoch", "unixEpochMillis", "unixEpochNanos", "unixToTime", "now", "b64enc", "b64dec",
    "urlencode", "urldecode", "alignLeft", "alignRight", "indent", "nindent", "count", "bytes", "duration",
    "duration_seconds", "int", "float64", "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not", "fromJson",
    "split", "join", "quote", "squote", "toString",
];

impl Template {
    /// Parses a template.
    pub fn parse(src: &str) -> Result<Template, String> {
        let items = lex_template(src)?;
        let mut pos = 0;
        let (nodes, end) = parse_nodes(&items, &mut pos, 0)?;
        if let Some(e) = end {
            return Err(format!("template: unexpected {{{{{e}}}}}"));
        }
        Ok(Template { nodes })
    }

    /// Renders with a context.
    pub fn render(&self, ctx: &Context<'_>) -> Result<String, String> {
        let mut out = String::new();
        let mut vars = Vec::new();
        render_nodes(&self.nodes, ctx, &Value::Nil, &mut vars, &mut out)?;
        Ok(out)
    }
}

enum Item {
    Text(String),
    Action(String),
}

fn lex_template(src: &str) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    let mut rest = src;
    while let Some(open) = rest.find("{{") {
        let mut text = &rest[..open];
        let mut inner_start = open + 2;
        if rest[inner_start..].starts_with("- ") || rest[inner_start..].starts_with("-\t") || rest[inner_start..].starts_with("-\n") {
            text = text.trim_end();
            inner_start += 1;
        }
        if !text.is_empty() {
            items.push(Item::Text(text.to_string()));
        }
        let after = &rest[inner_start..];
        let close = find_close(after).ok_or("template: unclosed action")?;
        let mut inner = &after[..close];
        let mut next = &after[close + 2..];
        if inner.ends_with(" -") || inner.ends_with("\t-") || inner.ends_with("\n-") {
            inner = &inner[..inner.len() - 1];
            next = next.trim_start();
        }
        let inner = inner.trim();
        if !(inner.starts_with("/*") && inner.ends_with("*/")) {
            items.push(Item::Action(inner.to_string()));
        }
        rest = next;
    }
    if !rest.is_empty() {
        items.push(Item::Text(rest.to_string()));
    }
    Ok(items)
}

/// Finds `}}` outside string literals.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
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
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

const MAX_NESTING: usize = 100;

fn parse_nodes(items: &[Item], pos: &mut usize, depth: usize) -> Result<(Vec<Node>, Option<String>), String> {
    if depth > MAX_NESTING {
        return Err("template: nested too deeply".into());
    }
    let mut nodes = Vec::new();
    while *pos < items.len() {
        let item = &items[*pos];
        *pos += 1;
        match item {
            Item::Text(t) => nodes.push(Node::Text(t.clone())),
            Item::Action(a) => {
                let kw = a.split_whitespace().next().unwrap_or("");
                match kw {
                    "end" | "else" => return Ok((nodes, Some(a.clone()))),
                    "if" => nodes.push(parse_if(&a[2..], items, pos, depth + 1)?),
                    "range" => {
                        let p = parse_pipeline(&a[5..])?;
                        let (body, end) = parse_nodes(items, pos, depth + 1)?;
                        let (else_body, end) = match end.as_deref() {
                            Some("else") => parse_nodes(items, pos, depth + 1)?,
                            _ => (Vec::new(), end),
                        };
                        if end.as_deref() != Some("end") {
                            return Err("template: missing {{end}} for range".into());
                        }
                        nodes.push(Node::Range(p, body, else_body));
                    }
                    _ => nodes.push(Node::Action(parse_pipeline(a)?)),
                }
            }
        }
    }
    Ok((nodes, None))
}

fn parse_if(cond: &str, items: &[Item], pos: &mut usize, depth: usize) -> Result<Node, String> {
    let mut branches = vec![(parse_pipeline(cond)?, Vec::new())];
    loop {
        let (body, end) = parse_nodes(items, pos, depth)?;
        if let Some(b) = branches.last_mut() {
            b.1 = body;
        }
        match end.as_deref() {
            Some("end") => return Ok(Node::If(branches, Vec::new())),
            Some(e) if e.starts_with("else if ") => branches.push((parse_pipeline(&e[8..])?, Vec::new())),
            Some("else") => {
                let (else_body, end) = parse_nodes(items, pos, depth)?;
                if end.as_deref() != Some("end") {
                    return Err("template: missing {{end}} for if".into());
                }
                return Ok(Node::If(branches, else_body));
            }
            _ => return Err("template: missing {{end}} for if".into()),
        }
    }
}

#[derive(Debug, PartialEq)]
enum PTok {
    Word(String),
    Str(String),
    Pipe,
    Open,
    Close,
    Assign,
}

fn tokenize_action(s: &str) -> Result<Vec<PTok>, String> {
    let mut out = Vec::new();
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '|' {
            out.push(PTok::Pipe);
            i += 1;
        } else if c == '(' {
            out.push(PTok::Open);
            i += 1;
        } else if c == ')' {
            out.push(PTok::Close);
            i += 1;
        } else if c == ':' && cs.get(i + 1) == Some(&'=') {
            out.push(PTok::Assign);
            i += 2;
        } else if c == '"' {
            let mut v = String::new();
            i += 1;
            loop {
                match cs.get(i) {
                    None => return Err("template: unterminated quoted string".into()),
                    Some('"') => break,
                    Some('\\') => {
                        i += 1;
                        match cs.get(i) {
                            Some('n') => v.push('\n'),
                            Some('t') => v.push('\t'),
                            Some(c) => v.push(*c),
                            None => return Err("template: unterminated quoted string".into()),
                        }
                    }
                    Some(c) => v.push(*c),
                }
                i += 1;
            }
            i += 1;
            out.push(PTok::Str(v));
        } else if c == '`' {
            let start = i + 1;
            let end = cs[start..].iter().position(|c| *c == '`').ok_or("template: unterminated raw string")? + start;
            out.push(PTok::Str(cs[start..end].iter().collect()));
            i = end + 1;
        } else {
            let start = i;
            while i < cs.len() && !cs[i].is_whitespace() && !matches!(cs[i], '|' | '(' | ')' | '"' | '`') {
                if cs[i] == ':' && cs.get(i + 1) == Some(&'=') {
                    break;
                }
                i += 1;
            }
            out.push(PTok::Word(cs[start..i].iter().collect()));
        }
    }
    Ok(out)
}

fn parse_pipeline(s: &str) -> Result<Pipeline, String> {
    let toks = tokenize_action(s)?;
    let mut pos = 0;
    let p = parse_pipe_toks(&toks, &mut pos, 0)?;
    if pos != toks.len() {
        return Err(format!("template: unexpected token in action {s:?}"));
    }
    Ok(p)
}

fn parse_pipe_toks(toks: &[PTok], pos: &mut usize, depth: usize) -> Result<Pipeline, String> {
    if depth > MAX_NESTING {
        return Err("template: nested too deeply".into());
    }
    let mut decl = None;
    if let (Some(PTok::Word(w)), Some(PTok::Assign)) = (toks.get(*pos), toks.get(*pos + 1)) {
        if w.starts_with('$') {
            decl = Some(w.clone());
            *pos += 2;
        }
    }
    let mut cmds = Vec::new();
    let mut args = Vec::new();
    while *pos < toks.len() {
        match &toks[*pos] {
            PTok::Close => break,
            PTok::Pipe => {
                if args.is_empty() {
                    return Err("template: missing command before |".into());
                }
                cmds.push(Command { args: std::mem::take(&mut args) });
                *pos += 1;
            }
            PTok::Open => {
                *pos += 1;
                let sub = parse_pipe_toks(toks, pos, depth + 1)?;
                if toks.get(*pos) != Some(&PTok::Close) {
                    return Err("template: unclosed (".into());
                }
                *pos += 1;
                args.push(Arg::Sub(Box::new(sub)));
            }
            PTok::Str(s) => {
                args.push(Arg::Lit(Value::Str(s.clone())));
                *pos += 1;
            }
            PTok::Assign => return Err("template: unexpected :=".into()),
            PTok::Word(w) => {
                args.push(word_arg(w)?);
                *pos += 1;
            }
        }
    }
    if args.is_empty() {
        if cmds.is_empty() {
            return Err("template: missing value for command".into());
        }
        return Err("template: missing command after |".into());
    }
    cmds.push(Command { args });
    Ok(Pipeline { decl, cmds })
}

fn word_arg(w: &str) -> Result<Arg, String> {
    if w == "." {
        return Ok(Arg::Dot);
    }
    if let Some(rest) = w.strip_prefix('.') {
        return Ok(Arg::Field(rest.split('.').map(str::to_string).collect()));
    }
    if w.starts_with('$') {
        return Ok(Arg::Var(w.to_string()));
    }
    match w {
        "true" => return Ok(Arg::Lit(Value::Bool(true))),
        "false" => return Ok(Arg::Lit(Value::Bool(false))),
        "nil" => return Ok(Arg::Lit(Value::Nil)),
        _ => {}
    }
    if w.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+' || c == '.') {
        if let Ok(i) = w.parse::<i64>() {
            return Ok(Arg::Lit(Value::Int(i)));
        }
        if let Ok(f) = w.parse::<f64>() {
            return Ok(Arg::Lit(Value::Float(f)));
        }
        return Err(format!("template: bad number syntax: {w:?}"));
    }
    if FUNCS.contains(&w) {
        return Ok(Arg::Call(w.to_string()));
    }
    Err(format!("template: function {w:?} not defined"))
}

fn render_nodes(
    nodes: &[Node],
    ctx: &Context<'_>,
    dot: &Value,
    vars: &mut Vec<(String, Value)>,
    out: &mut String,
) -> Result<(), String> {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => {
                let v = eval_pipeline(p, ctx, dot, vars)?;
                if p.decl.is_none() {
                    out.push_str(&v.to_text());
                }
            }
            Node::If(branches, else_body) => {
                let mut done = false;
                for (cond, body) in branches {
                    if eval_pipeline(cond, ctx, dot, vars)?.truthy() {
                        render_nodes(body, ctx, dot, vars, out)?;
                        done = true;
                        break;
                    }
                }
                if !done {
                    render_nodes(else_body, ctx, dot, vars, out)?;
                }
            }
            Node::Range(p, body, else_body) => {
                let v = eval_pipeline(p, ctx, dot, vars)?;
                let items = match v {
                    Value::List(l) => l,
                    Value::Int(n) => (0..n.clamp(0, 10_000)).map(Value::Int).collect(),
                    Value::Nil => Vec::new(),
                    other => return Err(format!("template: range can't iterate over {}", other.to_text())),
                };
                if items.is_empty() {
                    render_nodes(else_body, ctx, dot, vars, out)?;
                }
                for it in items {
                    render_nodes(body, ctx, &it, vars, out)?;
                }
            }
        }
    }
    Ok(())
}

fn eval_pipeline(p: &Pipeline, ctx: &Context<'_>, dot: &Value, vars: &mut Vec<(String, Value)>) -> Result<Value, String> {
    let mut prev: Option<Value> = None;
    for cmd in &p.cmds {
        prev = Some(eval_command(cmd, ctx, dot, vars, prev)?);
    }
    let v = prev.unwrap_or(Value::Nil);
    if let Some(name) = &p.decl {
        vars.push((name.clone(), v.clone()));
    }
    Ok(v)
}

fn eval_arg(a: &Arg, ctx: &Context<'_>, dot: &Value, vars: &mut Vec<(String, Value)>) -> Result<Value, String> {
    Ok(match a {
        Arg::Dot => dot.clone(),
        Arg::Field(path) => match path.first() {
            // A missing label is Go's invalid value: printed as `<no value>`.
            Some(name) => ctx.labels.get(name).map_or(Value::Nil, |v| Value::Str(v.clone())),
            None => Value::Nil,
        },
        Arg::Var(name) => {
            if name == "$" {
                Value::Nil
            } else {
                vars.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.clone()).ok_or_else(|| format!("template: undefined variable {name}"))?
            }
        }
        Arg::Lit(v) => v.clone(),
        Arg::Call(name) => call(name, Vec::new(), ctx)?,
        Arg::Sub(p) => eval_pipeline(p, ctx, dot, vars)?,
    })
}

fn eval_command(
    cmd: &Command,
    ctx: &Context<'_>,
    dot: &Value,
    vars: &mut Vec<(String, Value)>,
    prev: Option<Value>,
) -> Result<Value, String> {
    let (first, rest) = cmd.args.split_first().ok_or("template: empty command")?;
    if let Arg::Call(name) = first {
        let mut args = Vec::with_capacity(rest.len() + 1);
        for a in rest {
            args.push(eval_arg(a, ctx, dot, vars)?);
        }
        if let Some(p) = prev {
            args.push(p);
        }
        return call(name, args, ctx);
    }
    if !rest.is_empty() || prev.is_some() {
        return Err("template: can't give argument to non-function".into());
    }
    eval_arg(first, ctx, dot, vars)
}

/// A function argument as text; a missing value reads as empty.
fn s(v: &Value) -> String {
    match v {
        Value::Nil => String::new(),
        other => other.to_text(),
    }
}

fn want(name: &str, args: &[Value], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!("template: wrong number of args for {name}: want {n} got {}", args.len()));
    }
    Ok(())
}

fn cmp_values(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => x.cmp(y),
        _ => a.as_f64().partial_cmp(&b.as_f64()).unwrap_or(std::cmp::Ordering::Equal),
    }
}

fn b64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    Some(out)
}

fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

fn url_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let h = s.get(i + 1..i + 3).ok_or_else(|| format!("invalid URL escape {:?}", &s[i..]))?;
                out.push(u8::from_str_radix(h, 16).map_err(|_| format!("invalid URL escape {h:?}"))?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Go's `fmt.Sprintf` for the common verbs.
fn sprintf(fmtstr: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut it = fmtstr.chars().peekable();
    let mut ai = 0;
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = String::new();
        while let Some(&n) = it.peek() {
            if n.is_ascii_digit() || matches!(n, '.' | '-' | '+' | ' ' | '0' | '#') {
                spec.push(n);
                it.next();
            } else {
                break;
            }
        }
        let Some(verb) = it.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(ai) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        ai += 1;
        let left = spec.starts_with('-');
        let zero = spec.trim_start_matches('-').starts_with('0');
        let spec_t = spec.trim_start_matches(['-', '+', ' ', '#']);
        let (w, prec) = match spec_t.split_once('.') {
            Some((w, p)) => (w.parse::<usize>().unwrap_or(0), Some(p.parse::<usize>().unwrap_or(0))),
            None => (spec_t.parse::<usize>().unwrap_or(0), None),
        };
        let body = match verb {
            'd' => arg.as_i64().to_string(),
            'f' | 'F' => format!("{:.*}", prec.unwrap_or(6), arg.as_f64()),
            'e' => format!("{:.*e}", prec.unwrap_or(6), arg.as_f64()),
            'g' => go_float(arg.as_f64()),
            'q' => crate::ast::quote(&s(arg)),
            'x' => match arg {
                Value::Int(i) => format!("{i:x}"),
                _ => s(arg).bytes().map(|b| format!("{b:02x}")).collect(),
            },
            'X' => match arg {
                Value::Int(i) => format!("{i:X}"),
                _ => s(arg).bytes().map(|b| format!("{b:02X}")).collect(),
            },
            't' => s(arg),
            _ => {
                let t = s(arg);
                match prec {
                    Some(p) if verb == 's' => t.chars().take(p).collect(),
                    _ => t,
                }
            }
        };
        let len = body.chars().count();
        if len < w {
            let pad = w - len;
            if left {
                out.push_str(&body);
                out.push_str(&" ".repeat(pad));
            } else {
                out.push_str(&(if zero { "0" } else { " " }).repeat(pad));
                out.push_str(&body);
            }
        } else {
            out.push_str(&body);
        }
    }
    out
}

fn to_time(v: &Value) -> i64 {
    match v {
        Value::Time(t) => *t,
        other => other.as_i64(),
    }
}

/// Converts a Go layout (`2006-01-02T15:04:05Z07:00`) to a chrono format.
fn go_layout(layout: &str) -> String {
    let mut out = String::new();
    let mut rest = layout;
    const MAP: &[(&str, &str)] = &[
        ("2006", "%Y"), ("January", "%B"), ("Jan", "%b"), ("Monday", "%A"), ("Mon", "%a"), ("MST", "%Z"),
        ("Z07:00", "%:z"), ("-07:00", "%:z"), ("-0700", "%z"), (".000000000", "%.9f"), (".000000", "%.6f"),
        (".000", "%.3f"), ("01", "%m"), ("02", "%d"), ("15", "%H"), ("03", "%I"), ("04", "%M"), ("05", "%S"),
        ("06", "%y"), ("PM", "%p"), ("_2", "%e"),
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

fn call(name: &str, a: Vec<Value>, ctx: &Context<'_>) -> Result<Value, String> {
    use Value::*;
    let str1 = |a: &[Value]| -> Result<String, String> {
        want(name, a, 1)?;
        Ok(s(&a[0]))
    };
    Ok(match name {
        "__line__" => Str(ctx.line.to_string()),
        "__timestamp__" => Time(ctx.ts),
        "now" => Time(chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)),
        "ToLower" | "lower" => Str(str1(&a)?.to_lowercase()),
        "ToUpper" | "upper" => Str(str1(&a)?.to_uppercase()),
        "title" | "Title" => {
            let t = str1(&a)?;
            let mut out = String::new();
            let mut up = true;
            for c in t.chars() {
                if up && c.is_alphabetic() {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
                up = !c.is_alphanumeric();
            }
            Str(out)
        }
        "TrimSpace" | "trim" => Str(str1(&a)?.trim().to_string()),
        "toString" => Str(str1(&a)?),
        "quote" => Str(crate::ast::quote(&str1(&a)?)),
        "squote" => Str(format!("'{}'", str1(&a)?)),
        "Replace" => {
            want(name, &a, 4)?;
            let n = a[3].as_i64();
            let (src, old, new) = (s(&a[0]), s(&a[1]), s(&a[2]));
            Str(if n < 0 { src.replace(&old, &new) } else { src.replacen(&old, &new, n as usize) })
        }
        "replace" => {
            want(name, &a, 3)?;
            Str(s(&a[2]).replace(&s(&a[0]), &s(&a[1])))
        }
        "Trim" | "TrimLeft" | "TrimRight" => {
            want(name, &a, 2)?;
            let cut: Vec<char> = s(&a[1]).chars().collect();
            let src = s(&a[0]);
            Str(match name {
                "Trim" => src.trim_matches(cut.as_slice()).to_string(),
                "TrimLeft" => src.trim_start_matches(cut.as_slice()).to_string(),
                _ => src.trim_end_matches(cut.as_slice()).to_string(),
            })
        }
        "trimAll" => {
            want(name, &a, 2)?;
            let cut: Vec<char> = s(&a[0]).chars().collect();
            Str(s(&a[1]).trim_matches(cut.as_slice()).to_string())
        }
        "TrimPrefix" | "TrimSuffix" | "trimPrefix" | "trimSuffix" => {
            want(name, &a, 2)?;
            let (src, fix) = if name.starts_with('T') { (s(&a[0]), s(&a[1])) } else { (s(&a[1]), s(&a[0])) };
            Str(if name.ends_with("refix") {
                src.strip_prefix(fix.as_str()).unwrap_or(&src).to_string()
            } else {
                src.strip_suffix(fix.as_str()).unwrap_or(&src).to_string()
            })
        }
        "regexReplaceAll" | "regexReplaceAllLiteral" => {
            want(name, &a, 3)?;
            let re = regex::Regex::new(&s(&a[0])).map_err(|e| e.to_string())?;
            let src = s(&a[1]);
            let repl = s(&a[2]);
            Str(if name == "regexReplaceAll" {
                re.replace_all(&src, repl.as_str()).into_owned()
            } else {
                re.replace_all(&src, regex::NoExpand(&repl)).into_owned()
            })
        }
        "default" => {
            want(name, &a, 2)?;
            if a[1].truthy() { a[1].clone() } else { a[0].clone() }
        }
        "printf" => {
            let (f, rest) = a.split_first().ok_or("template: printf needs a format")?;
            Str(sprintf(&s(f), rest))
        }
        "print" => Str(a.iter().map(s).collect::<Vec<_>>().join("")),
        "println" => Str(a.iter().map(s).collect::<Vec<_>>().join(" ") + "\n"),
        "contains" => {
            want(name, &a, 2)?;
            Bool(s(&a[1]).contains(&s(&a[0])))
        }
        "hasPrefix" => {
            want(name, &a, 2)?;
            Bool(s(&a[1]).starts_with(&s(&a[0])))
        }
        "hasSuffix" => {
            want(name, &a, 2)?;
            Bool(s(&a[1]).ends_with(&s(&a[0])))
        }
        "len" => {
            want(name, &a, 1)?;
            Int(match &a[0] {
                List(l) => l.len() as i64,
                v => s(v).len() as i64,
            })
        }
        "trunc" => {
            want(name, &a, 2)?;
            let n = a[0].as_i64();
            let src: Vec<char> = s(&a[1]).chars().collect();
            let len = src.len() as i64;
            Str(if n >= 0 {
                src[..n.min(len) as usize].iter().collect()
            } else {
                src[(len + n).max(0) as usize..].iter().collect()
            })
        }
        "substr" => {
            want(name, &a, 3)?;
            let src: Vec<char> = s(&a[2]).chars().collect();
            let len = src.len() as i64;
            let (mut st, mut en) = (a[0].as_i64(), a[1].as_i64());
            if st < 0 {
                st = 0;
            }
            if en < 0 || en > len {
                en = len;
            }
            Str(if st >= en { String::new() } else { src[st as usize..en as usize].iter().collect() })
        }
        "repeat" => {
            want(name, &a, 2)?;
            Str(s(&a[1]).repeat(a[0].as_i64().clamp(0, 10_000) as usize))
        }
        "abs" => {
            want(name, &a, 1)?;
            match &a[0] {
                Int(i) => Int(i.wrapping_abs()),
                v => Float(v.as_f64().abs()),
            }
        }
        "add" | "sub" | "mul" | "div" | "mod" => {
            if a.len() < 2 {
                return Err(format!("template: wrong number of args for {name}"));
            }
            let mut acc = a[0].as_i64();
            for v in &a[1..] {
                let x = v.as_i64();
                acc = match name {
                    "add" => acc.wrapping_add(x),
                    "sub" => acc.wrapping_sub(x),
                    "mul" => acc.wrapping_mul(x),
                    "div" => acc.checked_div(x).ok_or("template: integer divide by zero")?,
                    _ => acc.checked_rem(x).ok_or("template: integer divide by zero")?,
                };
            }
            Int(acc)
        }
        "addf" | "subf" | "mulf" | "divf" => {
            if a.len() < 2 {
                return Err(format!("template: wrong number of args for {name}"));
            }
            let mut acc = a[0].as_f64();
            for v in &a[1..] {
                let x = v.as_f64();
                acc = match name {
                    "addf" => acc + x,
                    "subf" => acc - x,
                    "mulf" => acc * x,
                    _ => acc / x,
                };
            }
            Float(acc)
        }
        "max" | "min" => {
            let mut it = a.iter().map(Value::as_i64);
            let first = it.next().ok_or("template: max/min need arguments")?;
            Int(it.fold(first, |m, x| if name == "max" { m.max(x) } else { m.min(x) }))
        }
        "maxf" | "minf" => {
            let mut it = a.iter().map(Value::as_f64);
            let first = it.next().ok_or("template: maxf/minf need arguments")?;
            Float(it.fold(first, |m, x| if name == "maxf" { m.max(x) } else { m.min(x) }))
        }
        "round" => {
            if a.is_empty() || a.len() > 2 {
                return Err("template: round takes a value and an optional precision".into());
            }
            let (v, p) = if a.len() == 2 { (a[1].as_f64(), a[0].as_i64()) } else { (a[0].as_f64(), 0) };
            let m = 10f64.powi(p as i32);
            Float((v * m).round() / m)
        }
        "ceil" => Float(a.first().ok_or("template: ceil needs a value")?.as_f64().ceil()),
        "floor" => Float(a.first().ok_or("template: floor needs a value")?.as_f64().floor()),
        "int" => Int(a.first().ok_or("template: int needs a value")?.as_i64()),
        "float64" => Float(a.first().ok_or("template: float64 needs a value")?.as_f64()),
        "toDate" => {
            want(name, &a, 2)?;
            Time(parse_time(&s(&a[0]), &s(&a[1]))?)
        }
        "date" => {
            want(name, &a, 2)?;
            Str(fmt_time(&s(&a[0]), to_time(&a[1])))
        }
        "unixEpoch" => Int(to_time(a.first().ok_or("template: unixEpoch needs a time")?).div_euclid(1_000_000_000)),
        "unixEpochMillis" => Int(to_time(a.first().ok_or("template: unixEpochMillis needs a time")?).div_euclid(1_000_000)),
        "unixEpochNanos" => Int(to_time(a.first().ok_or("template: unixEpochNanos needs a time")?)),
        "unixToTime" => {
            let t = str1(&a)?;
            let n: i64 = t.trim().parse().map_err(|_| format!("unable to parse epoch {t:?}"))?;
            // Loki picks the unit by digit count: s, ms, us, ns.
            Time(match t.trim().len() {
                0..=10 => n.saturating_mul(1_000_000_000),
                11..=13 => n.saturating_mul(1_000_000),
                14..=16 => n.saturating_mul(1_000),
                _ => n,
            })
        }
        "b64enc" => Str(b64_encode(str1(&a)?.as_bytes())),
        "b64dec" => {
            let t = str1(&a)?;
            Str(b64_decode(&t).map(|b| String::from_utf8_lossy(&b).into_owned()).ok_or("template: illegal base64 data")?)
        }
        "urlencode" => Str(url_encode(&str1(&a)?)),
        "urldecode" => Str(url_decode(&str1(&a)?)?),
        "alignLeft" | "alignRight" => {
            want(name, &a, 2)?;
            let n = a[0].as_i64().clamp(0, 10_000) as usize;
            let src: Vec<char> = s(&a[1]).chars().collect();
            Str(if src.len() >= n {
                if name == "alignLeft" { src[..n].iter().collect() } else { src[src.len() - n..].iter().collect() }
            } else {
                let pad = " ".repeat(n - src.len());
                let t: String = src.iter().collect();
                if name == "alignLeft" { t + &pad } else { pad + &t }
            })
        }
        "indent" | "nindent" => {
            want(name, &a, 2)?;
            let pad = " ".repeat(a[0].as_i64().clamp(0, 10_000) as usize);
            let body = s(&a[1]).lines().map(|l| format!("{pad}{l}")).collect::<Vec<_>>().join("\n");
            Str(if name == "nindent" { format!("\n{body}") } else { body })
        }
        "count" => {
            want(name, &a, 2)?;
            let re = regex::Regex::new(&s(&a[0])).map_err(|e| e.to_string())?;
            Int(re.find_iter(&s(&a[1])).count() as i64)
        }
        "bytes" => Float(crate::units::parse_bytes(&str1(&a)?)? as f64),
        "duration" | "duration_seconds" => Float(crate::units::parse_go_duration(&str1(&a)?)? / 1e9),
        "split" => {
            want(name, &a, 2)?;
            List(s(&a[1]).split(&s(&a[0])).map(|x| Str(x.to_string())).collect())
        }
        "join" => {
            want(name, &a, 2)?;
            Str(match &a[1] {
                List(l) => l.iter().map(s).collect::<Vec<_>>().join(&s(&a[0])),
                v => s(v),
            })
        }
        "fromJson" => {
            let t = str1(&a)?;
            match crate::json::parse(&t) {
                Ok(v) => Str(v.text()),
                Err(e) => return Err(format!("fromJson: {e}")),
            }
        }
        "eq" => {
            if a.len() < 2 {
                return Err("template: eq needs two arguments".into());
            }
            Bool(a[1..].iter().any(|b| cmp_values(&a[0], b).is_eq()))
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            want(name, &a, 2)?;
            let o = cmp_values(&a[0], &a[1]);
            Bool(match name {
                "ne" => !o.is_eq(),
                "lt" => o.is_lt(),
                "le" => o.is_le(),
                "gt" => o.is_gt(),
                _ => o.is_ge(),
            })
        }
        "and" => a.iter().find(|v| !v.truthy()).or(a.last()).cloned().unwrap_or(Nil),
        "or" => a.iter().find(|v| v.truthy()).or(a.last()).cloned().unwrap_or(Nil),
        "not" => Bool(!a.first().ok_or("template: not needs a value")?.truthy()),
        _ => return Err(format!("template: function {name:?} not defined")),
    })
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
}
