//! Rule files and promtool rule unit tests: our runner against the
//! testdata, and, when `promtool` is installed, promtool on the same files
//! with the same verdict.

use promql::rules::{load_file, parse_groups, run_test_file, RuleError};
use std::path::{Path, PathBuf};
use std::process::Command;

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rules/testdata").join(name)
}

fn have_promtool() -> bool {
    Command::new("promtool").arg("--version").output().is_ok_and(|o| o.status.success())
}

/// Runs promtool; returns (success, combined output).
fn promtool(args: &[&str]) -> (bool, String) {
    let out = Command::new("promtool").args(args).current_dir(testdata("")).output().expect("promtool runs");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn rule_files_load() {
    let node = load_file(&testdata("node.rules.yml")).unwrap();
    assert_eq!(node.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(), ["node.recording", "node.alerts"]);
    assert_eq!(node[0].interval, Some(30_000));
    assert_eq!(node[1].rules.len(), 3);
    let disk = load_file(&testdata("disk.rules.yml")).unwrap();
    assert_eq!(disk[0].limit, 100);
    let err = load_file(&testdata("bad.rules.yml")).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, RuleError::Invalid { ref group, .. } if group == "broken"), "{msg}");
    assert!(msg.contains("bad.rules.yml") && msg.contains("rule 1 (alert \"BadExpr\")") && msg.contains("could not parse expression"), "{msg}");
    assert!(matches!(load_file(&testdata("nope.yml")), Err(RuleError::Io { .. })));
}

#[test]
fn validation_errors_name_group_and_rule() {
    for (yaml, want) in [
        ("groups: [{name: a, rules: []}, {name: a, rules: []}]", "\"a\" is repeated"),
        ("groups: [{name: g, rules: [{record: 'bad name', expr: up}]}]", "invalid recording rule name"),
        ("groups: [{name: g, rules: [{alert: A, expr: up, labels: {'1x': y}}]}]", "invalid label name: 1x"),
        ("groups: [{name: g, rules: [{alert: A, expr: up, annotations: {s: '{{ $labels.x '}}]}]", "unclosed action"),
        ("groups: [{name: g, rules: [{alert: A, expr: up, annotations: {s: '{{ nosuch }}'}}]}]", "not defined"),
        ("groups: [{name: g, rules: [{alert: A, record: b, expr: up}]}]", "only one of"),
        ("groups: [{name: g, rules: [{alert: A}]}]", "'expr' must be set"),
        ("groups: [{name: g, rules: [{alert: A, expr: up, for: 5x}]}]", "not a valid duration"),
        ("groups: [{name: g, rules: [{record: r, expr: up, for: 5m}]}]", "recording rule"),
        ("groups: [{name: g, interval: 0s, rules: []}]", "interval must be positive"),
        ("groups: [{name: g, rules: [{alert: A, expr: 'sum(up'}]}]", "could not parse expression"),
        ("groups: [{name: g, rules: [{alert: A, expr: up, unknown_field: 1}]}]", "unknown field"),
        ("groups: [{name: g, rules: [{alert: A, expr: up}]}]\nextra: 1", "unknown field"),
    ] {
        let err = parse_groups(yaml, "f.yml").unwrap_err().to_string();
        assert!(err.contains(want) && err.starts_with("f.yml"), "{yaml}: {err}");
    }
    let err = parse_groups("groups: [{name: g, rules: [{alert: A, expr: up}, {alert: B, expr: 'rate(x)'}]}]", "f.yml").unwrap_err().to_string();
    assert!(err.contains("group \"g\", rule 2 (alert \"B\")"), "{err}");
}

#[test]
fn our_runner_passes_the_node_tests() {
    let report = run_test_file(&testdata("node_test.yml")).unwrap();
    for c in &report.cases {
        assert!(c.failures.is_empty(), "{}:\n{}", c.name, c.failures.join("\n"));
        assert!(c.rule_errors.is_empty(), "{}: {:?}", c.name, c.rule_errors);
    }
    assert_eq!(report.cases.len(), 4);
    assert!(report.passed());
}

#[test]
fn our_runner_reports_the_deliberate_failures() {
    let report = run_test_file(&testdata("failing_test.yml")).unwrap();
    assert!(!report.passed());
    let failures = &report.cases[0].failures;
    assert_eq!(failures.len(), 2, "{failures:#?}");
    assert!(failures[0].contains("alertname: InstanceDown, time: 3m") && failures[0].contains("got:[]"), "{}", failures[0]);
    assert!(failures[1].contains("expr: \"up\", time: 1m"), "{}", failures[1]);
}

#[test]
fn promtool_agrees_on_the_same_files() {
    if !have_promtool() {
        println!("skipped: promtool not installed (Debian package `prometheus`)");
        return;
    }
    let (ok, out) = promtool(&["check", "rules", "node.rules.yml", "disk.rules.yml"]);
    assert!(ok, "promtool check rules failed:\n{out}");
    assert!(load_file(&testdata("node.rules.yml")).is_ok() && load_file(&testdata("disk.rules.yml")).is_ok());
    let (ok, out) = promtool(&["check", "rules", "bad.rules.yml"]);
    assert!(!ok && out.contains("unclosed left parenthesis"), "{out}");
    assert!(load_file(&testdata("bad.rules.yml")).is_err());

    for (file, want_pass) in [("node_test.yml", true), ("failing_test.yml", false)] {
        let (ok, out) = promtool(&["test", "rules", file]);
        let ours = run_test_file(&testdata(file)).unwrap().passed();
        println!("promtool test rules {file}: {}\n{out}", if ok { "SUCCESS" } else { "FAILED" });
        assert_eq!(ok, want_pass, "promtool on {file}:\n{out}");
        assert_eq!(ours, ok, "our runner and promtool disagree on {file}");
    }
}
