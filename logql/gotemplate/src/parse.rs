//! The parser: configuration ([`ParserBuilder`]), the tree it builds, and
//! the parsed [`Template`].

use crate::builtins::Builtin;
use crate::error::{Arity, ExecError, ParseError, ParseErrorKind};
use crate::exec::{self, Env};
use crate::lex::{self, Keyword, Tok, Token};
use crate::value::Value;
use std::collections::HashMap;

/// What a parser accepts and the limits its templates run under.
#[derive(Debug, Clone)]
struct Config {
    functions: HashMap<String, Arity>,
    variables: Vec<String>,
    range: bool,
    nest_limit: usize,
    size_limit: usize,
    step_limit: u64,
    output_limit: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            functions: HashMap::new(),
            variables: Vec::new(),
            range: true,
            nest_limit: 100,
            size_limit: 1 << 20,
            step_limit: 1_000_000,
            output_limit: 16 << 20,
        }
    }
}

/// Configures a [`Parser`]: the host's functions and predefined
/// variables, which actions it allows, and limits for untrusted text.
///
/// ```
/// use gotemplate::{Arity, ParserBuilder};
///
/// let parser = ParserBuilder::new()
///     .function("upper", Arity::Exact(1))
///     .variable("labels")
///     .nest_limit(32)
///     .build();
/// assert!(parser.parse("{{ $labels.job | upper }}").is_ok());
/// assert!(parser.parse("{{ $other }}").is_err());
/// ```
#[derive(Debug, Clone, Default)]
pub struct ParserBuilder {
    config: Config,
}

impl ParserBuilder {
    /// A builder with Go's builtins only, `range` allowed, and the default
    /// limits (nesting 100, text 1 MiB, 1,000,000 steps, output 16 MiB).
    pub fn new() -> ParserBuilder {
        ParserBuilder::default()
    }

    /// Declares a host function, which [`Env::call`] runs. It replaces a
    /// builtin of the same name. Calls with a number of arguments `arity`
    /// refuses fail before reaching the host.
    pub fn function(&mut self, name: &str, arity: Arity) -> &mut ParserBuilder {
        self.config.functions.insert(name.to_string(), arity);
        self
    }

    /// Declares host functions that all take `arity` arguments.
    pub fn functions(&mut self, names: &[&str], arity: Arity) -> &mut ParserBuilder {
        for name in names {
            self.function(name, arity);
        }
        self
    }

    /// Declares a predefined variable (`"labels"` or `"$labels"`), which
    /// [`Env::variable`] gives a value. Templates may use it without
    /// declaring it.
    pub fn variable(&mut self, name: &str) -> &mut ParserBuilder {
        self.config.variables.push(name.trim_start_matches('$').to_string());
        self
    }

    /// Declares predefined variables, as [`ParserBuilder::variable`] does.
    pub fn variables(&mut self, names: &[&str]) -> &mut ParserBuilder {
        for name in names {
            self.variable(name);
        }
        self
    }

    /// Whether `{{range}}` is allowed (default yes). Without it, `range`
    /// fails to parse as unsupported.
    pub fn range(&mut self, yes: bool) -> &mut ParserBuilder {
        self.config.range = yes;
        self
    }

    /// How deep `if`, `range` and parentheses may nest.
    pub fn nest_limit(&mut self, limit: usize) -> &mut ParserBuilder {
        self.config.nest_limit = limit;
        self
    }

    /// The longest template text accepted, in bytes.
    pub fn size_limit(&mut self, bytes: usize) -> &mut ParserBuilder {
        self.config.size_limit = bytes;
        self
    }

    /// How many steps (actions, commands, `range` iterations) one
    /// execution may take before it fails.
    pub fn step_limit(&mut self, steps: u64) -> &mut ParserBuilder {
        self.config.step_limit = steps;
        self
    }

    /// How many bytes one execution may write before it fails.
    pub fn output_limit(&mut self, bytes: usize) -> &mut ParserBuilder {
        self.config.output_limit = bytes;
        self
    }

    /// The parser. The builder can go on to build others.
    pub fn build(&self) -> Parser {
        Parser { config: self.config.clone() }
    }
}

