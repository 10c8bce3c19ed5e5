//! Recursive-descent LogQL parser over the tokens of [`crate::lexer`], with
//! Loki's validation rules and error messages.

use crate::ast::*;
use crate::error::ParseError;
use crate::lexer::{tokenize, Tok, Token};
use crate::units::{parse_bytes, parse_go_float, parse_query_duration, IpPattern};
use model::{MatchType, Matcher};

/// Parses a LogQL query.
///
/// ```
/// let e = logql::parse(r#"sum by (app) (rate({app="a"} |= "err" [5m]))"#).unwrap();
/// assert_eq!(e.to_string(), r#"sum by (app) (rate({app="a"} |= "err" [5m]))"#);
/// ```
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    let tokens = tokenize(src)?;
    let mut p = Parser { src, toks: tokens, pos: 0, depth: 0 };
    let e = p.parse_top()?;
    if p.peek() != &Tok::Eof {
        return Err(p.unexpected());
    }
    Ok(e)
}

/// Parses a metric query; a log query is an error.
pub fn parse_sample(src: &str) -> Result<SampleExpr, ParseError> {
    match parse(src)? {
        Expr::Sample(s) => Ok(s),
        Expr::Log(_) => Err(ParseError::at(src, 0, "expected a metric query, got a log query")),
    }
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
}

/// Deepest nesting of sub-expressions accepted (bounds recursion).
const MAX_DEPTH: usize = 200;

const LF_OPS: &[&str] = &["|=", "!=", "|~", "!~", "|>", "!>"];

