//! `/loki/api/v1/tail` over a real websocket client (tungstenite).

use super::common::{now_ns, start_log_server};
use serde_json::Value;
use std::time::Duration;
use tungstenite::Message;

fn push(addr: &str, stream: &str, entries: &[(i64, &str)]) {
    let values: Vec<Value> = entries.iter().map(|(t, l)| serde_json::json!([t.to_string(), l])).collect();
    let body = format!(r#"{{"streams":[{{"stream":{stream},"values":{}}}]}}"#, Value::Array(values));
    let r = ureq::post(&format!("http://{addr}/loki/api/v1/push")).set("Content-Type", "application/json").send_string(&body).unwrap();
    assert_eq!(r.status(), 204);
}

fn next_frame(ws: &mut tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>) -> Value {
    loop {
        match ws.read().expect("read frame") {
            Message::Text(t) => return serde_json::from_str(t.as_str()).expect("json frame"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected message {other:?}"),
        }
    }
}

#[test]
fn tail_sends_history_then_live_filtered_entries() {
    let dir = tempfile::tempdir().unwrap();
    let (_srv, addr) = start_log_server(dir.path());
    let t0 = now_ns();
    push(&addr, r#"{"app":"web"}"#, &[(t0, "old keep 1"), (t0 + 1, "old drop")]);
    push(&addr, r#"{"app":"other"}"#, &[(t0, "other keep")]);
    let q = "%7Bapp%3D%22web%22%7D%20%7C%3D%20%22keep%22"; // {app="web"} |= "keep"
    let (mut ws, resp) = tungstenite::connect(format!("ws://{addr}/loki/api/v1/tail?query={q}&start={}", t0 - 1_000_000_000)).expect("websocket");
    assert_eq!(resp.status(), 101);
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    }
    let f = next_frame(&mut ws);
    assert_eq!(f["dropped_entries"], Value::Null);
    assert_eq!(f["streams"], serde_json::json!([{"stream": {"app": "web"}, "values": [[t0.to_string(), "old keep 1"]]}]), "{f}");
    // The subscription exists once history was sent; push live entries.
    let t1 = now_ns();
    push(&addr, r#"{"app":"web"}"#, &[(t1, "new drop"), (t1 + 1, "new keep 2"), (t1 + 2, "new keep 3")]);
    push(&addr, r#"{"app":"other"}"#, &[(t1, "other keep live")]);
    let f = next_frame(&mut ws);
    assert_eq!(
        f["streams"],
        serde_json::json!([{"stream": {"app": "web"}, "values": [[(t1 + 1).to_string(), "new keep 2"], [(t1 + 2).to_string(), "new keep 3"]]}]),
        "{f}"
    );
    let _ = ws.close(None);

    // Bad requests get Loki's 400 before any upgrade.
    match tungstenite::connect(format!("ws://{addr}/loki/api/v1/tail?query=sum(")) {
        Err(tungstenite::Error::Http(r)) => assert_eq!(r.status(), 400),
        other => panic!("expected HTTP 400, got {:?}", other.map(|(_, r)| r.status())),
    }
    // Without an upgrade: 400 as Loki's websocket library answers.
    match ureq::get(&format!("http://{addr}/loki/api/v1/tail?query={q}")).call() {
        Err(ureq::Error::Status(400, _)) => {}
        other => panic!("expected 400, got {other:?}"),
    }
}
