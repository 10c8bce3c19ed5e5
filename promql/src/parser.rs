//! The PromQL parser: text → [`Expr`], with Prometheus's precedence rules
//! and parse-time type checking.

use crate::ast::*;
use crate::functions;
use crate::lexer;
use model::{MatchType, Matcher};

/// Limits that protect the parser from hostile input.
#[derive(Clone, Debug)]
pub struct ParseOptions {
    /// Longest accepted query, in bytes.
    pub max_query_len: usize,
    /// Deepest accepted nesting of expressions.
    pub max_depth: usize,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions { max_query_len: 64 * 1024, max_depth: 100 }
    }
}

/// Why a query did not parse. Every variant says where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// A syntax or type error at byte `pos` of `query`.
    #[error("{}", render(query, *pos, message))]
    Syntax {
        /// Byte offset of the problem in the query.
        pos: usize,
        /// What is wrong.
        message: String,
        /// The query text (for drawing the caret).
        query: String,
    },
    /// The query nests deeper than [`ParseOptions::max_depth`]; `pos` is
    /// where the limit was reached.
    #[error("{}", render(query, *pos, &format!("expression nesting is deeper than the limit of {max}")))]
    TooDeep {
        /// Byte offset where the limit was reached.
        pos: usize,
        /// The limit.
        max: usize,
        /// The query text.
        query: String,
    },
    /// The query is longer than [`ParseOptions::max_query_len`].
    #[error("query is {len} bytes long, the limit is {max}")]
    TooLong {
        /// The query's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl ParseError {
    /// Byte offset of the problem (the limit for [`ParseError::TooLong`]).
    pub fn pos(&self) -> usize {
        match self {
            ParseError::Syntax { pos, .. } | ParseError::TooDeep { pos, .. } => *pos,
            ParseError::TooLong { max, .. } => *max,
        }
    }

    /// The message without the position and caret.
    pub fn message(&self) -> String {
        match self {
            ParseError::Syntax { message, .. } => message.clone(),
            ParseError::TooDeep { max, .. } => format!("expression nesting is deeper than the limit of {max}"),
            ParseError::TooLong { len, max } => format!("query is {len} bytes long, the limit is {max}"),
        }
    }

    /// 1-based line and column (in characters) of the error.
    pub fn line_col(&self) -> (usize, usize) {
        match self {
            ParseError::Syntax { pos, query, .. } | ParseError::TooDeep { pos, query, .. } => line_col(query, *pos),
            ParseError::TooLong { .. } => (1, 1),
        }
    }
}

/// `parse error at line L, char C: message`, then the line with a caret
/// under the position.
fn render(query: &str, pos: usize, message: &str) -> String {
    let (line, col) = line_col(query, pos);
    let mut out = format!("parse error at line {line}, char {col}: {message}");
    if let Some(text) = query.lines().nth(line - 1) {
        if text.len() <= 200 {
            out.push_str(&format!("\n  {text}\n  {}^", " ".repeat(col - 1)));
        }
    }
    out
}

/// 1-based line and column (in characters) of byte `pos` in `text`.
pub fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(text.len());
    let before = text.get(..pos).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, col)
}

/// Parses a PromQL expression with default limits.
pub fn parse(query: &str) -> Result<Expr, ParseError> {
    parse_with(query, &ParseOptions::default())
}

/// Parses a PromQL expression with the given limits.
pub fn parse_with(query: &str, opts: &ParseOptions) -> Result<Expr, ParseError> {
    if query.len() > opts.max_query_len {
        return Err(ParseError::TooLong { len: query.len(), max: opts.max_query_len });
    }
    let mut p = Parser { src: query, pos: 0, depth: 0, max_depth: opts.max_depth };
    let e = p.expr(0)?;
    p.ws();
    if p.pos < p.src.len() {
        return Err(p.err_at(p.pos, format!("unexpected {}", p.describe_here())));
    }
    Ok(e)
}

/// Parses a series selector as used by load lines and APIs (`name{l="v"}`).
pub fn parse_selector(text: &str) -> Result<VectorSelector, ParseError> {
    let mut p = Parser { src: text, pos: 0, depth: 0, max_depth: 8 };
    p.ws();
    let start = p.pos;
    let n = lexer::ident_len(p.rest());
    let name = if n > 0 {
        let s = p.rest()[..n].to_string();
        p.pos += n;
        Some(s)
    } else {
        None
    };
    let vs = p.selector_rest(start, name, false)?;
    p.ws();
    if p.pos < p.src.len() {
        return Err(p.err_at(p.pos, format!("unexpected {}", p.describe_here())));
    }
    Ok(vs)
}

const KEYWORDS: &[&str] = &["and", "or", "unless", "atan2", "bool", "on", "ignoring", "group_left", "group_right", "offset", "by", "without"];

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
    max_depth: usize,
}

type PResult<T> = Result<T, ParseError>;

