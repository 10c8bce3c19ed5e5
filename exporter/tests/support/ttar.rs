//! Unpacker for node_exporter's "text tar" fixture archives (format
//! described in shared/conformance/node_exporter/FORMAT.md).

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

fn bad(line: usize, msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("ttar line {line}: {}", msg.into()))
}

/// Joins a relative archive path under `dest`, refusing absolute paths
/// and `..` components.
fn safe_join(dest: &Path, rel: &[u8], line: usize) -> io::Result<PathBuf> {
    let rel = std::str::from_utf8(rel).map_err(|_| bad(line, "path is not UTF-8"))?;
    let p = Path::new(rel);
    if p.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Err(bad(line, format!("path escapes the destination: {rel:?}")));
    }
    Ok(dest.join(p))
}

/// Decodes one body line: trailing unescaped `EOF` = no newline; unescaped
/// `NULLBYTE` = 0x00; `\NULLBYTE` and `\EOF` lose their backslash.
fn decode_line(line: &[u8], out: &mut Vec<u8>) {
    let (line, newline) = match line.strip_suffix(b"EOF") {
        Some(rest) if !rest.ends_with(b"\\") => (rest, false),
        _ => (line, true),
    };
    let mut i = 0;
    while i < line.len() {
        if line[i] == b'\\' && line[i + 1..].starts_with(b"NULLBYTE") {
            out.extend_from_slice(b"NULLBYTE");
            i += 9;
        } else if line[i] == b'\\' && line[i + 1..].starts_with(b"EOF") {
            out.extend_from_slice(b"EOF");
            i += 4;
        } else if line[i..].starts_with(b"NULLBYTE") {
            out.push(0);
            i += 8;
        } else {
            out.push(line[i]);
            i += 1;
        }
    }
    if newline {
        out.push(b'\n');
    }
}

/// Unpacks the archive at `archive` into `dest` (entry paths are relative,
/// e.g. `sys/...`).
pub fn unpack(archive: &Path, dest: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;

    let data = fs::read(archive)?;
    let mut lines: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let mut current: Option<PathBuf> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let ln = i + 1;
        i += 1;
        if line.starts_with(b"#") {
            continue;
        } else if let Some(p) = line.strip_prefix(b"Directory: ") {
            let path = safe_join(dest, p, ln)?;
            fs::create_dir_all(&path)?;
            current = Some(path);
        } else if let Some(p) = line.strip_prefix(b"Path: ") {
            let path = safe_join(dest, p, ln)?;
            if fs::symlink_metadata(&path).is_ok() {
                fs::remove_file(&path)?;
            }
            current = Some(path);
        } else if let Some(n) = line.strip_prefix(b"Lines: ") {
            let n: usize = std::str::from_utf8(n)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or_else(|| bad(ln, "bad Lines: count"))?;
            let path = current.as_ref().ok_or_else(|| bad(ln, "Lines: without Path:"))?;
            if i + n > lines.len() {
                return Err(bad(ln, "body runs past the end of the archive"));
            }
            let mut body = Vec::new();
            for l in &lines[i..i + n] {
                decode_line(l, &mut body);
            }
            i += n;
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(path, body)?;
        } else if let Some(m) = line.strip_prefix(b"Mode: ") {
            let mode = std::str::from_utf8(m)
                .ok()
                .and_then(|s| u32::from_str_radix(s.trim(), 8).ok())
                .ok_or_else(|| bad(ln, "bad Mode:"))?;
            let path = current.as_ref().ok_or_else(|| bad(ln, "Mode: without a path"))?;
            fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
        } else if let Some(t) = line.strip_prefix(b"SymlinkTo: ") {
            let path = current.as_ref().ok_or_else(|| bad(ln, "SymlinkTo: without Path:"))?;
            let target = std::str::from_utf8(t).map_err(|_| bad(ln, "symlink target is not UTF-8"))?;
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            std::os::unix::fs::symlink(target, path)?;
        } else {
            return Err(bad(ln, format!("unexpected line {:?}", String::from_utf8_lossy(line))));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes() {
        let mut out = Vec::new();
        decode_line(b"aNULLBYTEb\\NULLBYTE\\EOF", &mut out);
        assert_eq!(out, b"a\0bNULLBYTEEOF\n");
        out.clear();
        decode_line(b"lastEOF", &mut out);
        assert_eq!(out, b"last");
        out.clear();
        decode_line(b"NULLBYTENULLBYTE", &mut out);
        assert_eq!(out, b"\0\0\n");
    }

    #[test]
    fn unpacks_a_small_archive() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("a.ttar");
        fs::write(
            &archive,
            "# Archive created by ttar -c -f a.ttar sys\nDirectory: sys/a\nMode: 755\n# ttar - - -\n\
Path: sys/a/f\nLines: 2\nline one\nno newlineEOF\nMode: 644\n# ttar - - -\n\
Path: sys/a/l\nSymlinkTo: f\n# ttar - - -\nPath: sys/a/empty\nLines: 0\nMode: 444\n",
        )
        .unwrap();
        let out = dir.path().join("out");
        unpack(&archive, &out).unwrap();
        assert_eq!(fs::read(out.join("sys/a/f")).unwrap(), b"line one\nno newline");
        assert_eq!(fs::read(out.join("sys/a/l")).unwrap(), b"line one\nno newline");
        assert_eq!(fs::read(out.join("sys/a/empty")).unwrap(), b"");
        fs::write(&archive, "Path: ../escape\nLines: 0\n").unwrap();
        assert!(unpack(&archive, &out).is_err());
        fs::write(&archive, "Bogus line\n").unwrap();
        assert!(unpack(&archive, &out).is_err());
    }
}
