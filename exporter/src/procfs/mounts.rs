//! `/proc/1/mounts` (or `/proc/mounts`): mounted filesystems.

use crate::error::ParseError;

/// One mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Source device.
    pub device: String,
    /// Mount point, octal escapes (`\040`) decoded.
    pub mount_point: String,
    /// Filesystem type.
    pub fs_type: String,
    /// Mount options, comma separated.
    pub options: String,
}

impl Mount {
    /// True when mounted read-only.
    pub fn read_only(&self) -> bool {
        self.options.split(',').any(|o| o == "ro")
    }
}

/// Parses a mounts file.
pub fn parse(text: &str) -> Result<Vec<Mount>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.is_empty() {
            continue;
        }
        if f.len() < 4 {
            return Err(ParseError::new(i + 1, format!("want at least 4 fields, got {}", f.len())));
        }
        out.push(Mount {
            device: unescape(f[0]),
            mount_point: unescape(f[1]),
            fs_type: f[2].to_string(),
            options: f[3].to_string(),
        });
    }
    Ok(out)
}

/// Decodes the kernel's `\ooo` octal escapes (space, tab, newline, `\`).
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') as u32 * 64 + (b[i + 2] - b'0') as u32 * 8 + (b[i + 3] - b'0') as u32;
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses() {
        let v = parse("/dev/sda1 / ext4 rw,relatime 0 0\n/dev/sdb /mnt/my\\040disk vfat ro,noatime 0 0\n").unwrap();
        assert_eq!(v[1].mount_point, "/mnt/my disk");
        assert!(v[1].read_only());
        assert!(!v[0].read_only());
        assert!(parse("a b c\n").is_err());
        assert_eq!(unescape("a\\"), "a\\");
        assert_eq!(unescape("a\\0"), "a\\0");
        assert_eq!(unescape("\\777"), "\\777");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn garbage_never_panics(s in crate::procfs::garbage::kernelish()) {
            let _ = parse(&s);
        }

        #[test]
        fn unescape_never_panics(s in "[\\\\0-9a ]{0,12}") {
            let _ = unescape(&s);
        }
    }
}