impl<'a> Parser<'a> {
    fn err_at(&self, pos: usize, message: String) -> ParseError {
        ParseError::Syntax { pos, message, query: self.src.to_string() }
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn ws(&mut self) {
        loop {
            let r = self.rest();
            let t = r.trim_start();
            self.pos += r.len() - t.len();
            if t.starts_with('#') {
                // Comments run to the end of the line.
                self.pos += t.find('\n').unwrap_or(t.len());
            } else {
                break;
            }
        }
    }

    fn describe_here(&self) -> String {
        let r = self.rest();
        match r.chars().next() {
            None => "end of input".to_string(),
            Some(c) => {
                let n = lexer::ident_len(r);
                if n > 0 {
                    format!("identifier {:?}", &r[..n])
                } else {
                    format!("character {c:?}")
                }
            }
        }
    }

    fn eat(&mut self, s: &str) -> bool {
        self.ws();
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn expect_token(&mut self, s: &str, ctx: &str) -> PResult<()> {
        if self.eat(s) {
            Ok(())
        } else {
            Err(self.err_at(self.pos, format!("unexpected {} {ctx}, expected \"{s}\"", self.describe_here())))
        }
    }

    /// The identifier at the current position (after whitespace), not consumed.
    fn peek_ident(&mut self) -> &'a str {
        self.ws();
        let r = self.rest();
        &r[..lexer::ident_len(r)]
    }

    /// Consumes keyword `kw` if it is the next whole identifier.
    fn eat_keyword(&mut self, kw: &str) -> bool {
        if self.peek_ident().eq_ignore_ascii_case(kw) {
            self.pos += kw.len();
            true
        } else {
            false
        }
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(ParseError::TooDeep { pos: self.pos, max: self.max_depth, query: self.src.to_string() });
        }
        Ok(())
    }

    fn peek_binop(&mut self) -> Option<(BinaryOp, usize)> {
        self.ws();
        let r = self.rest();
        let two = r.get(..2).unwrap_or("");
        let op = match two {
            "==" => Some((BinaryOp::Eq, 2)),
            "!=" => Some((BinaryOp::Ne, 2)),
            ">=" => Some((BinaryOp::Ge, 2)),
            "<=" => Some((BinaryOp::Le, 2)),
            "</" => Some((BinaryOp::TrimUpper, 2)),
            ">/" => Some((BinaryOp::TrimLower, 2)),
            _ => None,
        };
        if op.is_some() {
            return op;
        }
        match r.chars().next() {
            Some('+') => return Some((BinaryOp::Add, 1)),
            Some('-') => return Some((BinaryOp::Sub, 1)),
            Some('*') => return Some((BinaryOp::Mul, 1)),
            Some('/') => return Some((BinaryOp::Div, 1)),
            Some('%') => return Some((BinaryOp::Mod, 1)),
            Some('^') => return Some((BinaryOp::Pow, 1)),
            Some('>') => return Some((BinaryOp::Gt, 1)),
            Some('<') => return Some((BinaryOp::Lt, 1)),
            _ => {}
        }
        let w = &r[..lexer::ident_len(r)];
        match w.to_ascii_lowercase().as_str() {
            "and" => Some((BinaryOp::And, 3)),
            "or" => Some((BinaryOp::Or, 2)),
            "unless" => Some((BinaryOp::Unless, 6)),
            "atan2" => Some((BinaryOp::Atan2, 5)),
            _ => None,
        }
    }

    fn expr(&mut self, min_prec: u8) -> PResult<Expr> {
        self.enter()?;
        let mut lhs = self.unary()?;
        while let Some((op, len)) = self.peek_binop() {
            let prec = op.precedence();
            if prec < min_prec {
                break;
            }
            let op_pos = self.pos;
            self.pos += len;
            let modifier = self.bin_modifiers(op, op_pos)?;
            let next_min = if op.right_assoc() { prec } else { prec + 1 };
            let rhs = self.expr(next_min)?;
            let span = lhs.span().to(rhs.span());
            lhs = self.check_binary(op, lhs, rhs, modifier, span, op_pos)?;
        }
        self.depth -= 1;
        Ok(lhs)
    }

    fn label_list(&mut self, ctx: &str) -> PResult<Vec<String>> {
        self.expect_token("(", ctx)?;
        let mut out = Vec::new();
        loop {
            self.ws();
            if self.eat(")") {
                return Ok(out);
            }
            let r = self.rest();
            let name = if r.starts_with(['"', '\'', '`']) {
                let (s, n) = lexer::string(r).map_err(|e| self.err_at(self.pos + e.offset, e.message))?;
                self.pos += n;
                s
            } else {
                let n = lexer::ident_len(r);
                let w = &r[..n];
                if n == 0 || w.contains(':') {
                    return Err(self.err_at(self.pos, format!("unexpected {} in grouping opts, expected label", self.describe_here())));
                }
                self.pos += n;
                w.to_string()
            };
            out.push(name);
            self.ws();
            if !self.eat(",") {
                self.expect_token(")", "in grouping opts")?;
                return Ok(out);
            }
        }
    }

