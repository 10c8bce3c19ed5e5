//! Loki push request bodies: decoding (JSON and snappy-compressed protobuf,
//! as Loki's `/loki/api/v1/push` accepts them) and encoding (what a client
//! such as the `examples` agent sends). Pure: bytes in, streams out; the
//! log server and the ingest benchmark both call [`decode_push`].
//!
//! - Protobuf follows Loki's `push.proto`: `PushRequest{repeated
//!   StreamAdapter streams = 1}`, `StreamAdapter{string labels = 1;
//!   repeated EntryAdapter entries = 2; uint64 hash = 3}`,
//!   `EntryAdapter{Timestamp timestamp = 1; string line = 2; repeated
//!   LabelPairAdapter structuredMetadata = 3}`. The body is snappy
//!   block-compressed (not framed).
//! - JSON: `{"streams":[{"stream":{"a":"b"},"values":[["<ns>","line"],
//!   ["<ns>","line",{"meta":"v"}]]}]}`, and the legacy (`/api/prom/push`)
//!   shape `{"streams":[{"labels":"{a=\"b\"}","entries":[{"ts":"<RFC
//!   3339>","line":"..."}]}]}`.
//!
//! Every decoder returns an error for malformed input; none panics.
//!
//! ```
//! use logql::push::{decode_push, encode_protobuf, PushStream};
//! use model::{Labels, LogEntry};
//! let streams = vec![PushStream {
//!     labels: Labels::from_pairs([("job", "app")]),
//!     entries: vec![LogEntry::new(1_700_000_000_000_000_000, "hello")],
//! }];
//! let body = encode_protobuf(&streams);
//! let back = decode_push(Some("application/x-protobuf"), &body, 1 << 20).unwrap();
//! assert_eq!(back, streams);
//! ```

use model::{Labels, LogEntry};
use serde_json::Value;

/// One stream of a push request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushStream {
    /// The stream's labels.
    pub labels: Labels,
    /// Its entries, in request order.
    pub entries: Vec<LogEntry>,
}

/// Why a push body could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushDecodeError {
    /// The snappy block is malformed.
    #[error("decompressing snappy body: {0}")]
    Snappy(String),
    /// The decoded body would exceed the limit.
    #[error("decompressed body is {size} bytes, larger than the limit of {limit} bytes")]
    TooLarge {
        /// Declared or actual size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The protobuf message is malformed.
    #[error("decoding protobuf push request: {0}")]
    Protobuf(String),
    /// The JSON body is malformed (with the JSON error's line and column).
    #[error("decoding JSON push request: {0}")]
    Json(String),
    /// A stream's label text is not a label set (`{a="b"}`).
    #[error("error parsing labels {labels:?} (stream {stream}): {msg}")]
    Labels {
        /// Index of the stream in the request.
        stream: usize,
        /// The text.
        labels: String,
        /// What is wrong.
        msg: String,
    },
    /// An entry is malformed (timestamp, line or metadata).
    #[error("stream {stream}, entry {entry}: {msg}")]
    Entry {
        /// Index of the stream in the request.
        stream: usize,
        /// Index of the entry in the stream.
        entry: usize,
        /// What is wrong.
        msg: String,
    },
}

/// Protobuf messages of Loki's `push.proto`, declared with prost derives.
pub mod proto {
    /// `logproto.PushRequest`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PushRequest {
        /// The streams.
        #[prost(message, repeated, tag = "1")]
        pub streams: Vec<StreamAdapter>,
    }

    /// `logproto.StreamAdapter`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StreamAdapter {
        /// Label set as selector text: `{a="b", c="d"}`.
        #[prost(string, tag = "1")]
        pub labels: String,
        /// The entries.
        #[prost(message, repeated, tag = "2")]
        pub entries: Vec<EntryAdapter>,
        /// Hash of the labels (ignored on receipt).
        #[prost(uint64, tag = "3")]
        pub hash: u64,
    }

    /// `logproto.EntryAdapter`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct EntryAdapter {
        /// When.
        #[prost(message, optional, tag = "1")]
        pub timestamp: Option<Timestamp>,
        /// The line. Declared `bytes` (wire-identical to `string`) so a
        /// line that is not valid UTF-8 is kept, lossily, as Loki keeps it.
        #[prost(bytes = "vec", tag = "2")]
        pub line: Vec<u8>,
        /// Structured metadata.
        #[prost(message, repeated, tag = "3")]
        pub structured_metadata: Vec<LabelPairAdapter>,
    }

    /// `logproto.LabelPairAdapter`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LabelPairAdapter {
        /// Name.
        #[prost(string, tag = "1")]
        pub name: String,
        /// Value.
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// `google.protobuf.Timestamp`.
    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct Timestamp {
        /// Seconds since the epoch.
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        /// Nanoseconds within the second.
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }
}

/// Whether a `Content-Type` names JSON (otherwise the body is protobuf, as
/// in Loki, where a missing content type also means protobuf).
pub fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|c| c.split(';').next())
        .is_some_and(|c| c.trim().eq_ignore_ascii_case("application/json"))
}

