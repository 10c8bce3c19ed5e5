//! Labels and label matchers.
//!
//! A [`Labels`] set is sorted by name, immutable, and cheap to clone (one
//! reference-counted allocation). It keeps labels with empty values: Prometheus
//! treats an empty value as "absent" and callers that want that behaviour use
//! [`Labels::without_empty`], while LogQL keeps them significant.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

/// The label that carries a metric's name.
pub const METRIC_NAME: &str = "__name__";

/// One label: a name and a value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    /// The label name.
    pub name: String,
    /// The label value (may be empty).
    pub value: String,
}

impl Label {
    /// Builds a label from anything string-like.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Label { name: name.into(), value: value.into() }
    }
}

/// A sorted, immutable set of labels with unique names.
///
/// Ordering compares labels pair by pair (name first, then value); a set that
/// is a prefix of another sorts first. This is the order Prometheus uses for
/// series in query results.
///
/// ```
/// use model::Labels;
/// let l = Labels::from_pairs([("job", "node"), ("__name__", "up")]);
/// assert_eq!(l.get("job"), Some("node"));
/// assert_eq!(l.metric_name(), Some("up"));
/// assert_eq!(l.to_string(), r#"{__name__="up", job="node"}"#);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Labels(Arc<[Label]>);

impl Default for Labels {
    fn default() -> Self {
        Labels::empty()
    }
}

impl Labels {
    /// The empty label set.
    pub fn empty() -> Self {
        Labels(Arc::from(Vec::new()))
    }

    /// Builds a set from labels in any order. When a name repeats, the last
    /// value wins.
    pub fn new(mut labels: Vec<Label>) -> Self {
        // A stable sort keeps insertion order among equal names, so keeping
        // the last of each run implements "last wins".
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out: Vec<Label> = Vec::with_capacity(labels.len());
        for l in labels {
            match out.last_mut() {
                Some(prev) if prev.name == l.name => *prev = l,
                _ => out.push(l),
            }
        }
        Labels(Arc::from(out))
    }

    /// Builds a set from `(name, value)` pairs in any order.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Labels::new(pairs.into_iter().map(|(k, v)| Label::new(k, v)).collect())
    }

    /// Builds a set from labels already sorted by name with unique names.
    /// Returns `None` when they are not.
    pub fn from_sorted(labels: Vec<Label>) -> Option<Self> {
        if labels.windows(2).all(|w| w[0].name < w[1].name) {
            Some(Labels(Arc::from(labels)))
        } else {
            None
        }
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    /// Whether label `name` is present (even with an empty value).
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The value of `__name__`, if present.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// The labels in name order.
    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    /// The labels as a slice, in name order.
    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set has no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A builder starting from this set.
    pub fn builder(&self) -> LabelsBuilder {
        LabelsBuilder { labels: self.0.to_vec() }
    }

    /// The same set without labels whose value is empty.
    pub fn without_empty(&self) -> Labels {
        if self.0.iter().all(|l| !l.value.is_empty()) {
            return self.clone();
        }
        Labels(self.0.iter().filter(|l| !l.value.is_empty()).cloned().collect())
    }

    /// The same set without `__name__`.
    pub fn without_metric_name(&self) -> Labels {
        self.without(&[METRIC_NAME])
    }

    /// Only the labels whose names are in `names`.
    pub fn keep(&self, names: &[&str]) -> Labels {
        Labels(self.0.iter().filter(|l| names.contains(&l.name.as_str())).cloned().collect())
    }

    /// All labels except those whose names are in `names`.
    pub fn without(&self, names: &[&str]) -> Labels {
        if !self.0.iter().any(|l| names.contains(&l.name.as_str())) {
            return self.clone();
        }
        Labels(self.0.iter().filter(|l| !names.contains(&l.name.as_str())).cloned().collect())
    }

    /// A stable 64-bit hash of the whole set (FNV-1a over names and values
    /// with separators). Stable across runs and platforms, so it may be stored.
    pub fn stable_hash(&self) -> u64 {
        let mut h = Fnv64::new();
        for l in self.0.iter() {
            h.write(l.name.as_bytes());
            h.write(&[0xff]);
            h.write(l.value.as_bytes());
            h.write(&[0xff]);
        }
        h.finish()
    }

    /// Total bytes of names and values (for size limits).
    pub fn byte_size(&self) -> usize {
        self.0.iter().map(|l| l.name.len() + l.value.len()).sum()
    }
}

