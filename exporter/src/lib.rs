//! A Linux node exporter reading procfs and sysfs, node_exporter-compatible.
