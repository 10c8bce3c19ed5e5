//! Splits template text into text and action tokens, as Go's
//! text/template lexer does: `{{`/`}}` delimiters, `{{- ` and ` -}}`
//! trimming, `{{/* comments */}}`, and the tokens inside actions.

use crate::error::{ParseError, ParseErrorKind};

/// The whitespace that trim markers remove and that separates tokens.
const SPACE: [char; 4] = [' ', '\t', '\r', '\n'];

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// A keyword of the template language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyword {
    If,
    Else,
    End,
    Range,
    With,
    Define,
    Template,
    Block,
    Break,
    Continue,
}

impl Keyword {
    fn from_word(w: &str) -> Option<Keyword> {
        Some(match w {
            "if" => Keyword::If,
            "else" => Keyword::Else,
            "end" => Keyword::End,
            "range" => Keyword::Range,
            "with" => Keyword::With,
            "define" => Keyword::Define,
            "template" => Keyword::Template,
            "block" => Keyword::Block,
            "break" => Keyword::Break,
            "continue" => Keyword::Continue,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Keyword::If => "if",
            Keyword::Else => "else",
            Keyword::End => "end",
            Keyword::Range => "range",
            Keyword::With => "with",
            Keyword::Define => "define",
            Keyword::Template => "template",
            Keyword::Block => "block",
            Keyword::Break => "break",
            Keyword::Continue => "continue",
        }
    }
}

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// Text outside actions, already trimmed.
    Text(String),
    /// `{{` (with its trim marker, if any).
    Open,
    /// `}}` (with its trim marker, if any).
    Close,
    Pipe,
    /// `:=`
    Declare,
    /// `=`
    Assign,
    Comma,
    LParen,
    RParen,
    /// `.` alone.
    Dot,
    /// `.name`
    Field(String),
    /// `$name` (`$` alone has the empty name).
    Var(String),
    Ident(String),
    Keyword(Keyword),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
}

impl Tok {
    /// How error messages name the token.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Text(_) => "text".into(),
            Tok::Open => "{{".into(),
            Tok::Close => "}}".into(),
            Tok::Pipe => "|".into(),
            Tok::Declare => ":=".into(),
            Tok::Assign => "=".into(),
            Tok::Comma => "\",\"".into(),
            Tok::LParen => "(".into(),
            Tok::RParen => ")".into(),
            Tok::Dot => ".".into(),
            Tok::Field(f) => format!(".{f}"),
            Tok::Var(v) => format!("${v}"),
            Tok::Ident(i) => format!("{i:?}"),
            Tok::Keyword(k) => format!("<{}>", k.name()),
            Tok::Str(s) => format!("{s:?}"),
            Tok::Int(i) => i.to_string(),
            Tok::Float(f) => f.to_string(),
            Tok::Bool(b) => b.to_string(),
            Tok::Nil => "nil".into(),
        }
    }
}

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) offset: usize,
    /// Whether whitespace (or the opening delimiter) comes right before
    /// it: `$x.a` is one operand, `$x .a` two.
    pub(crate) spaced: bool,
}

/// Lexes a whole template. Every `Open` is followed, after the action's
/// tokens, by a `Close`.
pub(crate) fn lex(src: &str) -> Result<Vec<Token>, ParseError> {
    let mut lx = Lexer { src, pos: 0, toks: Vec::new() };
    lx.run()?;
    Ok(lx.toks)
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    toks: Vec<Token>,
}

type PResult<T> = Result<T, ParseError>;

fn err<T>(offset: usize, kind: ParseErrorKind) -> PResult<T> {
    Err(ParseError::new(offset, kind))
}