/// Parses template text into [`Template`]s. Build one with
/// [`ParserBuilder`] and reuse it.
#[derive(Debug, Clone, Default)]
pub struct Parser {
    config: Config,
}

impl Parser {
    /// A parser with Go's builtins only and the default limits.
    pub fn new() -> Parser {
        Parser::default()
    }

    /// Parses template text. Errors give the byte offset of the bad token.
    pub fn parse(&self, text: &str) -> Result<Template, ParseError> {
        let config = &self.config;
        if text.len() > config.size_limit {
            return Err(ParseError::new(0, ParseErrorKind::TooLong(config.size_limit)));
        }
        let mut p = State { toks: lex::lex(text)?, pos: 0, end: text.len(), config, scope: Vec::new(), depth: 0 };
        let (nodes, end) = p.list()?;
        if let Some((kw, at)) = end {
            return Err(ParseError::new(at, ParseErrorKind::UnexpectedKeyword(kw.name())));
        }
        Ok(Template { nodes, step_limit: config.step_limit, output_limit: config.output_limit })
    }
}

/// A parsed template. It runs against any [`Env`], any number of times.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
    step_limit: u64,
    output_limit: usize,
}

impl Template {
    /// Runs the template, appending its output to `out`. On error, `out`
    /// keeps what was written before it.
    pub fn execute<E: Env + ?Sized>(&self, env: &E, out: &mut String) -> Result<(), ExecError> {
        exec::execute(&self.nodes, exec::Limits { steps: self.step_limit, output: self.output_limit }, env, out)
    }

    /// Runs the template and returns its output.
    pub fn render<E: Env + ?Sized>(&self, env: &E) -> Result<String, ExecError> {
        let mut out = String::new();
        self.execute(env, &mut out)?;
        Ok(out)
    }

    /// Whether the template is plain text (it has no actions, only text
    /// and comments), so it renders the same whatever the data.
    pub fn is_static(&self) -> bool {
        self.nodes.iter().all(|n| matches!(n, Node::Text { .. }))
    }
}

/// A piece of a template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Text {
        offset: usize,
        text: String,
    },
    /// `{{ pipeline }}`: prints the value unless the pipeline declares or
    /// assigns a variable.
    Action(Pipeline),
    /// `{{if}}` with its `{{else if}}` branches in order, and `{{else}}`.
    If {
        branches: Vec<(Pipeline, Vec<Node>)>,
        els: Vec<Node>,
    },
    Range {
        pipe: Pipeline,
        body: Vec<Node>,
        els: Vec<Node>,
    },
}

/// Commands joined by `|`, maybe declaring or assigning a variable.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pipeline {
    pub(crate) offset: usize,
    pub(crate) decl: Decl,
    pub(crate) cmds: Vec<Command>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decl {
    None,
    /// `$x :=` (in `range`, also `$i, $e :=`).
    Declare(Vec<String>),
    /// `$x =`
    Assign(VarRef),
}

/// A function and its arguments, or a single operand. Never empty.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Command {
    pub(crate) offset: usize,
    pub(crate) args: Vec<Operand>,
}

/// A term and the fields read from it: `.a.b` is `Dot` with `[a, b]`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Operand {
    pub(crate) offset: usize,
    pub(crate) term: Term,
    pub(crate) chain: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Term {
    Func(Func),
    Dot,
    Var(VarRef),
    Lit(Value),
    Pipe(Box<Pipeline>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Func {
    Builtin(Builtin),
    Host { name: String, arity: Arity },
}

/// A variable, resolved while parsing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum VarRef {
    /// `$` (not redeclared): the root data.
    Root,
    /// Declared in the template.
    Local(String),
    /// Declared by the host.
    Predefined(String),
}

/// Where a pipeline stands, which decides what may declare variables and
/// what ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Action,
    Range,
    Paren,
}

struct State<'a> {
    toks: Vec<Token>,
    pos: usize,
    /// Offset of the end of the text, for errors at the end.
    end: usize,
    config: &'a Config,
    /// Variables in scope, innermost last.
    scope: Vec<String>,
    depth: usize,
}

type PResult<T> = Result<T, ParseError>;

fn err<T>(offset: usize, kind: ParseErrorKind) -> PResult<T> {
    Err(ParseError::new(offset, kind))
}

