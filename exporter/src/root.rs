//! The injected filesystem roots every collector reads under.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{Error, ParseError};

/// Where the kernel's pseudo filesystems and the host's root are mounted.
///
/// node_exporter's `--path.procfs`, `--path.sysfs`, `--path.rootfs` and
/// `--path.udev.data`. Tests point them at fixture trees.
#[derive(Debug, Clone)]
pub struct Root {
    procfs: PathBuf,
    sysfs: PathBuf,
    rootfs: PathBuf,
    udev_data: PathBuf,
    /// Set by [`keep_open`](Root::keep_open); clones share it.
    open: Option<Arc<OpenFiles>>,
}

/// procfs and sysfs files kept open between scrapes.
///
/// Opening a kernel file costs more than generating its text for most of
/// them (a path walk through kernfs or procfs plus per-open state: 5 to
/// 20 us each on the machine of issue 4, against 2 to 25 us for the read),
/// and a scrape reads a few dozen. A kept file is read again from offset
/// 0, which makes the kernel generate it afresh (seq_file, sysctl and
/// kernfs files all do). Only files on procfs or sysfs are kept (regular
/// files may be replaced by a rename); a kept file that fails to read
/// (its device is gone) is dropped and the path opened again.
#[derive(Default)]
struct OpenFiles {
    files: Mutex<HashMap<PathBuf, File>>,
}

impl OpenFiles {
    /// Most files kept (hosts with hundreds of CPUs or disks read more per
    /// scrape; past this they are opened and closed as usual).
    const MAX: usize = 512;

    fn read(&self, path: &Path) -> Result<String, Error> {
        // Taken out while reading, so that the lock is not held during I/O
        // (a concurrent reader of the same path opens its own).
        let kept = self.lock().remove(path);
        if let Some(mut file) = kept {
            let again = file.seek(SeekFrom::Start(0)).and_then(|_| read_all(&mut file));
            if let Ok(bytes) = again {
                self.lock().insert(path.to_path_buf(), file);
                return Ok(into_text(bytes));
            }
        }
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        let bytes = read_all(&mut file).map_err(|e| Error::io(path, e))?;
        if is_kernel_fs(&file) {
            let mut files = self.lock();
            if files.len() < Self::MAX {
                files.insert(path.to_path_buf(), file);
            }
        }
        Ok(into_text(bytes))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, File>> {
        // Poisoning can only come from a panic between remove and insert,
        // which leaves the map consistent.
        self.files.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn len(&self) -> usize {
        self.lock().len()
    }
}

impl std::fmt::Debug for OpenFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OpenFiles({})", self.len())
    }
}

// Kept files are a cache, not part of what a `Root` is: two roots with the
// same paths are equal whether or not they keep files open.
impl PartialEq for Root {
    fn eq(&self, other: &Self) -> bool {
        self.procfs == other.procfs
            && self.sysfs == other.sysfs
            && self.rootfs == other.rootfs
            && self.udev_data == other.udev_data
    }
}

impl Eq for Root {}

/// True when `file` is on procfs or sysfs.
fn is_kernel_fs(file: &File) -> bool {
    /// `SYSFS_MAGIC` in linux/magic.h (rustix names only procfs's).
    const SYSFS_MAGIC: u64 = 0x6265_6572;
    match rustix::fs::fstatfs(file) {
        #[allow(clippy::unnecessary_cast)] // f_type's width varies by target
        Ok(st) => {
            let kind = st.f_type as u64;
            kind == rustix::fs::PROC_SUPER_MAGIC as u64 || kind == SYSFS_MAGIC
        }
        Err(_) => false,
    }
}