impl Lexer<'_> {
    fn push(&mut self, tok: Tok, offset: usize, spaced: bool) {
        self.toks.push(Token { tok, offset, spaced });
    }

    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn run(&mut self) -> PResult<()> {
        let mut trim_next = false;
        loop {
            let start = self.pos;
            let open = self.rest().find("{{").map(|i| start + i);
            let mut text = &self.src[start..open.unwrap_or(self.src.len())];
            if trim_next {
                text = text.trim_start_matches(SPACE);
            }
            let Some(open) = open else {
                self.text(text);
                return Ok(());
            };
            self.pos = open + 2;
            // `{{- ` trims the text before it; the marker and its space are
            // not part of the action.
            let b = self.rest().as_bytes();
            if b.len() >= 2 && b[0] == b'-' && is_space(b[1]) {
                text = text.trim_end_matches(SPACE);
                self.pos += 2;
            }
            self.text(text);
            trim_next = if self.rest().starts_with("/*") { self.comment(open)? } else { self.action(open)? };
        }
    }

    fn text(&mut self, text: &str) {
        if !text.is_empty() {
            let offset = text.as_ptr() as usize - self.src.as_ptr() as usize;
            self.push(Tok::Text(text.to_string()), offset, true);
        }
    }

    /// At `}}` or ` -}}`: steps past it and says whether it trims.
    fn close(&mut self) -> Option<bool> {
        let b = self.rest().as_bytes();
        if b.len() >= 4 && is_space(b[0]) && b[1] == b'-' && &b[2..4] == b"}}" {
            self.pos += 4;
            Some(true)
        } else if b.starts_with(b"}}") {
            self.pos += 2;
            Some(false)
        } else {
            None
        }
    }

    /// A comment: `/*` right after the delimiter, `*/` right before it.
    fn comment(&mut self, open: usize) -> PResult<bool> {
        let body = self.pos + 2;
        let Some(end) = self.src[body..].find("*/") else {
            return err(open, ParseErrorKind::UnclosedComment);
        };
        self.pos = body + end + 2;
        match self.close() {
            Some(trim) => Ok(trim),
            None => err(self.pos, ParseErrorKind::CommentNotAtDelimiter),
        }
    }

    /// The tokens of one action, up to and including its `}}`.
    fn action(&mut self, open: usize) -> PResult<bool> {
        self.push(Tok::Open, open, true);
        let mut parens: Vec<usize> = Vec::new();
        let mut spaced = true;
        loop {
            let at = self.pos;
            if let Some(trim) = self.close() {
                if let Some(&p) = parens.last() {
                    return err(p, ParseErrorKind::UnclosedLeftParen);
                }
                self.push(Tok::Close, at, spaced);
                return Ok(trim);
            }
            let Some(c) = self.peek() else {
                return err(open, ParseErrorKind::UnclosedAction);
            };
            let tok = match c {
                ' ' | '\t' | '\r' | '\n' => {
                    self.pos += 1;
                    spaced = true;
                    continue;
                }
                '|' | ',' | '=' | '(' | ')' => {
                    self.pos += 1;
                    match c {
                        '|' => Tok::Pipe,
                        ',' => Tok::Comma,
                        '=' => Tok::Assign,
                        '(' => {
                            parens.push(at);
                            Tok::LParen
                        }
                        _ => {
                            if parens.pop().is_none() {
                                return err(at, ParseErrorKind::UnexpectedRightParen);
                            }
                            Tok::RParen
                        }
                    }
                }
                ':' => {
                    if !self.rest().starts_with(":=") {
                        return err(at, ParseErrorKind::ExpectedDeclare);
                    }
                    self.pos += 2;
                    Tok::Declare
                }
                '"' => self.quoted()?,
                '`' => self.raw()?,
                '\'' => self.char_constant()?,
                '$' => {
                    self.pos += 1;
                    Tok::Var(self.word()?)
                }
                '.' if !self.rest()[1..].starts_with(|d: char| d.is_ascii_digit()) => {
                    self.pos += 1;
                    let name = self.word()?;
                    if name.is_empty() {
                        Tok::Dot
                    } else {
                        Tok::Field(name)
                    }
                }
                '.' | '+' | '-' | '0'..='9' => self.number()?,
                c if is_alnum(c) => {
                    let w = self.word()?;
                    match w.as_str() {
                        "true" => Tok::Bool(true),
                        "false" => Tok::Bool(false),
                        "nil" => Tok::Nil,
                        _ => Keyword::from_word(&w).map_or(Tok::Ident(w), Tok::Keyword),
                    }
                }
                c => return err(at, ParseErrorKind::BadCharacter(c)),
            };
            self.push(tok, at, spaced);
            spaced = false;
        }
    }

    /// A run of letters, digits and `_`, which must end at a terminator.
    fn word(&mut self) -> PResult<String> {
        let start = self.pos;
        let len = self.rest().find(|c: char| !is_alnum(c)).unwrap_or(self.rest().len());
        self.pos += len;
        match self.peek() {
            None | Some(' ' | '\t' | '\r' | '\n' | '.' | ',' | '|' | ':' | '=' | '(' | ')') => {}
            Some('}') if self.rest().starts_with("}}") => {}
            Some(c) => return err(self.pos, ParseErrorKind::BadCharacter(c)),
        }
        Ok(self.src[start..self.pos].to_string())
    }

    /// The text between `quote` and its closing match on the same line
    /// (escapes skipped), with the position moved past it.
    fn delimited(&mut self, quote: u8, unterminated: ParseErrorKind) -> PResult<&str> {
        let start = self.pos;
        let b = self.src.as_bytes();
        let mut i = start + 1;
        loop {
            match b.get(i) {
                Some(b'\\') if !matches!(b.get(i + 1), None | Some(b'\n')) => i += 2,
                Some(c) if *c == quote => break,
                None | Some(b'\n' | b'\\') => return err(start, unterminated),
                Some(_) => i += 1,
            }
        }
        self.pos = i + 1;
        Ok(&self.src[start + 1..i])
    }

    fn quoted(&mut self) -> PResult<Tok> {
        let start = self.pos;
        let body = self.delimited(b'"', ParseErrorKind::UnterminatedString)?;
        match unquote(body, '"') {
            Some(s) => Ok(Tok::Str(s)),
            None => err(start, ParseErrorKind::BadLiteral("quoted string".into())),
        }
    }

    fn raw(&mut self) -> PResult<Tok> {
        let start = self.pos;
        let Some(len) = self.src[start + 1..].find('`') else {
            return err(start, ParseErrorKind::UnterminatedRawString);
        };
        self.pos = start + 1 + len + 1;
        // Go drops carriage returns from raw strings.
        Ok(Tok::Str(self.src[start + 1..start + 1 + len].replace('\r', "")))
    }

    fn char_constant(&mut self) -> PResult<Tok> {
        let start = self.pos;
        let body = self.delimited(b'\'', ParseErrorKind::UnterminatedChar)?;
        let s = unquote(body, '\'');
        let mut chars = s.as_deref().unwrap_or("").chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => Ok(Tok::Int(i64::from(u32::from(c)))),
            _ => err(start, ParseErrorKind::BadLiteral("character constant".into())),
        }
    }

    /// A number as Go's lexer scans it: sign, base prefix, digits,
    /// fraction, exponent; then it must not run into a letter.
    fn number(&mut self) -> PResult<Tok> {
        let start = self.pos;
        let b = self.src.as_bytes();
        let mut i = start;
        let accept = |i: &mut usize, set: &[u8]| -> bool {
            if b.get(*i).is_some_and(|c| set.contains(c)) {
                *i += 1;
                true
            } else {
                false
            }
        };
        let run = |i: &mut usize, set: &[u8]| {
            while b.get(*i).is_some_and(|c| set.contains(c)) {
                *i += 1;
            }
        };
        const DEC: &[u8] = b"0123456789_";
        const HEX: &[u8] = b"0123456789abcdefABCDEF_";
        accept(&mut i, b"+-");
        let mut digits = DEC;
        if accept(&mut i, b"0") {
            if accept(&mut i, b"xX") {
                digits = HEX;
            } else if accept(&mut i, b"oO") {
                digits = b"01234567_";
            } else if accept(&mut i, b"bB") {
                digits = b"01_";
            }
        }
        run(&mut i, digits);
        if accept(&mut i, b".") {
            run(&mut i, digits);
        }
        if digits == DEC && accept(&mut i, b"eE") {
            accept(&mut i, b"+-");
            run(&mut i, DEC);
        }
        if digits == HEX && accept(&mut i, b"pP") {
            accept(&mut i, b"+-");
            run(&mut i, DEC);
        }
        accept(&mut i, b"i");
        self.pos = i;
        if let Some(c) = self.peek().filter(|c| is_alnum(*c)) {
            let bad = format!("{}{c}", &self.src[start..i]);
            return err(start, ParseErrorKind::BadNumber(bad));
        }
        let text = &self.src[start..i];
        number_value(text).ok_or_else(|| ParseError::new(start, ParseErrorKind::BadNumber(text.to_string())))
    }
}

