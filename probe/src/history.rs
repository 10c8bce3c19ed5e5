//! Heartbeat records and uptime figures. Pure: no clock, no files.
//!
//! # How uptime is computed
//!
//! Like Uptime Kuma 2, uptime is weighted by **beat count**, not by time:
//! `uptime = up beats / (up beats + down beats)` over a window, where UP and
//! MAINTENANCE beats count as up and DOWN and PENDING beats count as down.
//! Beats are kept as totals in buckets, so a window is a whole number of
//! buckets ending with the current one:
//!
//! * `24h`: the current hour bucket and the 23 before it (hourly buckets);
//! * `30d`: today (UTC) and the 29 days before (daily buckets);
//! * `1y`: today and the 364 days before (daily buckets).
//!
//! The average response time of a window is the mean `ping_ms` of its
//! counted-up beats that carry one. A window with no beats has no figure
//! (`None`), not 100%.
//!
//! Memory per monitor is bounded: at most 25 hourly and 366 daily buckets of
//! 24 bytes each.

use crate::state::{Beat, Status};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
const MAX_HOURS: usize = 25;
const MAX_DAYS: usize = 366;

/// An uptime window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Window {
    /// The last 24 hours (hourly buckets).
    Day,
    /// The last 30 days (daily buckets).
    Month,
    /// The last 365 days (daily buckets).
    Year,
}

impl Window {
    /// All windows, shortest first.
    pub const ALL: [Window; 3] = [Window::Day, Window::Month, Window::Year];

    /// The label used in metrics (`24h`, `30d`, `1y`).
    pub fn label(self) -> &'static str {
        match self {
            Window::Day => "24h",
            Window::Month => "30d",
            Window::Year => "1y",
        }
    }
}

/// Totals of one time bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Beats counted as up (UP, MAINTENANCE).
    pub up: u32,
    /// Beats counted as down (DOWN, PENDING).
    pub down: u32,
    /// Sum of `ping_ms` over up beats that have one.
    pub ping_sum: u64,
    /// Number of up beats that have a `ping_ms`.
    pub ping_count: u32,
}

impl Totals {
    fn add(&mut self, o: &Totals) {
        self.up = self.up.saturating_add(o.up);
        self.down = self.down.saturating_add(o.down);
        self.ping_sum = self.ping_sum.saturating_add(o.ping_sum);
        self.ping_count = self.ping_count.saturating_add(o.ping_count);
    }

