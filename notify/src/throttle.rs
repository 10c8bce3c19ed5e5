//! Deduplication ([`Dedupe`]) and rate limiting ([`RateLimit`]). Pure: every call takes `now`,
//! so tests move time forward by adding to an `Instant` instead of sleeping.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use crate::payload::Payload;

/// A 64-bit digest of a payload's JSON: equal payloads have equal fingerprints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(u64);

impl Fingerprint {
    /// The fingerprint of a payload (of its JSON encoding, so field order does not matter for
    /// `props`, whose map is ordered).
    pub fn of(payload: &Payload) -> Fingerprint {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        match serde_json::to_string(payload) {
            Ok(json) => json.hash(&mut h),
            // Cannot happen for our types; fall back to the Debug form, which is also total.
            Err(_) => format!("{payload:?}").hash(&mut h),
        }
        Fingerprint(h.finish())
    }
}

/// Drops a notification identical to one accepted less than `window` ago.
///
/// The window runs from the first accepted copy: a notification repeated every minute with a
/// ten-minute window goes out once every ten minutes, a built-in reminder. Memory is bounded by
/// `max_entries`; when full, the oldest entries are forgotten first.
#[derive(Debug, Clone)]
pub struct Dedupe {
    window: Duration,
    max_entries: usize,
    seen: HashMap<Fingerprint, Instant>,
    /// Acceptance order, for expiry; may hold stale entries (re-accepted keys), skipped on pop.
    order: VecDeque<(Instant, Fingerprint)>,
}

impl Dedupe {
    /// Remembers up to 10,000 recent notifications for `window`. A zero window disables it.
    pub fn new(window: Duration) -> Dedupe {
        Dedupe::with_capacity(window, 10_000)
    }

    /// Like [`new`](Self::new) with an explicit bound on remembered notifications (at least 1).
    pub fn with_capacity(window: Duration, max_entries: usize) -> Dedupe {
        Dedupe {
            window,
            max_entries: max_entries.max(1),
            seen: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// The window.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Whether `key` was accepted less than `window` before `now`. Does not record anything.
    pub fn is_duplicate(&self, key: Fingerprint, now: Instant) -> bool {
        match self.seen.get(&key) {
            Some(at) => now.saturating_duration_since(*at) < self.window,
            None => false,
        }
    }

    /// Records `key` as accepted at `now` (starting a new window for it).
    pub fn record(&mut self, key: Fingerprint, now: Instant) {
        if self.window.is_zero() {
            return;
        }
        self.expire(now);
        while self.seen.len() >= self.max_entries {
            match self.order.pop_front() {
                Some((at, k)) => {
                    if self.seen.get(&k) == Some(&at) {
                        self.seen.remove(&k);
                    }
                }
                None => break,
            }
        }
        self.seen.insert(key, now);
        self.order.push_back((now, key));
    }

    /// `is_duplicate`, and if not, `record`: returns true when the notification should go out.
    pub fn admit(&mut self, key: Fingerprint, now: Instant) -> bool {
        if self.is_duplicate(key, now) {
            return false;
        }
        self.record(key, now);
        true
    }

    /// Forgets `key`, so an identical notification is accepted again (used when delivering it
    /// failed).
    pub fn forget(&mut self, key: Fingerprint) {
        self.seen.remove(&key);
    }

    /// Remembered notifications.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(at, k)) = self.order.front() {
            if now.saturating_duration_since(at) < self.window {
                break;
            }
            self.order.pop_front();
            if self.seen.get(&k) == Some(&at) {
                self.seen.remove(&k);
            }
        }
    }
}

/// At most `burst` posts at once, refilled at one post per `interval`.
///
/// Implemented as a virtual-scheduling (GCRA) bucket: it keeps one instant, the theoretical
/// arrival time of the next post. Mattermost rate-limits per IP when enabled (by default 10
/// requests per second with bursts of 100); staying below that avoids 429s in the first place.
#[derive(Debug, Clone)]
pub struct RateLimit {
    interval: Duration,
    tolerance: Duration,
    next_free: Option<Instant>,
}

impl RateLimit {
    /// Allows `burst` posts back to back (at least 1), then one every `interval`.
    pub fn new(burst: u32, interval: Duration) -> RateLimit {
        let burst = burst.max(1);
        RateLimit {
            interval,
            tolerance: interval.saturating_mul(burst - 1),
            next_free: None,
        }
    }

    /// Takes one post's worth of budget at `now`, or says how long to wait before asking again.
    pub fn try_acquire(&mut self, now: Instant) -> Result<(), Duration> {
        let tat = match self.next_free {
            Some(t) if t > now => t,
            _ => now,
        };
        let earliest = tat.checked_sub(self.tolerance).unwrap_or(now);
        if earliest > now {
            return Err(earliest - now);
        }
        // An interval too large to add is a limit nobody will reach again: treat it as a century.
        self.next_free = Some(
            tat.checked_add(self.interval)
                .unwrap_or(tat + Duration::from_secs(100 * 365 * 86_400)),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(s: &str) -> Fingerprint {
        Fingerprint::of(&Payload::text(s))
    }

    #[test]
    fn fingerprints_follow_content() {
        assert_eq!(fp("a"), fp("a"));
        assert_ne!(fp("a"), fp("b"));
        let mut p = Payload::text("a");
        p.channel = Some("ops".into());
        assert_ne!(Fingerprint::of(&p), fp("a"));
    }

    #[test]
    fn dedupe_window_runs_from_first_copy() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut d = Dedupe::new(10 * s);
        assert!(d.admit(fp("x"), t0));
        assert!(!d.admit(fp("x"), t0 + 5 * s));
        assert!(d.admit(fp("y"), t0 + 5 * s));
        assert!(!d.admit(fp("x"), t0 + 9 * s));
        assert!(d.admit(fp("x"), t0 + 10 * s));
        assert!(!d.admit(fp("x"), t0 + 19 * s));
        // y expired and is forgotten when something is recorded later.
        assert!(d.admit(fp("z"), t0 + 30 * s));
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn dedupe_zero_window_is_off_and_memory_is_bounded() {
        let t0 = Instant::now();
        let mut off = Dedupe::new(Duration::ZERO);
        assert!(off.admit(fp("x"), t0));
        assert!(off.admit(fp("x"), t0));
        assert!(off.is_empty());

        let mut d = Dedupe::with_capacity(Duration::from_secs(60), 3);
        for i in 0..10 {
            assert!(d.admit(fp(&i.to_string()), t0));
        }
        assert_eq!(d.len(), 3);
        // The newest are still remembered, the oldest were forgotten.
        assert!(d.is_duplicate(fp("9"), t0));
        assert!(!d.is_duplicate(fp("0"), t0));
    }

    #[test]
    fn rate_limit_allows_burst_then_paces() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut r = RateLimit::new(3, ms(100));
        assert!(r.try_acquire(t0).is_ok());
        assert!(r.try_acquire(t0).is_ok());
        assert!(r.try_acquire(t0).is_ok());
        assert_eq!(r.try_acquire(t0), Err(ms(100)));
        assert_eq!(r.try_acquire(t0 + ms(40)), Err(ms(60)));
        assert!(r.try_acquire(t0 + ms(100)).is_ok());
        assert_eq!(r.try_acquire(t0 + ms(100)), Err(ms(100)));
        // After a long pause the full burst is available again.
        let later = t0 + ms(10_000);
        for _ in 0..3 {
            assert!(r.try_acquire(later).is_ok());
        }
        assert!(r.try_acquire(later).is_err());
    }
}
