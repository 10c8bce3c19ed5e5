//! Streams: their state (blocks and head) and the label postings that
//! turn matchers into candidate streams without scanning every stream.

use crate::chunk::block::BlockFormat;
use crate::chunk::file::{ChunkFile, FileBlock};
use crate::chunk::BlockMeta;
use crate::error::ChunkError;
use crate::head::Head;
use model::{Labels, MatchType, Matcher};
use std::collections::HashMap;
use std::sync::Arc;

/// Where a block's compressed bytes live.
#[derive(Clone, Debug)]
pub(crate) enum BlockData {
    /// Cut but not yet flushed to a chunk file.
    Mem(Arc<[u8]>),
    /// In a memory-mapped chunk file.
    File(Arc<ChunkFile>, FileBlock),
}

/// A compressed block of one stream.
#[derive(Clone, Debug)]
pub(crate) struct BlockRef {
    pub meta: BlockMeta,
    pub data: BlockData,
    /// The trigram filter of a block not yet flushed (a flushed block's
    /// filter is in its chunk file).
    pub mem_filter: Option<Arc<[u8]>>,
}

impl BlockRef {
    /// The block's trigram filter (`chunk::filter`), if it has one; a
    /// chunk file's copy is checked against its CRC.
    pub fn filter(&self) -> Result<Option<&[u8]>, ChunkError> {
        match &self.data {
            BlockData::Mem(_) => Ok(self.mem_filter.as_deref()),
            BlockData::File(f, fb) => f.filter(fb),
        }
    }

    /// The uncompressed layout of the block: unflushed blocks are always
    /// in the current one.
    pub fn format(&self) -> BlockFormat {
        match &self.data {
            BlockData::Mem(_) => BlockFormat::V3,
            BlockData::File(f, _) => f.format,
        }
    }

    pub fn compressed_len(&self) -> usize {
        match &self.data {
            BlockData::Mem(b) => b.len(),
            BlockData::File(_, fb) => fb.len,
        }
    }
}

/// One stream.
#[derive(Debug)]
pub(crate) struct StreamState {
    pub labels: Labels,
    /// Blocks in creation order (which is push order for equal
    /// timestamps). Shared copy-on-write with running queries.
    pub blocks: Arc<Vec<BlockRef>>,
    pub head: Head,
    /// Newest timestamp ever accepted (for the out-of-order window).
    pub newest: i64,
}

impl StreamState {
    pub fn new(labels: Labels) -> Self {
        StreamState {
            labels,
            blocks: Arc::new(Vec::new()),
            head: Head::default(),
            newest: i64::MIN,
        }
    }
}

/// Label postings: name → value → sorted stream ids.
#[derive(Debug, Default)]
pub(crate) struct Postings {
    map: HashMap<String, HashMap<String, Vec<u32>>>,
    all: Vec<u32>,
}

fn insert_sorted(v: &mut Vec<u32>, id: u32) {
    if let Err(i) = v.binary_search(&id) {
        v.insert(i, id);
    }
}

fn remove_sorted(v: &mut Vec<u32>, id: u32) {
    if let Ok(i) = v.binary_search(&id) {
        v.remove(i);
    }
}

impl Postings {
    pub fn add(&mut self, id: u32, labels: &Labels) {
        insert_sorted(&mut self.all, id);
        for l in labels.iter() {
            let ids =
                self.map.entry(l.name.clone()).or_default().entry(l.value.clone()).or_default();
            insert_sorted(ids, id);
        }
    }

    pub fn remove(&mut self, id: u32, labels: &Labels) {
        remove_sorted(&mut self.all, id);
        for l in labels.iter() {
            if let Some(values) = self.map.get_mut(&l.name) {
                if let Some(ids) = values.get_mut(&l.value) {
                    remove_sorted(ids, id);
                    if ids.is_empty() {
                        values.remove(&l.value);
                    }
                }
                if values.is_empty() {
                    self.map.remove(&l.name);
                }
            }
        }
    }

    /// Sorted ids of streams that may match every matcher (a superset:
    /// matchers that accept the empty string are left to the caller).
    pub fn candidates(&self, matchers: &[Matcher]) -> Vec<u32> {
        let mut result: Option<Vec<u32>> = None;
        for m in matchers {
            if m.matches_empty() {
                // Matches streams without the label too: no narrowing here.
                continue;
            }
            let ids = self.postings_for(m);
            result = Some(match result {
                None => ids,
                Some(r) => intersect(&r, &ids),
            });
            if result.as_ref().is_some_and(Vec::is_empty) {
                break;
            }
        }
        result.unwrap_or_else(|| self.all.clone())
    }

    /// Ids of streams having label `m.name` with a value `m` accepts.
    fn postings_for(&self, m: &Matcher) -> Vec<u32> {
        let Some(values) = self.map.get(&m.name) else { return Vec::new() };
        if m.kind == MatchType::Equal {
            return values.get(&m.value).cloned().unwrap_or_default();
        }
        if m.kind == MatchType::Regex {
            if let Some(set) = m.set_matches() {
                let mut lists: Vec<&[u32]> =
                    set.iter().filter_map(|v| values.get(v).map(Vec::as_slice)).collect();
                lists.dedup();
                return union(lists);
            }
        }
        union(values.iter().filter(|(v, _)| m.matches(v)).map(|(_, ids)| ids.as_slice()).collect())
    }
}

fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

fn union(lists: Vec<&[u32]>) -> Vec<u32> {
    match lists.len() {
        0 => Vec::new(),
        1 => lists[0].to_vec(),
        _ => {
            let mut v: Vec<u32> = lists.concat();
            v.sort_unstable();
            v.dedup();
            v
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_follow_matchers() {
        let mut p = Postings::default();
        let a = Labels::from_pairs([("job", "api"), ("env", "prod")]);
        let b = Labels::from_pairs([("job", "web"), ("env", "prod")]);
        let c = Labels::from_pairs([("job", "web")]);
        p.add(1, &a);
        p.add(2, &b);
        p.add(3, &c);
        assert_eq!(p.candidates(&[Matcher::equal("job", "web")]), vec![2, 3]);
        assert_eq!(
            p.candidates(&[Matcher::equal("job", "web"), Matcher::equal("env", "prod")]),
            vec![2]
        );
        let re = Matcher::new(MatchType::Regex, "job", "api|web").unwrap();
        assert_eq!(p.candidates(&[re]), vec![1, 2, 3]);
        let re = Matcher::new(MatchType::Regex, "job", "w.*").unwrap();
        assert_eq!(p.candidates(&[re]), vec![2, 3]);
        let ne = Matcher::new(MatchType::NotEqual, "env", "prod").unwrap();
        assert_eq!(p.candidates(&[ne]), vec![1, 2, 3]); // matches empty: left to the caller
        let ne = Matcher::new(MatchType::NotEqual, "env", "").unwrap();
        assert_eq!(p.candidates(&[ne]), vec![1, 2]);
        p.remove(2, &b);
        assert_eq!(p.candidates(&[Matcher::equal("env", "prod")]), vec![1]);
        assert_eq!(p.candidates(&[]), vec![1, 3]);
    }
}