impl Ord for Labels {
    fn cmp(&self, other: &Self) -> Ordering {
        for (a, b) in self.0.iter().zip(other.0.iter()) {
            match a.name.cmp(&b.name).then_with(|| a.value.cmp(&b.value)) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        self.0.len().cmp(&other.0.len())
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Formats as Prometheus does: `{a="1", b="2"}` with Go-style escaping of
/// values.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}=\"{}\"", l.name, escape_label_value(&l.value))?;
        }
        f.write_str("}")
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl FromIterator<Label> for Labels {
    fn from_iter<T: IntoIterator<Item = Label>>(iter: T) -> Self {
        Labels::new(iter.into_iter().collect())
    }
}

/// Escapes a label value for the text formats and for display: backslash,
/// double quote and newline.
pub fn escape_label_value(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return std::borrow::Cow::Borrowed(v);
    }
    let mut s = String::with_capacity(v.len() + 2);
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    std::borrow::Cow::Owned(s)
}

/// Mutable helper to derive a new [`Labels`] from an existing one.
#[derive(Clone, Debug, Default)]
pub struct LabelsBuilder {
    labels: Vec<Label>,
}

impl LabelsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value`, replacing any previous value.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        let name = name.into();
        let value = value.into();
        match self.labels.iter_mut().find(|l| l.name == name) {
            Some(l) => l.value = value,
            None => self.labels.push(Label { name, value }),
        }
        self
    }

    /// Removes `name` if present.
    pub fn del(&mut self, name: &str) -> &mut Self {
        self.labels.retain(|l| l.name != name);
        self
    }

    /// The current value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|l| l.name == name).map(|l| l.value.as_str())
    }

    /// Builds the sorted set. The builder stays usable.
    pub fn build(&self) -> Labels {
        Labels::new(self.labels.clone())
    }
}

/// Whether `s` is a valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn is_valid_label_name(s: &str) -> bool {
    let mut b = s.bytes();
    match b.next() {
        Some(c) if c.is_ascii_alphabetic() || c == b'_' => {}
        _ => return false,
    }
    b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Whether `s` is a valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn is_valid_metric_name(s: &str) -> bool {
    let mut b = s.bytes();
    match b.next() {
        Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b':' => {}
        _ => return false,
    }
    b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

struct Fnv64(u64);

impl Fnv64 {
    fn new() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The kind of comparison a [`Matcher`] makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchType {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~` (fully anchored RE2 regex)
    Regex,
    /// `!~` (fully anchored RE2 regex)
    NotRegex,
}

impl MatchType {
    /// The operator as written in selectors.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Equal => "=",
            MatchType::NotEqual => "!=",
            MatchType::Regex => "=~",
            MatchType::NotRegex => "!~",
        }
    }
}

impl fmt::Display for MatchType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An invalid matcher (a regex that does not compile).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MatcherError {
    /// The regex of a `=~` or `!~` matcher is invalid.
    #[error("invalid regular expression {pattern:?} for label {name:?}: {source}")]
    Regex {
        /// Label name of the matcher.
        name: String,
        /// The pattern as written.
        pattern: String,
        /// The regex crate's error.
        #[source]
        source: regex::Error,
    },
}

/// A label matcher: `name op "value"`.
///
/// Regex matchers are fully anchored and `.` matches newlines, as in
/// Prometheus (`^(?s:value)$`). A label that is absent matches as the empty
/// string.
///
/// ```
/// use model::{Matcher, MatchType};
/// let m = Matcher::new(MatchType::Regex, "job", "node|api").unwrap();
/// assert!(m.matches("node"));
/// assert!(!m.matches("nodes"));
/// ```
#[derive(Clone)]
pub struct Matcher {
    /// The comparison.
    pub kind: MatchType,
    /// The label name.
    pub name: String,
    /// The value or regex as written.
    pub value: String,
    re: Option<regex::Regex>,
}

impl Matcher {
    /// Builds a matcher, compiling the regex for `=~`/`!~`.
    pub fn new(
        kind: MatchType,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, MatcherError> {
        let name = name.into();
        let value = value.into();
        let re = match kind {
            MatchType::Regex | MatchType::NotRegex => {
                let anchored = format!("^(?s:{value})$");
                Some(regex::Regex::new(&anchored).map_err(|source| MatcherError::Regex {
                    name: name.clone(),
                    pattern: value.clone(),
                    source,
                })?)
            }
            _ => None,
        };
        Ok(Matcher { kind, name, value, re })
    }

    /// An equality matcher (cannot fail).
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher { kind: MatchType::Equal, name: name.into(), value: value.into(), re: None }
    }