    fn fill_value(&mut self) -> PResult<f64> {
        self.expect_token("(", "in fill modifier")?;
        self.ws();
        let neg = if self.eat("-") {
            true
        } else {
            self.eat("+");
            false
        };
        self.ws();
        let (v, n) = lexer::number(self.rest()).ok_or_else(|| self.err_at(self.pos, "expected number in fill modifier".into()))?;
        self.pos += n;
        self.expect_token(")", "in fill modifier")?;
        Ok(if neg { -v } else { v })
    }

    fn bin_modifiers(&mut self, op: BinaryOp, op_pos: usize) -> PResult<BinModifier> {
        let mut m = BinModifier::default();
        if op.is_set() {
            m.matching.card = Cardinality::ManyToMany;
        }
        if self.eat_keyword("bool") {
            if !op.is_comparison() {
                return Err(self.err_at(op_pos, "bool modifier can only be used on comparison operators".into()));
            }
            m.return_bool = true;
        }
        let kw = self.peek_ident().to_ascii_lowercase();
        if kw == "on" || kw == "ignoring" {
            self.pos += kw.len();
            m.matching.on = kw == "on";
            m.matching.explicit = true;
            m.matching.labels = self.label_list("in grouping opts")?;
            let kw = self.peek_ident().to_ascii_lowercase();
            if kw == "group_left" || kw == "group_right" {
                self.pos += kw.len();
                if op.is_set() {
                    return Err(self.err_at(op_pos, format!("no grouping allowed for \"{}\" operation", op.as_str())));
                }
                m.matching.card = if kw == "group_left" { Cardinality::ManyToOne } else { Cardinality::OneToMany };
                self.ws();
                if self.rest().starts_with('(') {
                    m.matching.include = self.label_list("in grouping opts")?;
                }
            }
        }
        loop {
            let kw = self.peek_ident().to_ascii_lowercase();
            // `fill` etc. are modifiers only when followed by `(`; otherwise
            // they are metric names.
            if !self.rest()[kw.len()..].trim_start().starts_with('(') {
                break;
            }
            match kw.as_str() {
                "fill" => {
                    self.pos += 4;
                    let v = self.fill_value()?;
                    m.fill_left = Some(v);
                    m.fill_right = Some(v);
                }
                "fill_left" => {
                    self.pos += 9;
                    m.fill_left = Some(self.fill_value()?);
                }
                "fill_right" => {
                    self.pos += 10;
                    m.fill_right = Some(self.fill_value()?);
                }
                _ => break,
            }
        }
        Ok(m)
    }

