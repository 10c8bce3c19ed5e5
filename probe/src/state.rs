//! The pure UP/DOWN/PENDING/MAINTENANCE state machine.
//!
//! [`MonitorState::observe`] turns one check outcome into one [`Beat`]: it
//! applies upside-down mode, retries (PENDING while retrying), maintenance,
//! and decides whether the beat is *important* (a status change worth
//! recording as such) and whether it should be *notified*. It never reads a
//! clock or sleeps: the caller passes `now` (Unix milliseconds).
//!
//! The rules follow Uptime Kuma's documented behaviour:
//!
//! | previous → current      | important | notified |
//! |-------------------------|-----------|----------|
//! | first beat → any        | yes       | yes      |
//! | UP → DOWN               | yes       | yes      |
//! | PENDING → DOWN          | yes       | yes      |
//! | DOWN → UP               | yes       | yes      |
//! | MAINTENANCE → DOWN      | yes       | yes      |
//! | MAINTENANCE → UP        | yes       | no       |
//! | UP/DOWN → MAINTENANCE   | yes       | no       |
//! | UP → PENDING, PENDING → UP, X → X | no | no    |
//! | PENDING ↔ MAINTENANCE   | no        | no       |
//!
//! Retries: after a failure with `max_retries > 0` the monitor goes PENDING
//! and is re-checked after `retry_interval`; after `max_retries` consecutive
//! failures it goes DOWN. The retry counter keeps counting while DOWN, so a
//! DOWN monitor that keeps failing stays DOWN (it never goes back to
//! PENDING) and DOWN → PENDING cannot happen. A success resets the counter.
//!
//! While DOWN and not important, a notification is re-sent every
//! `resend_interval` beats (0 = never).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// A monitor's status, with Uptime Kuma's numeric codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The check failed (after retries).
    Down = 0,
    /// The check succeeded.
    Up = 1,
    /// The check failed, and retries are left.
    Pending = 2,
    /// The monitor is inside a maintenance window.
    Maintenance = 3,
}

impl Status {
    /// Uptime Kuma's numeric code (DOWN 0, UP 1, PENDING 2, MAINTENANCE 3).
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Upper-case name, as Uptime Kuma shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Down => "DOWN",
            Status::Up => "UP",
            Status::Pending => "PENDING",
            Status::Maintenance => "MAINTENANCE",
        }
    }

    /// Whether the status counts as "up" in uptime figures (UP and
    /// MAINTENANCE do; DOWN and PENDING do not).
    pub fn counts_as_up(self) -> bool {
        matches!(self, Status::Up | Status::Maintenance)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one check observed, before the state machine applies retries,
/// upside-down mode and maintenance.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// Whether the check passed (the target is up).
    pub ok: bool,
    /// Human-readable message ("200 - OK", "connection refused", ...).
    pub msg: String,
    /// Response time in milliseconds, when measured.
    pub ping_ms: Option<u64>,
}

impl Observation {
    /// A passing observation.
    pub fn up(msg: impl Into<String>, ping_ms: Option<u64>) -> Self {
        Observation { ok: true, msg: msg.into(), ping_ms }
    }

    /// A failing observation.
    pub fn down(msg: impl Into<String>) -> Self {
        Observation { ok: false, msg: msg.into(), ping_ms: None }
    }
}

/// The per-monitor settings the state machine needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateSettings {
    /// Time between checks while not retrying.
    pub interval: Duration,
    /// Time between checks while PENDING.
    pub retry_interval: Duration,
    /// Failures tolerated (as PENDING) before DOWN.
    pub max_retries: u32,
    /// Invert UP and DOWN.
    pub upside_down: bool,
    /// Re-notify every N consecutive DOWN beats (0 = never).
    pub resend_interval: u32,
}

impl Default for StateSettings {
    /// Uptime Kuma's defaults: 60 s interval and retry interval, no retries,
    /// not upside down, no resend.
    fn default() -> Self {
        StateSettings {
            interval: Duration::from_secs(60),
            retry_interval: Duration::from_secs(60),
            max_retries: 0,
            upside_down: false,
            resend_interval: 0,
        }
    }
}

/// Why a beat is to be notified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyReason {
    /// The first beat or an important status change.
    Change,
    /// Still DOWN after `resend_interval` more beats.
    Resend,
}

/// One heartbeat: the result of one check after the state machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Beat {
    /// Status after retries, upside-down mode and maintenance.
    pub status: Status,
    /// Message shown to people.
    pub msg: String,
    /// Response time in milliseconds, when measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ping_ms: Option<u64>,
    /// Time of the beat, Unix milliseconds.
    pub time: i64,
    /// Whether the status changed in a way worth recording.
    pub important: bool,
    /// Whether (and why) to send a notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<NotifyReason>,
    /// The previous beat's status (`None` for the first beat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Status>,
    /// Milliseconds until the next check should run.
    #[serde(default)]
    pub next_in_ms: u64,
}

