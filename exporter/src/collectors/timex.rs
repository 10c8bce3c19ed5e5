//! `timex`: the kernel's clock discipline state (`adjtimex(2)` in read-only
//! mode), as node_exporter's timex collector reports it.

use crate::collector::{Collector, Sink};
use crate::error::Error;
use crate::root::Root;

pub(crate) struct Timex;

/// `adjtimex` returns this state when the clock is not synchronised.
const TIME_ERROR: i32 = 5;
/// Status bit: `offset` and `jitter` are in nanoseconds, not microseconds.
const STA_NANO: i32 = 0x2000;
/// Frequencies are in parts per million with a 16-bit fraction.
const PPM16FRAC: f64 = 1_000_000.0 * 65_536.0;

/// What the kernel reported, in its own units.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct KernelTimex {
    pub state: i32,
    pub offset: i64,
    pub freq: i64,
    pub maxerror: i64,
    pub esterror: i64,
    pub status: i32,
    pub constant: i64,
    pub precision: i64,
    pub tick: i64,
    pub ppsfreq: i64,
    pub jitter: i64,
    pub shift: i32,
    pub stabil: i64,
    pub jitcnt: i64,
    pub calcnt: i64,
    pub errcnt: i64,
    pub stbcnt: i64,
    pub tai: i32,
}

/// Reads the clock state without changing it.
// `libc::timex` fields are `c_long`: i64 here, i32 on 32-bit targets, so the
// conversions are only useless on 64-bit.
#[allow(unsafe_code, clippy::useless_conversion)]
fn read_kernel_timex() -> std::io::Result<KernelTimex> {
    // SAFETY: `tx` is a zeroed, properly aligned `libc::timex` that lives
    // for the whole call; with `modes == 0` the kernel only fills it in and
    // changes no clock state. No pointer escapes the call.
    let (state, tx) = unsafe {
        let mut tx: libc::timex = std::mem::zeroed();
        tx.modes = 0;
        (libc::adjtimex(&mut tx), tx)
    };
    if state < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(KernelTimex {
        state,
        offset: i64::from(tx.offset),
        freq: i64::from(tx.freq),
        maxerror: i64::from(tx.maxerror),
        esterror: i64::from(tx.esterror),
        status: tx.status,
        constant: i64::from(tx.constant),
        precision: i64::from(tx.precision),
        tick: i64::from(tx.tick),
        ppsfreq: i64::from(tx.ppsfreq),
        jitter: i64::from(tx.jitter),
        shift: tx.shift,
        stabil: i64::from(tx.stabil),
        jitcnt: i64::from(tx.jitcnt),
        calcnt: i64::from(tx.calcnt),
        errcnt: i64::from(tx.errcnt),
        stbcnt: i64::from(tx.stbcnt),
        tai: tx.tai,
    })
}

/// Writes the families for one reading (pure, so it is testable).
pub(crate) fn report(tx: &KernelTimex, out: &mut Sink) {
    let divisor = if tx.status & STA_NANO != 0 { 1e9 } else { 1e6 };
    let sync = if tx.state == TIME_ERROR { 0.0 } else { 1.0 };
    out.gauge("node_timex_sync_status", "Is clock synchronized to a reliable server (1 = yes, 0 = no).", &[], sync);
    out.gauge("node_timex_offset_seconds", "Time offset in between local system and reference clock.", &[], tx.offset as f64 / divisor);
    out.gauge("node_timex_frequency_adjustment_ratio", "Local clock frequency adjustment.", &[], 1.0 + tx.freq as f64 / PPM16FRAC);
    out.gauge("node_timex_maxerror_seconds", "Maximum error in seconds.", &[], tx.maxerror as f64 / 1e6);
    out.gauge("node_timex_estimated_error_seconds", "Estimated error in seconds.", &[], tx.esterror as f64 / 1e6);
    out.gauge("node_timex_status", "Value of the status array bits.", &[], f64::from(tx.status));
    out.gauge("node_timex_loop_time_constant", "Phase-locked loop time constant.", &[], tx.constant as f64);
    out.gauge("node_timex_tick_seconds", "Seconds between clock ticks.", &[], tx.tick as f64 / 1e6);
    out.gauge("node_timex_pps_frequency_hertz", "Pulse per second frequency.", &[], tx.ppsfreq as f64 / PPM16FRAC);
    out.gauge("node_timex_pps_jitter_seconds", "Pulse per second jitter.", &[], tx.jitter as f64 / divisor);
    out.gauge("node_timex_pps_shift_seconds", "Pulse per second interval duration.", &[], f64::from(tx.shift));
    out.gauge("node_timex_pps_stability_hertz", "Pulse per second stability, average of recent frequency changes.", &[], tx.stabil as f64 / PPM16FRAC);
    out.counter("node_timex_pps_jitter_total", "Pulse per second count of jitter limit exceeded events.", &[], tx.jitcnt as f64);
    out.counter("node_timex_pps_calibration_total", "Pulse per second count of calibration intervals.", &[], tx.calcnt as f64);
    out.counter("node_timex_pps_error_total", "Pulse per second count of calibration errors.", &[], tx.errcnt as f64);
    out.counter("node_timex_pps_stability_exceeded_total", "Pulse per second count of stability limit exceeded events.", &[], tx.stbcnt as f64);
    out.gauge("node_timex_tai_offset_seconds", "International Atomic Time (TAI) offset.", &[], f64::from(tx.tai));
}

impl Collector for Timex {
    fn name(&self) -> &'static str {
        "timex"
    }

    fn collect(&self, _root: &Root, out: &mut Sink) -> Result<(), Error> {
        // adjtimex reads the running kernel, not a file under the roots.
        let tx = read_kernel_timex().map_err(|source| Error::Io { path: "adjtimex(2)".into(), source })?;
        report(&tx, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_running_kernel() {
        let tx = read_kernel_timex().expect("adjtimex in read-only mode");
        // The tick is 1e6/HZ microseconds: positive on every Linux.
        assert!(tx.tick > 0);
    }

    fn render(sink: Sink) -> String {
        model::exposition::families_to_string(&sink.into_families(), model::exposition::Format::Text004)
            .expect("render")
    }

    #[test]
    fn units_follow_the_nano_bit() {
        let mut tx = KernelTimex { state: TIME_ERROR, offset: 1500, jitter: 20, tick: 10_000, status: 0x40, freq: 65_536, ..Default::default() };
        let mut sink = Sink::default();
        report(&tx, &mut sink);
        let text = render(sink);
        assert!(text.contains("node_timex_offset_seconds 0.0015\n"), "{text}");
        assert!(text.contains("node_timex_sync_status 0\n"));
        assert!(text.contains("node_timex_tick_seconds 0.01\n"));
        assert!(text.contains("node_timex_frequency_adjustment_ratio 1.000001\n"), "{text}");
        tx.status |= STA_NANO;
        tx.state = 0;
        let mut sink = Sink::default();
        report(&tx, &mut sink);
        let text = render(sink);
        assert!(text.contains("node_timex_offset_seconds 1.5e-06\n"), "{text}");
        assert!(text.contains("node_timex_sync_status 1\n"));
    }
}