/// The branch list, and the `{{end}}` or `{{else}}` (with its offset)
/// that ended it, if any.
type Block = (Vec<Node>, Option<(Keyword, usize)>);

impl State<'_> {
    fn peek(&self, ahead: usize) -> Option<&Tok> {
        self.toks.get(self.pos + ahead).map(|t| &t.tok)
    }

    fn offset(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |t| t.offset)
    }

    fn take(&mut self) -> Option<Token> {
        let t = self.toks.get_mut(self.pos)?;
        self.pos += 1;
        Some(Token { tok: std::mem::replace(&mut t.tok, Tok::Nil), offset: t.offset, spaced: t.spaced })
    }

    fn enter(&mut self, at: usize) -> PResult<()> {
        self.depth += 1;
        if self.depth > self.config.nest_limit {
            return err(at, ParseErrorKind::TooDeep(self.config.nest_limit));
        }
        Ok(())
    }

    /// Expects the `}}` that ends an action.
    fn close(&mut self, context: &'static str) -> PResult<()> {
        match self.take() {
            Some(Token { tok: Tok::Close, .. }) => Ok(()),
            Some(t) => err(t.offset, ParseErrorKind::Unexpected { found: t.tok.describe(), context }),
            None => err(self.end, ParseErrorKind::UnclosedAction),
        }
    }

    /// Nodes up to `{{end}}` (consumed whole), `{{else` (the rest left
    /// for the caller) or the end of the text.
    fn list(&mut self) -> PResult<Block> {
        let mut nodes = Vec::new();
        while let Some(t) = self.take() {
            match t.tok {
                Tok::Text(text) => nodes.push(Node::Text { offset: t.offset, text }),
                Tok::Open => {
                    let at = self.offset();
                    match self.peek(0) {
                        Some(Tok::Keyword(Keyword::End)) => {
                            self.pos += 1;
                            self.close("end")?;
                            return Ok((nodes, Some((Keyword::End, at))));
                        }
                        Some(Tok::Keyword(Keyword::Else)) => {
                            self.pos += 1;
                            return Ok((nodes, Some((Keyword::Else, at))));
                        }
                        Some(Tok::Keyword(Keyword::If)) => {
                            self.pos += 1;
                            nodes.push(self.if_(at)?);
                        }
                        Some(Tok::Keyword(Keyword::Range)) if self.config.range => {
                            self.pos += 1;
                            nodes.push(self.range(at)?);
                        }
                        Some(Tok::Keyword(k)) => return err(at, ParseErrorKind::Unsupported(k.name())),
                        _ => {
                            let pipe = self.pipeline(Ctx::Action)?;
                            self.close("command")?;
                            nodes.push(Node::Action(pipe));
                        }
                    }
                }
                other => return err(t.offset, ParseErrorKind::Unexpected { found: other.describe(), context: "text" }),
            }
        }
        Ok((nodes, None))
    }

    /// After `{{if`: the condition, the branches and the `{{end}}`.
    /// `{{else if}}` branches stay flat, so long chains do not nest.
    fn if_(&mut self, at: usize) -> PResult<Node> {
        self.enter(at)?;
        let mark = self.scope.len();
        let mut branches = Vec::new();
        let mut cond = self.pipeline(Ctx::Action)?;
        self.close("if")?;
        let els = loop {
            let inner = self.scope.len();
            let (body, end) = self.list()?;
            self.scope.truncate(inner);
            branches.push((cond, body));
            match end {
                None => return err(at, ParseErrorKind::MissingEnd("if")),
                Some((Keyword::End, _)) => break Vec::new(),
                Some(_) if self.peek(0) == Some(&Tok::Keyword(Keyword::If)) => {
                    self.pos += 1;
                    cond = self.pipeline(Ctx::Action)?;
                    self.close("if")?;
                }
                Some(_) => {
                    self.close("else")?;
                    break self.else_end(inner, at, "if")?;
                }
            }
        };
        self.scope.truncate(mark);
        self.depth -= 1;
        Ok(Node::If { branches, els })
    }

    /// After `{{range`: the pipeline (which may declare `$e` or `$i, $e`),
    /// the body, the optional `{{else}}` and the `{{end}}`.
    fn range(&mut self, at: usize) -> PResult<Node> {
        self.enter(at)?;
        let mark = self.scope.len();
        let pipe = self.pipeline(Ctx::Range)?;
        self.close("range")?;
        let inner = self.scope.len();
        let (body, end) = self.list()?;
        self.scope.truncate(inner);
        let els = match end {
            None => return err(at, ParseErrorKind::MissingEnd("range")),
            Some((Keyword::End, _)) => Vec::new(),
            Some(_) => {
                self.close("else")?;
                self.else_end(inner, at, "range")?
            }
        };
        self.scope.truncate(mark);
        self.depth -= 1;
        Ok(Node::Range { pipe, body, els })
    }

    /// The `{{else}}` branch, which must end with `{{end}}`.
    fn else_end(&mut self, scope: usize, at: usize, what: &'static str) -> PResult<Vec<Node>> {
        let (els, end) = self.list()?;
        self.scope.truncate(scope);
        match end {
            Some((Keyword::End, _)) => Ok(els),
            Some((_, o)) => err(o, ParseErrorKind::UnexpectedKeyword("else")),
            None => err(at, ParseErrorKind::MissingEnd(what)),
        }
    }

    fn pipeline(&mut self, ctx: Ctx) -> PResult<Pipeline> {
        let offset = self.offset();
        let decl = if ctx == Ctx::Paren { Decl::None } else { self.declaration(ctx)? };
        let mut cmds = vec![self.command()?];
        while self.peek(0) == Some(&Tok::Pipe) {
            self.pos += 1;
            cmds.push(self.command()?);
        }
        // Only functions take arguments, and only they can follow a `|`.
        for (i, c) in cmds.iter().enumerate() {
            let Some(first) = c.args.first() else { continue };
            if matches!(first.term, Term::Func(_)) {
                continue;
            }
            if i > 0 {
                return err(c.offset, ParseErrorKind::NonExecutable(i + 1));
            }
            if c.args.len() > 1 {
                return err(c.offset, ParseErrorKind::NotAFunction(describe(first)));
            }
            if first.term == Term::Lit(Value::Nil) && first.chain.is_empty() {
                return err(c.offset, ParseErrorKind::NilCommand);
            }
        }
        Ok(Pipeline { offset, decl, cmds })
    }

    /// `$x :=`, `$x =`, or in `range` `$i, $e :=`. A declared variable is
    /// in scope from here to the end of the enclosing block.
    fn declaration(&mut self, ctx: Ctx) -> PResult<Decl> {
        let (Some(Tok::Var(first)), Some(next)) = (self.peek(0), self.peek(1)) else {
            return Ok(Decl::None);
        };
        let first = first.clone();
        match next {
            Tok::Declare => {
                self.pos += 2;
                self.scope.push(first.clone());
                Ok(Decl::Declare(vec![first]))
            }
            Tok::Assign => {
                let at = self.offset();
                self.pos += 2;
                Ok(Decl::Assign(self.variable(&first, at)?))
            }
            Tok::Comma if ctx == Ctx::Range => match (self.peek(2), self.peek(3)) {
                (Some(Tok::Var(second)), Some(Tok::Declare)) => {
                    let second = second.clone();
                    self.pos += 4;
                    self.scope.push(first.clone());
                    self.scope.push(second.clone());
                    Ok(Decl::Declare(vec![first, second]))
                }
                _ => err(self.offset(), ParseErrorKind::Unexpected { found: "\",\"".into(), context: "range" }),
            },
            _ => Ok(Decl::None),
        }
    }

    fn command(&mut self) -> PResult<Command> {
        let offset = self.offset();
        let mut args = Vec::new();
        while !matches!(self.peek(0), None | Some(Tok::Pipe | Tok::Close | Tok::RParen)) {
            args.push(self.operand()?);
        }
        if args.is_empty() {
            return err(offset, ParseErrorKind::MissingValue);
        }
        Ok(Command { offset, args })
    }

    fn operand(&mut self) -> PResult<Operand> {
        let Some(t) = self.take() else {
            return err(self.end, ParseErrorKind::UnclosedAction);
        };
        let offset = t.offset;
        let (term, mut chain) = match t.tok {
            Tok::Ident(name) => (Term::Func(self.function(&name, offset)?), Vec::new()),
            Tok::Dot => (Term::Dot, Vec::new()),
            Tok::Field(f) => (Term::Dot, vec![f]),
            Tok::Var(v) => (Term::Var(self.variable(&v, offset)?), Vec::new()),
            Tok::Str(s) => (Term::Lit(Value::Str(s)), Vec::new()),
            Tok::Int(i) => (Term::Lit(Value::Int(i)), Vec::new()),
            Tok::Float(f) => (Term::Lit(Value::Float(f)), Vec::new()),
            Tok::Bool(b) => (Term::Lit(Value::Bool(b)), Vec::new()),
            Tok::Nil => (Term::Lit(Value::Nil), Vec::new()),
            Tok::LParen => {
                self.enter(offset)?;
                let p = self.pipeline(Ctx::Paren)?;
                match self.take() {
                    Some(Token { tok: Tok::RParen, .. }) => {}
                    _ => return err(offset, ParseErrorKind::UnclosedLeftParen),
                }
                self.depth -= 1;
                (Term::Pipe(Box::new(p)), Vec::new())
            }
            other => return err(offset, ParseErrorKind::Unexpected { found: other.describe(), context: "operand" }),
        };
        // Fields written right after a term read from its value.
        while let Some(Token { tok: Tok::Field(_), spaced: false, offset: at }) = self.toks.get(self.pos) {
            if matches!(term, Term::Func(_) | Term::Lit(_)) {
                let found = self.peek(0).map(Tok::describe).unwrap_or_default();
                return err(*at, ParseErrorKind::Unexpected { found, context: "operand" });
            }
            if let Some(Token { tok: Tok::Field(f), .. }) = self.take() {
                chain.push(f);
            }
        }
        Ok(Operand { offset, term, chain })
    }

    fn function(&self, name: &str, at: usize) -> PResult<Func> {
        if let Some(arity) = self.config.functions.get(name) {
            return Ok(Func::Host { name: name.to_string(), arity: *arity });
        }
        match Builtin::from_name(name) {
            Some(b) => Ok(Func::Builtin(b)),
            None => err(at, ParseErrorKind::UndefinedFunction(name.to_string())),
        }
    }

    fn variable(&self, name: &str, at: usize) -> PResult<VarRef> {
        if self.scope.iter().any(|n| n == name) {
            Ok(VarRef::Local(name.to_string()))
        } else if name.is_empty() {
            Ok(VarRef::Root)
        } else if self.config.variables.iter().any(|n| n == name) {
            Ok(VarRef::Predefined(name.to_string()))
        } else {
            err(at, ParseErrorKind::UndefinedVariable(name.to_string()))
        }
    }
}

