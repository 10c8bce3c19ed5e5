//! The incoming-webhook JSON body: [`Payload`], [`Attachment`], [`Field`], [`Priority`]. Pure.
//!
//! Field names follow Mattermost's webhook API (the Slack-compatible subset). Optional fields
//! that are unset are left out of the JSON rather than sent as `null`, so the bodies stay small
//! and match what Mattermost's own examples look like.
//!
//! Mattermost stores at most [`MAX_POST_CHARS`] characters in one post. A webhook with longer
//! text is split by Mattermost into several posts; [`Payload::split`] does the same on our side
//! (so nothing depends on the server's behaviour), or truncates, as [`LongText`] chooses.

use serde::{Deserialize, Serialize};

use crate::error::PayloadError;

/// Most characters (Unicode scalar values, which Mattermost calls runes) in one post's text.
pub const MAX_POST_CHARS: usize = 16_383;

/// What ends a truncated text.
const ELLIPSIS: &str = "…";

/// The body of a Mattermost incoming-webhook request.
///
/// Mattermost requires `text` or at least one attachment ([`Payload::validate`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Payload {
    /// Markdown text of the post.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Overrides the poster's display name (if the server allows overriding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Overrides the poster's avatar (if the server allows overriding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon_url: Option<String>,
    /// Emoji name to use as the avatar instead of `icon_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon_emoji: Option<String>,
    /// Channel name (not display name) to post to instead of the hook's default, or `@user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Message attachments (coloured cards with fields).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// Extra post properties, e.g. `{"card": "markdown shown in the sidebar"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub props: Option<serde_json::Map<String, serde_json::Value>>,
    /// Message priority (Mattermost 7.7+; older servers ignore it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
}

/// A message attachment: a card with a coloured side bar.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    /// Plain-text summary for clients that cannot show attachments (notifications, mobile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// Side-bar colour: `#RRGGBB`, or `good`, `warning`, `danger`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// Text shown above the card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretext: Option<String>,
    /// Small author line at the top of the card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_name: Option<String>,
    /// Icon next to the author name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_icon: Option<String>,
    /// Link on the author name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_link: Option<String>,
    /// Bold title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Link on the title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_link: Option<String>,
    /// Markdown body of the card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A table of fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<Field>,
    /// Image shown in the card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// Thumbnail on the right of the card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumb_url: Option<String>,
    /// Small text at the bottom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
    /// Icon next to the footer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer_icon: Option<String>,
}

/// One cell of an attachment's field table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    /// Bold heading of the cell.
    pub title: String,
    /// Markdown content of the cell.
    pub value: String,
    /// Whether the cell may share its row with another short cell.
    #[serde(default)]
    pub short: bool,
}

impl Field {
    /// A field; `short` lets two fields share a row.
    pub fn new(title: impl Into<String>, value: impl Into<String>, short: bool) -> Field {
        Field {
            title: title.into(),
            value: value.into(),
            short,
        }
    }
}

/// Mattermost's message priority object: `{"priority": "urgent", "requested_ack": true}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Priority {
    /// The priority label.
    #[serde(default)]
    pub priority: PriorityLevel,
    /// Ask recipients to acknowledge the message.
    #[serde(default)]
    pub requested_ack: bool,
    /// Re-notify mentioned users until they acknowledge (urgent messages only, Mattermost
    /// Enterprise). Left out of the JSON when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub persistent_notifications: bool,
}

impl Priority {
    /// `{"priority": "important", "requested_ack": false}`.
    pub fn important() -> Priority {
        Priority {
            priority: PriorityLevel::Important,
            ..Priority::default()
        }
    }

    /// `{"priority": "urgent", "requested_ack": false}`.
    pub fn urgent() -> Priority {
        Priority {
            priority: PriorityLevel::Urgent,
            ..Priority::default()
        }
    }

    /// Sets `requested_ack`.
    pub fn requested_ack(mut self, yes: bool) -> Priority {
        self.requested_ack = yes;
        self
    }
}

/// The label of a [`Priority`]; `Standard` is the empty string on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PriorityLevel {
    /// No label (`""`).
    #[default]
    #[serde(rename = "")]
    Standard,
    /// `"important"`.
    #[serde(rename = "important")]
    Important,
    /// `"urgent"`.
    #[serde(rename = "urgent")]
    Urgent,
}

impl std::str::FromStr for PriorityLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "" | "standard" => Ok(PriorityLevel::Standard),
            "important" => Ok(PriorityLevel::Important),
            "urgent" => Ok(PriorityLevel::Urgent),
            other => Err(format!(
                "unknown priority {other:?}: expected standard, important or urgent"
            )),
        }
    }
}

/// What to do with post text longer than [`MAX_POST_CHARS`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LongText {
    /// Send several posts, cut at line ends where possible (what Mattermost does itself).
    #[default]
    Split,
    /// Send one post, cut to the limit and ending in `…`.
    Truncate,
}