    fn check_binary(&self, op: BinaryOp, lhs: Expr, rhs: Expr, modifier: BinModifier, span: Span, op_pos: usize) -> PResult<Expr> {
        let (lt, rt) = (lhs.value_type(), rhs.value_type());
        for (t, e) in [(lt, &lhs), (rt, &rhs)] {
            if t != ValueType::Scalar && t != ValueType::Vector {
                return Err(self.err_at(e.span().start, "binary expression must contain only scalar and instant vector types".into()));
            }
        }
        if op.is_set() && (lt == ValueType::Scalar || rt == ValueType::Scalar) {
            return Err(self.err_at(op_pos, format!("set operator \"{}\" not allowed in binary scalar expression", op.as_str())));
        }
        if op.is_comparison() && lt == ValueType::Scalar && rt == ValueType::Scalar && !modifier.return_bool {
            return Err(self.err_at(op_pos, "comparisons between scalars must use BOOL modifier".into()));
        }
        if (lt == ValueType::Scalar || rt == ValueType::Scalar) && (modifier.matching.explicit || modifier.matching.card != Cardinality::OneToOne && !op.is_set()) {
            return Err(self.err_at(op_pos, "vector matching only allowed between instant vectors".into()));
        }
        if modifier.matching.on && matches!(modifier.matching.card, Cardinality::ManyToOne | Cardinality::OneToMany) {
            for l in &modifier.matching.include {
                if modifier.matching.labels.contains(l) {
                    return Err(self.err_at(op_pos, format!("label {l:?} must not occur in ON and GROUP clause at once")));
                }
            }
        }
        Ok(Expr::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs), modifier, span })
    }

    fn unary(&mut self) -> PResult<Expr> {
        self.ws();
        let start = self.pos;
        let r = self.rest();
        if r.starts_with('-') || r.starts_with('+') {
            let neg = r.starts_with('-');
            self.pos += 1;
            self.enter()?;
            // Unary operators bind like `*`: `-a^b` is `-(a^b)`.
            let e = self.expr(BinaryOp::Pow.precedence())?;
            self.depth -= 1;
            let t = e.value_type();
            if t != ValueType::Scalar && t != ValueType::Vector {
                return Err(self.err_at(start, format!("unary expression only allowed on expressions of type scalar or instant vector, got {:?}", t.name())));
            }
            let span = Span::new(start, e.span().end);
            if let Expr::Number { value, .. } = e {
                return Ok(Expr::Number { value: if neg { -value } else { value }, span });
            }
            if !neg {
                return Ok(Expr::Unary { op: UnaryOp::Plus, expr: Box::new(e), span });
            }
            return Ok(Expr::Unary { op: UnaryOp::Neg, expr: Box::new(e), span });
        }
        let prim = self.primary()?;
        self.postfix(prim)
    }

    fn postfix(&mut self, mut e: Expr) -> PResult<Expr> {
        loop {
            self.ws();
            let start = e.span().start;
            if self.rest().starts_with('[') {
                let bracket = self.pos;
                self.pos += 1;
                let range = self.duration_expr()?;
                self.ws();
                if self.eat(":") {
                    self.ws();
                    let step = if self.rest().starts_with(']') { None } else { Some(self.duration_expr()?) };
                    self.expect_token("]", "in subquery")?;
                    if e.value_type() != ValueType::Vector {
                        return Err(self.err_at(bracket, format!("subquery is only allowed on instant vector, got {} instead", e.value_type().name())));
                    }
                    if let Some(ms) = range.literal_ms() {
                        if ms <= 0 {
                            return Err(self.err_at(bracket, "duration must be greater than 0".to_string()));
                        }
                    }
                    e = Expr::Subquery { expr: Box::new(e), range, step, offset: None, at: None, span: Span::new(start, self.pos) };
                    continue;
                }
                self.expect_token("]", "in range selector")?;
                match e {
                    Expr::Vector(vs) if vs.offset.is_none() && vs.at.is_none() => {
                        if let Some(ms) = range.literal_ms() {
                            if ms <= 0 {
                                return Err(self.err_at(bracket, "range must be greater than 0".to_string()));
                            }
                        }
                        e = Expr::Matrix { selector: vs, range, anchored: false, smoothed: false, span: Span::new(start, self.pos) };
                    }
                    Expr::Vector(_) => {
                        return Err(self.err_at(bracket, "no offset or @ modifiers allowed before range".into()));
                    }
                    _ => {
                        return Err(self.err_at(bracket, "ranges only allowed for vector selectors".into()));
                    }
                }
                continue;
            }
            let kw = self.peek_ident().to_ascii_lowercase();
            if kw == "offset" {
                let kpos = self.pos;
                self.pos += 6;
                // Without parentheses an offset is one term: `x offset 5m + 1`
                // adds 1 to the offset selector.
                let d = self.dur_term()?;
                let end = self.pos;
                let slot = match &mut e {
                    Expr::Vector(vs) => &mut vs.offset,
                    Expr::Matrix { selector, .. } => &mut selector.offset,
                    Expr::Subquery { offset, .. } => offset,
                    _ => return Err(self.err_at(kpos, "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery".into())),
                };
                if slot.is_some() {
                    return Err(self.err_at(kpos, "offset may not be set multiple times".into()));
                }
                *slot = Some(d);
                set_end(&mut e, end);
                continue;
            }
            if kw == "anchored" || kw == "smoothed" {
                let kpos = self.pos;
                self.pos += kw.len();
                match &mut e {
                    Expr::Matrix { anchored, smoothed, .. } => {
                        if *anchored || *smoothed {
                            return Err(self.err_at(kpos, "anchored and smoothed modifiers may only be used once and not together".into()));
                        }
                        if kw == "anchored" {
                            *anchored = true;
                        } else {
                            *smoothed = true;
                        }
                    }
                    Expr::Vector(vs) if kw == "smoothed" && !vs.smoothed => vs.smoothed = true,
                    _ => return Err(self.err_at(kpos, format!("{kw} modifier can only be used on range vector selectors"))),
                }
                let end = self.pos;
                set_end(&mut e, end);
                continue;
            }
            if self.rest().starts_with('@') {
                let apos = self.pos;
                self.pos += 1;
                let at = self.at_value()?;
                let end = self.pos;
                let slot = match &mut e {
                    Expr::Vector(vs) => &mut vs.at,
                    Expr::Matrix { selector, .. } => &mut selector.at,
                    Expr::Subquery { at, .. } => at,
                    _ => return Err(self.err_at(apos, "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery".into())),
                };
                if slot.is_some() {
                    return Err(self.err_at(apos, "@ <timestamp> may not be set multiple times".into()));
                }
                *slot = Some(at);
                set_end(&mut e, end);
                continue;
            }
            return Ok(e);
        }
    }

    fn at_value(&mut self) -> PResult<AtModifier> {
        self.ws();
        let w = self.peek_ident();
        if w == "start" || w == "end" {
            self.pos += w.len();
            self.expect_token("(", "in @ modifier")?;
            self.expect_token(")", "in @ modifier")?;
            return Ok(if w == "start" { AtModifier::Start } else { AtModifier::End });
        }
        let start = self.pos;
        let neg = if self.eat("-") {
            true
        } else {
            self.eat("+");
            false
        };
        self.ws();
        let v = if let Some((ms, n)) = lexer::duration(self.rest()) {
            self.pos += n;
            ms as f64 / 1000.0
        } else {
            let (v, n) = lexer::number(self.rest()).ok_or_else(|| self.err_at(start, "unexpected token in @ modifier, expected a timestamp, start() or end()".into()))?;
            self.pos += n;
            v
        };
        let v = if neg { -v } else { v };
        if !v.is_finite() || v.abs() * 1000.0 > i64::MAX as f64 / 2.0 {
            return Err(self.err_at(start, format!("timestamp out of bounds for @ modifier: {v}")));
        }
        Ok(AtModifier::Timestamp((v * 1000.0).round() as i64))
    }

    /// A duration: a literal, a number of seconds, or (with parentheses,
    /// `step()`, `range()`, `min_of`/`max_of`) an arithmetic expression.
    fn duration_expr(&mut self) -> PResult<DurationExpr> {
        self.dur_binary(0)
    }

    fn dur_binary(&mut self, min_prec: u8) -> PResult<DurationExpr> {
        self.enter()?;
        let mut lhs = self.dur_unary()?;
        while let Some((op, len)) = self.peek_binop() {
            if !matches!(op, BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod | BinaryOp::Pow) {
                break;
            }
            let prec = op.precedence();
            if prec < min_prec {
                break;
            }
            self.pos += len;
            let rhs = self.dur_binary(if op.right_assoc() { prec } else { prec + 1 })?;
            lhs = DurationExpr::Binary(op, Box::new(lhs), Box::new(rhs));
        }
        self.depth -= 1;
        Ok(lhs)
    }

    fn dur_unary(&mut self) -> PResult<DurationExpr> {
        self.ws();
        let r = self.rest();
        if r.starts_with('-') || r.starts_with('+') {
            let neg = r.starts_with('-');
            self.pos += 1;
            self.enter()?;
            let e = self.dur_binary(BinaryOp::Pow.precedence())?;
            self.depth -= 1;
            return Ok(DurationExpr::Unary(neg, Box::new(e)));
        }
        self.dur_primary()
    }

    /// An optionally signed single duration term (used by `offset`).
    fn dur_term(&mut self) -> PResult<DurationExpr> {
        self.ws();
        let r = self.rest();
        if r.starts_with('-') || r.starts_with('+') {
            let neg = r.starts_with('-');
            self.pos += 1;
            self.enter()?;
            let e = self.dur_term()?;
            self.depth -= 1;
            return Ok(DurationExpr::Unary(neg, Box::new(e)));
        }
        self.dur_primary()
    }

    fn dur_primary(&mut self) -> PResult<DurationExpr> {
        self.ws();
        let start = self.pos;
        let r = self.rest();
        if r.starts_with('(') {
            self.pos += 1;
            let e = self.duration_expr()?;
            self.expect_token(")", "in duration expression")?;
            return Ok(DurationExpr::Paren(Box::new(e)));
        }
        if let Some((ms, n)) = lexer::duration(r) {
            self.pos += n;
            return Ok(DurationExpr::Literal(ms));
        }
        let w = &r[..lexer::ident_len(r)];
        let wl = w.to_ascii_lowercase();
        match wl.as_str() {
            "step" | "range" => {
                self.pos += w.len();
                self.expect_token("(", "in duration expression")?;
                self.expect_token(")", "in duration expression")?;
                return Ok(if wl == "step" { DurationExpr::Step } else { DurationExpr::Range });
            }
            "min_of" | "max_of" => {
                self.pos += w.len();
                self.expect_token("(", "in duration expression")?;
                let a = self.duration_expr()?;
                self.expect_token(",", "in duration expression")?;
                let b = self.duration_expr()?;
                self.expect_token(")", "in duration expression")?;
                return Ok(if wl == "min_of" { DurationExpr::MinOf(Box::new(a), Box::new(b)) } else { DurationExpr::MaxOf(Box::new(a), Box::new(b)) });
            }
            _ => {}
        }
        if let Some((v, n)) = lexer::number(r) {
            if !w.is_empty() && !w.eq_ignore_ascii_case("inf") && !w.eq_ignore_ascii_case("nan") {
                return Err(self.err_at(start, format!("unexpected {} in duration, expected a duration", self.describe_here())));
            }
            self.pos += n;
            return Ok(DurationExpr::Number(v));
        }
        Err(self.err_at(start, format!("unexpected {}, expected a duration", self.describe_here())))
    }

    fn primary(&mut self) -> PResult<Expr> {
        self.ws();
        let start = self.pos;
        let r = self.rest();
        let Some(c) = r.chars().next() else {
            return Err(self.err_at(start, "unexpected end of input".into()));
        };
        if c == '(' {
            self.pos += 1;
            let e = self.expr(0)?;
            self.expect_token(")", "in parenthesized expression")?;
            return Ok(Expr::Paren { expr: Box::new(e), span: Span::new(start, self.pos) });
        }
        if c == '"' || c == '\'' || c == '`' {
            let (s, n) = lexer::string(r).map_err(|e| self.err_at(start + e.offset, e.message))?;
            self.pos += n;
            return Ok(Expr::String { value: s, span: Span::new(start, self.pos) });
        }
        if c == '{' {
            return Ok(Expr::Vector(self.selector_rest(start, None, true)?));
        }
        if c.is_ascii_digit() || c == '.' {
            if let Some((ms, n)) = lexer::duration(r) {
                self.pos += n;
                return Ok(Expr::Number { value: ms as f64 / 1000.0, span: Span::new(start, self.pos) });
            }
            if let Some((v, n)) = lexer::number(r) {
                let after = &r[n..];
                if after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(self.err_at(start + n, format!("bad number or duration syntax: {:?}", &r[..n + lexer::ident_len(after).max(1)])));
                }
                self.pos += n;
                return Ok(Expr::Number { value: v, span: Span::new(start, self.pos) });
            }
            return Err(self.err_at(start, format!("unexpected {}", self.describe_here())));
        }
        let n = lexer::ident_len(r);
        if n == 0 {
            return Err(self.err_at(start, format!("unexpected {}", self.describe_here())));
        }
        let word = &r[..n];
        let lower = word.to_ascii_lowercase();
        if lower == "inf" || lower == "nan" {
            self.pos += n;
            let value = if lower == "inf" { f64::INFINITY } else { f64::NAN };
            return Ok(Expr::Number { value, span: Span::new(start, self.pos) });
        }
        self.pos += n;
        let save = self.pos;
        self.ws();
        let next_paren = self.rest().starts_with('(');
        if let Some(op) = AggregateOp::from_name(&lower) {
            let kw = self.peek_ident().to_ascii_lowercase();
            if next_paren || kw == "by" || kw == "without" {
                return self.aggregate(op, start);
            }
        }
        if next_paren {
            match lower.as_str() {
                "step" | "range" | "min_of" | "max_of" => {
                    self.pos = start;
                    let d = self.duration_expr()?;
                    return Ok(Expr::Duration { expr: d, span: Span::new(start, self.pos) });
                }
                _ => {}
            }
            return self.call(word, start);
        }
        self.pos = save;
        if KEYWORDS.contains(&lower.as_str()) {
            return Err(self.err_at(start, format!("unexpected keyword {word:?}")));
        }
        Ok(Expr::Vector(self.selector_rest(start, Some(word.to_string()), true)?))
    }

    fn aggregate(&mut self, op: AggregateOp, start: usize) -> PResult<Expr> {
        let mut grouping = Grouping::default();
        let kw = self.peek_ident().to_ascii_lowercase();
        if kw == "by" || kw == "without" {
            self.pos += kw.len();
            grouping = Grouping { without: kw == "without", explicit: true, labels: self.label_list("in grouping opts")? };
        }
        let args_pos = self.pos;
        let args = self.call_args()?;
        let kw = self.peek_ident().to_ascii_lowercase();
        if kw == "by" || kw == "without" {
            if grouping.explicit {
                return Err(self.err_at(self.pos, "unexpected grouping clause: by/without may only be given once".into()));
            }
            self.pos += kw.len();
            grouping = Grouping { without: kw == "without", explicit: true, labels: self.label_list("in grouping opts")? };
        }
        let span = Span::new(start, self.pos);
        let want = if op.param_type().is_some() { 2 } else { 1 };
        if args.len() != want {
            return Err(self.err_at(args_pos, format!("wrong number of arguments for aggregate expression provided, expected {want}, got {}", args.len())));
        }
        let mut args = args.into_iter();
        let param = if want == 2 { args.next() } else { None };
        let expr = args.next().ok_or_else(|| self.err_at(args_pos, "missing aggregation argument".into()))?;
        if let (Some(p), Some(pt)) = (&param, op.param_type()) {
            if p.value_type() != pt {
                return Err(self.err_at(p.span().start, format!("expected type {} in aggregation parameter, got {}", pt.name(), p.value_type().name())));
            }
        }
        if expr.value_type() != ValueType::Vector {
            return Err(self.err_at(expr.span().start, format!("expected type instant vector in aggregation expression, got {}", expr.value_type().name())));
        }
        if op == AggregateOp::CountValues {
            if let Some(Expr::String { value, span }) = param.as_ref() {
                if value.is_empty() {
                    return Err(self.err_at(span.start, format!("invalid label name {value:?}")));
                }
            }
        }
        Ok(Expr::Aggregate { op, expr: Box::new(expr), param: param.map(Box::new), grouping, span })
    }

    fn call_args(&mut self) -> PResult<Vec<Expr>> {
        self.expect_token("(", "in function call")?;
        let mut args = Vec::new();
        if self.eat(")") {
            return Ok(args);
        }
        loop {
            args.push(self.expr(0)?);
            if self.eat(",") {
                self.ws();
                if self.rest().starts_with(')') {
                    self.pos += 1;
                    return Ok(args);
                }
                continue;
            }
            self.expect_token(")", "in argument list")?;
            return Ok(args);
        }
    }

    /// Arguments of `info()`: the second is a selector of info series whose
    /// matchers may all accept the empty string (`{data=~".*"}`).
    fn info_args(&mut self) -> PResult<Vec<Expr>> {
        self.expect_token("(", "in function call")?;
        let mut args = vec![self.expr(0)?];
        if self.eat(",") {
            self.ws();
            let start = self.pos;
            let r = self.rest();
            let n = lexer::ident_len(r);
            let name = if n > 0 {
                let s = r[..n].to_string();
                self.pos += n;
                Some(s)
            } else {
                None
            };
            let vs = self.selector_rest(start, name, false)?;
            if vs.matchers.is_empty() {
                return Err(self.err_at(start, "expected a label selector as the second argument of info()".into()));
            }
            args.push(Expr::Vector(vs));
        } else {
            // `info(v)` means `info(v, {__name__="target_info"})`.
            let here = Span::new(self.pos, self.pos);
            let name = "target_info".to_string();
            let matchers = vec![Matcher::equal(model::METRIC_NAME, name.clone())];
            args.push(Expr::Vector(VectorSelector { name: Some(name), matchers, offset: None, at: None, smoothed: false, span: here }));
        }
        self.expect_token(")", "in argument list")?;
        Ok(args)
    }

    fn call(&mut self, name: &str, start: usize) -> PResult<Expr> {
        let Some(f) = functions::lookup(name) else {
            return Err(self.err_at(start, format!("unknown function with name {name:?}")));
        };
        let args = if f.name == "info" { self.info_args()? } else { self.call_args()? };
        let span = Span::new(start, self.pos);
        let n = args.len();
        if f.variadic == 0 && n != f.args.len() {
            return Err(self.err_at(start, format!("expected {} argument(s) in call to {:?}, got {n}", f.args.len(), f.name)));
        }
        if n < f.min_args() {
            return Err(self.err_at(start, format!("expected at least {} argument(s) in call to {:?}, got {n}", f.min_args(), f.name)));
        }
        if let Some(max) = f.max_args() {
            if n > max {
                return Err(self.err_at(start, format!("expected at most {max} argument(s) in call to {:?}, got {n}", f.name)));
            }
        }
        for (i, a) in args.iter().enumerate() {
            let want = f.arg_type(i);
            let got = a.value_type();
            if want != got {
                return Err(self.err_at(a.span().start, format!("expected type {} in call to function {:?}, got {}", want.name(), f.name, got.name())));
            }
        }
        Ok(Expr::Call { func: f.name.to_string(), args, span })
    }

    /// Parses the optional `{...}` part of a selector whose name (if any)
    /// has been consumed.
    fn selector_rest(&mut self, start: usize, name: Option<String>, check_empty: bool) -> PResult<VectorSelector> {
        let mut matchers = Vec::new();
        let mut name = name;
        if let Some(n) = &name {
            matchers.push(Matcher::equal(model::METRIC_NAME, n.clone()));
        }
        let mut end = self.pos;
        let save = self.pos;
        self.ws();
        if self.rest().starts_with('{') {
            self.pos += 1;
            loop {
                self.ws();
                if self.eat("}") {
                    break;
                }
                let lpos = self.pos;
                let r = self.rest();
                let (label, quoted) = if r.starts_with(['"', '\'', '`']) {
                    let (s, n) = lexer::string(r).map_err(|e| self.err_at(lpos + e.offset, e.message))?;
                    self.pos += n;
                    (s, true)
                } else {
                    let n = lexer::ident_len(r);
                    if n == 0 || r[..n].contains(':') {
                        return Err(self.err_at(lpos, format!("unexpected {} in label matching, expected label", self.describe_here())));
                    }
                    self.pos += n;
                    (r[..n].to_string(), false)
                };
                self.ws();
                let r = self.rest();
                let op = if r.starts_with("=~") {
                    Some((MatchType::Regex, 2))
                } else if r.starts_with("!~") {
                    Some((MatchType::NotRegex, 2))
                } else if r.starts_with("!=") {
                    Some((MatchType::NotEqual, 2))
                } else if r.starts_with('=') {
                    Some((MatchType::Equal, 1))
                } else {
                    None
                };
                match op {
                    None if quoted && (r.starts_with(',') || r.starts_with('}')) => {
                        if name.is_some() {
                            return Err(self.err_at(lpos, "metric name must not be set twice".into()));
                        }
                        matchers.push(Matcher::equal(model::METRIC_NAME, label.clone()));
                        name = Some(label);
                    }
                    None => {
                        return Err(self.err_at(self.pos, format!("unexpected {} in label matching, expected label matching operator", self.describe_here())));
                    }
                    Some((kind, n)) => {
                        self.pos += n;
                        self.ws();
                        let vpos = self.pos;
                        let (value, n) = lexer::string(self.rest()).map_err(|e| {
                            if e.offset == 0 && !self.rest().starts_with(['"', '\'', '`']) {
                                self.err_at(vpos, format!("unexpected {} in label matching, expected string", self.describe_here()))
                            } else {
                                self.err_at(vpos + e.offset, e.message)
                            }
                        })?;
                        self.pos += n;
                        let m = Matcher::new(kind, label.clone(), value.clone()).map_err(|e| {
                            let why = match &e {
                                model::MatcherError::Regex { source, .. } => one_line(&source.to_string()),
                                other => one_line(&other.to_string()),
                            };
                            self.err_at(vpos, format!("invalid regular expression {value:?} for label {label:?}: {why}"))
                        })?;
                        if label == model::METRIC_NAME && kind == MatchType::Equal && name.is_some() && matchers.iter().any(|x| x.name == model::METRIC_NAME) {
                            return Err(self.err_at(lpos, "metric name must not be set twice".into()));
                        }
                        matchers.push(m);
                    }
                }
                self.ws();
                if self.eat(",") {
                    continue;
                }
                self.expect_token("}", "in label matching")?;
                break;
            }
            end = self.pos;
        } else {
            self.pos = save;
        }
        if check_empty && !matchers.iter().any(|m| !m.matches_empty()) {
            return Err(self.err_at(start, "vector selector must contain at least one non-empty matcher".into()));
        }
        Ok(VectorSelector { name, matchers, offset: None, at: None, smoothed: false, span: Span::new(start, end) })
    }
}

