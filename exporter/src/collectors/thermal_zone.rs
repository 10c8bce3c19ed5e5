//! `thermal_zone`: thermal zones and cooling devices from
//! `/sys/class/thermal`.

use crate::collector::{Collector, Sink};
use crate::error::Error;
use crate::root::{list_dir, Root};

pub(crate) struct ThermalZone;

impl Collector for ThermalZone {
    fn name(&self) -> &'static str {
        "thermal_zone"
    }

    fn collect(&self, root: &Root, out: &mut Sink) -> Result<(), Error> {
        let dir = root.sys_path("class/thermal");
        let names = match list_dir(&dir) {
            Ok(n) => n,
            Err(e) if e.is_not_found() => {
                return Err(Error::NoData { collector: "thermal_zone", reason: e.to_string() })
            }
            Err(e) => return Err(e),
        };
        for name in &names {
            let Some(zone) = name.strip_prefix("thermal_zone") else { continue };
            let base = dir.join(name);
            let kind = root.read_trimmed(&base.join("type"))?;
            let temp = root.read_i64(&base.join("temp"))?;
            out.gauge(
                "node_thermal_zone_temp",
                "Zone temperature in Celsius",
                &[("zone", zone), ("type", &kind)],
                temp as f64 / 1000.0,
            );
        }
        for name in &names {
            let Some(dev) = name.strip_prefix("cooling_device") else { continue };
            let base = dir.join(name);
            let kind = root.read_trimmed(&base.join("type"))?;
            let cur = root.read_i64(&base.join("cur_state"))?;
            let max = root.read_i64(&base.join("max_state"))?;
            let l = [("name", dev), ("type", kind.as_str())];
            out.gauge("node_cooling_device_cur_state", "Current throttle state of the cooling device", &l, cur as f64);
            out.gauge("node_cooling_device_max_state", "Maximum throttle state of the cooling device", &l, max as f64);
        }
        Ok(())
    }
}
