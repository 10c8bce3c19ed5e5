//! AST → PromQL text. The output parses back to the same tree (up to spans).

use crate::ast::*;
use crate::lexer::{format_duration, is_metric_ident, quote};
use model::{is_valid_label_name, MatchType, METRIC_NAME};
use std::fmt::{self, Write};

/// Formats a float as PromQL accepts it (`Inf`, `-Inf`, `NaN`, shortest
/// round-trip decimal otherwise).
pub fn format_number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{v}")
    }
}

fn label_name(s: &str) -> String {
    if is_valid_label_name(s) {
        s.to_string()
    } else {
        quote(s)
    }
}

fn label_list(labels: &[String]) -> String {
    labels.iter().map(|l| label_name(l)).collect::<Vec<_>>().join(", ")
}

/// Prints a duration expression.
pub fn duration_expr(d: &DurationExpr) -> String {
    match d {
        DurationExpr::Literal(ms) => format_duration(*ms),
        DurationExpr::Number(n) => format_number(*n),
        DurationExpr::Step => "step()".to_string(),
        DurationExpr::Range => "range()".to_string(),
        DurationExpr::Unary(neg, e) => format!("{}{}", if *neg { "-" } else { "+" }, duration_expr(e)),
        DurationExpr::Binary(op, a, b) => format!("{} {} {}", duration_expr(a), op.as_str(), duration_expr(b)),
        DurationExpr::MinOf(a, b) => format!("min_of({}, {})", duration_expr(a), duration_expr(b)),
        DurationExpr::MaxOf(a, b) => format!("max_of({}, {})", duration_expr(a), duration_expr(b)),
        DurationExpr::Paren(e) => format!("({})", duration_expr(e)),
    }
}

fn modifiers(out: &mut String, offset: &Option<DurationExpr>, at: &Option<AtModifier>) {
    match at {
        Some(AtModifier::Timestamp(ms)) => {
            let sign = if *ms < 0 { "-" } else { "" };
            let abs = ms.unsigned_abs();
            let _ = write!(out, " @ {sign}{}.{:03}", abs / 1000, abs % 1000);
        }
        Some(AtModifier::Start) => out.push_str(" @ start()"),
        Some(AtModifier::End) => out.push_str(" @ end()"),
        None => {}
    }
    if let Some(o) = offset {
        out.push_str(" offset ");
        out.push_str(&duration_expr(o));
    }
}

fn selector_core(vs: &VectorSelector) -> String {
    let mut out = String::new();
    let mut skip_name = false;
    let mut in_braces = Vec::new();
    if let Some(n) = &vs.name {
        if is_metric_ident(n) {
            out.push_str(n);
        } else {
            in_braces.push(quote(n));
        }
        skip_name = true;
    }
    for m in &vs.matchers {
        if skip_name && m.kind == MatchType::Equal && m.name == METRIC_NAME && Some(&m.value) == vs.name.as_ref() {
            skip_name = false;
            continue;
        }
        in_braces.push(format!("{}{}{}", label_name(&m.name), m.kind.as_str(), quote(&m.value)));
    }
    if !in_braces.is_empty() || vs.name.is_none() {
        out.push('{');
        out.push_str(&in_braces.join(", "));
        out.push('}');
    }
    out
}

/// Prints an expression as PromQL.
pub fn print(e: &Expr) -> String {
    let mut out = String::new();
    write_expr(&mut out, e);
    out
}

