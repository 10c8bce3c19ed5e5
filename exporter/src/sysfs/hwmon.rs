//! Naming rules of the hwmon sysfs interface
//! (`Documentation/hwmon/sysfs-interface`): attribute files are named
//! `<type><number>_<property>`, e.g. `temp1_input`, `fan2_min`, `pwm1`.

/// Sensor types node_exporter reports.
pub const SENSOR_TYPES: [&str; 13] = [
    "vrm",
    "beep_enable",
    "update_interval",
    "in",
    "cpu",
    "fan",
    "pwm",
    "temp",
    "curr",
    "power",
    "energy",
    "humidity",
    "intrusion",
];

/// A split attribute file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SensorFile<'a> {
    /// The type: everything before the first digit (`temp`).
    pub kind: &'a str,
    /// The number (0 when absent).
    pub num: u64,
    /// The property after `_` (empty when absent).
    pub property: &'a str,
}

/// Splits `temp1_input` into (`temp`, 1, `input`). The type is the longest
/// digit-free prefix and must be non-empty; the number, if any, follows;
/// then either the end or `_property`.
pub fn explode(name: &str) -> Option<SensorFile<'_>> {
    let type_end = name.find(|c: char| c.is_ascii_digit()).unwrap_or(name.len());
    if type_end == 0 {
        return None;
    }
    let rest = &name[type_end..];
    let digits_end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    let (digits, tail) = rest.split_at(digits_end);
    let num = if digits.is_empty() { 0 } else { digits.parse::<u64>().ok()? };
    // No digits at all means the type is the whole name (the greedy
    // `[^0-9]+` of node_exporter's pattern), e.g. `beep_enable`.
    let (kind, property) = if tail.is_empty() {
        (&name[..type_end], "")
    } else if let Some(p) = tail.strip_prefix('_').filter(|p| !p.is_empty()) {
        (&name[..type_end], p)
    } else {
        return None;
    };
    Some(SensorFile { kind, num, property })
}

/// node_exporter's metric-name cleaning: lower case, every byte outside
/// `[a-z0-9:_]` becomes `_`, leading and trailing `_` trimmed.
pub fn clean_name(s: &str) -> String {
    let lower = s.to_lowercase();
    let replaced: String = lower
        .chars()
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || c == ':' || c == '_' { c } else { '_' })
        .collect();
    replaced.trim_matches('_').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn explodes() {
        assert_eq!(explode("temp1_input"), Some(SensorFile { kind: "temp", num: 1, property: "input" }));
        assert_eq!(explode("pwm1"), Some(SensorFile { kind: "pwm", num: 1, property: "" }));
        assert_eq!(explode("pwm1_auto_point1_pwm"), Some(SensorFile { kind: "pwm", num: 1, property: "auto_point1_pwm" }));
        assert_eq!(explode("beep_enable"), Some(SensorFile { kind: "beep_enable", num: 0, property: "" }));
        assert_eq!(explode("name"), Some(SensorFile { kind: "name", num: 0, property: "" }));
        assert_eq!(explode("1abc"), None);
        assert_eq!(explode(""), None);
        assert_eq!(explode("temp1_"), None);
    }

    #[test]
    fn cleans() {
        assert_eq!(clean_name("Platform_applesmc.768\n"), "platform_applesmc_768");
        assert_eq!(clean_name("__x__"), "x");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn garbage_never_panics(s in "\\PC{0,20}") {
            let _ = explode(&s);
            let _ = clean_name(&s);
        }
    }
}
