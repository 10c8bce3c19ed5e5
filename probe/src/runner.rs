//! The scheduler loop: due times from [`Schedule`], blocking checks on a
//! fixed pool of worker threads, results through the state machine into
//! history and events.
//!
//! One thread (the caller of [`Runner::run`]) owns all state. It pops due
//! monitors, hands their checks to the workers over a channel, and waits for
//! results (or pushes, or requests from a [`RunnerHandle`]) until the next
//! due time. A monitor is never checked twice at once: it is re-scheduled
//! only when its result has been applied. No thread per monitor, no async
//! runtime; a slow target occupies one worker for at most its timeout.

use crate::check::{CertInfo, Check, CheckOutcome, TlsCache};
use crate::config::{Config, MonitorConfig, MonitorKind};
use crate::error::RunError;
use crate::history::{MonitorHistory, UptimeStats, Window};
use crate::history_file::HistoryLog;
use crate::maintenance::in_maintenance;
use crate::metrics::MonitorSnapshot;
use crate::schedule::Schedule;
use crate::state::{Beat, MonitorState, Observation, StateSettings, Status};
use std::collections::HashMap;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Current wall-clock time in Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Something the runner reports to its caller.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A heartbeat was recorded. `beat.notify` says whether to notify.
    Beat {
        /// Monitor name.
        monitor: String,
        /// Monitor type (`http`, `tcp`, ...).
        kind: &'static str,
        /// The beat.
        beat: Beat,
    },
    /// A certificate crossed an expiry warning threshold (sent once per
    /// threshold until the certificate is renewed).
    CertExpiry {
        /// Monitor name.
        monitor: String,
        /// Whole days left.
        days_left: i64,
        /// The smallest threshold crossed.
        threshold: u32,
        /// The leaf certificate's subject.
        subject: String,
    },
    /// Writing history failed; monitoring goes on.
    HistoryError(String),
}

/// Options for [`Runner::new`].
#[derive(Clone, Debug)]
pub struct RunnerOptions {
    /// Worker threads (default: the config's `workers`).
    pub workers: Option<usize>,
    /// Spread the first checks evenly over each monitor's interval instead
    /// of running them all at start (default false, as Uptime Kuma).
    pub spread_start: bool,
    /// How often the history file is pruned (default 1 hour).
    pub prune_every: Duration,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions { workers: None, spread_start: false, prune_every: Duration::from_secs(3600) }
    }
}

struct Slot {
    cfg: MonitorConfig,
    kind: &'static str,
    settings: StateSettings,
    check: Arc<Check>,
    state: MonitorState,
    stats: UptimeStats,
    last: Option<Beat>,
    http_status: Option<u16>,
    cert: Option<CertInfo>,
    expiry_days: Vec<u32>,
    expiry_sent: Vec<u32>,
}

struct Job {
    idx: usize,
    check: Arc<Check>,
    timeout: Duration,
}

/// Parameters of a pushed heartbeat (Uptime Kuma's push URL:
/// `?status=up|down&msg=...&ping=...`).
#[derive(Clone, Debug, PartialEq)]
pub struct Push {
    /// Whether the pushing side reports success (default true).
    pub ok: bool,
    /// Message (default "OK").
    pub msg: String,
    /// Response time reported by the pusher, ms.
    pub ping_ms: Option<u64>,
}

impl Default for Push {
    fn default() -> Self {
        Push { ok: true, msg: "OK".into(), ping_ms: None }
    }
}

enum Msg {
    Done { idx: usize, outcome: CheckOutcome },
    Push { token: String, push: Push, reply: Sender<bool> },
    Snapshot(Sender<Vec<MonitorSnapshot>>),
    Stop,
}

/// A cloneable handle to a running [`Runner`], usable from other threads.
#[derive(Clone, Debug)]
pub struct RunnerHandle {
    tx: Sender<Msg>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Msg::Done { .. } => "Done",
            Msg::Push { .. } => "Push",
            Msg::Snapshot(_) => "Snapshot",
            Msg::Stop => "Stop",
        })
    }
}

