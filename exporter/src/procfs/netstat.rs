//! `/proc/net/netstat`, `/proc/net/snmp` (header/value line pairs) and
//! `/proc/net/snmp6` (`Name value` lines).

use crate::error::ParseError;

/// (protocol, field, raw value) triples, in file order, borrowed from the
/// parsed text (a scrape reads a few hundred of them: no copies).
pub type Stats<'a> = Vec<(&'a str, &'a str, &'a str)>;

/// Parses `netstat` or `snmp`: each protocol has a line of field names and
/// a line of values, both prefixed with `Proto:`.
pub fn parse_pairs(text: &str) -> Result<Stats<'_>, ParseError> {
    let mut out = Vec::with_capacity(512);
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    // `i`: 0-based index of the header line among the non-blank lines.
    let mut i = 0;
    while let Some(hline) = lines.next() {
        let Some(vline) = lines.next() else {
            return Err(ParseError::new(i + 1, "header line without a value line"));
        };
        let (nnames, nvalues) = (hline.split_whitespace().count(), vline.split_whitespace().count());
        if nnames != nvalues || nnames == 0 {
            return Err(ParseError::new(i + 2, format!("{nvalues} values for {nnames} names")));
        }
        let mut names = hline.split_whitespace();
        let mut values = vline.split_whitespace();
        let (Some(hproto), Some(vproto)) = (names.next(), values.next()) else {
            return Err(ParseError::new(i + 2, "empty line"));
        };
        let proto = hproto.trim_end_matches(':');
        if vproto.trim_end_matches(':') != proto {
            return Err(ParseError::new(i + 2, format!("value line for {vproto:?} follows {proto:?} header")));
        }
        out.extend(names.zip(values).map(|(n, v)| (proto, n, v)));
        i += 2;
    }
    Ok(out)
}

/// Parses `snmp6`: `Ip6InOctets 460` splits after the first `6`.
pub fn parse_snmp6(text: &str) -> Result<Stats<'_>, ParseError> {
    let mut out = Vec::with_capacity(256);
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let (Some(name), Some(value)) = (f.next(), f.next()) else {
            continue;
        };
        if let Some(six) = name.find('6') {
            out.push((&name[..=six], &name[six + 1..], value));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_pairs() {
        let v = parse_pairs("TcpExt: SyncookiesSent ListenDrops\nTcpExt: 0 5\nIp: Forwarding\nIp: 1\n").unwrap();
        assert_eq!(v[1], ("TcpExt", "ListenDrops", "5"));
        assert_eq!(v[2], ("Ip", "Forwarding", "1"));
        assert_eq!(v.len(), 3);
        // Blank lines between pairs are skipped; line numbers count them out.
        assert_eq!(parse_pairs("\nIp: A\n\nIp: 1\n").unwrap(), vec![("Ip", "A", "1")]);
        assert_eq!(parse_pairs("Ip: A\nIp: 1\nTcp: B\nUdp: 2\n").unwrap_err().line, 4);
        assert!(parse_pairs("Ip: A B\nIp: 1\n").is_err());
        assert!(parse_pairs("Ip: A\n").is_err());
        assert!(parse_pairs("Ip: A\nTcp: 1\n").is_err());
    }

    #[test]
    fn parses_snmp6() {
        let v = parse_snmp6("Ip6InOctets 460\nUdpLite6InErrors 0\nIcmp6OutType133 1\nnosix 1\n").unwrap();
        assert_eq!(v[0], ("Ip6", "InOctets", "460"));
        assert_eq!(v[1].0, "UdpLite6");
        assert_eq!(v.len(), 3);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn garbage_never_panics(s in crate::procfs::garbage::kernelish()) {
            let _ = parse_pairs(&s);
            let _ = parse_snmp6(&s);
        }
    }
}
