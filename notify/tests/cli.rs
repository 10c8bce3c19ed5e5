//! The `notify` binary: runs it and checks exit codes and whole outputs.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::receiver::{Receiver, Reply, KEY};

fn notify(args: &[&str], env_url: Option<&str>, stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_notify"));
    cmd.args(args).env_remove("NOTIFY_WEBHOOK_URL");
    if let Some(u) = env_url {
        cmd.env("NOTIFY_WEBHOOK_URL", u);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run notify");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("wait for notify")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn dry_run_prints_the_payload() {
    let out = notify(
        &[
            "send",
            "--dry-run",
            "--text",
            "Backup finished in 4m",
            "--title",
            "Nightly backup",
            "--color",
            "good",
            "--username",
            "backup-bot",
            "--channel",
            "ops",
            "--icon-url",
            "https://example.com/b.png",
            "--priority",
            "important",
            "--requested-ack",
        ],
        None,
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    crate::golden::check_golden("cli_dry_run.json", &String::from_utf8(out.stdout).unwrap());
}

#[test]
fn sends_text_from_stdin_with_the_url_from_the_environment() {
    let rx = Receiver::start();
    let url = rx.url().expose_secret().to_string();
    let out = notify(
        &["send", "--text", "-", "--username", "cron"],
        Some(&url),
        Some("line 1\nline 2\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let hits = rx.hits();
    assert_eq!(hits.len(), 1);
    assert_eq!(
        hits[0].json(),
        serde_json::json!({"text": "line 1\nline 2", "username": "cron"})
    );
}

#[test]
fn rejection_exits_non_zero_with_status_and_reason_but_no_key() {
    let rx = Receiver::start();
    rx.script([Reply::Status(
        403,
        "Incoming webhooks have been disabled by the system admin.",
    )]);
    let url = rx.url().expose_secret().to_string();
    let out = notify(&["send", "--webhook", &url, "--text", "hi"], None, None);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(
        err,
        format!(
            "notify: error: Mattermost rejected the notification to http://127.0.0.1:{}/hooks/***: HTTP 403 Forbidden: \
             Incoming webhooks have been disabled by the system admin. (test.injected.app_error)\n",
            rx.port()
        )
    );
    assert!(!err.contains(KEY));
    assert_eq!(rx.hits().len(), 1);
}

#[test]
fn retries_a_500_then_succeeds() {
    let rx = Receiver::start();
    rx.script([Reply::Status(500, "oops")]);
    let url = rx.url().expose_secret().to_string();
    let out = notify(
        &["send", "--webhook", &url, "--text", "hi", "--attempts", "2"],
        None,
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(rx.accepted_texts(), vec!["hi"]);
}

#[test]
fn usage_errors_are_clear() {
    let out = notify(&["send", "--text", "hi"], None, None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "notify: error: no webhook URL: pass --webhook or set NOTIFY_WEBHOOK_URL\n"
    );

    let out = notify(
        &["send", "--text", "", "--webhook", "https://h/hooks/k"],
        None,
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "notify: error: nothing to send: payload has neither text nor attachments: Mattermost requires one of them\n"
    );

    let out = notify(
        &[
            "send",
            "--text",
            "x",
            "--webhook",
            "chat.example.com/hooks/abcdefghijklmnop",
        ],
        None,
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("has no scheme"), "{err}");
    assert!(!err.contains("abcdefghijklmnop"), "{err}");

    let out = notify(
        &[
            "send",
            "--text",
            "x",
            "--webhook",
            "https://h/hooks/k",
            "--timeout",
            "0",
        ],
        None,
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "notify: error: --timeout must be a positive number of seconds, got 0\n"
    );

    let out = notify(
        &["send", "--text", "x", "--priority", "critical", "--dry-run"],
        None,
        None,
    );
    assert_eq!(out.status.code(), Some(2), "clap usage error");
    assert!(
        stderr(&out).contains("unknown priority \"critical\""),
        "{}",
        stderr(&out)
    );
}