/// The value of a number token: an integer when it reads as one (in any
/// base, and fits an i64), else a float. Complex numbers and hexadecimal
/// floats are not supported.
fn number_value(text: &str) -> Option<Tok> {
    let clean: String = text.chars().filter(|c| *c != '_').collect();
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
    };
    let lower = body.to_ascii_lowercase();
    let radix = if let Some(d) = lower.strip_prefix("0x") {
        Some((16, d))
    } else if let Some(d) = lower.strip_prefix("0o") {
        Some((8, d))
    } else if let Some(d) = lower.strip_prefix("0b") {
        Some((2, d))
    } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().all(|c| c.is_ascii_digit()) {
        Some((8, &lower[1..]))
    } else {
        None
    };
    if let Some((radix, digits)) = radix {
        if digits.is_empty() || digits.contains(['.', 'p', 'i']) {
            return None;
        }
        let m = u64::from_str_radix(digits, radix).ok()?;
        let v = if neg { -i128::from(m) } else { i128::from(m) };
        return Some(i64::try_from(v).map_or(Tok::Float(v as f64), Tok::Int));
    }
    if lower.is_empty() || lower.ends_with('i') {
        return None;
    }
    if !lower.contains(['.', 'e']) {
        if let Ok(m) = lower.parse::<u64>() {
            let v = if neg { -i128::from(m) } else { i128::from(m) };
            return Some(i64::try_from(v).map_or(Tok::Float(v as f64), Tok::Int));
        }
    }
    let f: f64 = lower.parse().ok()?;
    Some(Tok::Float(if neg { -f } else { f }))
}