/// Decodes a push body (already stripped of `Content-Encoding`) by content
/// type. `max` bounds the snappy-decompressed size.
pub fn decode_push(content_type: Option<&str>, body: &[u8], max: usize) -> Result<Vec<PushStream>, PushDecodeError> {
    if is_json(content_type) {
        decode_json(body)
    } else {
        decode_protobuf(body, max)
    }
}

/// Decodes a snappy-compressed protobuf `PushRequest`.
pub fn decode_protobuf(body: &[u8], max: usize) -> Result<Vec<PushStream>, PushDecodeError> {
    let size = snap::raw::decompress_len(body).map_err(|e| PushDecodeError::Snappy(e.to_string()))?;
    if size > max {
        return Err(PushDecodeError::TooLarge { size, limit: max });
    }
    let raw = snap::raw::Decoder::new().decompress_vec(body).map_err(|e| PushDecodeError::Snappy(e.to_string()))?;
    decode_protobuf_raw(&raw)
}

/// Decodes an uncompressed protobuf `PushRequest`.
pub fn decode_protobuf_raw(raw: &[u8]) -> Result<Vec<PushStream>, PushDecodeError> {
    use prost::Message;
    let req = proto::PushRequest::decode(raw).map_err(|e| PushDecodeError::Protobuf(e.to_string()))?;
    let mut out = Vec::with_capacity(req.streams.len());
    for (si, s) in req.streams.into_iter().enumerate() {
        let labels = parse_labels(&s.labels)
            .map_err(|msg| PushDecodeError::Labels { stream: si, labels: s.labels.clone(), msg })?;
        let mut entries = Vec::with_capacity(s.entries.len());
        for (ei, e) in s.entries.into_iter().enumerate() {
            let ts = match e.timestamp {
                None => 0,
                Some(t) => {
                    if !(0..1_000_000_000).contains(&t.nanos) {
                        return Err(PushDecodeError::Entry { stream: si, entry: ei, msg: format!("timestamp nanos {} out of range", t.nanos) });
                    }
                    t.seconds.checked_mul(1_000_000_000).and_then(|s| s.checked_add(i64::from(t.nanos))).ok_or_else(|| {
                        PushDecodeError::Entry { stream: si, entry: ei, msg: format!("timestamp {}s out of range", t.seconds) }
                    })?
                }
            };
            let line = match String::from_utf8(e.line) {
                Ok(s) => s,
                Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
            };
            let metadata = Labels::from_pairs(e.structured_metadata.into_iter().map(|p| (p.name, p.value)));
            entries.push(LogEntry { ts, line, metadata });
        }
        out.push(PushStream { labels, entries });
    }
    Ok(out)
}

/// Decodes a JSON push body (current and legacy shapes).
///
/// The body is read in one pass with typed visitors: strings without
/// escapes are borrowed from the body, timestamps are parsed in place, and
/// each line is copied once, into its [`LogEntry`]. No `serde_json::Value`
/// tree is built except for values that are wrong anyway (to print them in
/// the error) or unusual (numbers).
pub fn decode_json(body: &[u8]) -> Result<Vec<PushStream>, PushDecodeError> {
    let req: json::Req<'_> = serde_json::from_slice(body).map_err(|e| PushDecodeError::Json(e.to_string()))?;
    let mut out = Vec::with_capacity(req.streams.len());
    for (si, s) in req.streams.into_iter().enumerate() {
        let labels = match (&s.stream, &s.labels) {
            (Some(m), _) => {
                let mut pairs = Vec::with_capacity(m.0.len());
                for (k, v) in &m.0 {
                    let v = match v {
                        json::Json::Str(s) => s.to_string(),
                        json::Json::Other(Value::Number(n)) => n.to_string(),
                        json::Json::Other(Value::Bool(b)) => b.to_string(),
                        other => {
                            return Err(PushDecodeError::Labels {
                                stream: si,
                                labels: json::object_text(&m.0),
                                msg: format!("label {k:?} has a non-string value {}", other.text()),
                            })
                        }
                    };
                    pairs.push((k.to_string(), v));
                }
                // `Labels` keeps the last of duplicate names, as a JSON
                // object read into a map does.
                Labels::from_pairs(pairs)
            }
            (None, Some(text)) => {
                parse_labels(&text.0).map_err(|msg| PushDecodeError::Labels { stream: si, labels: text.0.to_string(), msg })?
            }
            (None, None) => Labels::empty(),
        };
        let mut entries = Vec::new();
        if let Some(values) = s.values {
            entries = values.0.map_err(|(entry, msg)| PushDecodeError::Entry { stream: si, entry, msg })?;
        }
        if let Some(legacy) = s.entries {
            entries.reserve(legacy.len());
            for (ei, e) in legacy.into_iter().enumerate() {
                let entry_err = |msg: String| PushDecodeError::Entry { stream: si, entry: ei, msg };
                let ts = match &e.ts {
                    json::Json::Str(s) => chrono::DateTime::parse_from_rfc3339(s)
                        .ok()
                        .and_then(|t| t.timestamp_nanos_opt())
                        .or_else(|| s.parse::<i64>().ok())
                        .ok_or_else(|| entry_err(format!("cannot parse timestamp {s:?} (RFC 3339 expected)")))?,
                    json::Json::Other(Value::Number(n)) => {
                        n.as_i64().ok_or_else(|| entry_err(format!("timestamp {n} is not an integer")))?
                    }
                    other => return Err(entry_err(format!("timestamp must be a string, got {}", other.text()))),
                };
                entries.push(LogEntry::new(ts, e.line.0.into_owned()));
            }
        }
        out.push(PushStream { labels, entries });
    }
    Ok(out)
}

