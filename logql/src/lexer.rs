//! The LogQL tokenizer. Token-level scanning (identifiers, numbers,
//! durations, byte sizes) uses `nom` combinators; the parser is a
//! recursive-descent parser over the token list.

use crate::error::ParseError;
use crate::units::QUERY_BYTES_UNITS;
use nom::branch::alt;
use nom::bytes::complete::{tag, take_while, take_while1};
use nom::character::complete::{char as nchar, digit0, digit1, one_of, satisfy};
use nom::combinator::{opt, recognize};
use nom::multi::many1;
use nom::sequence::{pair, tuple};
use nom::IResult;

/// A token kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// An identifier or keyword.
    Ident(String),
    /// A string literal (unescaped).
    Str(String),
    /// A number literal, as written.
    Number(String),
    /// A duration literal, as written.
    Duration(String),
    /// A byte-size literal, as written.
    Bytes(String),
    /// A `--flag`.
    Flag(String),
    /// Punctuation and operators.
    Op(&'static str),
    /// End of input.
    Eof,
}

impl Tok {
    /// How the token is named in syntax errors.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) | Tok::Number(s) | Tok::Duration(s) | Tok::Bytes(s) => s.clone(),
            Tok::Str(_) => "STRING".into(),
            Tok::Flag(s) => format!("--{s}"),
            Tok::Op(o) => (*o).into(),
            Tok::Eof => "$end".into(),
        }
    }
}

/// A token with its byte span.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    /// The kind.
    pub tok: Tok,
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

const OPS: &[&str] = &[
    "|=", "|~", "|>", "!=", "!~", "!>", "=~", "==", ">=", "<=", "|", "=", ">", "<", "+", "-", "*", "/", "%",
    "^", "(", ")", "{", "}", "[", "]", ",",
];

fn ident(i: &str) -> IResult<&str, &str> {
    recognize(pair(
        satisfy(|c| c.is_ascii_alphabetic() || c == '_'),
        take_while(|c: char| c.is_ascii_alphanumeric() || c == '_'),
    ))(i)
}

fn decimal(i: &str) -> IResult<&str, &str> {
    recognize(tuple((
        alt((recognize(pair(digit1, opt(pair(nchar('.'), digit0)))), recognize(pair(nchar('.'), digit1)))),
        opt(tuple((one_of("eE"), opt(one_of("+-")), digit1))),
    )))(i)
}

fn duration_unit(i: &str) -> IResult<&str, &str> {
    alt((tag("ns"), tag("us"), tag("µs"), tag("μs"), tag("ms"), tag("s"), tag("m"), tag("h"), tag("d"), tag("w"), tag("y")))(i)
}

fn duration(i: &str) -> IResult<&str, &str> {
    recognize(many1(pair(recognize(pair(digit1, opt(pair(nchar('.'), digit1)))), duration_unit)))(i)
}

fn bytes_lit(i: &str) -> IResult<&str, &str> {
    let (rest, num) = recognize(pair(digit1, opt(pair(nchar('.'), digit1))))(i)?;
    for u in QUERY_BYTES_UNITS {
        if let Some(after) = rest.strip_prefix(u) {
            return Ok((after, &i[..num.len() + u.len()]));
        }
    }
    Err(nom::Err::Error(nom::error::Error::new(i, nom::error::ErrorKind::Tag)))
}

