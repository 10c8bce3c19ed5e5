//! Next-due times for many monitors: a binary heap keyed by due time.
//!
//! Pure: no clock, no threads. Monitors are identified by a dense index
//! (`usize`). Re-scheduling a monitor does not search the heap: the new due
//! time is pushed and the monitor's current due time is remembered, so stale
//! heap entries are skipped when they surface (lazy deletion). The heap can
//! therefore hold a few stale entries per monitor at most; [`Schedule::compact`]
//! rebuilds it when stale entries outnumber live ones.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Due times (Unix ms) for monitors `0..len`.
#[derive(Clone, Debug, Default)]
pub struct Schedule {
    heap: BinaryHeap<Reverse<(i64, usize)>>,
    /// Current due time per monitor; `None` = not scheduled (running or removed).
    due: Vec<Option<i64>>,
    live: usize,
}

impl Schedule {
    /// An empty schedule.
    pub fn new() -> Self {
        Self::default()
    }

    /// Schedule (or re-schedule) monitor `id` at `at` (Unix ms).
    pub fn set(&mut self, id: usize, at: i64) {
        if id >= self.due.len() {
            self.due.resize(id + 1, None);
        }
        if self.due[id].is_none() {
            self.live += 1;
        }
        self.due[id] = Some(at);
        self.heap.push(Reverse((at, id)));
        if self.heap.len() > 64 && self.heap.len() > 2 * self.live {
            self.compact();
        }
    }

    /// Unschedule monitor `id` (e.g. while its check is running).
    pub fn remove(&mut self, id: usize) {
        if let Some(slot) = self.due.get_mut(id) {
            if slot.take().is_some() {
                self.live -= 1;
            }
        }
    }

    /// The due time of monitor `id`, if scheduled.
    pub fn due_at(&self, id: usize) -> Option<i64> {
        self.due.get(id).copied().flatten()
    }

    /// Number of scheduled monitors.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether no monitor is scheduled.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    fn drop_stale_top(&mut self) {
        while let Some(&Reverse((at, id))) = self.heap.peek() {
            if self.due.get(id).copied().flatten() == Some(at) {
                return;
            }
            self.heap.pop();
        }
    }

    /// The earliest due time, if any monitor is scheduled.
    pub fn next_due(&mut self) -> Option<i64> {
        self.drop_stale_top();
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Remove and return the earliest monitor due at or before `now`; it is
    /// unscheduled until [`Schedule::set`] is called for it again.
    pub fn pop_due(&mut self, now: i64) -> Option<(usize, i64)> {
        self.drop_stale_top();
        let &Reverse((at, id)) = self.heap.peek()?;
        if at > now {
            return None;
        }
        self.heap.pop();
        self.due[id] = None;
        self.live -= 1;
        Some((id, at))
    }

    /// Rebuild the heap without stale entries.
    pub fn compact(&mut self) {
        let entries: Vec<_> = self
            .due
            .iter()
            .enumerate()
            .filter_map(|(id, at)| at.map(|at| Reverse((at, id))))
            .collect();
        self.heap = BinaryHeap::from(entries);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pops_in_time_order_and_respects_now() {
        let mut s = Schedule::new();
        s.set(0, 300);
        s.set(1, 100);
        s.set(2, 200);
        assert_eq!(s.next_due(), Some(100));
        assert_eq!(s.pop_due(150), Some((1, 100)));
        assert_eq!(s.pop_due(150), None);
        assert_eq!(s.pop_due(1000), Some((2, 200)));
        assert_eq!(s.pop_due(1000), Some((0, 300)));
        assert!(s.is_empty());
        assert_eq!(s.next_due(), None);
    }

    #[test]
    fn reschedule_replaces_old_time() {
        let mut s = Schedule::new();
        s.set(0, 100);
        s.set(0, 500);
        assert_eq!(s.len(), 1);
        assert_eq!(s.next_due(), Some(500));
        assert_eq!(s.pop_due(200), None);
        s.remove(0);
        assert_eq!(s.pop_due(1000), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn matches_a_naive_model(ops in proptest::collection::vec((0usize..20, 0i64..1000, 0u8..4), 0..200)) {
            let mut s = Schedule::new();
            let mut model: Vec<Option<i64>> = vec![None; 20];
            for (id, t, op) in ops {
                match op {
                    0 | 1 => { s.set(id, t); model[id] = Some(t); }
                    2 => { s.remove(id); model[id] = None; }
                    _ => {
                        let got = s.pop_due(t);
                        let want = model.iter().enumerate()
                            .filter_map(|(i, d)| d.filter(|&d| d <= t).map(|d| (d, i)))
                            .min();
                        match (got, want) {
                            (None, None) => {}
                            (Some((gi, ga)), Some((wa, _))) => {
                                // Ties may pop in any order; the time must be the minimum.
                                prop_assert_eq!(ga, wa);
                                prop_assert_eq!(model[gi], Some(ga));
                                model[gi] = None;
                            }
                            (g, w) => prop_assert!(false, "got {:?} want {:?}", g, w),
                        }
                    }
                }
                prop_assert_eq!(s.len(), model.iter().filter(|d| d.is_some()).count());
            }
        }
    }
}