/// The typed shapes of JSON push bodies and their visitors.
mod json {
    use super::{Labels, LogEntry, Value};
    use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use serde::Deserialize;
    use std::borrow::Cow;
    use std::fmt;

    /// `{"streams": [...]}`.
    #[derive(Deserialize)]
    pub(super) struct Req<'a> {
        #[serde(default, borrow)]
        pub streams: Vec<JStream<'a>>,
    }

    /// One stream, current (`stream` + `values`) or legacy (`labels` +
    /// `entries`) shape.
    #[derive(Deserialize)]
    pub(super) struct JStream<'a> {
        #[serde(borrow)]
        pub stream: Option<Object<'a>>,
        pub values: Option<Values>,
        #[serde(borrow)]
        pub labels: Option<Str<'a>>,
        #[serde(borrow)]
        pub entries: Option<Vec<LegacyEntry<'a>>>,
    }

    /// A legacy entry: `{"ts": "<RFC 3339>", "line": "..."}`.
    #[derive(Deserialize)]
    pub(super) struct LegacyEntry<'a> {
        #[serde(alias = "timestamp", borrow)]
        pub ts: Json<'a>,
        #[serde(borrow)]
        pub line: Str<'a>,
    }

    /// A string, borrowed from the body when it has no escapes.
    pub(super) struct Str<'a>(pub Cow<'a, str>);

    impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Str<'de>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a string")
                }
                fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                    Ok(Str(Cow::Borrowed(v)))
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                    Ok(Str(Cow::Owned(v.to_string())))
                }
                fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                    Ok(Str(Cow::Owned(v)))
                }
            }
            d.deserialize_str(V)
        }
    }

    /// Any JSON value, as far as the decoder needs to look into it.
    #[derive(Debug)]
    pub(super) enum Json<'a> {
        /// A string (borrowed when escape-free).
        Str(Cow<'a, str>),
        /// An object, its members in body order.
        Obj(Vec<(Cow<'a, str>, Json<'a>)>),
        /// Anything else (numbers, booleans, null, arrays).
        Other(Value),
    }

    impl Json<'_> {
        /// The value as JSON text, for error messages.
        pub fn text(&self) -> String {
            match self {
                Json::Str(s) => Value::String(s.to_string()).to_string(),
                Json::Obj(m) => object_text(m),
                Json::Other(v) => v.to_string(),
            }
        }
    }

    /// An object's members as JSON text.
    pub(super) fn object_text(m: &[(Cow<'_, str>, Json<'_>)]) -> String {
        let mut s = String::from("{");
        for (i, (k, v)) in m.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&Value::String(k.to_string()).to_string());
            s.push(':');
            s.push_str(&v.text());
        }
        s.push('}');
        s
    }

    struct JsonVisitor;

    impl<'de> Visitor<'de> for JsonVisitor {
        type Value = Json<'de>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Json::Str(Cow::Borrowed(v)))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Json::Str(Cow::Owned(v.to_string())))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Json::Str(Cow::Owned(v)))
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Json::Other(Value::Bool(v)))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Json::Other(Value::from(v)))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Json::Other(Value::from(v)))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Json::Other(Value::from(v)))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Json::Other(Value::Null))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Json::Other(Value::Null))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Value::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Json::Other)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            members(map).map(Json::Obj)
        }
    }

    fn members<'de, A: MapAccess<'de>>(mut map: A) -> Result<Vec<(Cow<'de, str>, Json<'de>)>, A::Error> {
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(4).min(64));
        while let Some(k) = map.next_key::<Str<'de>>()? {
            let v = map.next_value::<Json<'de>>()?;
            out.push((k.0, v));
        }
        Ok(out)
    }

    impl<'de: 'a, 'a> Deserialize<'de> for Json<'a> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(JsonVisitor)
        }
    }

    /// A JSON object (an error for anything else).
    pub(super) struct Object<'a>(pub Vec<(Cow<'a, str>, Json<'a>)>);

    impl<'de: 'a, 'a> Deserialize<'de> for Object<'a> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Object<'de>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a map")
                }
                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                    members(map).map(Object)
                }
            }
            d.deserialize_map(V)
        }
    }

    /// A stream's `values`: its entries, or the first malformed entry's
    /// index and what is wrong with it. Entries are converted while the
    /// array is read, so no intermediate copy of the values is kept; after
    /// an entry is found wrong, the rest are still read (a syntax error
    /// anywhere in the body is reported first, as with any JSON error).
    pub(super) struct Values(pub Result<Vec<LogEntry>, (usize, String)>);

    impl<'de> Deserialize<'de> for Values {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Values;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a sequence")
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                    let mut entries = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
                    let mut first_err = None;
                    let mut i = 0usize;
                    while let Some(e) = seq.next_element_seed(EntrySeed)? {
                        match e {
                            Ok(e) if first_err.is_none() => entries.push(e),
                            Ok(_) => {}
                            Err(msg) => {
                                if first_err.is_none() {
                                    first_err = Some((i, msg));
                                }
                            }
                        }
                        i += 1;
                    }
                    Ok(Values(match first_err {
                        None => Ok(entries),
                        Some(e) => Err(e),
                    }))
                }
            }
            d.deserialize_seq(V)
        }
    }

    /// Reads one `[timestamp, line]` or `[timestamp, line, metadata]` array
    /// into an entry, or what is wrong with it.
    struct EntrySeed;

    impl<'de> DeserializeSeed<'de> for EntrySeed {
        type Value = Result<LogEntry, String>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_seq(self)
        }
    }

    impl<'de> Visitor<'de> for EntrySeed {
        type Value = Result<LogEntry, String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a sequence")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let ts = seq.next_element::<Json<'de>>()?;
            let line = match ts {
                Some(_) => seq.next_element::<Json<'de>>()?,
                None => None,
            };
            let meta = match line {
                Some(_) => seq.next_element::<Json<'de>>()?,
                None => None,
            };
            let mut n = usize::from(ts.is_some()) + usize::from(line.is_some()) + usize::from(meta.is_some());
            if meta.is_some() {
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
            }
            Ok(entry(n, ts, line, meta))
        }
    }

    /// Checks and converts the elements of one entry array (`n` of them).
    fn entry(n: usize, ts: Option<Json<'_>>, line: Option<Json<'_>>, meta: Option<Json<'_>>) -> Result<LogEntry, String> {
        if !(2..=3).contains(&n) {
            return Err(format!("expected [timestamp, line] or [timestamp, line, metadata], got {n} elements"));
        }
        let ts = match ts {
            Some(Json::Str(s)) => {
                s.trim().parse::<i64>().map_err(|_| format!("timestamp {s:?} is not an integer of nanoseconds"))?
            }
            Some(Json::Other(Value::Number(n))) => {
                n.as_i64().ok_or_else(|| format!("timestamp {n} is not an integer of nanoseconds"))?
            }
            other => {
                return Err(format!(
                    "timestamp must be a string of nanoseconds, got {}",
                    other.map_or_else(|| "null".to_string(), |v| v.text())
                ))
            }
        };
        let line = match line {
            Some(Json::Str(s)) => s.into_owned(),
            other => {
                return Err(format!("line must be a string, got {}", other.map_or_else(|| "null".to_string(), |v| v.text())))
            }
        };
        let metadata = match meta {
            None | Some(Json::Other(Value::Null)) => Labels::empty(),
            Some(Json::Obj(m)) => {
                let mut pairs = Vec::with_capacity(m.len());
                for (k, v) in m {
                    match v {
                        Json::Str(s) => pairs.push((k.into_owned(), s.into_owned())),
                        other => return Err(format!("structured metadata {k:?} must be a string, got {}", other.text())),
                    }
                }
                Labels::from_pairs(pairs)
            }
            Some(other) => return Err(format!("structured metadata must be an object, got {}", other.text())),
        };
        Ok(LogEntry { ts, line, metadata })
    }
}

