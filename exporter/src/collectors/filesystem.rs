//! `filesystem`: size and usage of mounted filesystems (mount list from
//! procfs, numbers from `statfs` on the mount point under rootfs).

use std::collections::HashSet;

use regex_lite::Regex;

use crate::collector::{Collector, Sink};
use crate::error::Error;
use crate::procfs::mounts;
use crate::root::Root;

pub(crate) struct Filesystem {
    pub(crate) mount_points_exclude: Regex,
    pub(crate) fs_types_exclude: Regex,
}

impl Collector for Filesystem {
    fn name(&self) -> &'static str {
        "filesystem"
    }

    fn collect(&self, root: &Root, out: &mut Sink) -> Result<(), Error> {
        // PID 1's view, as node_exporter, falling back to our own.
        let list = match root.parse_proc("1/mounts", mounts::parse) {
            Err(e) if e.is_not_found() => root.parse_proc("mounts", mounts::parse)?,
            r => r?,
        };
        let rootfs = root.rootfs_root().to_string_lossy().trim_end_matches('/').to_string();
        let mut seen = HashSet::new();
        for m in list {
            let mount_point = match m.mount_point.strip_prefix(&rootfs) {
                Some("") => "/".to_string(),
                Some(rest) if !rootfs.is_empty() && rest.starts_with('/') => rest.to_string(),
                _ => m.mount_point.clone(),
            };
            if self.mount_points_exclude.is_match(&mount_point) || self.fs_types_exclude.is_match(&m.fs_type) {
                continue;
            }
            if !seen.insert((m.device.clone(), mount_point.clone(), m.fs_type.clone())) {
                continue;
            }
            let labels = [("device", m.device.as_str()), ("fstype", m.fs_type.as_str()), ("mountpoint", mount_point.as_str())];
            let stat = rustix::fs::statfs(root.root_path(&mount_point));
            let Ok(s) = stat else {
                out.gauge(
                    "node_filesystem_device_error",
                    "Whether an error occurred while getting statistics for the given device.",
                    &labels,
                    1.0,
                );
                continue;
            };
            out.gauge(
                "node_filesystem_device_error",
                "Whether an error occurred while getting statistics for the given device.",
                &labels,
                0.0,
            );
            let bsize = s.f_bsize as f64;
            out.gauge("node_filesystem_size_bytes", "Filesystem size in bytes.", &labels, s.f_blocks as f64 * bsize);
            out.gauge("node_filesystem_free_bytes", "Filesystem free space in bytes.", &labels, s.f_bfree as f64 * bsize);
            out.gauge(
                "node_filesystem_avail_bytes",
                "Filesystem space available to non-root users in bytes.",
                &labels,
                s.f_bavail as f64 * bsize,
            );
            out.gauge("node_filesystem_files", "Filesystem total file nodes.", &labels, s.f_files as f64);
            out.gauge("node_filesystem_files_free", "Filesystem total free file nodes.", &labels, s.f_ffree as f64);
            out.gauge(
                "node_filesystem_readonly",
                "Filesystem read-only status.",
                &labels,
                if m.read_only() { 1.0 } else { 0.0 },
            );
        }
        Ok(())
    }
}