/// An operand as error messages show it.
fn describe(op: &Operand) -> String {
    let mut s = match &op.term {
        Term::Func(Func::Builtin(b)) => b.name().to_string(),
        Term::Func(Func::Host { name, .. }) => name.clone(),
        Term::Dot if op.chain.is_empty() => ".".into(),
        Term::Dot => String::new(),
        Term::Var(VarRef::Root) => "$".into(),
        Term::Var(VarRef::Local(n) | VarRef::Predefined(n)) => format!("${n}"),
        Term::Lit(Value::Str(s)) => format!("{s:?}"),
        Term::Lit(v) => v.to_string(),
        Term::Pipe(_) => "(...)".into(),
    };
    for f in &op.chain {
        s.push('.');
        s.push_str(f);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parser() -> Parser {
        ParserBuilder::new().function("f", Arity::AtLeast(0)).variable("v").nest_limit(5).build()
    }

    fn kind(src: &str) -> ParseErrorKind {
        parser().parse(src).map(|_| ()).unwrap_err().kind().clone()
    }

    #[test]
    fn builds_the_tree() {
        let t = parser().parse("a{{ if $x := f }}{{ $x }}{{ else if .b }}c{{ else }}d{{ end }}").unwrap();
        let [Node::Text { .. }, Node::If { branches, els }] = t.nodes.as_slice() else { panic!("{t:?}") };
        assert_eq!((branches.len(), els.len()), (2, 1));
        assert_eq!(branches[0].0.decl, Decl::Declare(vec!["x".into()]));
        let t = parser().parse("{{ range $i, $e := f }}{{ $i }}{{ else }}none{{ end }}").unwrap();
        assert!(matches!(&t.nodes[..], [Node::Range { els, .. }] if els.len() == 1));
        assert!(parser().parse("only {{/* a comment */}} text").unwrap().is_static());
        assert!(!parser().parse("{{ 1 }}").unwrap().is_static());
    }

    #[test]
    fn operands_and_chains() {
        let t = parser().parse("{{ f .a.b $v.c (f).d $ . }}").unwrap();
        let [Node::Action(p)] = t.nodes.as_slice() else { panic!() };
        let shown: Vec<String> = p.cmds[0].args.iter().map(describe).collect();
        assert_eq!(shown, ["f", ".a.b", "$v.c", "(...).d", "$", "."]);
        assert_eq!(kind("{{ f.x }}"), ParseErrorKind::Unexpected { found: ".x".into(), context: "operand" });
        assert_eq!(kind("{{ \"s\".x }}"), ParseErrorKind::Unexpected { found: ".x".into(), context: "operand" });
    }

    #[test]
    fn scopes_follow_go() {
        assert!(parser().parse("{{ $x := 1 }}{{ $x }}{{ $x = 2 }}").is_ok());
        assert_eq!(kind("{{ if 1 }}{{ $x := 1 }}{{ end }}{{ $x }}"), ParseErrorKind::UndefinedVariable("x".into()));
        assert_eq!(kind("{{ range $e := f }}{{ end }}{{ $e }}"), ParseErrorKind::UndefinedVariable("e".into()));
        assert_eq!(kind("{{ $y = 1 }}"), ParseErrorKind::UndefinedVariable("y".into()));
        assert!(parser().parse("{{ $v = 1 }}{{ $ }}{{ $v }}").is_ok());
    }

    #[test]
    fn errors_name_the_problem_and_place() {
        let cases = [
            ("{{ }}", ParseErrorKind::MissingValue),
            ("{{ f | }}", ParseErrorKind::MissingValue),
            ("{{ nosuch }}", ParseErrorKind::UndefinedFunction("nosuch".into())),
            ("{{ end }}", ParseErrorKind::UnexpectedKeyword("end")),
            ("{{ else }}", ParseErrorKind::UnexpectedKeyword("else")),
            ("{{ if 1 }}x", ParseErrorKind::MissingEnd("if")),
            ("{{ range 1 }}x{{ else }}", ParseErrorKind::MissingEnd("range")),
            ("{{ if 1 }}{{ else }}{{ else }}{{ end }}", ParseErrorKind::UnexpectedKeyword("else")),
            ("{{ with 1 }}{{ end }}", ParseErrorKind::Unsupported("with")),
            ("{{ 1 2 }}", ParseErrorKind::NotAFunction("1".into())),
            ("{{ f | .x }}", ParseErrorKind::NonExecutable(2)),
            ("{{ nil }}", ParseErrorKind::NilCommand),
            ("{{ end 1 }}", ParseErrorKind::Unexpected { found: "1".into(), context: "end" }),
            ("{{ f := 1 }}", ParseErrorKind::Unexpected { found: ":=".into(), context: "operand" }),
            ("{{ if if }}", ParseErrorKind::Unexpected { found: "<if>".into(), context: "operand" }),
            ("{{ ((((((1)))))) }}", ParseErrorKind::TooDeep(5)),
        ];
        for (src, want) in cases {
            assert_eq!(kind(src), want, "{src}");
        }
        assert_eq!(parser().parse("ab{{ $x }}").unwrap_err().offset(), 5);
        assert_eq!(parser().parse("{{ if 1 }}{{ if 2 }}").unwrap_err().offset(), 13);
        let small = ParserBuilder::new().size_limit(3).range(false).build();
        assert_eq!(small.parse("abcd").unwrap_err().kind(), &ParseErrorKind::TooLong(3));
        assert_eq!(small.parse("{{range 1}}{{end}}").unwrap_err().kind(), &ParseErrorKind::TooLong(3));
        let no_range = ParserBuilder::new().range(false).build();
        assert_eq!(no_range.parse("{{ range 1 }}{{ end }}").unwrap_err().kind(), &ParseErrorKind::Unsupported("range"));
    }
}
