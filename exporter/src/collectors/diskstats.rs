//! `diskstats`: block device I/O from `/proc/diskstats`, with device
//! properties from the udev database.

use std::collections::HashMap;

use regex_lite::Regex;

use crate::collector::{Collector, Sink};
use crate::error::Error;
use crate::procfs::diskstats;
use crate::root::{read_text, Root};
use crate::udev;

pub(crate) struct DiskStats {
    pub(crate) exclude: Regex,
    pub(crate) include: Option<Regex>,
}

const SECTOR: f64 = 512.0;
const SECONDS_PER_TICK: f64 = 0.001;

/// (metric, help, is_counter, scale), in /proc/diskstats column order.
const COLUMNS: [(&str, &str, bool, f64); 17] = [
    ("node_disk_reads_completed_total", "The total number of reads completed successfully.", true, 1.0),
    ("node_disk_reads_merged_total", "The total number of reads merged.", true, 1.0),
    ("node_disk_read_bytes_total", "The total number of bytes read successfully.", true, SECTOR),
    ("node_disk_read_time_seconds_total", "The total number of seconds spent by all reads.", true, SECONDS_PER_TICK),
    ("node_disk_writes_completed_total", "The total number of writes completed successfully.", true, 1.0),
    ("node_disk_writes_merged_total", "The number of writes merged.", true, 1.0),
    ("node_disk_written_bytes_total", "The total number of bytes written successfully.", true, SECTOR),
    ("node_disk_write_time_seconds_total", "This is the total number of seconds spent by all writes.", true, SECONDS_PER_TICK),
    ("node_disk_io_now", "The number of I/Os currently in progress.", false, 1.0),
    ("node_disk_io_time_seconds_total", "Total seconds spent doing I/Os.", true, SECONDS_PER_TICK),
    ("node_disk_io_time_weighted_seconds_total", "The weighted # of seconds spent doing I/Os.", true, SECONDS_PER_TICK),
    ("node_disk_discards_completed_total", "The total number of discards completed successfully.", true, 1.0),
    ("node_disk_discards_merged_total", "The total number of discards merged.", true, 1.0),
    ("node_disk_discarded_sectors_total", "The total number of sectors discarded successfully.", true, 1.0),
    ("node_disk_discard_time_seconds_total", "This is the total number of seconds spent by all discards.", true, SECONDS_PER_TICK),
    ("node_disk_flush_requests_total", "The total number of flush requests completed successfully", true, 1.0),
    ("node_disk_flush_requests_time_seconds_total", "This is the total number of seconds spent by all flush requests.", true, SECONDS_PER_TICK),
];

const ATA: [(&str, &str, &str); 3] = [
    ("ID_ATA_WRITE_CACHE", "node_disk_ata_write_cache", "ATA disk has a write cache."),
    ("ID_ATA_WRITE_CACHE_ENABLED", "node_disk_ata_write_cache_enabled", "ATA disk has its write cache enabled."),
    ("ID_ATA_ROTATION_RATE_RPM", "node_disk_ata_rotation_rate_rpm", "ATA disk rotation rate in RPMs (0 for SSDs)."),
];

impl DiskStats {
    fn ignored(&self, dev: &str) -> bool {
        match &self.include {
            Some(inc) => !inc.is_match(dev),
            None => self.exclude.is_match(dev),
        }
    }
}

impl Collector for DiskStats {
    fn name(&self) -> &'static str {
        "diskstats"
    }

    fn collect(&self, root: &Root, out: &mut Sink) -> Result<(), Error> {
        let disks = root.parse_proc("diskstats", diskstats::parse)?;
        for d in disks {
            let dev = d.device.as_str();
            if self.ignored(dev) {
                continue;
            }
            // A missing udev database only leaves the info labels empty.
            let info = read_text(&root.udev_data_root().join(format!("b{}:{}", d.major, d.minor)))
                .map(|t| udev::parse_properties(&t))
                .unwrap_or_default();
            let p = |k: &str| info.get(k).map(String::as_str).unwrap_or("");
            let serial = match p("SCSI_IDENT_SERIAL") {
                "" => p("ID_SERIAL_SHORT"),
                s => s,
            };
            let (major, minor) = (d.major.to_string(), d.minor.to_string());
            out.gauge(
                "node_disk_info",
                "Info of /sys/block/<block_device>.",
                &[
                    ("device", dev),
                    ("major", &major),
                    ("minor", &minor),
                    ("path", p("ID_PATH")),
                    ("wwn", p("ID_WWN")),
                    ("model", p("ID_MODEL")),
                    ("serial", serial),
                    ("revision", p("ID_REVISION")),
                ],
                1.0,
            );
            for (&(metric, help, counter, scale), &raw) in COLUMNS.iter().zip(&d.values) {
                let v = raw as f64 * scale;
                if counter {
                    out.counter(metric, help, &[("device", dev)], v);
                } else {
                    out.gauge(metric, help, &[("device", dev)], v);
                }
            }
            emit_udev(out, dev, &info);
        }
        Ok(())
    }
}

fn emit_udev(out: &mut Sink, dev: &str, info: &HashMap<String, String>) {
    let p = |k: &str| info.get(k).map(String::as_str).unwrap_or("");
    if !p("ID_FS_TYPE").is_empty() {
        out.gauge(
            "node_disk_filesystem_info",
            "Info about disk filesystem.",
            &[
                ("device", dev),
                ("type", p("ID_FS_TYPE")),
                ("usage", p("ID_FS_USAGE")),
                ("uuid", p("ID_FS_UUID")),
                ("version", p("ID_FS_VERSION")),
            ],
            1.0,
        );
    }
    if !p("DM_NAME").is_empty() {
        out.gauge(
            "node_disk_device_mapper_info",
            "Info about disk device mapper.",
            &[
                ("device", dev),
                ("name", p("DM_NAME")),
                ("uuid", p("DM_UUID")),
                ("vg_name", p("DM_VG_NAME")),
                ("lv_name", p("DM_LV_NAME")),
                ("lv_layer", p("DM_LV_LAYER")),
            ],
            1.0,
        );
    }
    if !p("ID_ATA").is_empty() {
        for (key, metric, help) in ATA {
            if let Some(Ok(v)) = info.get(key).map(|s| s.parse::<f64>()) {
                out.gauge(metric, help, &[("device", dev)], v);
            }
        }
    }
}