/// The text of a quoted string or character (between the quotes) with
/// Go's escapes replaced; `None` on a bad escape. `\x` and octal escapes
/// give bytes, so the result is read as UTF-8 with bad bytes replaced.
fn unquote(s: &str, quote: char) -> Option<String> {
    if !s.contains('\\') {
        return Some(s.to_string());
    }
    let mut out: Vec<u8> = Vec::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
            continue;
        }
        let e = chars.next()?;
        let simple = match e {
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'f' => Some('\x0c'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\x0b'),
            '\\' => Some('\\'),
            c if c == quote => Some(c),
            _ => None,
        };
        if let Some(c) = simple {
            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
            continue;
        }
        let (len, radix) = match e {
            'x' => (2, 16),
            'u' => (4, 16),
            'U' => (8, 16),
            '0'..='7' => (2, 8),
            _ => return None,
        };
        let mut digits = String::new();
        if radix == 8 {
            digits.push(e);
        }
        for _ in 0..len {
            digits.push(chars.next()?);
        }
        if !digits.chars().all(|d| d.is_digit(radix)) {
            return None;
        }
        let n = u32::from_str_radix(&digits, radix).ok()?;
        match e {
            'x' => out.push(n as u8),
            '0'..='7' => out.push(u8::try_from(n).ok()?),
            _ => out.extend_from_slice(char::from_u32(n)?.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        lex(src).unwrap_or_else(|e| panic!("{src}: {e}")).into_iter().map(|t| t.tok).collect()
    }

    fn kind(src: &str) -> ParseErrorKind {
        lex(src).map(|_| ()).unwrap_err().kind().clone()
    }

    #[test]
    fn text_actions_and_trimming() {
        use Tok::*;
        assert_eq!(toks("a {{ .x }} b"), [Text("a ".into()), Open, Field("x".into()), Close, Text(" b".into())]);
        assert_eq!(toks("a \n{{- .x -}}\t b"), [Text("a".into()), Open, Field("x".into()), Close, Text("b".into())]);
        assert_eq!(toks("{{-3}}"), [Open, Int(-3), Close]);
        assert_eq!(toks("x {{- /* c */ -}} y"), [Text("x".into()), Text("y".into())]);
        assert_eq!(toks("{{/* a }} b */}}z"), [Text("z".into())]);
        assert_eq!(toks("{{ \"}}\" }}"), [Open, Str("}}".into()), Close]);
    }

    #[test]
    fn tokens_inside_actions() {
        use Tok::*;
        assert_eq!(
            toks("{{ $x := .a.b | f 1 2.5 0x1F 'a' `r\\n` \"q\\t\\u00e9\" true nil (.) $ }}"),
            [
                Open,
                Var("x".into()),
                Declare,
                Field("a".into()),
                Field("b".into()),
                Pipe,
                Ident("f".into()),
                Int(1),
                Float(2.5),
                Int(31),
                Int(97),
                Str("r\\n".into()),
                Str("q\té".into()),
                Bool(true),
                Nil,
                LParen,
                Dot,
                RParen,
                Var("".into()),
                Close
            ]
        );
        assert_eq!(
            toks("{{ 1e3 0755 -0b11 .5 1_000 }}")[1..6],
            [Float(1000.0), Int(493), Int(-3), Float(0.5), Int(1000)]
        );
        assert_eq!(toks("{{ range $i, $e = x }}")[3], Comma);
    }

    #[test]
    fn errors() {
        assert_eq!(kind("{{ x "), ParseErrorKind::UnclosedAction);
        assert_eq!(kind("{{/* x "), ParseErrorKind::UnclosedComment);
        assert_eq!(kind("{{ /* x */ }}"), ParseErrorKind::BadCharacter('/'));
        assert_eq!(kind("{{/* x */ }}"), ParseErrorKind::CommentNotAtDelimiter);
        assert_eq!(kind("{{ \"a\nb\" }}"), ParseErrorKind::UnterminatedString);
        assert_eq!(kind("{{ \"\\d\" }}"), ParseErrorKind::BadLiteral("quoted string".into()));
        assert_eq!(kind("{{ `x }}"), ParseErrorKind::UnterminatedRawString);
        assert_eq!(kind("{{ 'ab' }}"), ParseErrorKind::BadLiteral("character constant".into()));
        assert_eq!(kind("{{ 12ab }}"), ParseErrorKind::BadNumber("12a".into()));
        assert_eq!(kind("{{ 1i }}"), ParseErrorKind::BadNumber("1i".into()));
        assert_eq!(kind("{{ - }}"), ParseErrorKind::BadNumber("-".into()));
        assert_eq!(kind("{{ (1 }}"), ParseErrorKind::UnclosedLeftParen);
        assert_eq!(kind("{{ 1) }}"), ParseErrorKind::UnexpectedRightParen);
        assert_eq!(kind("{{ $x: }}"), ParseErrorKind::ExpectedDeclare);
        assert_eq!(kind("{{ f# }}"), ParseErrorKind::BadCharacter('#'));
        assert_eq!(lex("ab{{ 1) }}").unwrap_err().offset(), 6);
    }
}