fn write_expr(out: &mut String, e: &Expr) {
    match e {
        Expr::Number { value, .. } => out.push_str(&format_number(*value)),
        Expr::String { value, .. } => out.push_str(&quote(value)),
        Expr::Vector(vs) => {
            out.push_str(&selector_core(vs));
            if vs.smoothed {
                out.push_str(" smoothed");
            }
            modifiers(out, &vs.offset, &vs.at);
        }
        Expr::Matrix { selector, range, anchored, smoothed, .. } => {
            out.push_str(&selector_core(selector));
            let _ = write!(out, "[{}]", duration_expr(range));
            if *anchored {
                out.push_str(" anchored");
            }
            if *smoothed {
                out.push_str(" smoothed");
            }
            modifiers(out, &selector.offset, &selector.at);
        }
        Expr::Subquery { expr, range, step, offset, at, .. } => {
            write_expr(out, expr);
            let _ = write!(out, "[{}:{}]", duration_expr(range), step.as_ref().map(duration_expr).unwrap_or_default());
            modifiers(out, offset, at);
        }
        Expr::Paren { expr, .. } => {
            out.push('(');
            write_expr(out, expr);
            out.push(')');
        }
        Expr::Unary { op, expr, .. } => {
            out.push(if *op == UnaryOp::Neg { '-' } else { '+' });
            write_expr(out, expr);
        }
        Expr::Binary { op, lhs, rhs, modifier, .. } => {
            write_expr(out, lhs);
            out.push(' ');
            out.push_str(op.as_str());
            if modifier.return_bool {
                out.push_str(" bool");
            }
            let m = &modifier.matching;
            if m.explicit {
                let _ = write!(out, " {}({})", if m.on { "on" } else { "ignoring" }, label_list(&m.labels));
                match m.card {
                    Cardinality::ManyToOne => {
                        let _ = write!(out, " group_left({})", label_list(&m.include));
                    }
                    Cardinality::OneToMany => {
                        let _ = write!(out, " group_right({})", label_list(&m.include));
                    }
                    _ => {}
                }
            }
            match (modifier.fill_left, modifier.fill_right) {
                (Some(l), Some(r)) if l.to_bits() == r.to_bits() => {
                    let _ = write!(out, " fill({})", format_number(l));
                }
                (l, r) => {
                    if let Some(l) = l {
                        let _ = write!(out, " fill_left({})", format_number(l));
                    }
                    if let Some(r) = r {
                        let _ = write!(out, " fill_right({})", format_number(r));
                    }
                }
            }
            out.push(' ');
            write_expr(out, rhs);
        }
        Expr::Aggregate { op, expr, param, grouping, .. } => {
            out.push_str(op.as_str());
            if grouping.explicit {
                let _ = write!(out, " {} ({}) ", if grouping.without { "without" } else { "by" }, label_list(&grouping.labels));
            }
            out.push('(');
            if let Some(p) = param {
                write_expr(out, p);
                out.push_str(", ");
            }
            write_expr(out, expr);
            out.push(')');
        }
        Expr::Call { func, args, .. } => {
            out.push_str(func);
            out.push('(');
            for (i, a) in args.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_expr(out, a);
            }
            out.push(')');
        }
        Expr::Duration { expr, .. } => out.push_str(&duration_expr(expr)),
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&print(self))
    }
}

#[cfg(test)]
mod tests {
    use crate::parser::parse;
    use proptest::prelude::*;

    fn roundtrip(q: &str) {
        let a = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        let printed = super::print(&a);
        let b = parse(&printed).unwrap_or_else(|e| panic!("{q} -> {printed}: {e}"));
        assert_eq!(format!("{:?}", a.strip_spans()), format!("{:?}", b.strip_spans()), "{q} -> {printed}");
    }

    #[test]
    fn examples_roundtrip() {
        for q in [
            r#"sum by (job) (rate(http_requests_total{code=~"5..",x!="a\"b"}[5m] offset -1h @ 100.5))"#,
            "a + on(x, y) group_left(z) b * c ^ d ^ e",
            "-x offset 5m",
            "x[1h30m:] @ end()",
            "topk(3, x) or vector(1) unless y",
            r#"{"utf8.metric", "a b"="c"}"#,
            "count_over_time(x[min_of(step() + 1, 1h)])",
            "x offset (1h / 2)",
            "a > bool fill_left(1) fill_right(NaN) b",
            "increase(x[1m] anchored)",
            "-Inf + 0x10 - .5e3",
            "1 - -2",
            "@ -1.5",
        ]
        .iter()
        .filter(|q| !q.starts_with('@'))
        {
            roundtrip(q);
        }
        roundtrip("x @ -1.5");
    }

    fn name() -> impl Strategy<Value = String> {
        "[a-z_][a-z0-9_:]{0,6}".prop_filter("keyword", |s| {
            !["and", "or", "unless", "bool", "on", "ignoring", "offset", "by", "without", "atan2", "inf", "nan", "group_left", "group_right"]
                .contains(&s.as_str())
                && crate::ast::AggregateOp::from_name(s).is_none()
                && crate::functions::lookup(s).is_none()
                && !["step", "range", "min_of", "max_of", "fill", "fill_left", "fill_right", "anchored", "smoothed"].contains(&s.as_str())
        })
    }

    fn string_lit() -> impl Strategy<Value = String> {
        prop_oneof![
            "[ -~]{0,8}".prop_map(|s| crate::lexer::quote(&s)),
            "[a-z]{0,5}".prop_map(|s| format!("'{s}'")),
            "[a-z\\\\]{0,5}".prop_map(|s| format!("`{s}`")),
            Just("\"\\u00e9\\n\\x41\"".to_string()),
        ]
    }

    fn duration() -> impl Strategy<Value = String> {
        prop_oneof![
            (1u32..100, prop::sample::select(vec!["ms", "s", "m", "h", "d", "w", "y"])).prop_map(|(n, u)| format!("{n}{u}")),
            Just("1h30m".to_string()),
            Just("5m * 2".to_string()),
            Just("(1h / 2)".to_string()),
            Just("step()".to_string()),
            Just("min_of(step(), 1m)".to_string()),
            (1u32..1000).prop_map(|n| n.to_string()),
        ]
    }

