//! Runner for Loki's `.logqltest` scripts (format: FORMAT.md next to the
//! scripts). The scripts are read at test time from `../shared`; nothing of
//! them lives in this repository.

use logql::{Engine, QueryParams, QueryResult};
use model::mem::MemLogStore;
use model::{Labels, LogEntry};
use std::path::{Path, PathBuf};

/// Outcome of one script.
#[derive(Debug, Default)]
pub struct FileReport {
    /// Evals that matched.
    pub passed: usize,
    /// Evals that did not.
    pub failed: usize,
    /// One line per failure.
    pub failures: Vec<String>,
}

#[derive(Debug, Clone)]
enum Expect {
    Fail(Option<String>, Option<String>),
    Empty,
    Series { ordered: bool, series: Vec<(Labels, Vec<Option<f64>>)> },
    Scalar(f64),
}

#[derive(Debug, Clone)]
enum Cmd {
    Clear,
    Load(Vec<(Labels, LogEntry)>),
    Eval { line: usize, query: String, instant: bool, t0: i64, t1: i64, step: i64, expect: Expect },
}

/// Strips a `#` comment outside `"..."` and `` `...` `` quotes.
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match quote {
            Some('"') if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '`' => quote = Some(c),
            None if c == '#' => return &line[..i],
            None => {}
        }
    }
    line
}

fn parse_dur(s: &str) -> Result<i64, String> {
    logql::units::parse_query_duration(s).map(|v| v as i64).map_err(|e| format!("bad duration {s:?}: {e}"))
}

/// Parses `{a="b", c="d"}` at the start of `s`; returns labels and the rest.
fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let s = s.trim_start();
    let mut rest = s.strip_prefix('{').ok_or_else(|| format!("expected '{{' in {s:?}"))?;
    let mut pairs = Vec::new();
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((Labels::from_pairs(pairs), r));
        }
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
            continue;
        }
        let eq = rest.find('=').ok_or_else(|| format!("expected '=' in {s:?}"))?;
        let name = rest[..eq].trim().to_string();
        rest = rest[eq + 1..].trim_start();
        let r = rest.strip_prefix('"').ok_or_else(|| format!("expected '\"' in {s:?}"))?;
        let mut value = String::new();
        let mut chars = r.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, e)) => value.push(e),
                    None => break,
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = end.ok_or_else(|| format!("unterminated label value in {s:?}"))?;
        pairs.push((name, value));
        rest = &r[end + 1..];
    }
}

fn parse_value(tok: &str) -> Result<Vec<Option<f64>>, String> {
    if tok == "_" {
        return Ok(vec![None]);
    }
    let num = |s: &str| -> Result<f64, String> {
        match s {
            "NaN" => Ok(f64::NAN),
            "Inf" | "+Inf" => Ok(f64::INFINITY),
            "-Inf" => Ok(f64::NEG_INFINITY),
            _ => s.parse::<f64>().map_err(|_| format!("bad value {s:?}")),
        }
    };
    if let Some((head, count)) = tok.rsplit_once('x') {
        if !tok.contains("Inf") {
            let n: usize = count.parse().map_err(|_| format!("bad expansion {tok:?}"))?;
            // head is `a`, `a+b` or `a-b` (a sign at 0 or after `e` belongs to a number).
            let b = head.as_bytes();
            let split = (1..b.len()).find(|&i| (b[i] == b'+' || b[i] == b'-') && b[i - 1] != b'e' && b[i - 1] != b'E');
            let (start, delta) = match split {
                Some(i) => {
                    let d = num(&head[i + 1..])?;
                    (num(&head[..i])?, if b[i] == b'-' { -d } else { d })
                }
                None => (num(head)?, 0.0),
            };
            return Ok((0..=n).map(|k| Some(start + delta * k as f64)).collect());
        }
    }
    Ok(vec![Some(num(tok)?)])
}