    /// Totals for one beat.
    pub fn of(status: Status, ping_ms: Option<u64>) -> Totals {
        let up = status.counts_as_up();
        let ping = if up { ping_ms } else { None };
        Totals {
            up: up as u32,
            down: (!up) as u32,
            ping_sum: ping.unwrap_or(0),
            ping_count: ping.is_some() as u32,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bucket {
    key: i64,
    totals: Totals,
}

fn add_to(buckets: &mut VecDeque<Bucket>, key: i64, t: &Totals, max: usize) {
    match buckets.back_mut() {
        Some(b) if b.key == key => b.totals.add(t),
        Some(b) if b.key > key => {
            // Out-of-order (replayed) data: find its place.
            match buckets.binary_search_by_key(&key, |b| b.key) {
                Ok(i) => buckets[i].totals.add(t),
                Err(i) => {
                    if i == 0 && buckets.len() >= max {
                        return; // older than everything kept
                    }
                    buckets.insert(i, Bucket { key, totals: *t });
                }
            }
        }
        _ => buckets.push_back(Bucket { key, totals: *t }),
    }
    while buckets.len() > max {
        buckets.pop_front();
    }
}

/// Uptime and response-time totals of one monitor, in hourly and daily buckets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UptimeStats {
    hours: VecDeque<Bucket>,
    days: VecDeque<Bucket>,
}

impl UptimeStats {
    /// Empty statistics.
    pub fn new() -> Self {
        Self::default()
    }

    /// Count one beat at `time` (Unix ms).
    pub fn add(&mut self, time: i64, status: Status, ping_ms: Option<u64>) {
        let t = Totals::of(status, ping_ms);
        add_to(&mut self.hours, time.div_euclid(HOUR_MS), &t, MAX_HOURS);
        add_to(&mut self.days, time.div_euclid(DAY_MS), &t, MAX_DAYS);
    }

    /// Add pre-aggregated totals for the UTC day `day` (days since the epoch);
    /// used for beats folded into daily totals by retention.
    pub fn add_day(&mut self, day: i64, totals: &Totals) {
        add_to(&mut self.days, day, totals, MAX_DAYS);
    }

    /// Summed totals of `window` ending at `now` (Unix ms).
    pub fn totals(&self, window: Window, now: i64) -> Totals {
        let (buckets, last, n) = match window {
            Window::Day => (&self.hours, now.div_euclid(HOUR_MS), 24),
            Window::Month => (&self.days, now.div_euclid(DAY_MS), 30),
            Window::Year => (&self.days, now.div_euclid(DAY_MS), 365),
        };
        let first = last - n + 1;
        let mut sum = Totals::default();
        for b in buckets.iter().rev() {
            if b.key < first {
                break;
            }
            if b.key <= last {
                sum.add(&b.totals);
            }
        }
        sum
    }

    /// Uptime ratio in `0.0..=1.0` over `window`, or `None` without beats.
    pub fn uptime(&self, window: Window, now: i64) -> Option<f64> {
        let t = self.totals(window, now);
        let n = t.up as u64 + t.down as u64;
        (n > 0).then(|| t.up as f64 / n as f64)
    }

    /// Mean response time in ms over `window`, or `None` without timed up beats.
    pub fn avg_ping_ms(&self, window: Window, now: i64) -> Option<f64> {
        let t = self.totals(window, now);
        (t.ping_count > 0).then(|| t.ping_sum as f64 / t.ping_count as f64)
    }
}

/// One line of the history file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rec", rename_all = "lowercase")]
pub enum Record {
    /// The first line of a file: format name and version.
    Header(HeaderRecord),
    /// One heartbeat.
    Beat(BeatRecord),
    /// A day's totals for one monitor (beats folded in by retention).
    Day(DayRecord),
}

/// Name in the header line of history files.
pub const HISTORY_FORMAT: &str = "probe-history";
/// Version written in the header line (and the only one read).
pub const HISTORY_VERSION: u32 = 1;

/// The header line that starts every history file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderRecord {
    /// Always [`HISTORY_FORMAT`].
    pub format: String,
    /// [`HISTORY_VERSION`] when written by this version.
    pub version: u32,
}

impl HeaderRecord {
    /// The header this version writes.
    pub fn current() -> Self {
        HeaderRecord { format: HISTORY_FORMAT.to_string(), version: HISTORY_VERSION }
    }
}

/// A stored heartbeat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeatRecord {
    /// Monitor name.
    pub monitor: String,
    /// Status.
    pub status: Status,
    /// Time, Unix ms.
    pub time: i64,
    /// Response time in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ping_ms: Option<u64>,
    /// Whether the beat was an important status change.
    pub important: bool,
    /// Message.
    pub msg: String,
}

impl BeatRecord {
    /// The record for `beat` of `monitor`.
    pub fn from_beat(monitor: &str, beat: &Beat) -> Self {
        BeatRecord {
            monitor: monitor.to_string(),
            status: beat.status,
            time: beat.time,
            ping_ms: beat.ping_ms,
            important: beat.important,
            msg: beat.msg.clone(),
        }
    }
}

/// A day's totals for one monitor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DayRecord {
    /// Monitor name.
    pub monitor: String,
    /// UTC day number (days since 1970-01-01).
    pub day: i64,
    /// Beats counted as up.
    pub up: u32,
    /// Beats counted as down.
    pub down: u32,
    /// Sum of `ping_ms` over up beats that have one.
    pub ping_sum: u64,
    /// Number of up beats that have a `ping_ms`.
    pub ping_count: u32,
}

impl DayRecord {
    /// The record's totals.
    pub fn totals(&self) -> Totals {
        Totals { up: self.up, down: self.down, ping_sum: self.ping_sum, ping_count: self.ping_count }
    }

    /// A record holding `totals`.
    pub fn new(monitor: &str, day: i64, totals: Totals) -> Self {
        DayRecord {
            monitor: monitor.to_string(),
            day,
            up: totals.up,
            down: totals.down,
            ping_sum: totals.ping_sum,
            ping_count: totals.ping_count,
        }
    }
}

/// What is known about one monitor's past: totals and the last beat.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MonitorHistory {
    /// Uptime totals.
    pub stats: UptimeStats,
    /// The most recent beat.
    pub last: Option<BeatRecord>,
}

impl MonitorHistory {
    /// Take one record into account.
    pub fn apply(&mut self, rec: &Record) {
        match rec {
            Record::Beat(b) => {
                self.stats.add(b.time, b.status, b.ping_ms);
                if !matches!(&self.last, Some(l) if l.time > b.time) {
                    self.last = Some(b.clone());
                }
            }
            Record::Day(d) => self.stats.add_day(d.day, &d.totals()),
            Record::Header(_) => {}
        }
    }
}

