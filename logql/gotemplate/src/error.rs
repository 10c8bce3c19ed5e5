//! The errors of parsing and of executing a template.

use std::fmt;

/// The error a host function returns: any error type, boxed. A `String`
/// or `&str` converts with `.into()`, and `?` converts any error.
pub type FuncError = Box<dyn std::error::Error + Send + Sync>;

/// How many arguments a function takes (a piped value counts as the last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    /// Exactly this many.
    Exact(usize),
    /// This many or more.
    AtLeast(usize),
    /// From the first to the second number, both included.
    Between(usize, usize),
}

impl Arity {
    /// Whether `n` arguments fit.
    pub fn accepts(self, n: usize) -> bool {
        match self {
            Arity::Exact(k) => n == k,
            Arity::AtLeast(k) => n >= k,
            Arity::Between(lo, hi) => (lo..=hi).contains(&n),
        }
    }
}

impl fmt::Display for Arity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arity::Exact(k) => write!(f, "{k}"),
            Arity::AtLeast(k) => write!(f, "at least {k}"),
            Arity::Between(lo, hi) => write!(f, "{lo} to {hi}"),
        }
    }
}

/// Template text that does not parse: what is wrong, and the byte offset
/// in the text where it is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("template: {offset}: {kind}")]
pub struct ParseError {
    offset: usize,
    kind: ParseErrorKind,
}

impl ParseError {
    pub(crate) fn new(offset: usize, kind: ParseErrorKind) -> ParseError {
        ParseError { offset, kind }
    }

    /// Byte offset in the template text.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// What is wrong.
    pub fn kind(&self) -> &ParseErrorKind {
        &self.kind
    }
}

/// What is wrong with template text. The messages follow Go's where Go
/// has one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The text is longer than the parser's size limit.
    #[error("template longer than {0} bytes")]
    TooLong(usize),
    /// Control structures and parentheses nest deeper than the limit.
    #[error("template nested too deeply (more than {0} levels)")]
    TooDeep(usize),
    /// `{{` without `}}`.
    #[error("unclosed action")]
    UnclosedAction,
    /// `{{/*` without `*/`.
    #[error("unclosed comment")]
    UnclosedComment,
    /// `*/` not followed by `}}` (or ` -}}`).
    #[error("comment ends before closing delimiter")]
    CommentNotAtDelimiter,
    /// A `"` string without its closing quote on the same line.
    #[error("unterminated quoted string")]
    UnterminatedString,
    /// A `` ` `` string without its closing backquote.
    #[error("unterminated raw quoted string")]
    UnterminatedRawString,
    /// A `'c'` character without its closing quote.
    #[error("unterminated character constant")]
    UnterminatedChar,
    /// A string or character with a bad escape sequence, or a character
    /// constant that is not one character.
    #[error("invalid syntax in {0}")]
    BadLiteral(String),
    /// A number that does not read (or a complex or hexadecimal float,
    /// which are not supported).
    #[error("bad number syntax: {0:?}")]
    BadNumber(String),
    /// A character that cannot start or follow a token.
    #[error("unrecognized character in action: {0:?}")]
    BadCharacter(char),
    /// `:` not followed by `=`.
    #[error("expected :=")]
    ExpectedDeclare,
    /// `)` without `(`.
    #[error("unexpected right paren")]
    UnexpectedRightParen,
    /// `(` without `)` before the end of the action.
    #[error("unclosed left paren")]
    UnclosedLeftParen,
    /// `$name` used where it is not declared.
    #[error("undefined variable \"${0}\"")]
    UndefinedVariable(String),
    /// A name that is neither a host function nor a builtin.
    #[error("function {0:?} not defined")]
    UndefinedFunction(String),
    /// An empty command: `{{ }}`, `{{ a | }}`, `( )`.
    #[error("missing value for command")]
    MissingValue,
    /// A value (not a function) given arguments.
    #[error("can't give argument to non-function {0}")]
    NotAFunction(String),
    /// A value (not a function) after `|`.
    #[error("non executable command in pipeline stage {0}")]
    NonExecutable(usize),
    /// `nil` used as a command.
    #[error("nil is not a command")]
    NilCommand,
    /// A token where it cannot stand.
    #[error("unexpected {found} in {context}")]
    Unexpected {
        /// The token.
        found: String,
        /// Where: `command`, `end`, `range`, ...
        context: &'static str,
    },
    /// `{{end}}` or `{{else}}` with nothing to end.
    #[error("unexpected {{{{{0}}}}}")]
    UnexpectedKeyword(&'static str),
    /// The text ends inside `{{if}}` or `{{range}}`.
    #[error("unexpected EOF: missing {{{{end}}}} for {{{{{0}}}}}")]
    MissingEnd(&'static str),
    /// A Go action this library does not implement (`with`, `define`,
    /// `template`, `block`, `break`, `continue`), or `range` where the
    /// parser was built without it.
    #[error("{0:?} is not supported")]
    Unsupported(&'static str),
}

/// A template that failed while running: what failed, and the byte offset
/// of the command, operand or action in the template text.
#[derive(Debug, thiserror::Error)]
#[error("template: {offset}: {kind}")]
pub struct ExecError {
    offset: usize,
    kind: ExecErrorKind,
}

impl ExecError {
    pub(crate) fn new(offset: usize, kind: ExecErrorKind) -> ExecError {
        ExecError { offset, kind }
    }

    /// Byte offset in the template text.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// What failed.
    pub fn kind(&self) -> &ExecErrorKind {
        &self.kind
    }
}

/// What failed while running a template.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecErrorKind {
    /// A function (host or builtin) returned an error.
    #[error("error calling {name}: {source}")]
    Func {
        /// The function.
        name: String,
        /// Its error.
        #[source]
        source: FuncError,
    },
    /// A function called with a number of arguments its arity refuses.
    #[error("wrong number of args for {name}: want {want} got {got}")]
    Arity {
        /// The function.
        name: String,
        /// What it takes.
        want: Arity,
        /// What it was given.
        got: usize,
    },
    /// `.name` on a value that has no fields, or on root data without it.
    #[error("can't evaluate field {name}{}", .in_type.map(|t| format!(" in type {t}")).unwrap_or_default())]
    NoField {
        /// The field.
        name: String,
        /// The type it was looked up in (`None`: the root data).
        in_type: Option<&'static str>,
    },
    /// A variable read before its declaration ran (`{{ $x := $x }}`).
    #[error("undefined variable \"${0}\"")]
    UndefinedVariable(String),
    /// `range` over a value that is not a list, map, integer or nil.
    #[error("range can't iterate over {0}")]
    Range(String),
    /// The template ran more steps (actions, commands, iterations) than
    /// its limit.
    #[error("template ran more than {0} steps")]
    StepLimit(u64),
    /// The output grew past its limit.
    #[error("template output longer than {0} bytes")]
    OutputLimit(usize),
}