/// Parses a label set written as a selector with only `=` matchers:
/// `{a="b", c="d"}` (the `labels` field of protobuf pushes). Values are
/// Go string literals (`"..."` with escapes, or raw `` `...` ``); empty
/// values are allowed (and dropped later, as absent labels).
pub fn parse_labels(text: &str) -> Result<Labels, String> {
    let b = text.as_bytes();
    let mut i = 0;
    let ws = |i: &mut usize| {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    ws(&mut i);
    if b.get(i) != Some(&b'{') {
        return Err(format!("expected '{{' at offset {i}"));
    }
    i += 1;
    let mut pairs: Vec<(String, String)> = Vec::new();
    loop {
        ws(&mut i);
        if b.get(i) == Some(&b'}') {
            i += 1;
            break;
        }
        let start = i;
        while i < b.len() && (b[i] == b'_' || b[i].is_ascii_alphanumeric()) {
            i += 1;
        }
        let name = &text[start..i];
        if name.is_empty() || name.as_bytes()[0].is_ascii_digit() {
            return Err(format!("expected a label name at offset {start}"));
        }
        ws(&mut i);
        match b.get(i) {
            Some(b'=') if b.get(i + 1) != Some(&b'~') => i += 1,
            Some(_) if b[i..].starts_with(b"=~") || b[i..].starts_with(b"!=") || b[i..].starts_with(b"!~") => {
                return Err(format!("label {name:?} uses {}; only = is allowed in a label set", &text[i..i + 2]))
            }
            _ => return Err(format!("expected '=' after label name {name:?} at offset {i}")),
        }
        ws(&mut i);
        let (value, next) = unquote(text, i)?;
        i = next;
        if pairs.iter().any(|(n, _)| n == name) {
            return Err(format!("duplicate label name {name:?}"));
        }
        pairs.push((name.to_string(), value));
        ws(&mut i);
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => {}
            _ => return Err(format!("expected ',' or '}}' at offset {i}")),
        }
    }
    ws(&mut i);
    if i != b.len() {
        return Err(format!("unexpected text after '}}' at offset {i}"));
    }
    Ok(Labels::from_pairs(pairs))
}