impl RunnerHandle {
    /// Record a pushed heartbeat for the push monitor with `token`. Returns
    /// false if no push monitor has that token or the runner has stopped.
    pub fn push(&self, token: &str, push: Push) -> bool {
        let (tx, rx) = channel();
        if self.tx.send(Msg::Push { token: token.to_string(), push, reply: tx }).is_err() {
            return false;
        }
        rx.recv().unwrap_or(false)
    }

    /// The current figures of every monitor (`None` if the runner has stopped).
    pub fn snapshot(&self) -> Option<Vec<MonitorSnapshot>> {
        let (tx, rx) = channel();
        self.tx.send(Msg::Snapshot(tx)).ok()?;
        rx.recv().ok()
    }

    /// The Prometheus exposition of [`RunnerHandle::snapshot`].
    pub fn metrics_text(&self) -> Option<String> {
        self.snapshot().map(|s| crate::metrics::render(&s))
    }

    /// Ask the runner to return from [`Runner::run`].
    pub fn stop(&self) {
        let _ = self.tx.send(Msg::Stop);
    }
}

/// Runs many monitors on a fixed worker pool.
pub struct Runner {
    slots: Vec<Slot>,
    push_tokens: HashMap<String, usize>,
    schedule: Schedule,
    job_tx: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
    history: Option<HistoryLog>,
    retention_ms: i64,
    prune_every_ms: i64,
    next_prune: i64,
    started: bool,
    spread_start: bool,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner").field("monitors", &self.slots.len()).field("workers", &self.workers.len()).finish()
    }
}

fn worker_loop(jobs: Arc<Mutex<Receiver<Job>>>, results: Sender<Msg>) {
    loop {
        // Hold the lock only while waiting for the next job.
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let outcome = job.check.run(now_ms(), job.timeout);
        if results.send(Msg::Done { idx: job.idx, outcome }).is_err() {
            return;
        }
    }
}

impl Runner {
    /// Prepare every monitor of `config`, open and replay the history file
    /// (if configured), and start the worker threads.
    pub fn new(config: &Config, opts: RunnerOptions) -> Result<Runner, RunError> {
        let (history, mut replay) = match &config.history.path {
            Some(p) => {
                let (log, h) = HistoryLog::open(p)?;
                (Some(log), h)
            }
            None => (None, HashMap::new()),
        };
        let mut cache = TlsCache::new();
        let mut slots = Vec::with_capacity(config.monitors.len());
        let mut push_tokens = HashMap::new();
        for m in &config.monitors {
            let check = Arc::new(Check::build(m, &mut cache)?);
            let past: MonitorHistory = replay.remove(&m.name).unwrap_or_default();
            let state = match &past.last {
                Some(b) => MonitorState::resume(b.status),
                None => MonitorState::new(),
            };
            let expiry_days = match &m.kind {
                MonitorKind::Http(h) => h.expiry_notify_days.clone(),
                MonitorKind::Tls(t) => t.expiry_notify_days.clone(),
                _ => Vec::new(),
            };
            if let MonitorKind::Push { token } = &m.kind {
                push_tokens.insert(token.clone(), slots.len());
            }
            let last = past.last.map(|b| Beat {
                status: b.status,
                msg: b.msg,
                ping_ms: b.ping_ms,
                time: b.time,
                important: b.important,
                notify: None,
                previous: None,
                next_in_ms: 0,
            });
            slots.push(Slot {
                kind: m.kind.type_name(),
                settings: m.state_settings(),
                cfg: m.clone(),
                check,
                state,
                stats: past.stats,
                last,
                http_status: None,
                cert: None,
                expiry_days,
                expiry_sent: Vec::new(),
            });
        }
        let n_workers = opts.workers.unwrap_or(config.workers).max(1);
        let (tx, rx) = channel();
        let (job_tx, job_rx) = channel::<Job>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let mut workers = Vec::with_capacity(n_workers);
        for i in 0..n_workers {
            let jobs = job_rx.clone();
            let results = tx.clone();
            let h = std::thread::Builder::new()
                .name(format!("probe-worker-{i}"))
                .stack_size(256 * 1024)
                .spawn(move || worker_loop(jobs, results))
                .map_err(RunError::Spawn)?;
            workers.push(h);
        }
        Ok(Runner {
            slots,
            push_tokens,
            schedule: Schedule::new(),
            job_tx: Some(job_tx),
            workers,
            tx,
            rx,
            history,
            retention_ms: config.history.retention.as_millis() as i64,
            prune_every_ms: opts.prune_every.as_millis().max(1000) as i64,
            next_prune: 0,
            started: false,
            spread_start: opts.spread_start,
        })
    }

