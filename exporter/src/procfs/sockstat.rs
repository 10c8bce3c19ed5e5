//! `/proc/net/sockstat` and `/proc/net/sockstat6`.

use super::u64_field;
use crate::error::ParseError;

/// One protocol line: `TCP: inuse 4 orphan 0 ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    /// Protocol name (`TCP`, `UDP6`, ...).
    pub name: String,
    /// (state, count) pairs in file order.
    pub fields: Vec<(String, u64)>,
}

/// The parsed file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sockstat {
    /// `sockets: used N` (IPv4 file only).
    pub used: Option<u64>,
    /// Protocol lines.
    pub protocols: Vec<Protocol>,
}

/// Parses either file.
pub fn parse(text: &str) -> Result<Sockstat, ParseError> {
    let mut s = Sockstat::default();
    for (i, line) in text.lines().enumerate() {
        let ln = i + 1;
        let Some((name, rest)) = line.split_once(':') else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(ParseError::new(ln, format!("missing ':' in {line:?}")));
        };
        let toks: Vec<&str> = rest.split_whitespace().collect();
        if toks.len() % 2 == 1 {
            return Err(ParseError::new(ln, "odd number of fields"));
        }
        let mut fields = Vec::with_capacity(toks.len() / 2);
        for pair in toks.chunks(2) {
            fields.push((pair[0].to_string(), u64_field(pair[1], ln, pair[0])?));
        }
        if name == "sockets" {
            s.used = fields.iter().find(|(k, _)| k == "used").map(|(_, v)| *v);
        } else {
            s.protocols.push(Protocol { name: name.to_string(), fields });
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses() {
        let s = parse("sockets: used 229\nTCP: inuse 4 orphan 0 tw 4 alloc 17 mem 1\nUDP: inuse 0 mem 0\n").unwrap();
        assert_eq!(s.used, Some(229));
        assert_eq!(s.protocols[0].name, "TCP");
        assert_eq!(s.protocols[0].fields[4], ("mem".into(), 1));
        assert!(parse("TCP: inuse\n").is_err());
        assert!(parse("TCP inuse 1\n").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn garbage_never_panics(s in crate::procfs::garbage::kernelish()) {
            let _ = parse(&s);
        }
    }
}
