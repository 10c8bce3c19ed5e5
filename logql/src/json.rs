//! A small JSON reader that keeps what Loki's parsers need and `serde_json`
//! drops: raw number text, key order and duplicate keys.

/// A JSON value borrowing from the input.
#[derive(Clone, Debug, PartialEq)]
pub enum JVal<'a> {
    /// An object, keys in order (duplicates kept).
    Obj(Vec<(String, JVal<'a>)>, &'a str),
    /// An array.
    Arr(Vec<JVal<'a>>, &'a str),
    /// A string (unescaped).
    Str(String),
    /// A number, as written.
    Num(&'a str),
    /// `true`/`false`.
    Bool(bool),
    /// `null`.
    Null,
}

impl JVal<'_> {
    /// The raw text of an object or array; the text form of scalars.
    pub fn text(&self) -> String {
        match self {
            JVal::Obj(_, raw) | JVal::Arr(_, raw) => (*raw).to_string(),
            JVal::Str(s) => s.clone(),
            JVal::Num(n) => (*n).to_string(),
            JVal::Bool(b) => b.to_string(),
            JVal::Null => String::new(),
        }
    }
}

const MAX_DEPTH: usize = 256;

struct Reader<'a> {
    s: &'a str,
    pos: usize,
}

/// Parses a complete JSON document.
pub fn parse(s: &str) -> Result<JVal<'_>, String> {
    let mut r = Reader { s, pos: 0 };
    let v = r.value(0)?;
    r.ws();
    if r.pos != s.len() {
        return Err(format!("unexpected trailing data at offset {}", r.pos));
    }
    Ok(v)
}

impl<'a> Reader<'a> {
    fn ws(&mut self) {
        while let Some(b) = self.s.as_bytes().get(self.pos) {
            if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at offset {}", self.pos))
    }

    fn value(&mut self, depth: usize) -> Result<JVal<'a>, String> {
        if depth > MAX_DEPTH {
            return self.err("nesting too deep");
        }
        self.ws();
        let start = self.pos;
        match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                let mut fields = Vec::new();
                self.ws();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    return Ok(JVal::Obj(fields, &self.s[start..self.pos]));
                }
                loop {
                    self.ws();
                    if self.peek() != Some(b'"') {
                        return self.err("expected object key");
                    }
                    let k = self.string()?;
                    self.ws();
                    if self.peek() != Some(b':') {
                        return self.err("expected ':'");
                    }
                    self.pos += 1;
                    let v = self.value(depth + 1)?;
                    fields.push((k, v));
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(JVal::Obj(fields, &self.s[start..self.pos]));
                        }
                        _ => return self.err("Value looks like object, but can't find closing '}' symbol"),
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(JVal::Arr(items, &self.s[start..self.pos]));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(JVal::Arr(items, &self.s[start..self.pos]));
                        }
                        _ => return self.err("Value is array, but can't find closing ']' symbol"),
                    }
                }
            }
            Some(b'"') => Ok(JVal::Str(self.string()?)),
            Some(b't') if self.s[self.pos..].starts_with("true") => {
                self.pos += 4;
                Ok(JVal::Bool(true))
            }
            Some(b'f') if self.s[self.pos..].starts_with("false") => {
                self.pos += 5;
                Ok(JVal::Bool(false))
            }
            Some(b'n') if self.s[self.pos..].starts_with("null") => {
                self.pos += 4;
                Ok(JVal::Null)
            }
            Some(b'-' | b'0'..=b'9') => {
                while let Some(b) = self.peek() {
                    if b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E') {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                let n = &self.s[start..self.pos];
                if n.parse::<f64>().is_err() {
                    return self.err("invalid number");
                }
                Ok(JVal::Num(n))
            }
            None => self.err("unexpected end of input"),
            _ => self.err("Unknown value type"),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        // at the opening quote
        self.pos += 1;
        let mut out = String::new();
        loop {
            let rest = &self.s[self.pos..];
            let Some(i) = rest.find(['"', '\\']) else {
                return self.err("unterminated string");
            };
            out.push_str(&rest[..i]);
            self.pos += i;
            if rest.as_bytes()[i] == b'"' {
                self.pos += 1;
                return Ok(out);
            }
            // escape
            let esc = self.s.as_bytes().get(self.pos + 1).copied();
            self.pos += 2;
            match esc {
                Some(b'"') => out.push('"'),
                Some(b'\\') => out.push('\\'),
                Some(b'/') => out.push('/'),
                Some(b'b') => out.push('\x08'),
                Some(b'f') => out.push('\x0c'),
                Some(b'n') => out.push('\n'),
                Some(b'r') => out.push('\r'),
                Some(b't') => out.push('\t'),
                Some(b'u') => {
                    let mut cp = self.hex4()?;
                    if (0xD800..0xDC00).contains(&cp) && self.s[self.pos..].starts_with("\\u") {
                        self.pos += 2;
                        let lo = self.hex4()?;
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo.wrapping_sub(0xDC00) & 0x3FF);
                    }
                    out.push(char::from_u32(cp).unwrap_or('\u{FFFD}'));
                }
                _ => return self.err("invalid escape"),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let h = self.s.get(self.pos..self.pos + 4).ok_or("truncated \\u escape")?;
        let v = u32::from_str_radix(h, 16).map_err(|_| format!("invalid \\u escape at offset {}", self.pos))?;
        self.pos += 4;
        Ok(v)
    }
}