    /// A handle for pushes, snapshots and stopping, usable from other threads.
    pub fn handle(&self) -> RunnerHandle {
        RunnerHandle { tx: self.tx.clone() }
    }

    /// Number of monitors.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no monitors.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn start(&mut self, now: i64) {
        self.started = true;
        let n = self.slots.len().max(1) as i64;
        for (i, s) in self.slots.iter().enumerate() {
            let interval = s.settings.interval.as_millis() as i64;
            let at = match s.cfg.kind {
                // A push monitor waits one interval for its first push.
                MonitorKind::Push { .. } => now + interval,
                _ if self.spread_start => now + interval * i as i64 / n,
                _ => now,
            };
            self.schedule.set(i, at);
        }
        if self.history.is_some() {
            self.next_prune = now;
        }
    }

    /// Run until [`RunnerHandle::stop`] is called or `until` passes,
    /// reporting every event to `on_event`.
    pub fn run(&mut self, until: Option<Instant>, mut on_event: impl FnMut(&Event)) {
        if !self.started {
            self.start(now_ms());
        }
        loop {
            let now = now_ms();
            if self.history.is_some() && now >= self.next_prune {
                self.next_prune = now + self.prune_every_ms;
                if let Some(h) = &mut self.history {
                    if let Err(e) = h.prune(now, self.retention_ms) {
                        on_event(&Event::HistoryError(e.to_string()));
                    }
                }
            }
            while let Some((idx, _)) = self.schedule.pop_due(now) {
                self.dispatch(idx, now, &mut on_event);
            }
            self.flush_history(&mut on_event);
            let mut wait = match self.schedule.next_due() {
                Some(d) => Duration::from_millis((d - now_ms()).clamp(0, 60_000) as u64),
                None => Duration::from_secs(60),
            };
            if let Some(u) = until {
                let left = u.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return;
                }
                wait = wait.min(left);
            }
            match self.rx.recv_timeout(wait) {
                Ok(msg) => {
                    if !self.handle_msg(msg, &mut on_event) {
                        self.flush_history(&mut on_event);
                        return;
                    }
                    // Take what else is queued (bounded, so due checks are not
                    // starved) before looking at the clock again.
                    for _ in 0..4096 {
                        let Ok(msg) = self.rx.try_recv() else { break };
                        if !self.handle_msg(msg, &mut on_event) {
                            self.flush_history(&mut on_event);
                            return;
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn flush_history(&mut self, on_event: &mut impl FnMut(&Event)) {
        if let Some(h) = &mut self.history {
            if let Err(e) = h.flush() {
                on_event(&Event::HistoryError(e.to_string()));
            }
        }
    }

    fn dispatch(&mut self, idx: usize, now: i64, on_event: &mut impl FnMut(&Event)) {
        if in_maintenance(&self.slots[idx].cfg.maintenance, now) {
            // Like Uptime Kuma, do not even run the check.
            self.apply(idx, now, Observation::down("maintenance"), true, on_event);
            return;
        }
        if matches!(*self.slots[idx].check, Check::Push) {
            let interval = self.slots[idx].settings.interval.as_secs();
            let obs = Observation::down(format!("No heartbeat in the time window ({interval} s)"));
            self.apply(idx, now, obs, false, on_event);
            return;
        }
        let slot = &mut self.slots[idx];
        let job = Job { idx, check: slot.check.clone(), timeout: slot.cfg.timeout };
        let sent = self.job_tx.as_ref().is_some_and(|tx| tx.send(job).is_ok());
        if !sent {
            // The pool is gone (shutting down): try again one interval later.
            let next = now + slot.settings.interval.as_millis() as i64;
            self.schedule.set(idx, next);
        }
    }

    fn handle_msg(&mut self, msg: Msg, on_event: &mut impl FnMut(&Event)) -> bool {
        match msg {
            Msg::Done { idx, outcome } => {
                let now = now_ms();
                let slot = &mut self.slots[idx];
                if outcome.http_status.is_some() {
                    slot.http_status = outcome.http_status;
                }
                if let Some(c) = &outcome.cert {
                    slot.cert = Some(c.clone());
                }
                self.cert_warnings(idx, now, on_event);
                self.apply(idx, now, outcome.observation(), false, on_event);
            }
            Msg::Push { token, push, reply } => {
                let found = self.push_tokens.get(&token).copied();
                if let Some(idx) = found {
                    let now = now_ms();
                    let maint = in_maintenance(&self.slots[idx].cfg.maintenance, now);
                    let obs = Observation { ok: push.ok, msg: push.msg, ping_ms: push.ping_ms };
                    self.apply(idx, now, obs, maint, on_event);
                }
                let _ = reply.send(found.is_some());
            }
            Msg::Snapshot(reply) => {
                let _ = reply.send(self.snapshot(now_ms()));
            }
            Msg::Stop => return false,
        }
        true
    }

    fn cert_warnings(&mut self, idx: usize, now: i64, on_event: &mut impl FnMut(&Event)) {
        let slot = &mut self.slots[idx];
        let Some(cert) = &slot.cert else { return };
        if slot.expiry_days.is_empty() {
            return;
        }
        let days = cert.days_left(now);
        let mut crossed: Vec<u32> = slot.expiry_days.iter().copied().filter(|&t| days <= t as i64).collect();
        crossed.sort_unstable();
        if crossed.is_empty() {
            // Renewed (or never close): arm every threshold again.
            slot.expiry_sent.clear();
            return;
        }
        if days < 0 {
            return; // expired: the check itself is DOWN
        }
        let fresh: Vec<u32> = crossed.iter().copied().filter(|t| !slot.expiry_sent.contains(t)).collect();
        if let Some(&threshold) = fresh.first() {
            slot.expiry_sent.extend(fresh.iter().copied());
            on_event(&Event::CertExpiry {
                monitor: slot.cfg.name.clone(),
                days_left: days,
                threshold,
                subject: cert.subject.clone(),
            });
        }
    }

    fn apply(&mut self, idx: usize, now: i64, obs: Observation, maint: bool, on_event: &mut impl FnMut(&Event)) {
        let slot = &mut self.slots[idx];
        let beat = slot.state.observe(&slot.settings, now, obs, maint);
        slot.stats.add(beat.time, beat.status, beat.ping_ms);
        if let Some(h) = &mut self.history {
            if let Err(e) = h.append(&slot.cfg.name, &beat) {
                on_event(&Event::HistoryError(e.to_string()));
            }
        }
        self.schedule.set(idx, now + beat.next_in_ms.min(i64::MAX as u64 / 4) as i64);
        let ev = Event::Beat { monitor: slot.cfg.name.clone(), kind: slot.kind, beat };
        if let Event::Beat { beat, .. } = &ev {
            slot.last = Some(beat.clone());
        }
        on_event(&ev);
    }

    /// Current figures of every monitor at `now` (Unix ms).
    pub fn snapshot(&self, now: i64) -> Vec<MonitorSnapshot> {
        self.slots
            .iter()
            .map(|s| MonitorSnapshot {
                name: s.cfg.name.clone(),
                kind: s.kind,
                status: s.last.as_ref().map(|b| b.status),
                last_ping_ms: s.last.as_ref().and_then(|b| b.ping_ms),
                http_status: s.http_status,
                cert_expiry: s.cert.as_ref().map(|c| c.earliest_expiry),
                uptime: Window::ALL.map(|w| (w, s.stats.uptime(w, now))),
                avg_ping_ms: Window::ALL.map(|w| (w, s.stats.avg_ping_ms(w, now))),
            })
            .collect()
    }

    /// The status of monitor `name`'s last beat.
    pub fn status(&self, name: &str) -> Option<Status> {
        self.slots.iter().find(|s| s.cfg.name == name)?.last.as_ref().map(|b| b.status)
    }

    /// Stop the workers (waiting for running checks, each bounded by its
    /// timeout) and sync the history file.
    pub fn shutdown(mut self) -> Result<(), RunError> {
        self.job_tx = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        if let Some(h) = &mut self.history {
            h.sync()?;
        }
        Ok(())
    }
}