impl Default for Root {
    fn default() -> Self {
        Root {
            procfs: PathBuf::from("/proc"),
            sysfs: PathBuf::from("/sys"),
            rootfs: PathBuf::from("/"),
            udev_data: PathBuf::from("/run/udev/data"),
            open: None,
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

    /// Keeps procfs and sysfs files open between reads, reading them again
    /// from the start (default: no). Saves the kernel's path walk and open
    /// on every scrape; costs one file descriptor per file read (at most
    /// 512). Files elsewhere (rootfs, textfile, fixture trees) are opened
    /// each time either way.
    pub fn keep_open(&mut self, yes: bool) -> &mut Self {
        self.open = yes.then(|| Arc::new(OpenFiles::default()));
        self
    }

    /// Reads a file as text, as [`read_text`] does, through the kept files
    /// when [`keep_open`](Root::keep_open) is on.
    pub fn read(&self, path: &Path) -> Result<String, Error> {
        match &self.open {
            Some(open) => open.read(path),
            None => read_text(path),
        }
    }

    /// [`read`](Root::read), trimmed.
    pub fn read_trimmed(&self, path: &Path) -> Result<String, Error> {
        Ok(self.read(path)?.trim().to_string())
    }

    /// [`read`](Root::read) of a file holding an unsigned integer.
    pub fn read_u64(&self, path: &Path) -> Result<u64, Error> {
        parse_u64(path, &self.read_trimmed(path)?)
    }

    /// [`read`](Root::read) of a file holding a signed integer.
    pub fn read_i64(&self, path: &Path) -> Result<i64, Error> {
        parse_i64(path, &self.read_trimmed(path)?)
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
        self.read(&self.proc_path(rel))
    }

    /// Reads `rel` under sysfs as text.
    pub fn read_sys(&self, rel: &str) -> Result<String, Error> {
        self.read(&self.sys_path(rel))
    }

    /// Reads and parses `rel` under procfs, errors carrying the path.
    pub fn parse_proc<T>(
        &self,
        rel: &str,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Result<T, Error> {
        let path = self.proc_path(rel);
        let text = self.read(&path)?;
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
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let bytes = read_all(&mut file).map_err(|e| Error::io(path, e))?;
    Ok(into_text(bytes))
}

/// Reads from the current offset to the end, at most [`MAX_FILE_BYTES`].
fn read_all(file: &mut File) -> std::io::Result<Vec<u8>> {
    // `Take` hides the file's size hint, so reading costs read(s) without
    // the stat that `fs::read` adds (pseudo files report size 0 or 4096
    // anyway); one scrape reads a few dozen files.
    let mut bytes = Vec::with_capacity(4096);
    file.take(MAX_FILE_BYTES).read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn into_text(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// Reads a one-value sysfs file, trimmed.
pub fn read_trimmed(path: &Path) -> Result<String, Error> {
    Ok(read_text(path)?.trim().to_string())
}

/// Reads a one-value file holding an unsigned integer.
pub fn read_u64(path: &Path) -> Result<u64, Error> {
    parse_u64(path, &read_trimmed(path)?)
}

fn parse_u64(path: &Path, s: &str) -> Result<u64, Error> {
    s.parse::<u64>()
        .map_err(|_| Error::parse(path, ParseError::new(1, format!("not an unsigned integer: {s:?}"))))
}

fn parse_i64(path: &Path, s: &str) -> Result<i64, Error> {
    s.parse::<i64>().map_err(|_| Error::parse(path, ParseError::new(1, format!("not an integer: {s:?}"))))
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
    fn kept_kernel_files_are_read_afresh() {
        let mut r = Root::new();
        r.keep_open(true);
        let uptime = Path::new("/proc/uptime");
        if !uptime.exists() {
            println!("skipped: /proc/uptime not found");
            return;
        }
        let first = r.read(uptime).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let second = r.read(uptime).unwrap();
        assert_ne!(first, second, "a kept /proc file must be generated again");
        assert_eq!(r.open.as_ref().unwrap().len(), 1);
        // Clones share the kept files; equality ignores them.
        let c = r.clone();
        assert_eq!(c, r);
        assert_eq!(c.read_u64(Path::new("/proc/sys/kernel/pid_max")).map(|v| v > 0).ok(), Some(true));
        assert_eq!(r.open.as_ref().unwrap().len(), 2);
        let mut plain = r.clone();
        plain.keep_open(false);
        assert_eq!(plain, r);
    }

    #[test]
    fn regular_files_are_not_kept_and_gone_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("value");
        std::fs::write(&p, "1\n").unwrap();
        let mut r = Root::new();
        r.keep_open(true);
        assert_eq!(r.read_u64(&p).unwrap(), 1);
        // Replaced by a rename, as tools update files: the new one is read.
        let tmp = dir.path().join("value.tmp");
        std::fs::write(&tmp, "-2\n").unwrap();
        std::fs::rename(&tmp, &p).unwrap();
        assert_eq!(r.read_i64(&p).unwrap(), -2);
        assert_eq!(r.open.as_ref().unwrap().len(), 0);
        std::fs::remove_file(&p).unwrap();
        assert!(r.read(&p).unwrap_err().is_not_found());
        assert!(r.read_u64(&dir.path().join("nope")).is_err());
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