/// The last non-empty line of a multi-line message (regex errors draw their
/// own caret; keep only the reason).
fn one_line(s: &str) -> String {
    s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(s).trim().trim_start_matches("error: ").to_string()
}

fn set_end(e: &mut Expr, end: usize) {
    match e {
        Expr::Vector(vs) => vs.span.end = end,
        Expr::Matrix { span, .. } | Expr::Subquery { span, .. } => span.end = end,
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(q: &str) -> String {
        parse(q).unwrap_err().message()
    }

    #[test]
    fn precedence_and_assoc() {
        let e = parse("1 + 2 * 3 ^ 2 ^ 2").unwrap();
        let Expr::Binary { op: BinaryOp::Add, rhs, .. } = e else { panic!() };
        let Expr::Binary { op: BinaryOp::Mul, rhs, .. } = *rhs else { panic!() };
        let Expr::Binary { op: BinaryOp::Pow, rhs, .. } = *rhs else { panic!() };
        assert!(matches!(*rhs, Expr::Binary { op: BinaryOp::Pow, .. }));
        assert!(matches!(parse("-2 ^ 2").unwrap(), Expr::Unary { .. }) || matches!(parse("-2 ^ 2").unwrap(), Expr::Number { .. }));
    }

    #[test]
    fn type_errors() {
        assert_eq!(err("rate(foo)"), "expected type range vector in call to function \"rate\", got instant vector");
        assert_eq!(err("{}"), "vector selector must contain at least one non-empty matcher");
        assert_eq!(err("1 > 2"), "comparisons between scalars must use BOOL modifier");
        assert_eq!(err("foo and 1"), "set operator \"and\" not allowed in binary scalar expression");
        assert!(err("nosuch(foo)").contains("unknown function"));
        assert!(err("sum(foo[5m])").contains("expected type instant vector"));
        assert_eq!(err("foo{a=~\"(\"}"), "invalid regular expression \"(\" for label \"a\": unclosed group");
        assert_eq!(err("histogram_quantile(0.9)"), "expected 2 argument(s) in call to \"histogram_quantile\", got 1");
        assert_eq!(err("foo offset 5m offset 1m"), "offset may not be set multiple times");
        assert_eq!(err("x[5m] offset 1m [1m]"), "ranges only allowed for vector selectors");
        assert_eq!(err("foo and on(a) group_left(b) bar"), "no grouping allowed for \"and\" operation");
    }

    #[test]
    fn selectors_and_modifiers() {
        let e = parse(r#"rate(http{a="b",c=~"d.*"}[5m] offset -1h @ 100) "#).unwrap();
        let Expr::Call { args, .. } = e else { panic!() };
        let Expr::Matrix { selector, range, .. } = &args[0] else { panic!() };
        assert_eq!(selector.matchers.len(), 3);
        assert_eq!(range.literal_ms(), Some(300_000));
        assert_eq!(selector.at, Some(AtModifier::Timestamp(100_000)));
        assert!(parse(r#"{"metric.name", x="y"}"#).is_ok());
        assert!(parse("sum without (a) (rate(x[5m:]))").is_ok());
        assert!(parse("topk by (a) (3, x) + on(b) group_left(c) y").is_ok());
        assert!(parse("x[5m*2] ").is_ok());
        assert!(parse("x offset (1h/2)").is_ok());
    }

    #[test]
    fn depth_limit_is_an_error() {
        let q = format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000));
        let opts = ParseOptions { max_query_len: 1 << 20, ..ParseOptions::default() };
        let e = parse_with(&q, &opts).unwrap_err();
        assert!(matches!(e, ParseError::TooDeep { max: 100, .. }), "{e}");
        let long = "x".repeat(70_000);
        assert!(matches!(parse(&long), Err(ParseError::TooLong { len: 70_000, .. })));
        let q = "-".repeat(100_000) + "1";
        assert!(parse_with(&q, &opts).is_err());
        let q = "x[5m".to_string() + &"+(1".repeat(100_000);
        assert!(parse_with(&q, &opts).is_err());
        // The deepest accepted nesting parses without overflowing a 2 MiB stack.
        let q = format!("{}1{}", "(".repeat(95), ")".repeat(95));
        assert!(parse_with(&q, &opts).is_ok());
    }

    #[test]
    fn error_display_has_caret() {
        let e = parse("sum(foo) +").unwrap_err();
        let s = e.to_string();
        assert!(s.contains("^"), "{s}");
    }
}
