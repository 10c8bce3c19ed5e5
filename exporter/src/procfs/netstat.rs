//! `/proc/net/netstat`, `/proc/net/snmp` (header/value line pairs) and
//! `/proc/net/snmp6` (`Name value` lines).

use crate::error::ParseError;

/// (protocol, field, raw value) triples, in file order.
pub type Stats = Vec<(String, String, String)>;

/// Parses `netstat` or `snmp`: each protocol has a line of field names and
/// a line of values, both prefixed with `Proto:`.
pub fn parse_pairs(text: &str) -> Result<Stats, ParseError> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut i = 0;
    while i < lines.len() {
        let names: Vec<&str> = lines[i].split_whitespace().collect();
        let Some(vline) = lines.get(i + 1) else {
            return Err(ParseError::new(i + 1, "header line without a value line"));
        };
        let values: Vec<&str> = vline.split_whitespace().collect();
        if names.len() != values.len() || names.is_empty() {
            return Err(ParseError::new(i + 2, format!("{} values for {} names", values.len(), names.len())));
        }
        let proto = names[0].trim_end_matches(':');
        if values[0].trim_end_matches(':') != proto {
            return Err(ParseError::new(i + 2, format!("value line for {:?} follows {proto:?} header", values[0])));
        }
        for (n, v) in names.iter().zip(values.iter()).skip(1) {
            out.push((proto.to_string(), n.to_string(), v.to_string()));
        }
        i += 2;
    }
    Ok(out)
}

/// Parses `snmp6`: `Ip6InOctets 460` splits after the first `6`.
pub fn parse_snmp6(text: &str) -> Result<Stats, ParseError> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 2 {
            continue;
        }
        if let Some(six) = f[0].find('6') {
            out.push((f[0][..=six].to_string(), f[0][six + 1..].to_string(), f[1].to_string()));
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
        assert_eq!(v[1], ("TcpExt".into(), "ListenDrops".into(), "5".into()));
        assert_eq!(v[2], ("Ip".into(), "Forwarding".into(), "1".into()));
        assert!(parse_pairs("Ip: A B\nIp: 1\n").is_err());
        assert!(parse_pairs("Ip: A\n").is_err());
        assert!(parse_pairs("Ip: A\nTcp: 1\n").is_err());
    }

    #[test]
    fn parses_snmp6() {
        let v = parse_snmp6("Ip6InOctets 460\nUdpLite6InErrors 0\nIcmp6OutType133 1\nnosix 1\n").unwrap();
        assert_eq!(v[0], ("Ip6".into(), "InOctets".into(), "460".into()));
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