impl<'a> Parser<'a> {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos.min(self.toks.len() - 1)].tok
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.pos + n).min(self.toks.len() - 1)].tok
    }

    fn cur_start(&self) -> usize {
        self.toks[self.pos.min(self.toks.len() - 1)].start
    }

    fn prev_end(&self) -> usize {
        if self.pos == 0 {
            0
        } else {
            self.toks[self.pos - 1].end
        }
    }

    fn bump(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn err(&self, msg: impl Into<String>) -> ParseError {
        ParseError::at(self.src, self.cur_start(), msg)
    }

    fn err_at(&self, offset: usize, msg: impl Into<String>) -> ParseError {
        ParseError::at(self.src, offset, msg)
    }

    fn unexpected(&self) -> ParseError {
        self.err(format!("syntax error: unexpected {}", self.peek().describe()))
    }

    fn unexpected_expecting(&self, what: &str) -> ParseError {
        self.err(format!("syntax error: unexpected {}, expecting {what}", self.peek().describe()))
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Tok::Op(o) if *o == op)
    }

    fn is_ident(&self, name: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s == name)
    }

    fn eat_op(&mut self, op: &str) -> bool {
        if self.is_op(op) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect_op(&mut self, op: &str) -> Result<(), ParseError> {
        if self.eat_op(op) {
            Ok(())
        } else {
            Err(self.unexpected_expecting(op))
        }
    }

    fn expect_ident(&mut self) -> Result<String, ParseError> {
        match self.peek().clone() {
            Tok::Ident(s) => {
                self.bump();
                Ok(s)
            }
            _ => Err(self.unexpected_expecting("IDENTIFIER")),
        }
    }

    fn expect_str(&mut self) -> Result<String, ParseError> {
        match self.peek().clone() {
            Tok::Str(s) => {
                self.bump();
                Ok(s)
            }
            _ => Err(self.unexpected_expecting("STRING")),
        }
    }

    fn expect_duration(&mut self) -> Result<i64, ParseError> {
        let at = self.cur_start();
        match self.peek().clone() {
            Tok::Duration(d) => {
                self.bump();
                parse_query_duration(&d).map(|v| v as i64).map_err(|e| self.err_at(at, e))
            }
            _ => Err(self.unexpected_expecting("DURATION")),
        }
    }

    fn number(&self, text: &str, at: usize) -> Result<f64, ParseError> {
        parse_go_float(text).map_err(|_| self.err_at(at, format!("unable to parse literal as a float: {text}")))
    }

    /// A (signed) number literal.
    fn expect_number(&mut self) -> Result<f64, ParseError> {
        let at = self.cur_start();
        let neg = if self.is_op("-") || self.is_op("+") { matches!(self.bump(), Tok::Op("-")) } else { false };
        match self.peek().clone() {
            Tok::Number(n) => {
                self.bump();
                let v = self.number(&n, at)?;
                Ok(if neg { -v } else { v })
            }
            _ => Err(self.unexpected_expecting("NUMBER")),
        }
    }

    fn parse_top(&mut self) -> Result<Expr, ParseError> {
        if self.is_op("{") || (self.is_op("(") && self.paren_starts_log()) {
            let (log, paren) = self.parse_log_maybe_paren()?;
            if paren || self.peek() == &Tok::Eof {
                return Ok(Expr::Log(log));
            }
            return Err(self.unexpected());
        }
        Ok(Expr::Sample(self.parse_binary(0)?))
    }

    /// Whether the `(` at the cursor opens a log expression (possibly nested).
    fn paren_starts_log(&self) -> bool {
        let mut i = 0;
        while matches!(self.peek_at(i), Tok::Op("(")) {
            i += 1;
        }
        matches!(self.peek_at(i), Tok::Op("{"))
    }

    fn parse_log_maybe_paren(&mut self) -> Result<(LogExpr, bool), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("query is nested too deeply"));
        }
        let r = self.parse_log_maybe_paren_inner();
        self.depth -= 1;
        r
    }

    fn parse_log_maybe_paren_inner(&mut self) -> Result<(LogExpr, bool), ParseError> {
        if self.eat_op("(") {
            let (l, _) = self.parse_log_maybe_paren()?;
            self.expect_op(")")?;
            return Ok((l, true));
        }
        Ok((self.parse_log_expr()?, false))
    }

    fn parse_selector(&mut self) -> Result<Vec<Matcher>, ParseError> {
        let start = self.cur_start();
        self.expect_op("{")?;
        let mut ms = Vec::new();
        while !self.is_op("}") {
            if !ms.is_empty() {
                self.expect_op(",")?;
                if self.is_op("}") {
                    break;
                }
            }
            ms.push(self.parse_matcher()?);
        }
        self.expect_op("}")?;
        if !ms.iter().any(matcher_is_selective) {
            return Err(self.err_at(
                start,
                "queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will",
            ));
        }
        Ok(ms)
    }

    fn match_type(&mut self) -> Option<MatchType> {
        let t = match self.peek() {
            Tok::Op("=") => MatchType::Equal,
            Tok::Op("!=") => MatchType::NotEqual,
            Tok::Op("=~") => MatchType::Regex,
            Tok::Op("!~") => MatchType::NotRegex,
            _ => return None,
        };
        self.bump();
        Some(t)
    }

    fn build_matcher(&self, kind: MatchType, name: String, value: String, at: usize) -> Result<Matcher, ParseError> {
        Matcher::new(kind, name, value).map_err(|e| self.err_at(at, regex_err_text(&e.to_string())))
    }

    fn parse_matcher(&mut self) -> Result<Matcher, ParseError> {
        let name = self.expect_ident()?;
        let kind = self.match_type().ok_or_else(|| self.unexpected_expecting("= or != or =~ or !~"))?;
        let at = self.cur_start();
        let value = self.expect_str()?;
        self.build_matcher(kind, name, value, at)
    }

    fn parse_log_expr(&mut self) -> Result<LogExpr, ParseError> {
        let start = self.cur_start();
        let matchers = self.parse_selector()?;
        let pipeline = self.parse_pipeline()?;
        Ok(LogExpr { matchers, pipeline, span: Span::new(start, self.prev_end()) })
    }

    fn at_line_filter(&self) -> bool {
        matches!(self.peek(), Tok::Op(o) if LF_OPS.contains(o))
    }

    /// Parses stages until something that is not a stage (or `| unwrap`).
    fn parse_pipeline(&mut self) -> Result<Vec<StageNode>, ParseError> {
        let mut stages = Vec::new();
        loop {
            let start = self.cur_start();
            let stage = if self.at_line_filter() {
                Stage::LineFilter(self.parse_line_filter()?)
            } else if self.is_op("|") && !matches!(self.peek_at(1), Tok::Ident(s) if s == "unwrap") {
                self.bump();
                self.parse_stage()?
            } else {
                return Ok(stages);
            };
            stages.push(StageNode { stage, span: Span::new(start, self.prev_end()) });
        }
    }

    fn parse_line_filter(&mut self) -> Result<LineFilter, ParseError> {
        let op = match self.bump() {
            Tok::Op("|=") => LineFilterOp::Contains,
            Tok::Op("!=") => LineFilterOp::NotContains,
            Tok::Op("|~") => LineFilterOp::Regex,
            Tok::Op("!~") => LineFilterOp::NotRegex,
            Tok::Op("|>") => LineFilterOp::Pattern,
            _ => LineFilterOp::NotPattern,
        };
        let mut values = vec![self.parse_filter_value(op)?];
        while self.is_ident("or") && matches!(self.peek_at(1), Tok::Str(_) | Tok::Ident(_)) {
            if let Tok::Ident(s) = self.peek_at(1) {
                if s != "ip" {
                    break;
                }
            }
            self.bump();
            values.push(self.parse_filter_value(op)?);
        }
        Ok(LineFilter { op, values })
    }

    fn parse_filter_value(&mut self, op: LineFilterOp) -> Result<FilterValue, ParseError> {
        let at = self.cur_start();
        if self.is_ident("ip") {
            self.bump();
            self.expect_op("(")?;
            let pat_at = self.cur_start();
            let s = self.expect_str()?;
            self.expect_op(")")?;
            if !matches!(op, LineFilterOp::Contains | LineFilterOp::NotContains) {
                return Err(self.err_at(at, format!("ip: invalid operation: only |= and != are supported for ip line filter, got {}", op.as_str())));
            }
            let p = IpPattern::parse(&s).map_err(|e| self.err_at(pat_at, e))?;
            return Ok(FilterValue::Ip(p));
        }
        let s = self.expect_str()?;
        match op {
            LineFilterOp::Regex | LineFilterOp::NotRegex => {
                regex::Regex::new(&s).map_err(|e| self.err_at(at, regex_err_text(&e.to_string())))?;
            }
            LineFilterOp::Pattern | LineFilterOp::NotPattern => {
                let p = crate::pattern::Pattern::parse(&s).map_err(|e| self.err_at(at, e))?;
                if p.has_named_captures() {
                    return Err(self.err_at(at, "invalid pattern: named captures are not allowed in line filter patterns"));
                }
            }
            _ => {}
        }
        Ok(FilterValue::Str(s))
    }

    fn parse_stage(&mut self) -> Result<Stage, ParseError> {
        let at = self.cur_start();
        let name = match self.peek().clone() {
            Tok::Ident(s) => s,
            Tok::Op("(") => return Ok(Stage::LabelFilter(self.parse_label_filter()?)),
            _ => return Err(self.unexpected()),
        };
        // An identifier followed by a comparison is a label filter.
        if matches!(self.peek_at(1), Tok::Op(o) if ["=", "!=", "=~", "!~", "==", ">", ">=", "<", "<="].contains(o)) {
            return Ok(Stage::LabelFilter(self.parse_label_filter()?));
        }
        self.bump();
        Ok(match name.as_str() {
            "json" => Stage::Parser(ParserStage::Json(self.parse_extractions(true)?)),
            "logfmt" => {
                let (mut strict, mut keep_empty) = (false, false);
                while let Tok::Flag(f) = self.peek().clone() {
                    match f.as_str() {
                        "strict" => strict = true,
                        "keep-empty" => keep_empty = true,
                        _ => return Err(self.unexpected()),
                    }
                    self.bump();
                }
                Stage::Parser(ParserStage::Logfmt { strict, keep_empty, params: self.parse_extractions(false)? })
            }
            "regexp" => {
                let s = self.expect_str()?;
                crate::pipeline::compile_regexp_parser(&s).map_err(|e| self.err_at(at, e))?;
                Stage::Parser(ParserStage::Regexp(s))
            }
            "pattern" => {
                let s = self.expect_str()?;
                let p = crate::pattern::Pattern::parse(&s).map_err(|e| self.err_at(at, e))?;
                if !p.has_named_captures() {
                    return Err(self.err_at(at, "invalid pattern: at least one capture is required"));
                }
                Stage::Parser(ParserStage::Pattern(s))
            }
            "unpack" => Stage::Parser(ParserStage::Unpack),
            "line_format" => {
                let s = self.expect_str()?;
                crate::template::Template::parse(&s).map_err(|e| self.err_at(at, e))?;
                Stage::LineFormat(s)
            }
            "label_format" => {
                let mut items = Vec::new();
                loop {
                    let dst = self.expect_ident()?;
                    self.expect_op("=")?;
                    match self.peek().clone() {
                        Tok::Ident(src) => {
                            self.bump();
                            items.push(LabelFmt::Rename { dst, src });
                        }
                        Tok::Str(t) => {
                            let tat = self.cur_start();
                            self.bump();
                            crate::template::Template::parse(&t).map_err(|e| self.err_at(tat, e))?;
                            items.push(LabelFmt::Template { dst, template: t });
                        }
                        _ => return Err(self.unexpected_expecting("IDENTIFIER or STRING")),
                    }
                    if !self.eat_op(",") {
                        break;
                    }
                }
                Stage::LabelFormat(items)
            }
            "drop" => Stage::Drop(self.parse_names_or_matchers()?),
            "keep" => Stage::Keep(self.parse_names_or_matchers()?),
            "decolorize" => Stage::Decolorize,
            _ => {
                self.pos -= 1;
                return Err(self.unexpected());
            }
        })
    }

    fn parse_names_or_matchers(&mut self) -> Result<Vec<NameOrMatcher>, ParseError> {
        let mut items = Vec::new();
        loop {
            let name = self.expect_ident()?;
            let at = self.cur_start();
            if let Some(kind) = self.match_type() {
                let v = self.expect_str()?;
                items.push(NameOrMatcher::Matcher(self.build_matcher(kind, name, v, at)?));
            } else {
                items.push(NameOrMatcher::Name(name));
            }
            if !self.eat_op(",") {
                return Ok(items);
            }
        }
    }

    fn parse_extractions(&mut self, json: bool) -> Result<Vec<Extraction>, ParseError> {
        let mut out = Vec::new();
        while let Tok::Ident(label) = self.peek().clone() {
            // `| json | ...` ends here; only identifiers directly after the
            // parser name are parameters.
            self.bump();
            let at = self.cur_start();
            let expr = if self.eat_op("=") { self.expect_str()? } else { label.clone() };
            if json {
                crate::json::parse_path(&expr).map_err(|e| self.err_at(at, e))?;
            }
            out.push(Extraction { label, expr });
            if !self.eat_op(",") {
                break;
            }
        }
        Ok(out)
    }

    fn parse_label_filter(&mut self) -> Result<LabelFilter, ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("query is nested too deeply"));
        }
        let r = self.parse_label_filter_inner();
        self.depth -= 1;
        r
    }

    fn parse_label_filter_inner(&mut self) -> Result<LabelFilter, ParseError> {
        let mut lhs = self.parse_lf_and()?;
        while self.is_ident("or") {
            self.bump();
            let rhs = self.parse_lf_and()?;
            lhs = LabelFilter::Or(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn lf_atom_starts(&self) -> bool {
        self.is_op("(")
            || (matches!(self.peek(), Tok::Ident(s) if s != "or" && s != "and")
                && matches!(self.peek_at(1), Tok::Op(o) if ["=", "!=", "=~", "!~", "==", ">", ">=", "<", "<="].contains(o)))
    }

    fn parse_lf_and(&mut self) -> Result<LabelFilter, ParseError> {
        let mut lhs = self.parse_lf_atom()?;
        loop {
            if self.is_ident("and") || self.is_op(",") {
                self.bump();
            } else if !self.lf_atom_starts() {
                return Ok(lhs);
            }
            let rhs = self.parse_lf_atom()?;
            lhs = LabelFilter::And(Box::new(lhs), Box::new(rhs));
        }
    }

    fn parse_lf_atom(&mut self) -> Result<LabelFilter, ParseError> {
        if self.eat_op("(") {
            let f = self.parse_label_filter()?;
            self.expect_op(")")?;
            return Ok(f);
        }
        let name = self.expect_ident()?;
        let op_tok = self.bump();
        let op_str = match op_tok {
            Tok::Op(o) => o,
            _ => {
                self.pos -= 1;
                return Err(self.unexpected());
            }
        };
        let at = self.cur_start();
        // ip() only with = and !=.
        if self.is_ident("ip") {
            if op_str != "=" && op_str != "!=" {
                return Err(self.unexpected());
            }
            self.bump();
            self.expect_op("(")?;
            let pat_at = self.cur_start();
            let s = self.expect_str()?;
            self.expect_op(")")?;
            let pattern = IpPattern::parse(&s).map_err(|e| self.err_at(pat_at, e))?;
            return Ok(LabelFilter::Ip { name, negate: op_str == "!=", pattern });
        }
        if let Tok::Str(v) = self.peek().clone() {
            let kind = match op_str {
                "=" => MatchType::Equal,
                "!=" => MatchType::NotEqual,
                "=~" => MatchType::Regex,
                "!~" => MatchType::NotRegex,
                _ => return Err(self.unexpected()),
            };
            self.bump();
            return Ok(LabelFilter::Matcher(self.build_matcher(kind, name, v, at)?));
        }
        let op = match op_str {
            "=" | "==" => CmpOp::Eq,
            "!=" => CmpOp::Ne,
            ">" => CmpOp::Gt,
            ">=" => CmpOp::Ge,
            "<" => CmpOp::Lt,
            "<=" => CmpOp::Le,
            _ => return Err(self.unexpected()),
        };
        let neg = if self.is_op("-") || self.is_op("+") { matches!(self.bump(), Tok::Op("-")) } else { false };
        let sign = if neg { -1.0 } else { 1.0 };
        match self.peek().clone() {
            Tok::Number(n) => {
                self.bump();
                Ok(LabelFilter::Number { name, op, value: sign * self.number(&n, at)? })
            }
            Tok::Duration(d) => {
                self.bump();
                let v = parse_query_duration(&d).map_err(|e| self.err_at(at, e))?;
                Ok(LabelFilter::Duration { name, op, value: sign * v })
            }
            Tok::Bytes(b) if !neg => {
                self.bump();
                let v = parse_bytes(&b).map_err(|e| self.err_at(at, e))?;
                Ok(LabelFilter::Bytes { name, op, value: v })
            }
            _ => Err(self.unexpected()),
        }
    }

    // ---- metric expressions ----

    fn parse_binary(&mut self, min_prec: u8) -> Result<SampleExpr, ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("query is nested too deeply"));
        }
        let r = self.parse_binary_inner(min_prec);
        self.depth -= 1;
        r
    }

    fn parse_binary_inner(&mut self, min_prec: u8) -> Result<SampleExpr, ParseError> {
        let mut lhs = self.parse_unary()?;
        while let Some(op) = self.peek_binop() {
            let prec = op.precedence();
            if prec < min_prec {
                break;
            }
            let op_at = self.cur_start();
            self.bump();
            let modifier = self.parse_bin_modifier(op)?;
            // ^ is right-associative.
            let next_min = if op == BinOp::Pow { prec } else { prec + 1 };
            let rhs = self.parse_binary(next_min)?;
            if op.is_set() {
                if matches!(lhs, SampleExpr::Literal(..)) {
                    return Err(self.err_at(op_at, "unexpected literal for left leg of logical/set binary operation"));
                }
                if matches!(rhs, SampleExpr::Literal(..)) {
                    return Err(self.err_at(op_at, "unexpected literal for right leg of logical/set binary operation"));
                }
            }
            let span = Span::new(lhs.span().start, self.prev_end());
            lhs = SampleExpr::Binary { op, modifier, lhs: Box::new(lhs), rhs: Box::new(rhs), span };
        }
        Ok(lhs)
    }

    fn peek_binop(&self) -> Option<BinOp> {
        Some(match self.peek() {
            Tok::Ident(s) if s == "or" => BinOp::Or,
            Tok::Ident(s) if s == "and" => BinOp::And,
            Tok::Ident(s) if s == "unless" => BinOp::Unless,
            Tok::Op("+") => BinOp::Add,
            Tok::Op("-") => BinOp::Sub,
            Tok::Op("*") => BinOp::Mul,
            Tok::Op("/") => BinOp::Div,
            Tok::Op("%") => BinOp::Mod,
            Tok::Op("^") => BinOp::Pow,
            Tok::Op("==") => BinOp::Cmp(CmpOp::Eq),
            Tok::Op("!=") => BinOp::Cmp(CmpOp::Ne),
            Tok::Op(">") => BinOp::Cmp(CmpOp::Gt),
            Tok::Op(">=") => BinOp::Cmp(CmpOp::Ge),
            Tok::Op("<") => BinOp::Cmp(CmpOp::Lt),
            Tok::Op("<=") => BinOp::Cmp(CmpOp::Le),
            _ => return None,
        })
    }

    fn parse_label_list(&mut self) -> Result<Vec<String>, ParseError> {
        self.expect_op("(")?;
        let mut out = Vec::new();
        while !self.is_op(")") {
            if !out.is_empty() {
                self.expect_op(",")?;
            }
            out.push(self.expect_ident()?);
        }
        self.expect_op(")")?;
        Ok(out)
    }

    fn parse_bin_modifier(&mut self, op: BinOp) -> Result<BinModifier, ParseError> {
        let mut m = BinModifier::default();
        if self.is_ident("bool") {
            if !matches!(op, BinOp::Cmp(_)) {
                return Err(self.err("bool modifier can only be used on comparison operators"));
            }
            self.bump();
            m.return_bool = true;
        }
        if self.is_ident("on") || self.is_ident("ignoring") {
            let on = self.is_ident("on");
            self.bump();
            m.matching = Some((on, self.parse_label_list()?));
            if self.is_ident("group_left") || self.is_ident("group_right") {
                if op.is_set() {
                    return Err(self.err("no grouping allowed for \"and\", \"or\", \"unless\" operations"));
                }
                let left = self.is_ident("group_left");
                self.bump();
                let labels = if self.is_op("(") { self.parse_label_list()? } else { Vec::new() };
                m.group = Some((left, labels));
            }
        }
        Ok(m)
    }

    fn parse_unary(&mut self) -> Result<SampleExpr, ParseError> {
        let start = self.cur_start();
        if self.is_op("-") || self.is_op("+") {
            let neg = matches!(self.bump(), Tok::Op("-"));
            return match self.peek().clone() {
                Tok::Number(n) => {
                    self.bump();
                    let v = self.number(&n, start)?;
                    Ok(SampleExpr::Literal(if neg { -v } else { v }, Span::new(start, self.prev_end())))
                }
                _ => Err(self.unexpected_expecting("NUMBER")),
            };
        }
        match self.peek().clone() {
            Tok::Number(n) => {
                self.bump();
                Ok(SampleExpr::Literal(self.number(&n, start)?, Span::new(start, self.prev_end())))
            }
            Tok::Op("(") => {
                if self.paren_starts_log() {
                    return Err(self.unexpected());
                }
                self.bump();
                let e = self.parse_binary(0)?;
                self.expect_op(")")?;
                Ok(e)
            }
            Tok::Ident(name) => self.parse_call(&name, start),
            _ => Err(self.unexpected()),
        }
    }

    fn parse_grouping(&mut self) -> Result<Option<Grouping>, ParseError> {
        if self.is_ident("by") || self.is_ident("without") {
            let without = self.is_ident("without");
            self.bump();
            return Ok(Some(Grouping { without, labels: self.parse_label_list()? }));
        }
        Ok(None)
    }

    fn parse_call(&mut self, name: &str, start: usize) -> Result<SampleExpr, ParseError> {
        if let Some(op) = RangeOp::from_name(name) {
            self.bump();
            self.expect_op("(")?;
            let mut param = None;
            if op == RangeOp::QuantileOverTime {
                param = Some(self.expect_number_unsigned()?);
                self.expect_op(",")?;
            }
            let range = self.parse_log_range()?;
            self.expect_op(")")?;
            let grouping = self.parse_grouping()?;
            validate_range_agg(op, &range, grouping.as_ref()).map_err(|m| self.err_at(start, m))?;
            return Ok(SampleExpr::RangeAgg { op, param, range: Box::new(range), grouping, span: Span::new(start, self.prev_end()) });
        }
        if let Some(op) = VectorOp::from_name(name) {
            self.bump();
            let mut grouping = self.parse_grouping()?;
            self.expect_op("(")?;
            let mut param = None;
            if matches!(self.peek(), Tok::Number(_)) || (self.is_op("-") && matches!(self.peek_at(1), Tok::Number(_))) {
                // A leading literal followed by `,` is a parameter.
                let save = self.pos;
                let v = self.expect_number()?;
                if self.eat_op(",") {
                    param = Some(v);
                } else {
                    self.pos = save;
                }
            }
            let inner = self.parse_binary(0)?;
            self.expect_op(")")?;
            if grouping.is_none() {
                grouping = self.parse_grouping()?;
            }
            match op {
                VectorOp::ApproxTopk if grouping.as_ref().is_some_and(|g| g.without) => {
                    return Err(self.err_at(start, "approx_topk does not support grouping with without"))
                }
                VectorOp::Topk | VectorOp::Bottomk | VectorOp::ApproxTopk => match param {
                    None => return Err(self.err_at(start, format!("parameter required for operation {}", op.name()))),
                    Some(p) if p.fract() != 0.0 || p.is_nan() => {
                        return Err(self.err_at(start, format!("invalid parameter {}({p}, ...)", op.name())))
                    }
                    _ => {}
                },
                _ if param.is_some() => {
                    return Err(self.err_at(start, format!("unsupported parameter for operation {}", op.name())))
                }
                VectorOp::Sort | VectorOp::SortDesc if grouping.is_some() => {
                    return Err(self.err_at(start, format!("grouping not allowed for {} aggregation", op.name())))
                }
                _ => {}
            }
            return Ok(SampleExpr::VectorAgg { op, param, inner: Box::new(inner), grouping, span: Span::new(start, self.prev_end()) });
        }
        match name {
            "vector" => {
                self.bump();
                self.expect_op("(")?;
                let v = self.expect_number()?;
                self.expect_op(")")?;
                Ok(SampleExpr::Vector(v, Span::new(start, self.prev_end())))
            }
            "label_replace" => {
                self.bump();
                self.expect_op("(")?;
                let inner = self.parse_binary(0)?;
                let mut args = Vec::new();
                for _ in 0..4 {
                    self.expect_op(",")?;
                    args.push(self.expect_str()?);
                }
                self.expect_op(")")?;
                let regex = args.pop().unwrap_or_default();
                let src = args.pop().unwrap_or_default();
                let replacement = args.pop().unwrap_or_default();
                let dst = args.pop().unwrap_or_default();
                regex::Regex::new(&format!("^(?s:{regex})$")).map_err(|e| self.err_at(start, regex_err_text(&e.to_string())))?;
                if !model::is_valid_label_name(&dst) {
                    return Err(self.err_at(start, format!("invalid destination label name in label_replace(): {dst}")));
                }
                Ok(SampleExpr::LabelReplace { inner: Box::new(inner), dst, replacement, src, regex, span: Span::new(start, self.prev_end()) })
            }
            _ => Err(self.unexpected()),
        }
    }

    fn expect_number_unsigned(&mut self) -> Result<f64, ParseError> {
        let at = self.cur_start();
        match self.peek().clone() {
            Tok::Number(n) => {
                self.bump();
                self.number(&n, at)
            }
            _ => Err(self.unexpected_expecting("NUMBER")),
        }
    }

    fn parse_log_range(&mut self) -> Result<LogRange, ParseError> {
        let (log, unwrap, paren) = if self.is_op("(") {
            self.bump();
            let (mut log, _) = self.parse_range_log_head()?;
            let unwrap = self.parse_unwrap(&mut log)?;
            self.expect_op(")")?;
            (log, unwrap, true)
        } else {
            let start = self.cur_start();
            let matchers = self.parse_selector()?;
            if self.is_op("[") {
                // `{...}[5m] | pipeline`: the range may precede the pipeline.
                let (range, mut offset) = self.parse_range_and_offset()?;
                let pipeline = self.parse_pipeline()?;
                let mut log = LogExpr { matchers, pipeline, span: Span::new(start, self.prev_end()) };
                let unwrap = self.parse_unwrap(&mut log)?;
                if offset == 0 && self.is_ident("offset") {
                    self.bump();
                    offset = self.expect_duration()?;
                }
                return Ok(LogRange { log, unwrap, range, offset, paren: false });
            }
            let pipeline = self.parse_pipeline()?;
            let mut log = LogExpr { matchers, pipeline, span: Span::new(start, self.prev_end()) };
            let unwrap = self.parse_unwrap(&mut log)?;
            (log, unwrap, false)
        };
        let (range, offset) = self.parse_range_and_offset()?;
        Ok(LogRange { log, unwrap, range, offset, paren })
    }

    fn parse_range_and_offset(&mut self) -> Result<(i64, i64), ParseError> {
        self.expect_op("[")?;
        let at = self.cur_start();
        let range = self.expect_duration()?;
        if range <= 0 {
            return Err(self.err_at(at, "invalid range: must be positive"));
        }
        self.expect_op("]")?;
        let mut offset = 0;
        if self.is_ident("offset") {
            self.bump();
            offset = self.expect_duration()?;
        }
        Ok((range, offset))
    }

    fn parse_range_log_head(&mut self) -> Result<(LogExpr, bool), ParseError> {
        if self.is_op("(") && self.paren_starts_log() {
            return self.parse_log_maybe_paren();
        }
        Ok((self.parse_log_expr()?, false))
    }

    fn parse_unwrap(&mut self, _log: &mut LogExpr) -> Result<Option<Unwrap>, ParseError> {
        if !(self.is_op("|") && matches!(self.peek_at(1), Tok::Ident(s) if s == "unwrap")) {
            return Ok(None);
        }
        self.bump();
        self.bump();
        let first = self.expect_ident()?;
        let (label, conv) = if self.is_op("(") && ["duration", "duration_seconds", "bytes"].contains(&first.as_str()) {
            self.bump();
            let l = self.expect_ident()?;
            self.expect_op(")")?;
            (l, if first == "bytes" { UnwrapConv::Bytes } else { UnwrapConv::Duration })
        } else {
            (first, UnwrapConv::None)
        };
        let mut post_filters = Vec::new();
        while self.is_op("|") {
            self.bump();
            if !self.lf_atom_starts() {
                return Err(self.unexpected());
            }
            post_filters.push(self.parse_label_filter()?);
        }
        Ok(Some(Unwrap { label, conv, post_filters }))
    }
}