    fn selector() -> impl Strategy<Value = String> {
        let matcher = prop_oneof![
            (name(), prop::sample::select(vec!["=", "!="]), string_lit()).prop_map(|(n, op, v)| format!("{}{op}{v}", n.replace(':', "_"))),
            (name(), prop::sample::select(vec!["=~", "!~"]), "[a-z.|]{0,3}[a-z.]?\\*?").prop_map(|(n, op, v)| format!("{}{op}\"{v}\"", n.replace(':', "_"))),
        ];
        (name(), prop::collection::vec(matcher, 0..3), prop::option::of(duration()), prop::option::of(-100_000i64..100_000)).prop_map(|(n, ms, off, at)| {
            let mut s = n;
            if !ms.is_empty() {
                s.push('{');
                s.push_str(&ms.join(", "));
                s.push('}');
            }
            if let Some(a) = at {
                s.push_str(&format!(" @ {}", a as f64 / 7.0));
            }
            if let Some(o) = off {
                let o = if o.contains(' ') && !o.starts_with('(') { format!("({o})") } else { o };
                s.push_str(&format!(" offset -{o}"));
            }
            s
        })
    }

    fn number() -> impl Strategy<Value = String> {
        prop_oneof![
            (0u32..1000).prop_map(|n| n.to_string()),
            Just("NaN".to_string()),
            Just("-Inf".to_string()),
            Just("0x1f".to_string()),
            Just("1.5e-3".to_string()),
            Just("-.5".to_string()),
        ]
    }

    /// Instant-vector-typed leaves, so that generated trees type-check.
    fn leaf() -> impl Strategy<Value = String> {
        prop_oneof![
            number().prop_map(|n| format!("vector({n})")),
            selector(),
            (selector(), duration()).prop_map(|(s, d)| format!("rate({}[{d}])", s.split(" @").next().unwrap_or("x").split(" offset").next().unwrap_or("x"))),
        ]
    }

    fn expr() -> impl Strategy<Value = String> {
        leaf().prop_recursive(4, 32, 3, |inner| {
            prop_oneof![
                (
                    inner.clone(),
                    prop::sample::select(vec!["+", "-", "*", "/", "%", "^", "atan2", "== bool", "> bool", "and", "or", "unless", "+ on(a) group_left(b)", "- ignoring(c)", "* fill(0)"]),
                    inner.clone()
                )
                    .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
                inner.clone().prop_map(|a| format!("({a})")),
                inner.clone().prop_map(|a| format!("-{a}")),
                (inner.clone(), prop::sample::select(vec!["sum", "avg", "count", "max"])).prop_map(|(a, op)| format!("{op} by (x, \"y.z\") ({a})")),
                inner.clone().prop_map(|a| format!("topk without (x) (3, {a})")),
                inner.clone().prop_map(|a| format!("count_values(\"v\", {a})")),
                inner.clone().prop_map(|a| format!("abs({a})")),
                inner.clone().prop_map(|a| format!("label_replace({a}, \"d\", \"$1\", \"s\", \"(.*)\")")),
                (inner.clone(), duration()).prop_map(|(a, d)| format!("max_over_time(({a})[{d}:1m] offset 1m)")),
                (inner.clone(), number()).prop_map(|(a, n)| format!("{a} * {n}")),
                (inner.clone(), number()).prop_map(|(a, n)| format!("{n} ^ {a}")),
                inner.clone().prop_map(|a| format!("vector(scalar({a}))")),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn parse_print_parse(q in expr()) {
            if let Ok(a) = parse(&q) {
                let printed = super::print(&a);
                let b = parse(&printed).map_err(|e| TestCaseError::fail(format!("{q} -> {printed}: {e}")))?;
                prop_assert_eq!(format!("{:?}", a.strip_spans()), format!("{:?}", b.strip_spans()), "{} -> {}", q, printed);
            }
        }

        #[test]
        fn parser_never_panics(q in "[a-z0-9_(){}\\[\\]:,=~!<>+*/%^@ .\"'`\\\\-]{0,40}") {
            let _ = parse(&q);
        }

        #[test]
        fn generated_queries_mostly_parse(q in expr()) {
            // Type errors are legitimate (e.g. `scalar(x) and y`), but the
            // generator must not be producing syntax the parser rejects.
            if let Err(e) = parse(&q) {
                prop_assert!(
                    e.message().contains("type") || e.message().contains("got") || e.message().contains("set operator") || e.message().contains("comparisons between scalars")
                        || e.message().contains("vector matching") || e.message().contains("non-empty matcher") || e.message().contains("nesting")
                        || e.message().contains("binary expression") || e.message().contains("grouping") || e.message().contains("only allowed") || e.message().contains("invalid regular expression"),
                    "{}: {}", q, e
                );
            }
        }
    }
}