/// The UTC day number of `time` (Unix ms).
pub fn day_of(time: i64) -> i64 {
    time.div_euclid(DAY_MS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: i64 = 1_790_000_000_000 - 1_790_000_000_000 % DAY_MS;

    #[test]
    fn uptime_counts_beats_with_maintenance_up_and_pending_down() {
        let mut s = UptimeStats::new();
        s.add(T0, Status::Up, Some(10));
        s.add(T0 + 1, Status::Maintenance, None);
        s.add(T0 + 2, Status::Pending, Some(999));
        s.add(T0 + 3, Status::Down, None);
        assert_eq!(s.uptime(Window::Day, T0 + 10), Some(0.5));
        assert_eq!(s.avg_ping_ms(Window::Day, T0 + 10), Some(10.0));
        assert_eq!(s.uptime(Window::Year, T0 + 10), Some(0.5));
    }

    #[test]
    fn windows_drop_old_buckets() {
        let mut s = UptimeStats::new();
        s.add(T0 - 40 * DAY_MS, Status::Down, None);
        s.add(T0 - 2 * DAY_MS, Status::Down, None);
        s.add(T0, Status::Up, Some(4));
        let now = T0 + 1000;
        assert_eq!(s.uptime(Window::Day, now), Some(1.0));
        assert_eq!(s.uptime(Window::Month, now), Some(0.5));
        assert_eq!(s.uptime(Window::Year, now), Some(1.0 / 3.0));
        assert_eq!(s.uptime(Window::Day, now + 25 * HOUR_MS), None);
        assert_eq!(s.avg_ping_ms(Window::Day, now + 25 * HOUR_MS), None);
    }

    #[test]
    fn memory_is_bounded() {
        let mut s = UptimeStats::new();
        for h in 0..(400 * 24) {
            s.add(T0 + h * HOUR_MS, Status::Up, None);
        }
        assert_eq!(s.hours.len(), MAX_HOURS);
        assert_eq!(s.days.len(), MAX_DAYS);
    }

    #[test]
    fn day_records_merge_out_of_order() {
        let mut s = UptimeStats::new();
        s.add(T0, Status::Up, None);
        s.add_day(day_of(T0) - 3, &Totals { up: 0, down: 3, ping_sum: 0, ping_count: 0 });
        s.add_day(day_of(T0) - 3, &Totals { up: 1, down: 0, ping_sum: 0, ping_count: 0 });
        assert_eq!(s.uptime(Window::Month, T0), Some(0.4));
    }

    #[test]
    fn record_json_shape() {
        let r = Record::Beat(BeatRecord {
            monitor: "web".into(),
            status: Status::Up,
            time: 5,
            ping_ms: Some(3),
            important: true,
            msg: "200 - OK".into(),
        });
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(
            j,
            r#"{"rec":"beat","monitor":"web","status":"up","time":5,"ping_ms":3,"important":true,"msg":"200 - OK"}"#
        );
        let d = Record::Day(DayRecord::new("w", 3, Totals { up: 1, down: 2, ping_sum: 3, ping_count: 1 }));
        let j = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Record>(&j).unwrap(), d);
    }

    fn status() -> impl Strategy<Value = Status> {
        prop_oneof![Just(Status::Up), Just(Status::Down), Just(Status::Pending), Just(Status::Maintenance)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn totals_match_naive_count(beats in proptest::collection::vec((0i64..(60 * DAY_MS), status(), proptest::option::of(0u64..5000)), 0..100)) {
            let mut s = UptimeStats::new();
            let mut sorted = beats.clone();
            sorted.sort_by_key(|b| b.0);
            for (t, st, p) in &sorted { s.add(T0 + t, *st, *p); }
            let now = T0 + 60 * DAY_MS;
            for w in Window::ALL {
                let first = match w {
                    Window::Day => (now.div_euclid(HOUR_MS) - 23) * HOUR_MS,
                    Window::Month => (now.div_euclid(DAY_MS) - 29) * DAY_MS,
                    Window::Year => (now.div_euclid(DAY_MS) - 364) * DAY_MS,
                };
                let (mut up, mut down) = (0u32, 0u32);
                for (t, st, _) in &sorted {
                    if T0 + t >= first && T0 + t <= now {
                        if st.counts_as_up() { up += 1 } else { down += 1 }
                    }
                }
                let tot = s.totals(w, now);
                prop_assert_eq!((tot.up, tot.down), (up, down));
            }
        }

        #[test]
        fn records_round_trip(monitor in "\\PC{0,20}", msg in "\\PC{0,40}", st in status(), time in any::<i64>(), ping in proptest::option::of(any::<u64>()), imp in any::<bool>()) {
            let r = Record::Beat(BeatRecord { monitor, status: st, time, ping_ms: ping, important: imp, msg });
            let j = serde_json::to_string(&r).unwrap();
            prop_assert!(!j.contains('\n'));
            prop_assert_eq!(serde_json::from_str::<Record>(&j).unwrap(), r);
        }
    }
}
