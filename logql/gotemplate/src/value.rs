//! The values a template computes with.

use std::collections::BTreeMap;
use std::fmt;

/// A value inside a template: what literals, fields, variables and
/// functions produce. The variants stand for the Go types templates meet
/// most (`string`, `int`, `float64`, `bool`, `time.Time`, slices and
/// `map[string]T`); `Nil` is Go's missing ("invalid") value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// No value: a missing map key or label, `nil`.
    Nil,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// An instant, in nanoseconds since the Unix epoch (printed in UTC).
    Time(i64),
    /// A list.
    List(Vec<Value>),
    /// A map with string keys (iterated and printed in key order, as Go
    /// prints maps).
    Map(BTreeMap<String, Value>),
}

impl Value {
    /// Go's truth: false for `false`, zero, the empty string, an empty
    /// list or map, and `Nil`; true otherwise.
    pub fn truth(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Time(_) => true,
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
        }
    }

    /// The Go type name, as error messages and `%!verb(type=value)` show it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Time(_) => "time.Time",
            Value::List(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The number as a float, if this is an `Int` or a `Float`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }
}

/// Go's `%v`: `<nil>`, `true`, `42`, `0.5` / `1e+06` (shortest `%g`),
/// the string itself, `2006-01-02 15:04:05.5 +0000 UTC`, `[a b]`,
/// `map[k:v]`.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => f.write_str("<nil>"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => f.write_str(&crate::fmt::format_float(*x, 'g', None)),
            Value::Str(s) => f.write_str(s),
            Value::Time(ns) => f.write_str(&go_time(*ns)),
            Value::List(l) => {
                f.write_str("[")?;
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::Map(m) => {
                f.write_str("map[")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{k}:{v}")?;
                }
                f.write_str("]")
            }
        }
    }
}

/// Go's `time.Time.String()` of a UTC instant, or the nanoseconds when
/// the instant is outside chrono's range.
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

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<Vec<Value>> for Value {
    fn from(l: Vec<Value>) -> Value {
        Value::List(l)
    }
}

impl From<BTreeMap<String, Value>> for Value {
    fn from(m: BTreeMap<String, Value>) -> Value {
        Value::Map(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_as_go_prints() {
        let m: BTreeMap<String, Value> = [("b".to_string(), Value::Int(2)), ("a".to_string(), "x".into())].into();
        assert_eq!(Value::Map(m).to_string(), "map[a:x b:2]");
        assert_eq!(Value::List(vec![Value::Int(1), "a".into(), Value::Nil]).to_string(), "[1 a <nil>]");
        assert_eq!(Value::Float(1e6).to_string(), "1e+06");
        assert_eq!(Value::Float(0.5).to_string(), "0.5");
        assert_eq!(Value::Float(f64::NEG_INFINITY).to_string(), "-Inf");
        assert_eq!(Value::Time(1_500_000_000_500_000_000).to_string(), "2017-07-14 02:40:00.5 +0000 UTC");
        assert_eq!(Value::Time(0).to_string(), "1970-01-01 00:00:00 +0000 UTC");
    }

    #[test]
    fn truth_is_go_truth() {
        for v in [Value::Nil, Value::Bool(false), Value::Int(0), Value::Float(0.0), "".into(), Value::List(vec![])] {
            assert!(!v.truth(), "{v:?}");
        }
        for v in [Value::Bool(true), Value::Int(-1), Value::Float(f64::NAN), " ".into(), Value::Time(0)] {
            assert!(v.truth(), "{v:?}");
        }
    }
}
