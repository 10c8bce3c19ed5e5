//! Go's builtin template functions that mean the same to every host.
//! A host function of the same name replaces the builtin, as Go's
//! `Funcs` does.

use crate::error::{Arity, FuncError};
use crate::exec::Env;
use crate::value::Value;
use std::cmp::Ordering;

/// A builtin function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builtin {
    And,
    Or,
    Not,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Len,
    Index,
    Print,
    Printf,
    Println,
}

const ALL: [Builtin; 14] = [
    Builtin::And,
    Builtin::Or,
    Builtin::Not,
    Builtin::Eq,
    Builtin::Ne,
    Builtin::Lt,
    Builtin::Le,
    Builtin::Gt,
    Builtin::Ge,
    Builtin::Len,
    Builtin::Index,
    Builtin::Print,
    Builtin::Printf,
    Builtin::Println,
];

impl Builtin {
    pub(crate) fn from_name(name: &str) -> Option<Builtin> {
        ALL.into_iter().find(|b| b.name() == name)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Builtin::And => "and",
            Builtin::Or => "or",
            Builtin::Not => "not",
            Builtin::Eq => "eq",
            Builtin::Ne => "ne",
            Builtin::Lt => "lt",
            Builtin::Le => "le",
            Builtin::Gt => "gt",
            Builtin::Ge => "ge",
            Builtin::Len => "len",
            Builtin::Index => "index",
            Builtin::Print => "print",
            Builtin::Printf => "printf",
            Builtin::Println => "println",
        }
    }

    pub(crate) fn arity(self) -> Arity {
        match self {
            Builtin::And | Builtin::Or | Builtin::Index | Builtin::Printf => Arity::AtLeast(1),
            Builtin::Not | Builtin::Len => Arity::Exact(1),
            Builtin::Eq => Arity::AtLeast(2),
            Builtin::Ne | Builtin::Lt | Builtin::Le | Builtin::Gt | Builtin::Ge => Arity::Exact(2),
            Builtin::Print | Builtin::Println => Arity::AtLeast(0),
        }
    }
}

/// Runs a builtin on arguments whose count fits its arity. (`and` and
/// `or` come here only with every argument evaluated; the evaluator
/// short-circuits them itself.) `limit` bounds the text `printf` builds.
pub(crate) fn call<E: Env + ?Sized>(
    b: Builtin,
    mut args: Vec<Value>,
    env: &E,
    limit: usize,
) -> Result<Value, FuncError> {
    Ok(match b {
        Builtin::And | Builtin::Or => {
            let want = b == Builtin::Or;
            let last = args.len().saturating_sub(1);
            let pick = args.iter().position(|a| a.truth() == want).unwrap_or(last);
            if pick < args.len() {
                args.swap_remove(pick)
            } else {
                Value::Nil
            }
        }
        Builtin::Not => Value::Bool(!args.first().is_some_and(Value::truth)),
        Builtin::Eq => {
            let (first, rest) = args.split_first().ok_or("missing argument for comparison")?;
            let mut any = false;
            for other in rest {
                any |= equal(first, other)?;
            }
            Value::Bool(any)
        }
        Builtin::Ne => match args.as_slice() {
            [a, b] => Value::Bool(!equal(a, b)?),
            _ => return Err("missing argument for comparison".into()),
        },
        Builtin::Lt | Builtin::Le | Builtin::Gt | Builtin::Ge => {
            let [x, y] = args.as_slice() else {
                return Err("missing argument for comparison".into());
            };
            // A NaN orders with nothing: every comparison is false.
            let ord = order(x, y)?;
            Value::Bool(ord.is_some_and(|o| match b {
                Builtin::Lt => o.is_lt(),
                Builtin::Le => o.is_le(),
                Builtin::Gt => o.is_gt(),
                _ => o.is_ge(),
            }))
        }
        Builtin::Len => match args.first() {
            Some(Value::Str(s)) => Value::Int(s.len() as i64),
            Some(Value::List(l)) => Value::Int(l.len() as i64),
            Some(Value::Map(m)) => Value::Int(m.len() as i64),
            Some(Value::Nil) | None => Value::Int(0),
            Some(other) => return Err(format!("len of type {}", other.type_name()).into()),
        },
        Builtin::Index => {
            let mut it = args.into_iter();
            let mut item = it.next().unwrap_or(Value::Nil);
            for key in it {
                item = index(item, &key, env)?;
            }
            item
        }
        Builtin::Print => {
            let mut out = String::new();
            for (i, a) in args.iter().enumerate() {
                // Go's Sprint: a space between operands when neither is a string.
                if i > 0 && !matches!(a, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_)) {
                    out.push(' ');
                }
                env.write_value(a, &mut out);
            }
            Value::Str(out)
        }
        Builtin::Println => {
            let mut out = String::new();
            for (i, a) in args.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                env.write_value(a, &mut out);
            }
            out.push('\n');
            Value::Str(out)
        }
        Builtin::Printf => {
            let (format, rest) = args.split_first().ok_or("missing format")?;
            let format = match format {
                Value::Str(s) => s.clone(),
                other => {
                    let mut s = String::new();
                    env.write_value(other, &mut s);
                    s
                }
            };
            Value::Str(crate::fmt::sprintf(env, &format, rest, limit)?)
        }
    })
}

/// `eq`: values of one kind compare by value (integers and floats with
/// each other); a missing value equals only a missing value; anything
/// else is an error.
fn equal(a: &Value, b: &Value) -> Result<bool, FuncError> {
    Ok(match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Nil, _) | (_, Value::Nil) => false,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::List(_) | Value::Map(_), _) | (_, Value::List(_) | Value::Map(_)) => {
            return Err(format!("invalid type for comparison: {} and {}", a.type_name(), b.type_name()).into())
        }
        _ => order(a, b)? == Some(Ordering::Equal),
    })
}

/// The order of two strings, two numbers (integers and floats mixed) or
/// two times; `None` when a NaN takes part.
fn order(a: &Value, b: &Value) -> Result<Option<Ordering>, FuncError> {
    Ok(match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            a.as_f64().unwrap_or(f64::NAN).partial_cmp(&b.as_f64().unwrap_or(f64::NAN))
        }
        (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
        (Value::Time(x), Value::Time(y)) => Some(x.cmp(y)),
        (Value::Bool(_), Value::Bool(_)) | (Value::Nil, _) | (_, Value::Nil) => {
            return Err(format!("invalid type for comparison: {} and {}", a.type_name(), b.type_name()).into())
        }
        _ => return Err(format!("incompatible types for comparison: {} and {}", a.type_name(), b.type_name()).into()),
    })
}

/// One step of `index`: a map by string key (a missing key as the host's
/// missing-key value), a list by integer position.
fn index<E: Env + ?Sized>(item: Value, key: &Value, env: &E) -> Result<Value, FuncError> {
    match (item, key) {
        (Value::Map(mut m), Value::Str(k)) => Ok(m.remove(k).unwrap_or_else(|| env.missing_key(k))),
        (Value::List(mut l), Value::Int(i)) => {
            let at = usize::try_from(*i).ok().filter(|at| *at < l.len());
            match at {
                Some(at) => Ok(l.swap_remove(at)),
                None => Err(format!("index out of range: {i}").into()),
            }
        }
        (Value::Nil, _) => Err("index of untyped nil".into()),
        (Value::Map(_) | Value::List(_), k) => Err(format!("cannot index with {}", k.type_name()).into()),
        (other, _) => Err(format!("can't index item of type {}", other.type_name()).into()),
    }
}