    /// Whether a label value (empty when the label is absent) matches.
    pub fn matches(&self, v: &str) -> bool {
        match self.kind {
            MatchType::Equal => v == self.value,
            MatchType::NotEqual => v != self.value,
            MatchType::Regex => self.re.as_ref().is_some_and(|r| r.is_match(v)),
            MatchType::NotRegex => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }

    /// Whether the matcher matches the label in `labels` (absent = empty).
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }

    /// Whether the matcher accepts the empty string (and so series that
    /// lack the label).
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// For regex matchers that are a plain alternation of literals
    /// (`a|b|c`), the literal values; lets an index look them up directly.
    pub fn set_matches(&self) -> Option<Vec<String>> {
        if self.kind != MatchType::Regex && self.kind != MatchType::NotRegex {
            return None;
        }
        let mut out = Vec::new();
        for part in self.value.split('|') {
            if part.chars().any(|c| "\\.+*?()[]{}^$".contains(c)) {
                return None;
            }
            out.push(part.to_string());
        }
        Some(out)
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.name == other.name && self.value == other.value
    }
}

impl Eq for Matcher {}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Formats as in a selector: `name="value"` with the value escaped.
impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}\"{}\"", self.name, self.kind, escape_label_value(&self.value))
    }
}

/// Whether `labels` satisfies every matcher.
pub fn matches_all(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches_labels(labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sorts_and_dedups_last_wins() {
        let l = Labels::from_pairs([("b", "1"), ("a", "2"), ("b", "3")]);
        assert_eq!(l.len(), 2);
        assert_eq!(l.get("b"), Some("3"));
        assert_eq!(l.iter().next().map(|l| l.name.as_str()), Some("a"));
    }

    #[test]
    fn ordering_prefix_first() {
        let a = Labels::from_pairs([("a", "1")]);
        let b = Labels::from_pairs([("a", "1"), ("b", "1")]);
        assert!(a < b);
        let c = Labels::from_pairs([("a", "2")]);
        assert!(b < c);
    }

    #[test]
    fn regex_is_anchored_and_dotall() {
        let m = Matcher::new(MatchType::Regex, "x", "a.c").unwrap();
        assert!(m.matches("a\nc"));
        assert!(!m.matches("xabc"));
        let n = Matcher::new(MatchType::NotRegex, "x", "").unwrap();
        assert!(!n.matches(""));
        assert!(n.matches("y"));
        assert!(Matcher::new(MatchType::Regex, "x", "(").is_err());
    }

    #[test]
    fn absent_label_matches_as_empty() {
        let l = Labels::from_pairs([("a", "1")]);
        assert!(Matcher::equal("b", "").matches_labels(&l));
        assert!(!Matcher::equal("b", "x").matches_labels(&l));
    }

    #[test]
    fn set_matches_detects_literal_alternations() {
        let m = Matcher::new(MatchType::Regex, "x", "a|bb|c").unwrap();
        assert_eq!(m.set_matches(), Some(vec!["a".into(), "bb".into(), "c".into()]));
        let m = Matcher::new(MatchType::Regex, "x", "a.*").unwrap();
        assert_eq!(m.set_matches(), None);
    }

    #[test]
    fn display_escapes() {
        let l = Labels::from_pairs([("a", "x\"y\\z\n")]);
        assert_eq!(l.to_string(), r#"{a="x\"y\\z\n"}"#);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn labels_sorted_unique(pairs in proptest::collection::vec(("[a-c]{1,2}", "[a-z]{0,3}"), 0..8)) {
            let l = Labels::from_pairs(pairs.clone());
            prop_assert!(l.as_slice().windows(2).all(|w| w[0].name < w[1].name));
            for (k, _) in &pairs {
                let last = pairs.iter().rev().find(|(k2, _)| k2 == k).map(|(_, v)| v.as_str());
                prop_assert_eq!(l.get(k), last);
            }
            prop_assert_eq!(l.stable_hash(), Labels::from_pairs(pairs).stable_hash());
        }

        #[test]
        fn set_matches_agree_with_regex(alts in proptest::collection::vec("[a-z]{0,3}", 1..4), probe in "[a-z]{0,3}") {
            let m = Matcher::new(MatchType::Regex, "x", alts.join("|")).unwrap();
            if let Some(set) = m.set_matches() {
                prop_assert_eq!(set.contains(&probe), m.matches(&probe));
            }
        }
    }
}
