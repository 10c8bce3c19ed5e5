//! `hwmon`: hardware sensors from `/sys/class/hwmon`, named as
//! node_exporter names them (`node_hwmon_temp_celsius{chip,sensor}`, ...).

use std::collections::BTreeMap;
use std::path::Path;

use crate::collector::{Collector, Sink};
use crate::error::Error;
use crate::root::{list_dir, read_text, Root};
use crate::sysfs::hwmon::{clean_name, explode, SENSOR_TYPES};

pub(crate) struct Hwmon;

/// sensor (`temp1`) → property (`input`, `max`, `` for `pwm1`) → raw value.
type SensorData = BTreeMap<String, BTreeMap<String, String>>;

fn collect_sensor_data(dir: &Path, data: &mut SensorData) -> Result<(), Error> {
    for file in list_dir(dir)? {
        let Some(sf) = explode(&file) else { continue };
        if !SENSOR_TYPES.contains(&sf.kind) {
            continue;
        }
        // Unreadable attributes (write-only, EIO from a sleeping device)
        // are skipped, as node_exporter does.
        let Ok(raw) = read_text(&dir.join(&file)) else { continue };
        let value = raw.trim_matches('\n').to_string();
        data.entry(format!("{}{}", sf.kind, sf.num)).or_default().insert(sf.property.to_string(), value);
    }
    Ok(())
}

/// A stable chip name: `<bus>_<device>` from the `device` link, else the
/// `name` file, else the hwmonN directory name.
fn chip_name(dir: &Path) -> Result<String, Error> {
    if let Ok(dev) = std::fs::canonicalize(dir.join("device")) {
        let dev_name = dev.file_name().map(|s| clean_name(&s.to_string_lossy())).unwrap_or_default();
        let dev_type = dev
            .parent()
            .and_then(|p| p.file_name())
            .map(|s| clean_name(&s.to_string_lossy()))
            .unwrap_or_default();
        if !dev_type.is_empty() && !dev_name.is_empty() {
            return Ok(format!("{dev_type}_{dev_name}"));
        }
        if !dev_name.is_empty() {
            return Ok(dev_name);
        }
    }
    if let Ok(raw) = std::fs::read_to_string(dir.join("name")) {
        let n = clean_name(&raw);
        if !n.is_empty() {
            return Ok(n);
        }
    }
    let real = std::fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
    let n = real.file_name().map(|s| clean_name(&s.to_string_lossy())).unwrap_or_default();
    if n.is_empty() {
        return Err(Error::NoData { collector: "hwmon", reason: format!("no name for {}", dir.display()) });
    }
    Ok(n)
}

fn update_chip(out: &mut Sink, dir: &Path) -> Result<(), Error> {
    let chip = chip_name(dir)?;
    let mut data = SensorData::new();
    collect_sensor_data(dir, &mut data)?;
    if dir.join("device").exists() {
        collect_sensor_data(&dir.join("device"), &mut data)?;
    }
    if let Ok(raw) = std::fs::read_to_string(dir.join("name")) {
        let human = clean_name(&raw);
        if !human.is_empty() {
            out.gauge(
                "node_hwmon_chip_names",
                "Annotation metric for human-readable chip names",
                &[("chip", &chip), ("chip_name", &human)],
                1.0,
            );
        }
    }
    for (sensor, props) in &data {
        let kind = explode(sensor).map(|s| s.kind).unwrap_or(sensor.as_str());
        let labels = [("chip", chip.as_str()), ("sensor", sensor.as_str())];
        if let Some(label) = props.get("label") {
            out.gauge(
                "node_hwmon_sensor_label",
                "Label for given chip and sensor",
                &[("chip", &chip), ("sensor", sensor), ("label", label)],
                1.0,
            );
        }
        let bare = props.get("").map(String::as_str);
        match kind {
            "beep_enable" => {
                let v = if bare == Some("1") { 1.0 } else { 0.0 };
                out.gauge("node_hwmon_beep_enabled", "Hardware beep enabled", &labels, v);
                continue;
            }
            "vrm" => {
                if let Some(Ok(v)) = bare.map(str::parse::<f64>) {
                    out.gauge("node_hwmon_voltage_regulator_version", "Hardware voltage regulator", &labels, v);
                }
                continue;
            }
            "update_interval" => {
                if let Some(Ok(v)) = bare.map(str::parse::<f64>) {
                    out.gauge(
                        "node_hwmon_update_interval_seconds",
                        "Hardware monitor update interval",
                        &labels,
                        v * 0.001,
                    );
                }
                continue;
            }
            _ => {}
        }
        let prefix = format!("node_hwmon_{kind}");
        for (element, value) in props {
            if element == "label" {
                continue;
            }
            let mut name = prefix.clone();
            if element == "input" {
                if bare.is_some() {
                    name.push_str("_input");
                }
            } else if !element.is_empty() {
                name.push('_');
                name.push_str(&clean_name(element));
            }
            let Ok(v) = value.parse::<f64>() else { continue };
            emit_element(out, &labels, kind, element, &name, v);
        }
    }
    Ok(())
}