/// Go's regexp errors read `error parsing regexp: ...`; keep that prefix.
fn regex_err_text(e: &str) -> String {
    if e.contains("error parsing regexp") {
        e.to_string()
    } else {
        format!("error parsing regexp: {e}")
    }
}

fn validate_range_agg(op: RangeOp, range: &LogRange, grouping: Option<&Grouping>) -> Result<(), String> {
    use RangeOp::*;
    let has_unwrap = range.unwrap.is_some();
    match op {
        CountOverTime | BytesRate | BytesOverTime if has_unwrap => {
            return Err(format!("invalid aggregation {} with unwrap", op.name()))
        }
        SumOverTime | AvgOverTime | MinOverTime | MaxOverTime | StddevOverTime | StdvarOverTime
        | QuantileOverTime | FirstOverTime | LastOverTime | RateCounter
            if !has_unwrap =>
        {
            return Err(format!("invalid aggregation {} without unwrap", op.name()))
        }
        _ => {}
    }
    let grouping_ok = matches!(
        op,
        AvgOverTime | MinOverTime | MaxOverTime | StddevOverTime | StdvarOverTime | QuantileOverTime | FirstOverTime | LastOverTime
    );
    if grouping.is_some() && !grouping_ok {
        return Err(format!("grouping not allowed for {} aggregation", op.name()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(q: &str) -> String {
        let e = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        let printed = e.to_string();
        let again = parse(&printed).unwrap_or_else(|e| panic!("{printed}: {e}")).to_string();
        assert_eq!(printed, again);
        printed
    }

    #[test]
    fn parses_and_prints() {
        assert_eq!(roundtrip(r#"{app="a"}"#), r#"{app="a"}"#);
        assert_eq!(
            roundtrip(r#"{app="a"} |= "x" or ip("10.0.0.0/8") | logfmt --strict a, b="c" | x > 1s and (y="1" or z=~"2")"#),
            r#"{app="a"} |= "x" or ip("10.0.0.0/8") | logfmt --strict a="a", b="c" | x > 1s and (y="1" or z=~"2")"#
        );
        assert_eq!(
            roundtrip(r#"sum by (app) (rate(({app="a"} | json | unwrap duration(d) | __error__="")[5m] offset 1m))"#),
            r#"sum by (app) (rate(({app="a"} | json | unwrap duration_seconds(d) | __error__="")[5m] offset 1m))"#
        );
        assert_eq!(roundtrip("1+1--1"), "1 + 1 - (-1)");
        let q = r#"{app="a"} |= "x"  | json"#;
        let Expr::Log(l) = parse(q).unwrap() else { panic!() };
        assert_eq!(l.pipeline.iter().map(|s| &q[s.span.start..s.span.end]).collect::<Vec<_>>(), vec![r#"|= "x""#, "| json"]);
        assert_eq!((l.span.start, l.span.end), (0, q.len()));
        assert_eq!(roundtrip("2^3^2"), "2 ^ 3 ^ 2");
        assert_eq!(roundtrip("(2^3)^2"), "(2 ^ 3) ^ 2");
        assert_eq!(roundtrip("10 / (5 / 2)"), "10 / (5 / 2)");
        roundtrip(r#"topk(2, count_over_time({a="b"}[1m])) by (x)"#);
        roundtrip(r#"approx_topk(2, count_over_time({a="b"}[1m])) by (x)"#);
        assert!(parse(r#"approx_topk without (x) (2, count_over_time({a="b"}[1m]))"#).is_err());
        roundtrip(r#"quantile_over_time(0.5, {a="b"} | logfmt | unwrap v [1m]) by (pod)"#);
        roundtrip(r#"label_replace(vector(1), "dst", "$1", "src", "(.*)")"#);
        assert_eq!(
            roundtrip(r#"rate({a="b"}[5m] | json | unwrap x)"#),
            roundtrip(r#"rate({a="b"} | json | unwrap x [5m])"#)
        );
        roundtrip(r#"count_over_time({a="b"}[1m]) > bool on (x) group_left (y) vector(1)"#);
        roundtrip(r#"{a="b"} | line_format "{{.a}}" | label_format x=y, z="{{.q}}" | drop a, b="c" | keep d | decolorize"#);
    }

    #[test]
    fn errors() {
        let e = parse(r#"{app=~".*"}"#).unwrap_err();
        assert!(e.msg.contains("at least one regexp or equality matcher"), "{e}");
        let e = parse(r#"count_over_time({a="b"} | logfmt | addr == ip("1.2.3.4") [1m])"#).unwrap_err();
        assert!(e.to_string().contains("syntax error: unexpected ip"), "{e}");
        assert_eq!(e.line, 1);
        assert!(parse("-count_over_time({a=\"b\"}[1m])").unwrap_err().msg.contains("expecting NUMBER"));
        assert!(parse("0x1A").unwrap_err().msg.contains("unable to parse literal as a float"));
        assert!(parse("1 and 2").unwrap_err().msg.contains("unexpected literal for left leg"));
        assert!(parse(r#"count_over_time({a="b"}[1m]) by (x)"#).unwrap_err().msg.contains("grouping not allowed"));
        assert!(parse(r#"sum_over_time({a="b"}[1m])"#).unwrap_err().msg.contains("without unwrap"));
        assert!(parse(r#"topk(count_over_time({a="b"}[1m]))"#).unwrap_err().msg.contains("parameter required"));
        assert!(parse(r#"{a="b"} |~ "(""#).unwrap_err().msg.contains("error parsing regexp"));
        assert!(parse(r#"{a="b"} | regexp "x""#).unwrap_err().msg.contains("at least one named capture"));
        assert!(parse(&format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000))).unwrap_err().msg.contains("nested too deeply"));
        assert!(parse(&"2^".repeat(100_000)).is_err());
        assert!(parse(&format!("{{a=\"b\"}} | {}x=\"1\"{}", "(".repeat(100_000), ")".repeat(100_000))).is_err());
        let e = parse("sum(\n  rate({a=\"b\"}[1m]) +)").unwrap_err();
        assert_eq!((e.line, e.col), (2, 22));
    }

    mod prop {
        use super::super::parse;
        use proptest::prelude::*;

        fn value() -> impl Strategy<Value = String> {
            prop::string::string_regex(r#"[a-z0-9 "\\.\-]{0,8}"#).expect("valid regex")
        }

        fn quoted(v: &str) -> String {
            crate::ast::quote(v)
        }

        fn log_expr() -> impl Strategy<Value = String> {
            let matcher = (prop::sample::select(vec!["app", "job", "env"]), prop::sample::select(vec!["=", "=~"]), "[a-z]{1,5}")
                .prop_map(|(n, op, v)| format!("{n}{op}{}", quoted(&v)));
            let stage = prop_oneof![
                (prop::sample::select(vec!["|=", "!=", "|~", "!~"]), value()).prop_map(|(op, v)| {
                    let v = if op.contains('~') { regex::escape(&v) } else { v };
                    format!("{op} {}", quoted(&v))
                }),
                Just("| json".to_string()),
                Just("| logfmt --keep-empty".to_string()),
                Just("| unpack".to_string()),
                Just("| decolorize".to_string()),
                (value()).prop_map(|v| format!("| line_format {}", quoted(&v.replace(['{', '}'], "")))),
                ("[a-z]{1,4}", -1000.0f64..1000.0).prop_map(|(n, x)| format!("| {n} > {x}")),
                ("[a-z]{1,4}", 1u32..100).prop_map(|(n, x)| format!("| {n} <= {x}ms or {n} == {x}KB")),
                ("[a-z]{1,4}", value()).prop_map(|(n, v)| format!("| ({n}!={} , {n}=ip(\"10.0.0.0/8\"))", quoted(&v))),
                ("[a-z]{1,4}", "[a-z]{1,4}").prop_map(|(a, b)| format!("| drop {a}, {b}=\"x\"")),
            ];
            (prop::collection::vec(matcher, 1..3), prop::collection::vec(stage, 0..4))
                .prop_map(|(m, st)| format!("{{{}}} {}", m.join(", "), st.join(" ")))
        }

        fn sample_expr() -> impl Strategy<Value = String> {
            let leaf = prop_oneof![
                (prop::sample::select(vec!["rate", "count_over_time", "bytes_rate", "absent_over_time"]), log_expr(), 1u32..90)
                    .prop_map(|(f, l, r)| format!("{f}({l} [{r}s])")),
                (prop::sample::select(vec!["avg_over_time", "max_over_time", "first_over_time"]), log_expr(), 1u32..90)
                    .prop_map(|(f, l, r)| format!("{f}({l} | unwrap v [{r}m]) by (a)")),
                (0.0f64..100.0).prop_map(|x| format!("{x}")),
                (0.0f64..10.0).prop_map(|x| format!("vector({x})")),
            ];
            leaf.prop_recursive(3, 12, 2, |inner| {
                prop_oneof![
                    (inner.clone(), prop::sample::select(vec!["+", "-", "*", "/", "%", "^", "> bool", "== bool"]), inner.clone())
                        .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
                    (prop::sample::select(vec!["sum", "avg", "max", "count"]), inner.clone())
                        .prop_map(|(f, a)| format!("{f} by (x) ({a})")),
                    inner.clone().prop_map(|a| format!("topk(3, {a})")),
                    inner.prop_map(|a| format!("({a})")),
                ]
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn arbitrary_input_never_panics(s in r#"[{}()\[\]|=!~"`a-z0-9 ,.<>+*/^%#µé-]{0,60}"#) {
                let _ = parse(&s);
            }

            #[test]
            fn log_queries_roundtrip(q in log_expr()) {
                let e = parse(&q).map_err(|e| TestCaseError::fail(format!("{q}: {e}")))?;
                let printed = e.to_string();
                let again = parse(&printed).map_err(|e| TestCaseError::fail(format!("{printed}: {e}")))?;
                prop_assert_eq!(printed, again.to_string());
            }

            #[test]
            fn metric_queries_roundtrip(q in sample_expr()) {
                // Set operations with literal legs are rejected; everything else parses.
                if let Ok(e) = parse(&q) {
                    let printed = e.to_string();
                    let again = parse(&printed).map_err(|e| TestCaseError::fail(format!("{q} -> {printed}: {e}")))?;
                    prop_assert_eq!(printed, again.to_string());
                } else {
                    prop_assert!(false, "generated query did not parse: {}", q);
                }
            }
        }
    }
}