fn radix_number(i: &str) -> IResult<&str, &str> {
    recognize(tuple((
        nchar('0'),
        one_of("xXbBoO"),
        take_while1(|c: char| c.is_ascii_hexdigit() || c == '.' || c == '_' || c == 'p' || c == 'P'),
        opt(pair(one_of("+-"), digit1)),
    )))(i)
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Splits a query into tokens.
pub fn tokenize(src: &str) -> Result<Vec<Token>, ParseError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < src.len() {
        let rest = &src[pos..];
        let c = rest.chars().next().unwrap_or(' ');
        if c.is_whitespace() {
            pos += c.len_utf8();
            continue;
        }
        if c == '#' {
            pos += rest.find('\n').unwrap_or(rest.len());
            continue;
        }
        let start = pos;
        let (tok, len) = if c == '"' || c == '`' {
            let (s, len) = scan_string(rest).map_err(|m| ParseError::at(src, start, m))?;
            (Tok::Str(s), len)
        } else if rest.starts_with("--") && rest[2..].starts_with(|c: char| c.is_ascii_alphabetic()) {
            let n = rest[2..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')).unwrap_or(rest.len() - 2);
            (Tok::Flag(rest[2..2 + n].to_string()), 2 + n)
        } else if c.is_ascii_digit() || (c == '.' && rest[1..].starts_with(|c: char| c.is_ascii_digit())) {
            if let Ok((_, r)) = radix_number(rest) {
                (Tok::Number(r.to_string()), r.len())
            } else if let Ok((after, b)) = bytes_lit(rest) {
                if after.starts_with(is_ident_char) {
                    let word: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '.').collect();
                    return Err(ParseError::at(src, start, format!("syntax error: unexpected {word}")));
                }
                (Tok::Bytes(b.to_string()), b.len())
            } else if let Ok((_, d)) = duration(rest) {
                (Tok::Duration(d.to_string()), d.len())
            } else if let Ok((_, n)) = decimal(rest) {
                (Tok::Number(n.to_string()), n.len())
            } else {
                return Err(ParseError::at(src, start, format!("syntax error: unexpected {c}")));
            }
        } else if let Ok((_, id)) = ident(rest) {
            (Tok::Ident(id.to_string()), id.len())
        } else if let Some(op) = OPS.iter().find(|o| rest.starts_with(**o)) {
            (Tok::Op(op), op.len())
        } else {
            return Err(ParseError::at(src, start, format!("syntax error: unexpected character {c:?}")));
        };
        pos += len;
        out.push(Token { tok, start, end: pos });
    }
    out.push(Token { tok: Tok::Eof, start: src.len(), end: src.len() });
    Ok(out)
}

/// Scans a quoted string at the start of `s`; returns the value and the
/// length consumed. Backtick strings are raw; double-quoted strings take Go
/// escapes.
fn scan_string(s: &str) -> Result<(String, usize), String> {
    let mut chars = s.char_indices();
    let (_, q) = chars.next().ok_or("unterminated string")?;
    if q == '`' {
        return match s[1..].find('`') {
            Some(i) => Ok((s[1..1 + i].to_string(), i + 2)),
            None => Err("literal not terminated".into()),
        };
    }
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\\' => {
                let (_, e) = chars.next().ok_or("literal not terminated")?;
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'a' => out.push('\x07'),
                    'b' => out.push('\x08'),
                    'f' => out.push('\x0c'),
                    'v' => out.push('\x0b'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let mut v = 0u32;
                        for _ in 0..n {
                            let (_, h) = chars.next().ok_or("literal not terminated")?;
                            v = v * 16 + h.to_digit(16).ok_or("invalid char escape")?;
                        }
                        out.push(char::from_u32(v).ok_or("invalid char escape")?);
                    }
                    '0'..='7' => {
                        let mut v = e.to_digit(8).unwrap_or(0);
                        for _ in 0..2 {
                            let (_, h) = chars.next().ok_or("literal not terminated")?;
                            v = v * 8 + h.to_digit(8).ok_or("invalid char escape")?;
                        }
                        out.push(char::from_u32(v).ok_or("invalid char escape")?);
                    }
                    _ => return Err("invalid char escape".into()),
                }
            }
            '\n' => return Err("literal not terminated".into()),
            c => out.push(c),
        }
    }
    Err("literal not terminated".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn tokens() {
        assert_eq!(
            kinds(r#"{a="b\"c"} |= `x\y` [1h30m]"#),
            vec![
                Tok::Op("{"),
                Tok::Ident("a".into()),
                Tok::Op("="),
                Tok::Str("b\"c".into()),
                Tok::Op("}"),
                Tok::Op("|="),
                Tok::Str("x\\y".into()),
                Tok::Op("["),
                Tok::Duration("1h30m".into()),
                Tok::Op("]"),
                Tok::Eof
            ]
        );
        assert_eq!(kinds("3000KB 1.5e3 0x1p3 --strict")[..4], [
            Tok::Bytes("3000KB".into()),
            Tok::Number("1.5e3".into()),
            Tok::Number("0x1p3".into()),
            Tok::Flag("strict".into())
        ]);
        assert_eq!(kinds("1+1--1")[3], Tok::Op("-"));
        assert!(tokenize("\"abc").is_err());
        // `1mb` is the duration 1m followed by the identifier b.
        assert_eq!(kinds("1mb")[..2], [Tok::Duration("1m".into()), Tok::Ident("b".into())]);
    }
}
