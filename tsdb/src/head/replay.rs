//! Rebuilding the head from the WAL, and the WAL checkpoint filter.

use super::append::{check_sample, publish};
use super::{lock, Head, SeriesHandle};
use crate::encoding::Encbuf;
use crate::record::{decode_with_starts, encode_commit_with_starts, RefSample, RefSeries, SampleStart};
use crate::wal::{self, ReplayOutcome, WalError};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// What replay found besides the records themselves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Samples applied to the head.
    pub samples: u64,
    /// Series defined.
    pub series: u64,
    /// Samples referring to a series never defined (skipped).
    pub unknown_refs: u64,
    /// Samples rejected as out-of-order, duplicate or out of bounds
    /// (skipped; possible when data was persisted to a block but the WAL
    /// not yet truncated).
    pub rejected: u64,
}

impl Head {
    /// Replays the WAL in `dir` into the head.
    pub(crate) fn replay(&self, dir: &Path) -> Result<(ReplayOutcome, ReplayStats), WalError> {
        let mut stats = ReplayStats::default();
        let mut refs: HashMap<u64, SeriesHandle> = HashMap::new();
        let mut series: Vec<RefSeries> = Vec::new();
        let mut samples: Vec<RefSample> = Vec::new();
        let mut starts: Vec<SampleStart> = Vec::new();
        let outcome = wal::replay(dir, |payload| {
            series.clear();
            samples.clear();
            starts.clear();
            decode_with_starts(payload, &mut series, &mut samples, &mut starts)?;
            let mut next_start = starts.iter().peekable();
            for s in series.drain(..) {
                let h = self.create_with_ref(s.series_ref, s.labels);
                lock(&h).logged = true;
                refs.insert(s.series_ref, h);
                stats.series += 1;
            }
            for (i, s) in samples.iter().enumerate() {
                let st = next_start.next_if(|x| x.sample == i).map(|x| x.st);
                let Some(h) = refs.get(&s.series_ref) else {
                    stats.unknown_refs += 1;
                    continue;
                };
                let ok = check_sample(self, &lock(h), s.t, s.v, None, &HashSet::new(), true).is_ok();
                if !ok {
                    stats.rejected += 1;
                    continue;
                }
                publish(self, h, s.t, s.v);
                if let Some(st) = st {
                    lock(h).set_start(s.t, st);
                }
                stats.samples += 1;
            }
            Ok(())
        })?;
        // Replayed rejections are not the user's: keep the counters for
        // live appends.
        let c = &self.counters;
        for a in [&c.out_of_order, &c.duplicates, &c.out_of_bounds] {
            a.store(0, std::sync::atomic::Ordering::Relaxed);
        }
        Ok((outcome, stats))
    }

    /// The checkpoint filter: keeps series still in the head and samples at
    /// or after `mint` of such series.
    pub(crate) fn checkpoint_filter(
        &self,
        mint: i64,
    ) -> impl FnMut(&[u8]) -> Result<Option<Vec<u8>>, wal::ApplyError> + '_ {
        let mut series: Vec<RefSeries> = Vec::new();
        let mut samples: Vec<RefSample> = Vec::new();
        let mut starts: Vec<SampleStart> = Vec::new();
        let mut kept: Vec<RefSample> = Vec::new();
        let mut kept_starts: Vec<SampleStart> = Vec::new();
        let mut buf = Encbuf::new();
        move |payload| {
            series.clear();
            samples.clear();
            starts.clear();
            decode_with_starts(payload, &mut series, &mut samples, &mut starts)?;
            series.retain(|s| self.has_ref(s.series_ref));
            // Keep samples at or after `mint` of live series, and the start
            // timestamps of the kept samples (renumbered).
            kept.clear();
            kept_starts.clear();
            let mut next_start = starts.iter().peekable();
            for (i, s) in samples.iter().enumerate() {
                let st = next_start.next_if(|x| x.sample == i).map(|x| x.st);
                if s.t >= mint && self.has_ref(s.series_ref) {
                    if let Some(st) = st {
                        kept_starts.push(SampleStart { sample: kept.len(), st });
                    }
                    kept.push(*s);
                }
            }
            if series.is_empty() && kept.is_empty() {
                return Ok(None);
            }
            encode_commit_with_starts(&series, &kept, &kept_starts, &mut buf);
            Ok(Some(buf.get().to_vec()))
        }
    }
}
