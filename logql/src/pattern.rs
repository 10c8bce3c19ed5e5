//! Loki's `pattern` expressions: literals and `<capture>`s (`<_>` skips).

/// One node of a pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// Text that must appear.
    Literal(String),
    /// `<name>`; `None` for `<_>`.
    Capture(Option<String>),
}

/// A compiled pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    nodes: Vec<Node>,
}

fn is_capture_name(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_') && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Pattern {
    /// Parses a pattern. Two consecutive captures are an error.
    pub fn parse(s: &str) -> Result<Pattern, String> {
        let mut nodes: Vec<Node> = Vec::new();
        let mut lit = String::new();
        let mut rest = s;
        while !rest.is_empty() {
            if rest.starts_with('<') {
                if let Some(end) = rest.find('>') {
                    let name = &rest[1..end];
                    if is_capture_name(name) {
                        if !lit.is_empty() {
                            nodes.push(Node::Literal(std::mem::take(&mut lit)));
                        }
                        if matches!(nodes.last(), Some(Node::Capture(_))) {
                            return Err("invalid pattern: consecutive captures are not allowed".into());
                        }
                        nodes.push(Node::Capture((name != "_").then(|| name.to_string())));
                        rest = &rest[end + 1..];
                        continue;
                    }
                }
            }
            let c = rest.chars().next().unwrap_or('<');
            lit.push(c);
            rest = &rest[c.len_utf8()..];
        }
        if !lit.is_empty() {
            nodes.push(Node::Literal(lit));
        }
        if nodes.is_empty() {
            return Err("invalid pattern: empty pattern".into());
        }
        let mut seen = std::collections::HashSet::new();
        for n in &nodes {
            if let Node::Capture(Some(name)) = n {
                if !seen.insert(name) {
                    return Err(format!("invalid pattern: duplicate capture name ({name})"));
                }
            }
        }
        Ok(Pattern { nodes })
    }

    /// Whether the pattern has a named (non-`_`) capture.
    pub fn has_named_captures(&self) -> bool {
        self.nodes.iter().any(|n| matches!(n, Node::Capture(Some(_))))
    }

    /// Extracts captures Loki's way: a leading literal must prefix the line,
    /// each later literal is searched forward; when a literal is missing the
    /// preceding capture takes the rest of the line and matching stops.
    pub fn extract<'a>(&'a self, line: &'a str) -> Vec<(&'a str, &'a str)> {
        let mut out = Vec::new();
        let mut pos = 0;
        let mut i = 0;
        if let Some(Node::Literal(l)) = self.nodes.first() {
            if !line.starts_with(l.as_str()) {
                return out;
            }
            pos = l.len();
            i = 1;
        }
        while i < self.nodes.len() {
            let Node::Capture(name) = &self.nodes[i] else {
                i += 1;
                continue;
            };
            let (value, next) = match self.nodes.get(i + 1) {
                Some(Node::Literal(l)) => match line[pos..].find(l.as_str()) {
                    Some(off) => (&line[pos..pos + off], Some(pos + off + l.len())),
                    None => (&line[pos..], None),
                },
                _ => (&line[pos..], None),
            };
            if let Some(n) = name {
                out.push((n.as_str(), value));
            }
            match next {
                Some(p) => pos = p,
                None => break,
            }
            i += 2;
        }
        out
    }

    /// Whether the whole line matches (captures match any text).
    pub fn matches(&self, line: &str) -> bool {
        fn go(nodes: &[Node], s: &str) -> bool {
            match nodes.first() {
                None => s.is_empty(),
                Some(Node::Literal(l)) => s.strip_prefix(l.as_str()).is_some_and(|r| go(&nodes[1..], r)),
                Some(Node::Capture(_)) => {
                    let rest = &nodes[1..];
                    match rest.first() {
                        None => true,
                        Some(Node::Literal(l)) => {
                            // Try each occurrence of the next literal.
                            let mut start = 0;
                            while let Some(off) = s[start..].find(l.as_str()) {
                                let at = start + off;
                                if go(rest, &s[at..]) {
                                    return true;
                                }
                                start = at + s[at..].chars().next().map_or(1, char::len_utf8);
                                if start > s.len() {
                                    break;
                                }
                            }
                            false
                        }
                        Some(Node::Capture(_)) => false,
                    }
                }
            }
        }
        go(&self.nodes, line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extract_and_match() {
        let p = Pattern::parse("<method> <path> <status>").unwrap();
        assert_eq!(p.extract("GET /home 200"), vec![("method", "GET"), ("path", "/home"), ("status", "200")]);
        let p = Pattern::parse("<method> <path>").unwrap();
        assert_eq!(p.extract("POST"), vec![("method", "POST")]);
        let f = Pattern::parse("GET <_> 200").unwrap();
        assert!(f.matches("GET /api 200"));
        assert!(!f.matches("POST /api 500"));
        assert!(!Pattern::parse("GET /api").unwrap().matches("GET /api 200"));
        assert!(!Pattern::parse("no captures").unwrap().has_named_captures());
        assert!(Pattern::parse("<a><b>").is_err());
    }
}
