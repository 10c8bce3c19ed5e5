//! The injected filesystem roots every collector reads under.

use std::path::{Path, PathBuf};

use crate::error::{Error, ParseError};

/// Where the kernel's pseudo filesystems and the host's root are mounted.
///
/// node_exporter's `--path.procfs`, `--path.sysfs`, `--path.rootfs` and
/// `--path.udev.data`. Tests point them at fixture trees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    procfs: PathBuf,
    sysfs: PathBuf,
    rootfs: PathBuf,
    udev_data: PathBuf,
}

impl Default for Root {
    fn default() -> Self {
        Root {
            procfs: PathBuf::from("/proc"),
            sysfs: PathBuf::from("/sys"),
            rootfs: PathBuf::from("/"),
            udev_data: PathBuf::from("/run/udev/data"),
        }
    }
}

impl Root {
    /// The live system's roots: `/proc`, `/sys`, `/`, `/run/udev/data`.
    pub fn new() -> Self {
        Root::default()
    }

    /// Sets the procfs mount point.
    pub fn procfs(&mut self, path: impl Into<PathBuf>) -> &mut Self {
        self.procfs = path.into();
        self
    }

    /// Sets the sysfs mount point.
    pub fn sysfs(&mut self, path: impl Into<PathBuf>) -> &mut Self {
        self.sysfs = path.into();
        self
    }

    /// Sets the host root (used for `/etc/os-release` and mount points).
    pub fn rootfs(&mut self, path: impl Into<PathBuf>) -> &mut Self {
        self.rootfs = path.into();
        self
    }

    /// Sets the udev database directory.
    pub fn udev_data(&mut self, path: impl Into<PathBuf>) -> &mut Self {
        self.udev_data = path.into();
        self
    }

    /// The procfs root.
    pub fn procfs_root(&self) -> &Path {
        &self.procfs
    }

    /// The sysfs root.
    pub fn sysfs_root(&self) -> &Path {
        &self.sysfs
    }

    /// The host root.
    pub fn rootfs_root(&self) -> &Path {
        &self.rootfs
    }

    /// The udev database directory.
    pub fn udev_data_root(&self) -> &Path {
        &self.udev_data
    }

    /// `rel` under procfs.
    pub fn proc_path(&self, rel: &str) -> PathBuf {
        self.procfs.join(rel)
    }

    /// `rel` under sysfs.
    pub fn sys_path(&self, rel: &str) -> PathBuf {
        self.sysfs.join(rel)
    }

    /// An absolute host path (`/etc/os-release`) re-rooted under rootfs.
    pub fn root_path(&self, abs: &str) -> PathBuf {
        self.rootfs.join(abs.trim_start_matches('/'))
    }

    /// Reads `rel` under procfs as text.
    pub fn read_proc(&self, rel: &str) -> Result<String, Error> {
        read_text(&self.proc_path(rel))
    }

    /// Reads `rel` under sysfs as text.
    pub fn read_sys(&self, rel: &str) -> Result<String, Error> {
        read_text(&self.sys_path(rel))
    }

    /// Reads and parses `rel` under procfs, errors carrying the path.
    pub fn parse_proc<T>(
        &self,
        rel: &str,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Result<T, Error> {
        let path = self.proc_path(rel);
        let text = read_text(&path)?;
        parse(&text).map_err(|e| Error::parse(path, e))
    }
}

/// Largest file a collector reads (procfs and sysfs files are far smaller;
/// a bigger one is cut here rather than filling memory).
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// Reads a file as text; invalid UTF-8 is replaced rather than rejected,
/// because kernel files are ASCII and a stray byte must not fail a scrape.
/// At most [`MAX_FILE_BYTES`] are read.
pub fn read_text(path: &Path) -> Result<String, Error> {
    use std::io::Read;
    // `Take` hides the file's size hint, so reading costs open, read(s) and
    // close, without the stat that `fs::read` adds (pseudo files report
    // size 0 or 4096 anyway); one scrape reads a few hundred files.
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::with_capacity(4096);
    file.take(MAX_FILE_BYTES).read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// Reads a one-value sysfs file, trimmed.
pub fn read_trimmed(path: &Path) -> Result<String, Error> {
    Ok(read_text(path)?.trim().to_string())
}

/// Reads a one-value file holding an unsigned integer.
pub fn read_u64(path: &Path) -> Result<u64, Error> {
    let s = read_trimmed(path)?;
    s.parse::<u64>()
        .map_err(|_| Error::parse(path, ParseError::new(1, format!("not an unsigned integer: {s:?}"))))
}

/// Reads a one-value file holding a signed integer.
pub fn read_i64(path: &Path) -> Result<i64, Error> {
    let s = read_trimmed(path)?;
    s.parse::<i64>()
        .map_err(|_| Error::parse(path, ParseError::new(1, format!("not an integer: {s:?}"))))
}

/// Lists a directory's entry names, sorted (so output does not depend on
/// directory order).
pub fn list_dir(path: &Path) -> Result<Vec<String>, Error> {
    let rd = std::fs::read_dir(path).map_err(|e| Error::io(path, e))?;
    let mut names = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(path, e))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_rerooted() {
        let mut r = Root::new();
        r.procfs("/x/proc").sysfs("/x/sys").rootfs("/x");
        assert_eq!(r.proc_path("stat"), PathBuf::from("/x/proc/stat"));
        assert_eq!(r.sys_path("class/hwmon"), PathBuf::from("/x/sys/class/hwmon"));
        assert_eq!(r.root_path("/etc/os-release"), PathBuf::from("/x/etc/os-release"));
    }

    #[test]
    fn missing_file_error_names_path() {
        let mut r = Root::new();
        r.procfs("/nonexistent-root-for-test");
        let e = r.read_proc("stat").unwrap_err();
        assert!(e.is_not_found());
        assert!(e.to_string().contains("/nonexistent-root-for-test/stat"), "{e}");
        assert!(e.chain().contains("No such file"), "{}", e.chain());
    }
}