fn parse_load_line(line: &str) -> Result<Vec<(Labels, LogEntry)>, String> {
    let (labels, rest) = parse_labels(line)?;
    // Loki drops empty-valued stream labels at ingestion.
    let labels = labels.without_empty();
    let rest = rest.trim_start();
    let q = rest.chars().next().ok_or("missing log line")?;
    if q != '"' && q != '`' {
        return Err(format!("expected a quoted line in {line:?}"));
    }
    let end = rest[1..].find(q).ok_or("unterminated log line")? + 1;
    let text = &rest[1..end];
    let mut rest = rest[end + 1..].trim_start();
    rest = rest.strip_prefix('@').ok_or_else(|| format!("missing '@' in {line:?}"))?.trim_start();
    let start_end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
    let start = parse_dur(&rest[..start_end])?;
    rest = rest[start_end..].trim_start();
    let (mut step, mut count) = (0i64, 1usize);
    let mut metadata = Labels::empty();
    while let Some(r) = rest.strip_prefix('[') {
        let close = r.find(']').ok_or("unterminated '['")?;
        let inner = r[..close].trim();
        if let Some(rep) = inner.strip_prefix("repeat every ") {
            let (s, c) = rep.split_once(" for ").ok_or("bad repeat clause")?;
            step = parse_dur(s.trim())?;
            count = c.trim().parse().map_err(|_| format!("bad repeat count {c:?}"))?;
        } else if let Some(md) = inner.strip_prefix("metadata") {
            let (l, _) = parse_labels(&format!("{{{}}}", md.trim().replace("\" ", "\", ")))?;
            metadata = l;
        } else {
            return Err(format!("unknown clause [{inner}]"));
        }
        rest = r[close + 1..].trim_start();
    }
    if !rest.is_empty() {
        return Err(format!("trailing text {rest:?} in load line"));
    }
    Ok((0..count)
        .map(|i| {
            let l = text.replace("{{.i}}", &i.to_string());
            (labels.clone(), LogEntry { ts: start + step * i as i64, line: l, metadata: metadata.clone() })
        })
        .collect())
}

fn parse_script(src: &str) -> Result<Vec<Cmd>, String> {
    let lines: Vec<&str> = src.lines().collect();
    let mut cmds = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let raw = lines[i];
        let line = strip_comment(raw).trim_end();
        let lineno = i + 1;
        i += 1;
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with(char::is_whitespace) {
            return Err(format!("line {lineno}: indented line without a command"));
        }
        // Collect the indented block.
        let mut block = Vec::new();
        while i < lines.len() && lines[i].starts_with(char::is_whitespace) {
            let l = strip_comment(lines[i]).trim();
            if !l.is_empty() {
                block.push((i + 1, l));
            }
            i += 1;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[0] {
            "clear" => cmds.push(Cmd::Clear),
            "load" => {
                let mut entries = Vec::new();
                for (n, l) in block {
                    entries.extend(parse_load_line(l).map_err(|e| format!("line {n}: {e}"))?);
                }
                cmds.push(Cmd::Load(entries));
            }
            "eval" => {
                let (instant, t0, t1, step, query) = if words.get(1) == Some(&"instant") && words.get(2) == Some(&"at") {
                    let t = parse_dur(words.get(3).ok_or("missing time")?)?;
                    let q = line.splitn(5, char::is_whitespace).nth(4).unwrap_or("").trim();
                    (true, t, t, 0, q.to_string())
                } else if words.get(1) == Some(&"range") && words.get(2) == Some(&"from") && words.get(4) == Some(&"to") && words.get(6) == Some(&"step") {
                    let t0 = parse_dur(words[3])?;
                    let t1 = parse_dur(words[5])?;
                    let st = parse_dur(words.get(7).ok_or("missing step")?)?;
                    let q = line.splitn(9, char::is_whitespace).nth(8).unwrap_or("").trim();
                    (false, t0, t1, st, q.to_string())
                } else {
                    return Err(format!("line {lineno}: bad eval command"));
                };
                let mut expect: Option<Expect> = None;
                let mut ordered = false;
                let mut series = Vec::new();
                for (n, l) in block {
                    if let Some(rest) = l.strip_prefix("expect fail") {
                        let rest = rest.trim();
                        expect = Some(if let Some(m) = rest.strip_prefix("msg:") {
                            Expect::Fail(Some(m.trim().to_string()), None)
                        } else if let Some(r) = rest.strip_prefix("regex:") {
                            Expect::Fail(None, Some(r.trim().to_string()))
                        } else {
                            Expect::Fail(None, None)
                        });
                    } else if l == "expect empty" {
                        expect = Some(Expect::Empty);
                    } else if l == "expect ordered" {
                        ordered = true;
                    } else if l.starts_with("skip values-comparison") {
                        // Loki's sharded stacks only; a single-node engine compares values.
                    } else if l.starts_with('{') {
                        let (labels, rest) = parse_labels(l).map_err(|e| format!("line {n}: {e}"))?;
                        let mut vals = Vec::new();
                        for tok in rest.split_whitespace() {
                            vals.extend(parse_value(tok).map_err(|e| format!("line {n}: {e}"))?);
                        }
                        series.push((labels, vals));
                    } else {
                        let v = parse_value(l).map_err(|e| format!("line {n}: {e}"))?;
                        match v.as_slice() {
                            [Some(x)] => expect = Some(Expect::Scalar(*x)),
                            _ => return Err(format!("line {n}: bad scalar {l:?}")),
                        }
                    }
                }
                if !series.is_empty() {
                    expect = Some(Expect::Series { ordered, series });
                }
                let expect = expect.ok_or_else(|| format!("line {lineno}: eval without expectation"))?;
                cmds.push(Cmd::Eval { line: lineno, query, instant, t0, t1, step, expect });
            }
            other => return Err(format!("line {lineno}: unknown command {other:?}")),
        }
    }
    Ok(cmds)
}