impl Payload {
    /// A payload with only text.
    pub fn text(text: impl Into<String>) -> Payload {
        Payload {
            text: Some(text.into()),
            ..Payload::default()
        }
    }

    /// Checks what Mattermost checks: there must be non-empty text or at least one attachment.
    pub fn validate(&self) -> Result<(), PayloadError> {
        let has_text = self.text.as_deref().is_some_and(|t| !t.is_empty());
        if !has_text && self.attachments.is_empty() {
            return Err(PayloadError::Empty);
        }
        Ok(())
    }

    /// The JSON body to POST. Does not validate.
    pub fn to_json(&self) -> Result<String, PayloadError> {
        Ok(serde_json::to_string(self)?)
    }

    /// Fits the payload into posts of at most `max_chars` characters of text each.
    ///
    /// With [`LongText::Split`], long text becomes several payloads; each repeats `username`,
    /// `icon_url`, `icon_emoji`, `channel`, `props` and `priority`, and the attachments ride on
    /// the last one (as in Mattermost's own splitting). With [`LongText::Truncate`] there is one
    /// payload. In both modes attachment texts longer than `max_chars` are truncated.
    /// `max_chars` below 2 is treated as 2.
    pub fn split(&self, max_chars: usize, mode: LongText) -> Vec<Payload> {
        let max_chars = max_chars.max(2);
        let mut base = self.clone();
        for a in &mut base.attachments {
            for text in [&mut a.text, &mut a.pretext, &mut a.fallback]
                .into_iter()
                .flatten()
            {
                truncate_in_place(text, max_chars);
            }
            for f in &mut a.fields {
                truncate_in_place(&mut f.value, max_chars);
            }
        }
        let text = match &base.text {
            Some(t) if t.chars().count() > max_chars => t.clone(),
            _ => return vec![base],
        };
        match mode {
            LongText::Truncate => {
                let mut t = text;
                truncate_in_place(&mut t, max_chars);
                base.text = Some(t);
                vec![base]
            }
            LongText::Split => {
                let pieces = split_text(&text, max_chars);
                let attachments = std::mem::take(&mut base.attachments);
                let last = pieces.len().saturating_sub(1);
                pieces
                    .into_iter()
                    .enumerate()
                    .map(|(i, piece)| {
                        let mut p = base.clone();
                        p.text = Some(piece.to_string());
                        if i == last {
                            p.attachments = attachments.clone();
                        }
                        p
                    })
                    .collect()
            }
        }
    }
}

