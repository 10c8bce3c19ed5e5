//! Running a parsed template against the host's [`Env`].

use crate::builtins::{self, Builtin};
use crate::error::{ExecError, ExecErrorKind, FuncError};
use crate::parse::{Command, Decl, Func, Node, Operand, Pipeline, Term, VarRef};
use crate::value::Value;
use std::fmt::Write as _;

/// What a template runs against: the host's data, its functions, and how
/// it prints values. Every method has a default, so a host implements
/// only what it uses.
///
/// The contract: methods may be called any number of times in one
/// execution, in template order, and must not panic; errors go through
/// [`Env::call`]'s result. Values are handed over by value and not kept.
pub trait Env {
    /// Runs the host function `name`, one declared with
    /// [`ParserBuilder::function`](crate::ParserBuilder::function). `args`
    /// are in call order, a piped value last, and their number fits the
    /// declared arity. The default fails.
    fn call(&self, name: &str, args: Vec<Value>) -> Result<Value, FuncError> {
        let _ = args;
        Err(format!("function {name:?} is not implemented").into())
    }

    /// The data the template runs on: `.` outside `range`, and `$`. The
    /// default is `Nil`.
    fn root(&self) -> Value {
        Value::Nil
    }

    /// `.name` at the top level (and `$.name`), without building the
    /// whole [`Env::root`]. `None` means the data has no such field, and
    /// the template fails with "can't evaluate field". The default reads
    /// [`Env::root`] as Go reads a map: a missing key is
    /// [`Env::missing_key`].
    fn field(&self, name: &str) -> Option<Value> {
        match self.root() {
            Value::Map(mut m) => Some(m.remove(name).unwrap_or_else(|| self.missing_key(name))),
            Value::Nil => Some(self.missing_key(name)),
            _ => None,
        }
    }

    /// The value of a predefined variable, one declared with
    /// [`ParserBuilder::variable`](crate::ParserBuilder::variable). The
    /// default is `Nil`.
    fn variable(&self, name: &str) -> Value {
        let _ = name;
        Value::Nil
    }

    /// What a missing map key reads as (Go's `missingkey` option), for
    /// fields and `index`. The default is `Nil`, which an action prints
    /// as `<no value>`; a host whose maps hold strings may prefer `""`.
    fn missing_key(&self, key: &str) -> Value {
        let _ = key;
        Value::Nil
    }

    /// Writes a value as an action prints it and as `printf`'s `%v`/`%s`,
    /// `print` and `println` do. The default is Go's `%v` (the
    /// [`Display`](std::fmt::Display) of [`Value`]). An action that
    /// yields `Nil` prints `<no value>` without asking.
    fn write_value(&self, value: &Value, out: &mut String) {
        let _ = write!(out, "{value}");
    }
}

/// The limits of one execution.
pub(crate) struct Limits {
    pub(crate) steps: u64,
    pub(crate) output: usize,
}

pub(crate) fn execute<E: Env + ?Sized>(
    nodes: &[Node],
    limits: Limits,
    env: &E,
    out: &mut String,
) -> Result<(), ExecError> {
    let mut x = Exec { env, vars: Vec::new(), overrides: Vec::new(), steps: 0, limits, start: out.len() };
    x.list(nodes, &Dot::Root, out)
}

/// What `.` is: the host's root data (asked for field by field), or a
/// value `range` set.
enum Dot {
    Root,
    Val(Value),
}

/// A value fields are read from, borrowed where it can be.
enum Recv<'a> {
    Root,
    Ref(&'a Value),
    Val(Value),
}

struct Exec<'e, E: ?Sized> {
    env: &'e E,
    /// Template variables in scope, innermost last.
    vars: Vec<(String, Value)>,
    /// Values assigned to predefined variables and `$`.
    overrides: Vec<(String, Value)>,
    steps: u64,
    limits: Limits,
    /// Length of the output before this execution.
    start: usize,
}

type XResult<T> = Result<T, ExecError>;

fn fail<T>(offset: usize, kind: ExecErrorKind) -> XResult<T> {
    Err(ExecError::new(offset, kind))
}