/// Reads a Go string literal starting at byte `at`; returns it and the
/// offset after it.
fn unquote(text: &str, at: usize) -> Result<(String, usize), String> {
    let rest = text.get(at..).unwrap_or("");
    let mut chars = rest.char_indices();
    let quote = match chars.next() {
        Some((_, q @ ('"' | '`'))) => q,
        _ => return Err(format!("expected a quoted label value at offset {at}")),
    };
    let mut out = String::new();
    let hex = |chars: &mut std::str::CharIndices<'_>, n: usize| -> Result<u32, String> {
        let mut v = 0u32;
        for _ in 0..n {
            let d = chars.next().and_then(|(_, c)| c.to_digit(16)).ok_or_else(|| format!("invalid escape in label value at offset {at}"))?;
            v = v * 16 + d;
        }
        Ok(v)
    };
    while let Some((j, c)) = chars.next() {
        if c == quote {
            return Ok((out, at + j + 1));
        }
        if quote == '`' || c != '\\' {
            if quote == '"' && c == '\n' {
                break;
            }
            out.push(c);
            continue;
        }
        let Some((_, e)) = chars.next() else { break };
        match e {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            '\\' | '"' | '\'' => out.push(e),
            'x' => out.push(char::from(hex(&mut chars, 2)? as u8)),
            'u' | 'U' => {
                let v = hex(&mut chars, if e == 'u' { 4 } else { 8 })?;
                out.push(char::from_u32(v).ok_or_else(|| format!("invalid code point in label value at offset {at}"))?);
            }
            '0'..='7' => {
                let mut v = e as u32 - '0' as u32;
                for _ in 0..2 {
                    let d = chars.next().and_then(|(_, c)| c.to_digit(8)).ok_or_else(|| format!("invalid octal escape in label value at offset {at}"))?;
                    v = v * 8 + d;
                }
                out.push(char::from_u32(v).filter(|_| v < 256).ok_or_else(|| format!("invalid octal escape in label value at offset {at}"))?);
            }
            other => return Err(format!("unknown escape \\{other} in label value at offset {at}")),
        }
    }
    Err(format!("unterminated label value starting at offset {at}"))
}

/// Writes labels as selector text (`{a="b", c="d"}`), Loki's protobuf form.
pub fn labels_text(l: &Labels) -> String {
    let mut s = String::from("{");
    for (i, lb) in l.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&lb.name);
        s.push('=');
        s.push_str(&serde_json::Value::String(lb.value.clone()).to_string());
    }
    s.push('}');
    s
}