fn close(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a == b {
        return true;
    }
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1e-12)
}

fn check(expect: &Expect, instant: bool, t0: i64, step: i64, res: Result<QueryResult, logql::EvalError>) -> Result<(), String> {
    let res = match (expect, res) {
        (Expect::Fail(msg, re), Err(e)) => {
            let text = e.to_string();
            if let Some(m) = msg {
                if !text.contains(m.as_str()) {
                    return Err(format!("error {text:?} does not contain {m:?}"));
                }
            }
            if let Some(r) = re {
                let rx = regex::Regex::new(r).map_err(|e| format!("bad expected regex: {e}"))?;
                if !rx.is_match(&text) {
                    return Err(format!("error {text:?} does not match /{r}/"));
                }
            }
            return Ok(());
        }
        (Expect::Fail(..), Ok(r)) => return Err(format!("expected failure, got {r:?}")),
        (_, Err(e)) => return Err(format!("unexpected error: {e}")),
        (_, Ok(r)) => r,
    };
    // Normalize to series of per-step optional values.
    let got: Vec<(Labels, Vec<Option<f64>>)> = match &res {
        QueryResult::Vector(v) => v.iter().map(|s| (s.labels.clone(), vec![Some(s.value)])).collect(),
        QueryResult::Matrix(m) => m
            .iter()
            .map(|s| {
                let n = s.points.last().map_or(0, |p| ((p.0 - t0) / step.max(1)) as usize + 1);
                let mut vals = vec![None; n];
                for (t, v) in &s.points {
                    vals[((t - t0) / step.max(1)) as usize] = Some(*v);
                }
                (s.labels.clone(), vals)
            })
            .collect(),
        QueryResult::Scalar(_, v) => {
            return match expect {
                Expect::Scalar(x) if close(*x, *v) => Ok(()),
                _ => Err(format!("got scalar {v}, expected {expect:?}")),
            }
        }
        QueryResult::Streams(_) => return Err("got streams from a metric query".into()),
    };
    match expect {
        Expect::Empty => {
            if got.is_empty() {
                Ok(())
            } else {
                Err(format!("expected empty, got {}", fmt_series(&got)))
            }
        }
        Expect::Scalar(x) => Err(format!("expected scalar {x}, got {}", fmt_series(&got))),
        Expect::Series { ordered, series } => {
            if got.len() != series.len() {
                return Err(format!("expected {} series, got {}: {}", series.len(), got.len(), fmt_series(&got)));
            }
            for (i, (labels, vals)) in series.iter().enumerate() {
                let found = if *ordered && instant { got.get(i).filter(|g| &g.0 == labels) } else { got.iter().find(|g| &g.0 == labels) };
                let Some((_, gv)) = found else {
                    return Err(format!("missing series {labels:?} (ordered={ordered}); got {}", fmt_series(&got)));
                };
                let n = vals.len().max(gv.len());
                for k in 0..n {
                    let e = vals.get(k).copied().flatten();
                    let g = gv.get(k).copied().flatten();
                    let ok = match (e, g) {
                        (None, None) => true,
                        (Some(a), Some(b)) => close(a, b),
                        _ => false,
                    };
                    if !ok {
                        return Err(format!("series {labels:?} step {k}: expected {e:?}, got {g:?} (all: {gv:?})"));
                    }
                }
            }
            Ok(())
        }
        Expect::Fail(..) => Ok(()),
    }
}