/// The mutable per-monitor state carried between beats.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MonitorState {
    last: Option<Status>,
    retries: u32,
    down_count: u32,
}

/// Whether a transition is important (recorded as a status change).
pub fn is_important(previous: Option<Status>, current: Status) -> bool {
    use Status::*;
    match previous {
        None => true,
        Some(prev) => matches!(
            (prev, current),
            (Up, Down)
                | (Pending, Down)
                | (Down, Up)
                | (Maintenance, Up)
                | (Maintenance, Down)
                | (Down, Maintenance)
                | (Up, Maintenance)
        ),
    }
}

/// Whether a transition is to be notified.
pub fn is_important_for_notification(previous: Option<Status>, current: Status) -> bool {
    use Status::*;
    match previous {
        None => true,
        Some(prev) => matches!(
            (prev, current),
            (Up, Down) | (Pending, Down) | (Down, Up) | (Maintenance, Down)
        ),
    }
}

impl MonitorState {
    /// A fresh state: the next beat is the first beat.
    pub fn new() -> Self {
        Self::default()
    }

    /// The status of the last beat, if any.
    pub fn last_status(&self) -> Option<Status> {
        self.last
    }

    /// Consecutive failures counted so far.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Restore from a persisted last status (after a restart), so the first
    /// beat after the restart is not taken as a "first beat".
    pub fn resume(last: Status) -> Self {
        MonitorState {
            last: Some(last),
            // A monitor that was DOWN stays DOWN on the next failure.
            retries: if last == Status::Down { u32::MAX / 2 } else { 0 },
            down_count: 0,
        }
    }

