//! Pure parsers and name rules for files under `/sys`.
//!
//! Most sysfs attributes are one value per file and are read with
//! [`crate::root::read_trimmed`]; the modules here cover files with
//! structure (CPU lists, clocksource lists) and the naming rules of the
//! hwmon tree.

pub mod cpulist;
pub mod hwmon;