impl<E: Env + ?Sized> Exec<'_, E> {
    fn step(&mut self, offset: usize) -> XResult<()> {
        self.steps += 1;
        if self.steps > self.limits.steps {
            return fail(offset, ExecErrorKind::StepLimit(self.limits.steps));
        }
        Ok(())
    }

    fn written(&self, out: &str, offset: usize) -> XResult<()> {
        if out.len().saturating_sub(self.start) > self.limits.output {
            return fail(offset, ExecErrorKind::OutputLimit(self.limits.output));
        }
        Ok(())
    }

    fn list(&mut self, nodes: &[Node], dot: &Dot, out: &mut String) -> XResult<()> {
        for node in nodes {
            match node {
                Node::Text { offset, text } => {
                    self.step(*offset)?;
                    out.push_str(text);
                    self.written(out, *offset)?;
                }
                Node::Action(p) => {
                    self.step(p.offset)?;
                    let v = self.pipeline(p, dot)?;
                    if p.decl == Decl::None {
                        match v {
                            Value::Nil => out.push_str("<no value>"),
                            v => self.env.write_value(&v, out),
                        }
                        self.written(out, p.offset)?;
                    }
                }
                Node::If { branches, els } => {
                    let mark = self.vars.len();
                    let mut taken = false;
                    for (cond, body) in branches {
                        self.step(cond.offset)?;
                        if self.pipeline(cond, dot)?.truth() {
                            let inner = self.vars.len();
                            self.list(body, dot, out)?;
                            self.vars.truncate(inner);
                            taken = true;
                            break;
                        }
                    }
                    if !taken {
                        self.list(els, dot, out)?;
                    }
                    self.vars.truncate(mark);
                }
                Node::Range { pipe, body, els } => self.range(pipe, body, els, dot, out)?,
            }
        }
        Ok(())
    }

    fn range(&mut self, pipe: &Pipeline, body: &[Node], els: &[Node], dot: &Dot, out: &mut String) -> XResult<()> {
        self.step(pipe.offset)?;
        let mark = self.vars.len();
        let names: &[String] = match &pipe.decl {
            Decl::Declare(names) => names,
            _ => &[],
        };
        let v = self.commands(pipe, dot)?;
        let empty = match &v {
            Value::List(l) => l.is_empty(),
            Value::Map(m) => m.is_empty(),
            Value::Int(n) => *n <= 0,
            Value::Nil => true,
            other => return fail(pipe.offset, ExecErrorKind::Range(other.to_string())),
        };
        if empty {
            // As in Go, the variables hold the (empty) collection in `else`.
            for n in names {
                self.vars.push((n.clone(), v.clone()));
            }
            self.list(els, dot, out)?;
            self.vars.truncate(mark);
            return Ok(());
        }
        let items: Box<dyn Iterator<Item = (Value, Value)>> = match v {
            Value::List(l) => Box::new(l.into_iter().enumerate().map(|(i, e)| (Value::Int(i as i64), e))),
            Value::Map(m) => Box::new(m.into_iter().map(|(k, e)| (Value::Str(k), e))),
            Value::Int(n) => Box::new((0..n).map(|i| (Value::Int(i), Value::Int(i)))),
            _ => Box::new(std::iter::empty()),
        };
        for (key, elem) in items {
            self.step(pipe.offset)?;
            self.vars.truncate(mark);
            match names {
                [e] => self.vars.push((e.clone(), elem.clone())),
                [k, e] => {
                    self.vars.push((k.clone(), key));
                    self.vars.push((e.clone(), elem.clone()));
                }
                _ => {}
            }
            self.list(body, &Dot::Val(elem), out)?;
        }
        self.vars.truncate(mark);
        Ok(())
    }

    /// Runs a pipeline and its declaration or assignment.
    fn pipeline(&mut self, p: &Pipeline, dot: &Dot) -> XResult<Value> {
        let v = self.commands(p, dot)?;
        match &p.decl {
            Decl::None => {}
            Decl::Declare(names) => {
                for n in names {
                    self.vars.push((n.clone(), v.clone()));
                }
            }
            Decl::Assign(var) => self.assign(var, v.clone(), p.offset)?,
        }
        Ok(v)
    }

    /// The value of a pipeline's commands, each piped into the next.
    fn commands(&mut self, p: &Pipeline, dot: &Dot) -> XResult<Value> {
        let mut piped = None;
        for cmd in &p.cmds {
            piped = Some(self.command(cmd, dot, piped)?);
        }
        Ok(piped.unwrap_or(Value::Nil))
    }

    fn command(&mut self, cmd: &Command, dot: &Dot, piped: Option<Value>) -> XResult<Value> {
        self.step(cmd.offset)?;
        let Some((first, rest)) = cmd.args.split_first() else {
            return Ok(piped.unwrap_or(Value::Nil));
        };
        // The parser lets only functions take arguments or piped values.
        let Term::Func(func) = &first.term else {
            return self.operand(first, dot);
        };
        if let Func::Builtin(b @ (Builtin::And | Builtin::Or)) = func {
            return self.and_or(*b, rest, piped, dot, cmd.offset);
        }
        let mut args = Vec::with_capacity(rest.len() + 1);
        for a in rest {
            args.push(self.operand(a, dot)?);
        }
        args.extend(piped);
        self.call(func, args, cmd.offset)
    }

    /// `and` / `or`, which stop at the first argument that decides, as
    /// Go's do: later arguments are not evaluated.
    fn and_or(
        &mut self,
        b: Builtin,
        rest: &[Operand],
        piped: Option<Value>,
        dot: &Dot,
        offset: usize,
    ) -> XResult<Value> {
        let got = rest.len() + usize::from(piped.is_some());
        if !b.arity().accepts(got) {
            return fail(offset, ExecErrorKind::Arity { name: b.name().into(), want: b.arity(), got });
        }
        let decisive = b == Builtin::Or;
        let mut last = Value::Nil;
        for a in rest {
            let v = self.operand(a, dot)?;
            if v.truth() == decisive {
                return Ok(v);
            }
            last = v;
        }
        Ok(piped.unwrap_or(last))
    }

    fn call(&mut self, func: &Func, args: Vec<Value>, offset: usize) -> XResult<Value> {
        let (name, arity) = match func {
            Func::Builtin(b) => (b.name(), b.arity()),
            Func::Host { name, arity } => (name.as_str(), *arity),
        };
        if !arity.accepts(args.len()) {
            return fail(offset, ExecErrorKind::Arity { name: name.into(), want: arity, got: args.len() });
        }
        let result = match func {
            Func::Builtin(b) => builtins::call(*b, args, self.env, self.limits.output),
            Func::Host { name, .. } => self.env.call(name, args),
        };
        result.map_err(|source| ExecError::new(offset, ExecErrorKind::Func { name: name.into(), source }))
    }

    fn operand(&mut self, op: &Operand, dot: &Dot) -> XResult<Value> {
        let base = match &op.term {
            Term::Func(f) => return self.call(f, Vec::new(), op.offset),
            Term::Lit(v) => Recv::Ref(v),
            Term::Pipe(p) => Recv::Val(self.commands(p, dot)?),
            Term::Dot => match dot {
                Dot::Root => Recv::Root,
                Dot::Val(v) => Recv::Ref(v),
            },
            Term::Var(r) => self.variable(r, op.offset)?,
        };
        let mut cur = base;
        for name in &op.chain {
            cur = Recv::Val(field(self.env, cur, name).map_err(|kind| ExecError::new(op.offset, kind))?);
        }
        Ok(match cur {
            Recv::Root => self.env.root(),
            Recv::Ref(v) => v.clone(),
            Recv::Val(v) => v,
        })
    }

    fn variable(&self, r: &VarRef, offset: usize) -> XResult<Recv<'_>> {
        let name = match r {
            VarRef::Local(name) => {
                return match self.vars.iter().rev().find(|(n, _)| n == name) {
                    Some((_, v)) => Ok(Recv::Ref(v)),
                    None => fail(offset, ExecErrorKind::UndefinedVariable(name.clone())),
                }
            }
            VarRef::Root => "",
            VarRef::Predefined(name) => name,
        };
        Ok(match self.overrides.iter().find(|(n, _)| n == name) {
            Some((_, v)) => Recv::Ref(v),
            None if name.is_empty() => Recv::Root,
            None => Recv::Val(self.env.variable(name)),
        })
    }

    fn assign(&mut self, r: &VarRef, v: Value, offset: usize) -> XResult<()> {
        let name = match r {
            VarRef::Local(name) => {
                return match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => {
                        slot.1 = v;
                        Ok(())
                    }
                    None => fail(offset, ExecErrorKind::UndefinedVariable(name.clone())),
                }
            }
            VarRef::Root => "",
            VarRef::Predefined(name) => name,
        };
        match self.overrides.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = v,
            None => self.overrides.push((name.to_string(), v)),
        }
        Ok(())
    }
}