/// Encodes streams as a snappy-compressed protobuf `PushRequest`.
pub fn encode_protobuf(streams: &[PushStream]) -> Vec<u8> {
    use prost::Message;
    let req = proto::PushRequest {
        streams: streams
            .iter()
            .map(|s| proto::StreamAdapter {
                labels: labels_text(&s.labels),
                hash: s.labels.stable_hash(),
                entries: s
                    .entries
                    .iter()
                    .map(|e| proto::EntryAdapter {
                        timestamp: Some(proto::Timestamp {
                            seconds: e.ts.div_euclid(1_000_000_000),
                            nanos: e.ts.rem_euclid(1_000_000_000) as i32,
                        }),
                        line: e.line.as_bytes().to_vec(),
                        structured_metadata: e
                            .metadata
                            .iter()
                            .map(|p| proto::LabelPairAdapter { name: p.name.clone(), value: p.value.clone() })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    };
    // Compressing into a Vec cannot fail for input that fits in memory;
    // snap only errors when the input exceeds its maximum block size.
    snap::raw::Encoder::new().compress_vec(&req.encode_to_vec()).unwrap_or_default()
}

/// Encodes streams as a JSON push body (current shape).
pub fn encode_json(streams: &[PushStream]) -> Vec<u8> {
    let v: Vec<Value> = streams
        .iter()
        .map(|s| {
            let stream: serde_json::Map<String, Value> =
                s.labels.iter().map(|l| (l.name.clone(), Value::String(l.value.clone()))).collect();
            let values: Vec<Value> = s
                .entries
                .iter()
                .map(|e| {
                    if e.metadata.is_empty() {
                        serde_json::json!([e.ts.to_string(), e.line])
                    } else {
                        let md: serde_json::Map<String, Value> =
                            e.metadata.iter().map(|l| (l.name.clone(), Value::String(l.value.clone()))).collect();
                        serde_json::json!([e.ts.to_string(), e.line, md])
                    }
                })
                .collect();
            serde_json::json!({"stream": stream, "values": values})
        })
        .collect();
    serde_json::json!({ "streams": v }).to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Vec<PushStream> {
        vec![
            PushStream {
                labels: Labels::from_pairs([("job", "a"), ("q", "say \"hi\"\n")]),
                entries: vec![LogEntry::new(1, "one"), {
                    let mut e = LogEntry::new(1_700_000_000_123_456_789, "two");
                    e.metadata = Labels::from_pairs([("trace_id", "abc")]);
                    e
                }],
            },
            PushStream { labels: Labels::from_pairs([("job", "b")]), entries: vec![] },
        ]
    }

    #[test]
    fn protobuf_and_json_round_trip() {
        let s = sample();
        assert_eq!(decode_push(Some("application/x-protobuf"), &encode_protobuf(&s), 1 << 20).unwrap(), s);
        assert_eq!(decode_push(None, &encode_protobuf(&s), 1 << 20).unwrap(), s);
        assert_eq!(decode_push(Some("application/json; charset=utf-8"), &encode_json(&s), 1 << 20).unwrap(), s);
    }

    #[test]
    fn json_shapes() {
        let body = br#"{"streams":[{"stream":{"a":"b"},"values":[["5","x"],[6,"y",{"m":"v"}]]}]}"#;
        let s = decode_json(body).unwrap();
        assert_eq!(s[0].entries[0], LogEntry::new(5, "x"));
        assert_eq!(s[0].entries[1].metadata, Labels::from_pairs([("m", "v")]));
        let legacy = br#"{"streams":[{"labels":"{a=\"b\",c=\"d\"}","entries":[{"ts":"2024-01-01T00:00:00.5+00:00","line":"l"}]}]}"#;
        let s = decode_json(legacy).unwrap();
        assert_eq!(s[0].labels, Labels::from_pairs([("a", "b"), ("c", "d")]));
        assert_eq!(s[0].entries[0].ts, 1_704_067_200_500_000_000);
    }

    #[test]
    fn errors_say_where() {
        let e = decode_json(br#"{"streams":[{"stream":{"a":"b"},"values":[["5","x"],["zz","y"]]}]}"#).unwrap_err();
        assert_eq!(e.to_string(), "stream 0, entry 1: timestamp \"zz\" is not an integer of nanoseconds");
        let e = decode_json(br#"{"streams":[{"stream":{"a":"b"},"values":[["5"]]}]}"#).unwrap_err();
        assert!(e.to_string().contains("got 1 elements"), "{e}");
        assert!(matches!(decode_json(b"{"), Err(PushDecodeError::Json(_))));
        assert!(matches!(decode_protobuf(b"\xff\xff\xff\xff\x0f", 100), Err(PushDecodeError::Snappy(_) | PushDecodeError::TooLarge { .. })));
        let big = snap::raw::Encoder::new().compress_vec(&[0u8; 1000]).unwrap();
        assert!(matches!(decode_protobuf(&big, 10), Err(PushDecodeError::TooLarge { size: 1000, limit: 10 })));
        assert!(parse_labels("{a=~\"b\"}").unwrap_err().contains("only = is allowed"));
        assert!(parse_labels("{a=\"b\", a=\"c\"}").unwrap_err().contains("duplicate"));
        assert!(parse_labels("{a=}").is_err());
        assert!(parse_labels("{a=\"b\"").is_err());
        assert!(parse_labels("{a=\"b\"} x").is_err());
        assert_eq!(parse_labels("{}").unwrap(), Labels::empty());
        assert_eq!(
            parse_labels(r#" { a = "x\"y\\z\n\u00e9" , b=`r\aw`,} "#).unwrap(),
            Labels::from_pairs([("a", "x\"y\\z\né"), ("b", "r\\aw")])
        );
    }

    /// The decoder this module had before the typed one: a
    /// `serde_json::Value` tree, then checks. Kept as the oracle of the
    /// differential tests below.
    fn reference_decode_json(body: &[u8]) -> Result<Vec<PushStream>, PushDecodeError> {
        use std::collections::BTreeMap;
        #[derive(serde::Deserialize)]
        struct Req {
            #[serde(default)]
            streams: Vec<JStream>,
        }
        #[derive(serde::Deserialize)]
        struct JStream {
            stream: Option<BTreeMap<String, Value>>,
            values: Option<Vec<Vec<Value>>>,
            labels: Option<String>,
            entries: Option<Vec<LegacyEntry>>,
        }
        #[derive(serde::Deserialize)]
        struct LegacyEntry {
            #[serde(alias = "timestamp")]
            ts: Value,
            line: String,
        }
        let req: Req = serde_json::from_slice(body).map_err(|e| PushDecodeError::Json(e.to_string()))?;
        let mut out = Vec::new();
        for (si, s) in req.streams.into_iter().enumerate() {
            let entry_err = |ei: usize, msg: String| PushDecodeError::Entry { stream: si, entry: ei, msg };
            let labels = match (&s.stream, &s.labels) {
                (Some(m), _) => {
                    let mut pairs = Vec::new();
                    for (k, v) in m {
                        let v = match v {
                            Value::String(s) => s.clone(),
                            Value::Number(n) => n.to_string(),
                            Value::Bool(b) => b.to_string(),
                            other => {
                                return Err(PushDecodeError::Labels {
                                    stream: si,
                                    labels: String::new(),
                                    msg: format!("label {k:?} has a non-string value {other}"),
                                })
                            }
                        };
                        pairs.push((k.clone(), v));
                    }
                    Labels::from_pairs(pairs)
                }
                (None, Some(text)) => {
                    parse_labels(text).map_err(|msg| PushDecodeError::Labels { stream: si, labels: text.clone(), msg })?
                }
                (None, None) => Labels::empty(),
            };
            let mut entries = Vec::new();
            for (ei, v) in s.values.unwrap_or_default().into_iter().enumerate() {
                if !(2..=3).contains(&v.len()) {
                    return Err(entry_err(ei, format!("expected [timestamp, line] or [timestamp, line, metadata], got {} elements", v.len())));
                }
                let mut it = v.into_iter();
                let (t, l, md) = (it.next(), it.next(), it.next());
                let ts = match t {
                    Some(Value::String(s)) => s.trim().parse::<i64>().map_err(|_| entry_err(ei, format!("timestamp {s:?} is not an integer of nanoseconds")))?,
                    Some(Value::Number(n)) => n.as_i64().ok_or_else(|| entry_err(ei, format!("timestamp {n} is not an integer of nanoseconds")))?,
                    other => return Err(entry_err(ei, format!("timestamp must be a string of nanoseconds, got {}", other.unwrap_or(Value::Null)))),
                };
                let line = match l {
                    Some(Value::String(s)) => s,
                    other => return Err(entry_err(ei, format!("line must be a string, got {}", other.unwrap_or(Value::Null)))),
                };
                let metadata = match md {
                    None | Some(Value::Null) => Labels::empty(),
                    Some(Value::Object(m)) => {
                        let mut pairs = Vec::new();
                        for (k, v) in m {
                            match v {
                                Value::String(s) => pairs.push((k, s)),
                                other => return Err(entry_err(ei, format!("structured metadata {k:?} must be a string, got {other}"))),
                            }
                        }
                        Labels::from_pairs(pairs)
                    }
                    Some(other) => return Err(entry_err(ei, format!("structured metadata must be an object, got {other}"))),
                };
                entries.push(LogEntry { ts, line, metadata });
            }
            for (ei, e) in s.entries.unwrap_or_default().into_iter().enumerate() {
                let ts = match &e.ts {
                    Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
                        .ok()
                        .and_then(|t| t.timestamp_nanos_opt())
                        .or_else(|| s.parse::<i64>().ok())
                        .ok_or_else(|| entry_err(ei, format!("cannot parse timestamp {s:?} (RFC 3339 expected)")))?,
                    Value::Number(n) => n.as_i64().ok_or_else(|| entry_err(ei, format!("timestamp {n} is not an integer")))?,
                    other => return Err(entry_err(ei, format!("timestamp must be a string, got {other}"))),
                };
                entries.push(LogEntry::new(ts, e.line));
            }
            out.push(PushStream { labels, entries });
        }
        Ok(out)
    }

    /// Same streams, or errors of the same kind at the same place with the
    /// same message (the label-set text of a `Labels` error is not
    /// compared: the old decoder printed the members sorted).
    fn same_outcome(a: &Result<Vec<PushStream>, PushDecodeError>, b: &Result<Vec<PushStream>, PushDecodeError>) -> Result<(), String> {
        match (a, b) {
            (Ok(x), Ok(y)) if x == y => Ok(()),
            (Err(PushDecodeError::Json(_)), Err(PushDecodeError::Json(_))) => Ok(()),
            (Err(PushDecodeError::Labels { stream: s1, msg: m1, .. }), Err(PushDecodeError::Labels { stream: s2, msg: m2, .. }))
                if s1 == s2 && m1 == m2 => Ok(()),
            (Err(e1 @ PushDecodeError::Entry { .. }), Err(e2 @ PushDecodeError::Entry { .. })) if e1.to_string() == e2.to_string() => Ok(()),
            _ => Err(format!("typed decoder: {a:?}\nreference:     {b:?}")),
        }
    }

    #[test]
    fn json_edge_cases_match_the_reference() {
        let cases: &[&str] = &[
            r#"{}"#,
            r#"{"streams":[]}"#,
            r#"{"streams":null}"#,
            r#"{"streams":[{}]}"#,
            r#"{"streams":[{"stream":{"a":"b","n":5,"t":true},"values":[]}]}"#,
            r#"{"streams":[{"stream":{"a":"b","a":"c"},"values":[["1","x"]]}]}"#,
            r#"{"streams":[{"stream":{"a":null},"values":[]}]}"#,
            r#"{"streams":[{"stream":{"a":["x"]},"values":[]}]}"#,
            r#"{"streams":[{"stream":"a","values":[]}]}"#,
            r#"{"streams":[{"stream":{"a":"b"},"values":[["1","esc\"aped\n\u00e9"]]}]}"#,
            r#"{"streams":[{"stream":{"a":"b"},"values":[[" 7 ","x"],[8,"y",null],[9,"z",{"k":"v","j":"w"}]]}]}"#,
            r#"{"streams":[{"stream":{"a":"b"},"values":[["1","x","m"]]}]}"#,
            r#"{"streams":[{"stream":{"a":"b"},"values":[["1","x",{"k":1}]]}]}"#,
            r#"{"streams":[{"stream":{"a":"b"},"values":[["1","x",{},4]]}]}"#,
            r#"{"streams":[{"stream":{"a":"b"},"values":[[]]}]}"#,
            r#"{"streams":[{"stream":{"a":"b"},"values":[["1",2]]}]}"#,
            r#"{"streams":[{"stream":{"a":"b"},"values":[[1.5,"x"]]}]}"#,
            r#"{"streams":[{"stream":{"a":"b"},"values":[[null,"x"]]}]}"#,
            r#"{"streams":[{"stream":{"a":"b"},"values":[[[1],"x"]]}]}"#,
            r#"{"streams":[{"stream":{"a":"b"},"values":[["99999999999999999999","x"]]}]}"#,
            r#"{"streams":[{"stream":{"a":"b"},"values":[["x","x"],["1"]]}]}"#,
            r#"{"streams":[{"stream":{"a":"b"},"values":["1"]}]}"#,
            r#"{"streams":[{"stream":{"a":"b"},"values":[["1","x"]],"extra":{"deep":[1,{"a":2}]}}]}"#,
            r#"{"streams":[{"labels":"{a=\"b\"}","entries":[{"ts":"2024-01-01T00:00:00Z","line":"l"},{"timestamp":5,"line":"m"}]}]}"#,
            r#"{"streams":[{"labels":"{a=\"b\"}","entries":[{"ts":"yesterday","line":"l"}]}]}"#,
            r#"{"streams":[{"labels":"{a=\"b\"}","entries":[{"ts":true,"line":"l"}]}]}"#,
            r#"{"streams":[{"labels":"{a=~\"b\"}","entries":[]}]}"#,
            r#"{"streams":[{"labels":"{a=\"b\"}","entries":[{"ts":"1","line":5}]}]}"#,
            r#"{"streams":[{"stream":{"a":"b"},"values":[["1","x"]]},{"stream":{"a":"c"},"values":[["2","y"],["z","w"]]}]}"#,
            r#"{"streams":[{"stream":{"a":"b"},"stream":{"a":"c"}}]}"#,
            r#"[1,2]"#,
            r#"{"streams":[{"stream":{"a":"b"},"values":[["1","x"]]}]} trailing"#,
        ];
        for c in cases {
            if let Err(e) = same_outcome(&decode_json(c.as_bytes()), &reference_decode_json(c.as_bytes())) {
                panic!("{c}\n{e}");
            }
        }
        let e = decode_json(br#"{"streams":[{"stream":{"a":"b"},"values":[["1","x",{"k":1}]]}]}"#).unwrap_err();
        assert_eq!(e.to_string(), "stream 0, entry 0: structured metadata \"k\" must be a string, got 1");
        let e = decode_json(br#"{"streams":[{"stream":{"z":"b","a":[1]}}]}"#).unwrap_err();
        assert_eq!(e.to_string(), r#"error parsing labels "{\"z\":\"b\",\"a\":[1]}" (stream 0): label "a" has a non-string value [1]"#);
        // Escaped and unescaped lines decode alike.
        let s = decode_json(br#"{"streams":[{"stream":{"a":"b"},"values":[["1","plain"],["2","tab\there \"q\""]]}]}"#).unwrap();
        assert_eq!(s[0].entries[0].line, "plain");
        assert_eq!(s[0].entries[1].line, "tab\there \"q\"");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_protobuf(&body, 1 << 16);
            let _ = decode_protobuf_raw(&body);
            let _ = decode_json(&body);
            let _ = parse_labels(&String::from_utf8_lossy(&body));
        }

        #[test]
        fn mutated_valid_bodies_never_panic(flip in any::<prop::sample::Index>(), byte in any::<u8>(), json in any::<bool>()) {
            let mut body = if json { encode_json(&sample()) } else { encode_protobuf(&sample()) };
            let i = flip.index(body.len());
            body[i] = byte;
            let _ = decode_push(Some(if json { "application/json" } else { "application/x-protobuf" }), &body, 1 << 16);
            let raw = {
                use prost::Message;
                let mut v = proto::PushRequest::default().encode_to_vec();
                v.extend_from_slice(&body);
                v
            };
            let _ = decode_protobuf_raw(&raw);
        }

        #[test]
        fn json_agrees_with_the_reference_decoder(
            flip in any::<prop::sample::Index>(),
            byte in prop::sample::select(b"\"[]{},:0123456789 -.ab\\nulltrue".to_vec()),
            mutate in any::<bool>(),
            lines in proptest::collection::vec("[a-z\"\\\\\n é]{0,12}", 1..4),
        ) {
            let mut s = sample();
            s[1].entries = lines.into_iter().enumerate().map(|(i, l)| LogEntry::new(i as i64, l)).collect();
            let mut body = encode_json(&s);
            if mutate {
                let i = flip.index(body.len());
                body[i] = byte;
            }
            let got = decode_json(&body);
            let want = reference_decode_json(&body);
            if let Err(e) = same_outcome(&got, &want) {
                return Err(TestCaseError::fail(format!("{}\n{e}", String::from_utf8_lossy(&body))));
            }
        }

        #[test]
        fn round_trip_any_text(line in ".{0,40}", name in "[a-z_][a-z0-9_]{0,8}", value in ".{0,20}", ts in any::<i64>()) {
            let s = vec![PushStream { labels: Labels::from_pairs([(name, value)]), entries: vec![LogEntry::new(ts, line)] }];
            prop_assert_eq!(decode_protobuf(&encode_protobuf(&s), 1 << 20).unwrap(), s.clone());
            prop_assert_eq!(decode_json(&encode_json(&s)).unwrap(), s);
        }
    }
}