    /// Apply one observation at `now` (Unix ms). `in_maintenance` says
    /// whether a maintenance window is active; the observation is then
    /// ignored (callers need not even run the check).
    pub fn observe(
        &mut self,
        settings: &StateSettings,
        now: i64,
        obs: Observation,
        in_maintenance: bool,
    ) -> Beat {
        let (status, msg) = if in_maintenance {
            self.retries = 0;
            (Status::Maintenance, "Monitor under maintenance".to_string())
        } else {
            // Apply upside-down mode first, then retries on the result.
            let ok = obs.ok != settings.upside_down;
            if ok {
                self.retries = 0;
                let msg = if settings.upside_down {
                    format!("upside down: check failed as expected ({})", obs.msg)
                } else {
                    obs.msg
                };
                (Status::Up, msg)
            } else {
                let msg = if settings.upside_down {
                    format!("upside down: check succeeded ({})", obs.msg)
                } else {
                    obs.msg
                };
                if settings.max_retries > 0 && self.retries < settings.max_retries {
                    self.retries += 1;
                    (Status::Pending, msg)
                } else {
                    self.retries = self.retries.saturating_add(1);
                    (Status::Down, msg)
                }
            }
        };
        let previous = self.last;
        let important = is_important(previous, status);
        let mut notify = None;
        if important {
            if is_important_for_notification(previous, status) {
                notify = Some(NotifyReason::Change);
            }
            self.down_count = 0;
        } else if status == Status::Down && settings.resend_interval > 0 {
            self.down_count += 1;
            if self.down_count >= settings.resend_interval {
                notify = Some(NotifyReason::Resend);
                self.down_count = 0;
            }
        }
        self.last = Some(status);
        let next = if status == Status::Pending {
            settings.retry_interval
        } else {
            settings.interval
        };
        Beat {
            status,
            msg,
            ping_ms: if status == Status::Maintenance { None } else { obs.ping_ms },
            time: now,
            important,
            notify,
            previous,
            next_in_ms: u64::try_from(next.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    fn settings(max_retries: u32) -> StateSettings {
        StateSettings { max_retries, ..StateSettings::default() }
    }

    fn run(s: &StateSettings, seq: &[(bool, bool)]) -> Vec<Beat> {
        let mut st = MonitorState::new();
        seq.iter()
            .enumerate()
            .map(|(i, &(ok, maint))| {
                let obs = if ok { Observation::up("ok", Some(5)) } else { Observation::down("bad") };
                st.observe(s, i as i64 * 60_000, obs, maint)
            })
            .collect()
    }

    #[test]
    fn first_beat_is_important_and_notified() {
        let b = run(&settings(0), &[(true, false)]);
        assert_eq!(b[0].status, Up);
        assert!(b[0].important);
        assert_eq!(b[0].notify, Some(NotifyReason::Change));
        assert_eq!(b[0].previous, None);
    }

    #[test]
    fn up_down_up_without_retries() {
        let b = run(&settings(0), &[(true, false), (false, false), (false, false), (true, false)]);
        let st: Vec<_> = b.iter().map(|b| b.status).collect();
        assert_eq!(st, [Up, Down, Down, Up]);
        let imp: Vec<_> = b.iter().map(|b| b.important).collect();
        assert_eq!(imp, [true, true, false, true]);
        assert_eq!(b[1].notify, Some(NotifyReason::Change));
        assert_eq!(b[2].notify, None);
        assert_eq!(b[3].notify, Some(NotifyReason::Change));
    }

    #[test]
    fn retries_go_pending_then_down_and_stay_down() {
        let s = StateSettings { retry_interval: Duration::from_secs(20), ..settings(2) };
        let b = run(&s, &[(true, false), (false, false), (false, false), (false, false), (false, false)]);
        let st: Vec<_> = b.iter().map(|b| b.status).collect();
        assert_eq!(st, [Up, Pending, Pending, Down, Down]);
        // UP -> PENDING is not important; PENDING -> DOWN is, and notifies.
        assert!(!b[1].important && b[1].notify.is_none());
        assert_eq!(b[1].next_in_ms, 20_000);
        assert_eq!(b[3].notify, Some(NotifyReason::Change));
        assert_eq!(b[3].next_in_ms, 60_000);
        assert!(!b[4].important);
    }

    #[test]
    fn pending_then_up_is_not_notified() {
        let b = run(&settings(3), &[(true, false), (false, false), (true, false)]);
        assert_eq!(b[1].status, Pending);
        assert_eq!(b[2].status, Up);
        assert!(!b[2].important);
        assert!(b[2].notify.is_none());
    }

    #[test]
    fn down_then_failures_never_pending_and_recovery_notified() {
        let b = run(&settings(1), &[(false, false), (false, false), (false, false), (true, false)]);
        let st: Vec<_> = b.iter().map(|b| b.status).collect();
        // First failure uses the retry, second goes DOWN, third stays DOWN.
        assert_eq!(st, [Pending, Down, Down, Up]);
        assert_eq!(b[3].notify, Some(NotifyReason::Change));
    }

    #[test]
    fn maintenance_transitions() {
        let b = run(
            &settings(0),
            &[(true, false), (true, true), (true, true), (true, false), (false, true), (false, false)],
        );
        let st: Vec<_> = b.iter().map(|b| b.status).collect();
        assert_eq!(st, [Up, Maintenance, Maintenance, Up, Maintenance, Down]);
        // UP -> MAINTENANCE important, not notified.
        assert!(b[1].important && b[1].notify.is_none());
        assert!(!b[2].important);
        // MAINTENANCE -> UP important, not notified.
        assert!(b[3].important && b[3].notify.is_none());
        // MAINTENANCE -> DOWN important and notified.
        assert!(b[5].important);
        assert_eq!(b[5].notify, Some(NotifyReason::Change));
        assert_eq!(b[1].ping_ms, None);
    }

    #[test]
    fn upside_down_flips() {
        let s = StateSettings { upside_down: true, ..settings(0) };
        let b = run(&s, &[(true, false), (false, false)]);
        assert_eq!(b[0].status, Down);
        assert!(b[0].msg.contains("upside down"));
        assert_eq!(b[1].status, Up);
        // Maintenance is not flipped.
        let b = run(&s, &[(true, true)]);
        assert_eq!(b[0].status, Maintenance);
    }

    #[test]
    fn upside_down_uses_retries() {
        let s = StateSettings { upside_down: true, ..settings(1) };
        let b = run(&s, &[(false, false), (true, false), (true, false)]);
        let st: Vec<_> = b.iter().map(|b| b.status).collect();
        assert_eq!(st, [Up, Pending, Down]);
    }

    #[test]
    fn resend_every_n_down_beats() {
        let s = StateSettings { resend_interval: 2, ..settings(0) };
        let b = run(&s, &[(false, false); 6]);
        let n: Vec<_> = b.iter().map(|b| b.notify).collect();
        use NotifyReason::*;
        assert_eq!(n, [Some(Change), None, Some(Resend), None, Some(Resend), None]);
    }

    #[test]
    fn resume_from_down_stays_down() {
        let mut st = MonitorState::resume(Down);
        let b = st.observe(&settings(3), 0, Observation::down("x"), false);
        assert_eq!(b.status, Down);
        assert!(!b.important);
        let mut st = MonitorState::resume(Up);
        let b = st.observe(&settings(3), 0, Observation::down("x"), false);
        assert_eq!(b.status, Pending);
    }

    #[test]
    fn notification_table_matches_docs() {
        let all = [Up, Down, Pending, Maintenance];
        for p in all {
            for c in all {
                let n = is_important_for_notification(Some(p), c);
                // Everything notified is important.
                if n {
                    assert!(is_important(Some(p), c), "{p}->{c}");
                }
                if p == c {
                    assert!(!is_important(Some(p), c));
                }
            }
        }
        assert!(!is_important(Some(Up), Pending));
        assert!(!is_important(Some(Pending), Up));
        assert!(is_important(Some(Maintenance), Up));
        assert!(!is_important_for_notification(Some(Maintenance), Up));
        assert!(!is_important_for_notification(Some(Up), Maintenance));
    }
}