/// `.name` of a value: the root asks the host, maps give the entry (a
/// missing key, and any key of `Nil`, reads as the host's missing-key
/// value), anything else has no fields.
fn field<E: Env + ?Sized>(env: &E, recv: Recv<'_>, name: &str) -> Result<Value, ExecErrorKind> {
    let no_field = |in_type| ExecErrorKind::NoField { name: name.to_string(), in_type };
    match recv {
        Recv::Root => env.field(name).ok_or_else(|| no_field(None)),
        Recv::Ref(Value::Map(m)) => Ok(m.get(name).cloned().unwrap_or_else(|| env.missing_key(name))),
        Recv::Val(Value::Map(mut m)) => Ok(m.remove(name).unwrap_or_else(|| env.missing_key(name))),
        Recv::Ref(Value::Nil) | Recv::Val(Value::Nil) => Ok(env.missing_key(name)),
        Recv::Ref(v) => Err(no_field(Some(v.type_name()))),
        Recv::Val(v) => Err(no_field(Some(v.type_name()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Arity, ParseErrorKind, ParserBuilder};
    use std::cell::Cell;
    use std::collections::BTreeMap;

    /// Root data `{name: "db", n: 3, list: [a b], m: {x: 1}}`, a predefined
    /// `$pre`, and host functions `boom` (fails), `count` (counts calls)
    /// and `join` (joins its arguments).
    struct Data {
        calls: Cell<usize>,
        missing: Value,
    }

    impl Env for Data {
        fn call(&self, name: &str, args: Vec<Value>) -> Result<Value, FuncError> {
            self.calls.set(self.calls.get() + 1);
            match name {
                "boom" => Err("boom".into()),
                "count" => Ok(Value::Int(self.calls.get() as i64)),
                _ => Ok(Value::Str(args.iter().map(Value::to_string).collect::<Vec<_>>().join("+"))),
            }
        }

        fn root(&self) -> Value {
            let m: BTreeMap<String, Value> = [
                ("name".to_string(), Value::from("db")),
                ("n".to_string(), Value::Int(3)),
                ("list".to_string(), Value::List(vec!["a".into(), "b".into()])),
                ("m".to_string(), Value::Map([("x".to_string(), Value::Int(1))].into())),
            ]
            .into();
            Value::Map(m)
        }

        fn variable(&self, name: &str) -> Value {
            Value::from(format!("pre:{name}"))
        }

        fn missing_key(&self, _: &str) -> Value {
            self.missing.clone()
        }
    }

    fn data() -> Data {
        Data { calls: Cell::new(0), missing: Value::Nil }
    }

    fn parser() -> crate::Parser {
        ParserBuilder::new()
            .function("boom", Arity::AtLeast(0))
            .function("count", Arity::Exact(0))
            .function("join", Arity::AtLeast(0))
            .variable("pre")
            .step_limit(1000)
            .output_limit(100)
            .build()
    }

    fn run(src: &str) -> Result<String, ExecError> {
        parser().parse(src).unwrap_or_else(|e| panic!("{src}: {e}")).render(&data())
    }

    fn ok(src: &str) -> String {
        run(src).unwrap_or_else(|e| panic!("{src}: {e}"))
    }

    fn fails(src: &str) -> String {
        run(src).map(|out| panic!("{src} rendered {out:?}")).unwrap_err().kind().to_string()
    }

    #[test]
    fn fields_variables_and_dot() {
        assert_eq!(ok("{{ .name }} {{ .n }} {{ .m.x }} {{ $.name }} {{ .list }}"), "db 3 1 db [a b]");
        assert_eq!(ok("[{{ .nope }}] [{{ .m.nope }}] [{{ .nope.deeper }}]"), "[<no value>] [<no value>] [<no value>]");
        let empty = Data { calls: Cell::new(0), missing: "".into() };
        assert_eq!(parser().parse("[{{ .nope }}|{{ index .m \"y\" }}]").unwrap().render(&empty).unwrap(), "[|]");
        assert_eq!(ok("{{ $pre }} {{ $pre = 1 }}{{ $pre }} {{ $ := 2 }}{{ $ }}"), "pre:pre 1 2");
        assert_eq!(ok("{{ $x := .n }}{{ if true }}{{ $x = 5 }}{{ $y := 1 }}{{ end }}{{ $x }}"), "5");
        assert_eq!(ok("{{ (index $ \"m\").x }}"), "1");
        assert_eq!(fails("{{ (join 1 2).x }}"), "can't evaluate field x in type string");
    }

    #[test]
    fn conditions_and_pipes() {
        assert_eq!(ok("{{ if .nope }}a{{ else if .n }}b{{ else }}c{{ end }}"), "b");
        assert_eq!(ok("{{ if $v := .nope }}a{{ else }}[{{ $v }}]{{ end }}"), "[<no value>]");
        assert_eq!(ok("{{ .name | join \"x\" | join 1 }}"), "1+x+db");
        assert_eq!(ok("{{ join (join 1 2) .n }}"), "1+2+3");
        assert_eq!(
            ok("{{ and 1 0 2 }} {{ or 0 \"\" 3 }} {{ and 1 2 }} {{ or 0 false }} {{ not .nope }}"),
            "0 3 2 false true"
        );
        // `and`/`or` stop at the deciding argument, as Go's do.
        assert_eq!(ok("{{ and 0 (boom) }} {{ or 1 (boom) }} {{ count }}"), "0 1 1");
        assert_eq!(ok("{{ 1 | and 1 }} {{ 0 | or 0 }}"), "1 0");
    }

    #[test]
    fn range_over_lists_maps_and_integers() {
        assert_eq!(ok("{{ range .list }}<{{ . }}>{{ end }}"), "<a><b>");
        assert_eq!(ok("{{ range $i, $e := .list }}{{ $i }}={{ $e }} {{ end }}"), "0=a 1=b ");
        assert_eq!(ok("{{ range $e := .list }}{{ $e }}{{ end }}"), "ab");
        assert_eq!(ok("{{ range $k, $v := .m }}{{ $k }}:{{ $v }}{{ . }}{{ end }}"), "x:11");
        assert_eq!(ok("{{ range 3 }}{{ . }}{{ end }}|{{ range -1 }}x{{ else }}none{{ end }}"), "012|none");
        assert_eq!(ok("{{ range .nope }}x{{ else }}empty{{ end }}"), "empty");
        assert_eq!(ok("{{ range $x := .nope }}{{ else }}[{{ $x }}]{{ end }}"), "[<no value>]");
        assert_eq!(ok("{{ range .list }}{{ range $.list }}{{ . }}{{ end }}{{ end }}"), "abab");
        assert_eq!(fails("{{ range .name }}{{ end }}"), "range can't iterate over db");
        assert_eq!(fails("{{ range .list }}{{ .x }}{{ end }}"), "can't evaluate field x in type string");
    }

    #[test]
    fn builtins() {
        assert_eq!(ok("{{ eq 1 2 1 }} {{ eq 1 1.0 }} {{ ne \"a\" \"b\" }} {{ lt 1 1.5 }} {{ ge \"b\" \"a\" }} {{ eq .nope 1 }}"), "true true true true true false");
        assert_eq!(fails("{{ lt 1 \"a\" }}"), "error calling lt: incompatible types for comparison: int and string");
        assert_eq!(fails("{{ lt true false }}"), "error calling lt: invalid type for comparison: bool and bool");
        assert_eq!(fails("{{ eq .list 1 }}"), "error calling eq: invalid type for comparison: []interface {} and int");
        assert_eq!(ok("{{ len .name }} {{ len .list }} {{ len .m }} {{ len .nope }}"), "2 2 1 0");
        assert_eq!(fails("{{ len 3 }}"), "error calling len: len of type int");
        assert_eq!(
            ok("{{ index .list 1 }} {{ index .m \"x\" }} {{ index .m \"y\" }} {{ index .list }}"),
            "b 1 <no value> [a b]"
        );
        assert_eq!(fails("{{ index .list 2 }}"), "error calling index: index out of range: 2");
        assert_eq!(ok("{{ print 1 2 \"a\" 3 \"b\" \"c\" }}|{{ println 1 \"a\" }}|"), "1 2a3bc|1 a\n|");
        assert_eq!(ok("{{ printf \"%s-%03d\" .name .n }}"), "db-003");
        assert_eq!(fails("{{ not 1 2 }}"), "wrong number of args for not: want 1 got 2");
        assert_eq!(fails("{{ 1 | count }}"), "wrong number of args for count: want 0 got 1");
        assert_eq!(fails("{{ printf }}"), "wrong number of args for printf: want at least 1 got 0");
    }

    #[test]
    fn errors_carry_offsets_and_limits_hold() {
        let e = run("ab {{ .n }} {{ boom 1 }}").unwrap_err();
        assert_eq!((e.offset(), e.to_string()), (15, "template: 15: error calling boom: boom".to_string()));
        assert_eq!(fails("{{ .n.x }}"), "can't evaluate field x in type int");
        assert_eq!(fails("{{ range 5000 }}{{ end }}"), "template ran more than 1000 steps");
        assert_eq!(fails("{{ range 20 }}0123456789{{ end }}"), "template output longer than 100 bytes");
        assert_eq!(fails("{{ $x := $x }}"), "undefined variable \"$x\"");
        struct Nothing;
        impl Env for Nothing {}
        let t = ParserBuilder::new().function("f", Arity::Exact(0)).build().parse("{{ f }}").unwrap();
        assert_eq!(
            t.render(&Nothing).unwrap_err().kind().to_string(),
            "error calling f: function \"f\" is not implemented"
        );
        assert_eq!(crate::Parser::new().parse("{{ .X }}").unwrap().render(&Nothing).unwrap(), "<no value>");
        assert!(matches!(
            crate::Parser::new().parse("{{ $y }}").unwrap_err().kind(),
            ParseErrorKind::UndefinedVariable(_)
        ));
    }
}