fn emit_element(out: &mut Sink, labels: &[(&str, &str)], kind: &str, element: &str, name: &str, v: f64) {
    let g = |out: &mut Sink, n: &str, help: String, v: f64| out.gauge(n, &help, labels, v);
    match (kind, element) {
        (_, "fault" | "alarm") => g(out, name, format!("Hardware sensor {element} status ({kind})"), v),
        (_, "beep") => g(out, &format!("{name}_enabled"), "Hardware monitor sensor has beeping enabled".into(), v),
        ("in" | "cpu", _) => g(out, &format!("{name}_volts"), format!("Hardware monitor for voltage ({element})"), v * 0.001),
        ("temp", e) if e != "type" => {
            let e = if e.is_empty() { "input" } else { e };
            g(out, &format!("{name}_celsius"), format!("Hardware monitor for temperature ({e})"), v * 0.001)
        }
        ("curr", _) => g(out, &format!("{name}_amps"), format!("Hardware monitor for current ({element})"), v * 0.001),
        ("energy", _) => out.counter(
            &format!("{name}_joule_total"),
            &format!("Hardware monitor for joules used so far ({element})"),
            labels,
            v / 1_000_000.0,
        ),
        ("power", "accuracy") => g(out, name, "Hardware monitor power meter accuracy, as a ratio".into(), v / 1_000_000.0),
        ("power", "average_interval" | "average_interval_min" | "average_interval_max") => g(
            out,
            &format!("{name}_seconds"),
            format!("Hardware monitor power usage update interval ({element})"),
            v * 0.001,
        ),
        ("power", _) => g(
            out,
            &format!("{name}_watt"),
            format!("Hardware monitor for power usage in watts ({element})"),
            v / 1_000_000.0,
        ),
        ("humidity", _) => g(out, name, format!("Hardware monitor for humidity in millipercent ({element})"), v),
        ("fan", "input" | "min" | "max" | "target") => g(
            out,
            &format!("{name}_rpm"),
            format!("Hardware monitor for fan revolutions per minute ({element})"),
            v,
        ),
        _ => g(out, name, format!("Hardware monitor {kind} element {element}"), v),
    }
}

impl Collector for Hwmon {
    fn name(&self) -> &'static str {
        "hwmon"
    }

    fn collect(&self, root: &Root, out: &mut Sink) -> Result<(), Error> {
        let dir = root.sys_path("class/hwmon");
        let names = match list_dir(&dir) {
            Ok(n) => n,
            Err(e) if e.is_not_found() => {
                return Err(Error::NoData { collector: "hwmon", reason: e.to_string() })
            }
            Err(e) => return Err(e),
        };
        let mut last_err = None;
        for name in names {
            let chip_dir = dir.join(&name);
            if !chip_dir.is_dir() {
                continue;
            }
            // One broken chip must not hide the others; the last error
            // still marks the collector as failed, as node_exporter does.
            if let Err(e) = update_chip(out, &chip_dir) {
                last_err = Some(e);
            }
        }
        last_err.map_or(Ok(()), Err)
    }
}