/// One step of a json extraction path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathPart {
    /// An object field.
    Field(String),
    /// An array index.
    Index(usize),
}

/// Parses a json extraction expression: `a.b`, `a["b.c"]`, `tags[0]`.
pub fn parse_path(expr: &str) -> Result<Vec<PathPart>, String> {
    let bad = |why: &str| format!("cannot parse expression [{expr}]: {why}");
    let mut out = Vec::new();
    let b = expr.as_bytes();
    let mut i = 0;
    let ident_len = |from: usize| {
        b[from..].iter().take_while(|c| c.is_ascii_alphanumeric() || **c == b'_' || **c == b'-').count()
    };
    if b.is_empty() {
        return Err(bad("empty expression"));
    }
    let n = ident_len(0);
    if n > 0 {
        out.push(PathPart::Field(expr[..n].to_string()));
        i = n;
    }
    while i < b.len() {
        match b[i] {
            b'.' => {
                let n = ident_len(i + 1);
                if n == 0 {
                    return Err(bad("syntax error: expected field name"));
                }
                out.push(PathPart::Field(expr[i + 1..i + 1 + n].to_string()));
                i += 1 + n;
            }
            b'[' => {
                let close = expr[i..].find(']').ok_or_else(|| bad("syntax error: unexpected $end"))? + i;
                let inner = expr[i + 1..close].trim();
                if let Some(q) = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                    out.push(PathPart::Field(q.to_string()));
                } else {
                    let idx: usize = inner.parse().map_err(|_| bad("syntax error: invalid index"))?;
                    out.push(PathPart::Index(idx));
                }
                i = close + 1;
            }
            _ => return Err(bad("syntax error: unexpected character")),
        }
    }
    if out.is_empty() {
        return Err(bad("empty expression"));
    }
    Ok(out)
}

/// Follows a path; the first matching key wins on duplicates.
pub fn lookup<'v, 'a>(v: &'v JVal<'a>, path: &[PathPart]) -> Option<&'v JVal<'a>> {
    let mut cur = v;
    for p in path {
        cur = match (p, cur) {
            (PathPart::Field(f), JVal::Obj(fields, _)) => &fields.iter().find(|(k, _)| k == f)?.1,
            (PathPart::Index(i), JVal::Arr(items, _)) => items.get(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_raw() {
        let v = parse(r#"{"a":1.50,"b":{"c":[1,2]},"a":"x\u00e9"}"#).unwrap();
        let JVal::Obj(f, _) = &v else { panic!() };
        assert_eq!(f[0], ("a".to_string(), JVal::Num("1.50")));
        assert_eq!(f[2].1, JVal::Str("xé".into()));
        let p = parse_path("b.c[1]").unwrap();
        assert_eq!(lookup(&v, &p), Some(&JVal::Num("2")));
        assert_eq!(lookup(&v, &parse_path("b").unwrap()).unwrap().text(), r#"{"c":[1,2]}"#);
        assert!(parse("{").is_err());
        assert!(parse("broken").is_err());
        assert!(parse_path("user[").is_err());
        assert_eq!(parse_path(r#"["a.b"]"#).unwrap(), vec![PathPart::Field("a.b".into())]);
        let deep = "[".repeat(10_000);
        assert!(parse(&deep).is_err());
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;
        use serde_json::Value;

        fn to_serde(v: &JVal<'_>) -> Value {
            match v {
                JVal::Obj(f, _) => {
                    // Like serde_json, the last duplicate wins here.
                    let mut m = serde_json::Map::new();
                    for (k, x) in f {
                        m.insert(k.clone(), to_serde(x));
                    }
                    Value::Object(m)
                }
                JVal::Arr(a, _) => Value::Array(a.iter().map(to_serde).collect()),
                JVal::Str(s) => Value::String(s.clone()),
                JVal::Num(n) => match n.parse::<i64>() {
                    Ok(i) => Value::from(i),
                    Err(_) => n.parse::<f64>().map_or(Value::Null, Value::from),
                },
                JVal::Bool(b) => Value::Bool(*b),
                JVal::Null => Value::Null,
            }
        }

        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i32>().prop_map(Value::from),
                (-1e6f64..1e6).prop_map(Value::from),
                any::<String>().prop_map(Value::String),
            ];
            leaf.prop_recursive(4, 32, 4, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    proptest::collection::btree_map("[a-z\"\\\\]{0,4}", inner, 0..4)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn agrees_with_serde(v in json_value(), pretty in any::<bool>()) {
                let text = if pretty { serde_json::to_string_pretty(&v) } else { serde_json::to_string(&v) }
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let ours = parse(&text).map_err(TestCaseError::fail)?;
                prop_assert_eq!(to_serde(&ours), v);
            }

            #[test]
            fn garbage_never_panics(s in r#"[\[\]{}",:0-9a-z\\. -]{0,40}"#) {
                let _ = parse(&s);
                let _ = parse_path(&s);
            }
        }
    }
}