/// Cuts `text` into pieces of at most `max_chars` characters whose concatenation is `text`.
///
/// A piece ends after the last newline that fits; failing that, after the last whitespace;
/// failing that, at the last character that fits (never inside a UTF-8 sequence). Empty input
/// gives no pieces. `max_chars` of 0 is treated as 1.
pub fn split_text(text: &str, max_chars: usize) -> Vec<&str> {
    let max_chars = max_chars.max(1);
    let mut pieces = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        // Byte offset just past the first `max_chars` characters.
        let hard_end = match rest.char_indices().nth(max_chars) {
            Some((offset, _)) => offset,
            None => {
                pieces.push(rest);
                break;
            }
        };
        let window = &rest[..hard_end];
        let cut = window
            .rfind('\n')
            .map(|i| i + 1)
            .or_else(|| {
                window
                    .rfind(char::is_whitespace)
                    .map(|i| i + char_len_at(window, i))
            })
            .unwrap_or(hard_end);
        let (piece, tail) = rest.split_at(cut);
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

fn char_len_at(s: &str, i: usize) -> usize {
    s[i..].chars().next().map_or(1, char::len_utf8)
}

/// Shortens `text` to at most `max_chars` characters, the last of which is `…`.
fn truncate_in_place(text: &mut String, max_chars: usize) {
    if let Some((cut, _)) = text.char_indices().nth(max_chars) {
        // Make room for the ellipsis (one character).
        let keep = text[..cut].char_indices().last().map_or(0, |(i, _)| i);
        text.truncate(keep);
        text.push_str(ELLIPSIS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn minimal_payload_serialises_compactly() {
        let p = Payload::text("hi");
        assert_eq!(p.to_json().unwrap(), r#"{"text":"hi"}"#);
        let mut p = Payload::text("x");
        p.priority = Some(Priority::urgent().requested_ack(true));
        assert_eq!(
            p.to_json().unwrap(),
            r#"{"text":"x","priority":{"priority":"urgent","requested_ack":true}}"#
        );
        p.priority = Some(Priority::default());
        assert_eq!(
            p.to_json().unwrap(),
            r#"{"text":"x","priority":{"priority":"","requested_ack":false}}"#
        );
    }

    #[test]
    fn unknown_fields_are_ignored_when_reading() {
        let p: Payload = serde_json::from_str(r#"{"text":"a","type":"custom","attachments":[{"title":"t","ts":1,"fields":[{"title":"k","value":"v"}]}]}"#).unwrap();
        assert_eq!(p.text.as_deref(), Some("a"));
        assert_eq!(p.attachments[0].fields[0], Field::new("k", "v", false));
    }

    #[test]
    fn validate_requires_text_or_attachments() {
        assert!(matches!(
            Payload::default().validate(),
            Err(PayloadError::Empty)
        ));
        assert!(matches!(
            Payload::text("").validate(),
            Err(PayloadError::Empty)
        ));
        let p = Payload {
            attachments: vec![Attachment::default()],
            ..Payload::default()
        };
        assert!(p.validate().is_ok());
    }

    #[test]
    fn split_prefers_newlines_then_spaces() {
        assert_eq!(split_text("aaa\nbbb\nccc", 8), vec!["aaa\nbbb\n", "ccc"]);
        assert_eq!(split_text("aaa bbb ccc", 8), vec!["aaa bbb ", "ccc"]);
        assert_eq!(split_text("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(split_text("ééééé", 2), vec!["éé", "éé", "é"]);
        assert!(split_text("", 5).is_empty());
    }

    #[test]
    fn split_payload_puts_attachments_last_and_repeats_identity() {
        let mut p = Payload::text("line one\nline two\nline three");
        p.username = Some("bot".into());
        p.attachments.push(Attachment {
            title: Some("t".into()),
            ..Attachment::default()
        });
        let parts = p.split(12, LongText::Split);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|q| q.username.as_deref() == Some("bot")));
        assert!(parts[..2].iter().all(|q| q.attachments.is_empty()));
        assert_eq!(parts[2].attachments.len(), 1);
        let joined: String = parts.iter().map(|q| q.text.clone().unwrap()).collect();
        assert_eq!(joined, "line one\nline two\nline three");

        let one = p.split(12, LongText::Truncate);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].text.as_deref(), Some("line one\nli…"));
        assert_eq!(one[0].attachments.len(), 1);
    }

    #[test]
    fn attachment_text_is_truncated_to_the_limit() {
        let p = Payload {
            attachments: vec![Attachment {
                text: Some("x".repeat(MAX_POST_CHARS + 10)),
                fields: vec![Field::new("k", "é".repeat(MAX_POST_CHARS + 1), false)],
                ..Attachment::default()
            }],
            ..Payload::default()
        };
        let parts = p.split(MAX_POST_CHARS, LongText::Split);
        assert_eq!(parts.len(), 1);
        let a = &parts[0].attachments[0];
        assert_eq!(a.text.as_ref().unwrap().chars().count(), MAX_POST_CHARS);
        assert!(a.text.as_ref().unwrap().ends_with('…'));
        assert_eq!(a.fields[0].value.chars().count(), MAX_POST_CHARS);
    }

    fn text_strategy() -> impl Strategy<Value = String> {
        // Lines of mixed ASCII, multi-byte characters and spaces, some very long.
        // Long lines are built by repetition: generating them char by char is slow in debug.
        proptest::collection::vec(
            prop_oneof![
                "[a-z ]{0,20}",
                "[é漢🦀 x]{0,12}",
                ("[a-zé漢🦀]{1,3}", 20usize..100).prop_map(|(unit, n)| unit.repeat(n)),
            ],
            0..30,
        )
        .prop_map(|lines| lines.join("\n"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn split_pieces_fit_and_rejoin(text in text_strategy(), max in 1usize..120) {
            let pieces = split_text(&text, max);
            prop_assert_eq!(pieces.concat(), text.clone());
            for (i, piece) in pieces.iter().enumerate() {
                prop_assert!(!piece.is_empty());
                prop_assert!(piece.chars().count() <= max, "piece {} has {} chars > {}", i, piece.chars().count(), max);
                // A cut that is not at a line end only happens when the piece had no newline
                // to cut at, so such a piece holds no newline at all.
                if i + 1 < pieces.len() && !piece.ends_with('\n') {
                    prop_assert!(!piece.contains('\n'), "piece {:?} cut mid-line although it has a newline", piece);
                }
            }
        }

        #[test]
        fn split_at_real_limit(text in "[a-z\n]{0,50}", repeat in 300usize..700) {
            let big = text.repeat(repeat);
            let p = Payload::text(big.clone());
            let parts = p.split(MAX_POST_CHARS, LongText::Split);
            let mut joined = String::new();
            for part in &parts {
                let t = part.text.as_deref().unwrap_or("");
                prop_assert!(t.chars().count() <= MAX_POST_CHARS);
                joined.push_str(t);
            }
            if big.is_empty() {
                prop_assert_eq!(parts.len(), 1);
            } else {
                prop_assert_eq!(joined, big);
            }
        }

        #[test]
        fn truncate_never_exceeds(text in text_strategy(), max in 2usize..100) {
            let mut t = text.clone();
            truncate_in_place(&mut t, max);
            prop_assert!(t.chars().count() <= max);
            if text.chars().count() <= max {
                prop_assert_eq!(t, text);
            } else {
                prop_assert!(t.ends_with('…'));
                prop_assert!(text.starts_with(t.trim_end_matches('…')));
            }
        }
    }
}