fn fmt_series(s: &[(Labels, Vec<Option<f64>>)]) -> String {
    s.iter().map(|(l, v)| format!("{l:?} {v:?}")).collect::<Vec<_>>().join("; ")
}

/// Runs one script; `Err` when the script itself is malformed.
pub fn run_file(path: &Path) -> Result<FileReport, String> {
    let src = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let cmds = parse_script(&src).map_err(|e| format!("{}: {e}", path.display()))?;
    let store = MemLogStore::new();
    let mut rep = FileReport::default();
    for c in cmds {
        match c {
            Cmd::Clear => store.clear(),
            Cmd::Load(entries) => {
                for (l, e) in entries {
                    store.push(&l, e);
                }
            }
            Cmd::Eval { line, query, instant, t0, t1, step, expect } => {
                let engine = Engine::new(&store);
                let params = if instant { QueryParams::instant(t0) } else { QueryParams::range(t0, t1, step) };
                let res = engine.query(&query, params);
                match check(&expect, instant, t0, step, res) {
                    Ok(()) => rep.passed += 1,
                    Err(e) => {
                        rep.failed += 1;
                        rep.failures.push(format!("{}:{line}: {query}\n    {e}", path.file_name().map_or_else(String::new, |f| f.to_string_lossy().into_owned())));
                    }
                }
            }
        }
    }
    Ok(rep)
}

/// The scripts folder: `LOGQL_TEST_DIR` or `../shared/conformance/logql`.
pub fn test_dir() -> PathBuf {
    std::env::var_os("LOGQL_TEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/logql"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_expansions() {
        assert_eq!(parse_value("2+3x2").unwrap(), vec![Some(2.0), Some(5.0), Some(8.0)]);
        assert_eq!(parse_value("1x2").unwrap(), vec![Some(1.0); 3]);
        assert_eq!(parse_value("10-2x1").unwrap(), vec![Some(10.0), Some(8.0)]);
        assert_eq!(parse_value("-Inf").unwrap(), vec![Some(f64::NEG_INFINITY)]);
        assert_eq!(parse_value("_").unwrap(), vec![None]);
        assert_eq!(strip_comment(r##"{a="#"} "x#y" # c"##), r##"{a="#"} "x#y" "##);
    }

    #[test]
    fn script_parsing() {
        let cmds = parse_script("clear\nload\n  {a=\"b\"} \"l {{.i}}\" @ 10s [repeat every 5s for 3] [metadata m=\"x\" n=\"y\"]\n\neval instant at 20s count_over_time({a=\"b\"}[1m])\n  {a=\"b\"} 3\n").unwrap();
        assert_eq!(cmds.len(), 3);
        let Cmd::Load(e) = &cmds[1] else { panic!() };
        assert_eq!(e.len(), 3);
        assert_eq!(e[2].1.line, "l 2");
        assert_eq!(e[2].1.ts, 20_000_000_000);
        assert_eq!(e[0].1.metadata.get("n"), Some("y"));
        assert!(parse_script("eval instant at 1s 1\n").is_err());
    }
}
