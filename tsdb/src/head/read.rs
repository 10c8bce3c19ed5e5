//! Reading the head: a [`model::Querier`] over its series.

use super::chunks_disk::ChunkSource;
use super::{lock, Head, SeriesHandle};
use crate::chunkenc::XorIter;
use crate::querier::MergeIter;
use model::{
    Labels, Matcher, Querier, Sample, SampleIter, SelectHints, Series, StartIter, StorageError,
    VecIter,
};
use std::collections::BTreeSet;

/// A series' labels and an iterator over its selected samples.
pub(crate) type SeriesSamples = (Labels, Box<dyn SampleIter + Send>);

/// Where one chunk of a selected series comes from.
#[derive(Debug)]
enum Src {
    Disk(ChunkSource),
    /// A copy of the open chunk taken at selection time.
    Mem(Vec<u8>),
}

/// Iterates a series' chunks, decoding one chunk at a time (at most ~120
/// samples are buffered) and keeping only samples in `[mint, maxt]`.
#[derive(Debug)]
pub(crate) struct ChunksIter {
    chunks: Vec<(i64, i64, Src)>,
    next_chunk: usize,
    buf: Vec<Sample>,
    pos: usize,
    mint: i64,
    maxt: i64,
    failed: bool,
}

impl ChunksIter {
    fn load_next(&mut self) -> Result<bool, StorageError> {
        let Some((_, _, src)) = self.chunks.get(self.next_chunk) else { return Ok(false) };
        self.next_chunk += 1;
        self.buf.clear();
        self.pos = 0;
        let decode = |bytes: &[u8], buf: &mut Vec<Sample>, mint: i64, maxt: i64| {
            let mut it = XorIter::new(bytes);
            while let Some(s) = it.next()? {
                if s.t > maxt {
                    break;
                }
                if s.t >= mint {
                    buf.push(s);
                }
            }
            Ok::<(), StorageError>(())
        };
        match src {
            Src::Mem(b) => decode(b, &mut self.buf, self.mint, self.maxt)?,
            Src::Disk(d) => {
                let bytes = d.load()?;
                decode(bytes.as_slice(), &mut self.buf, self.mint, self.maxt)?
            }
        }
        Ok(true)
    }
}

impl SampleIter for ChunksIter {
    fn next(&mut self) -> Result<Option<Sample>, StorageError> {
        loop {
            if self.failed {
                return Ok(None);
            }
            if let Some(s) = self.buf.get(self.pos) {
                self.pos += 1;
                return Ok(Some(*s));
            }
            match self.load_next() {
                Ok(true) => {}
                Ok(false) => return Ok(None),
                Err(e) => {
                    self.failed = true;
                    return Err(e);
                }
            }
        }
    }

    fn seek(&mut self, t: i64) -> Result<Option<Sample>, StorageError> {
        // Skip whole chunks that end before `t` without decoding them.
        if self.buf.get(self.pos..).is_none_or(|b| b.last().is_none_or(|s| s.t < t)) {
            self.buf.clear();
            self.pos = 0;
            while self.chunks.get(self.next_chunk).is_some_and(|c| c.1 < t) {
                self.next_chunk += 1;
            }
        }
        loop {
            match self.next()? {
                Some(s) if s.t >= t => return Ok(Some(s)),
                Some(_) => {}
                None => return Ok(None),
            }
        }
    }

    fn read_until(&mut self, maxt: i64, out: &mut Vec<Sample>) -> Result<usize, StorageError> {
        let before = out.len();
        loop {
            if self.failed {
                break;
            }
            let rest = self.buf.get(self.pos..).unwrap_or(&[]);
            let n = rest.partition_point(|s| s.t <= maxt);
            out.extend_from_slice(&rest[..n]);
            self.pos += n;
            if n < rest.len() {
                break;
            }
            match self.load_next() {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    self.failed = true;
                    return Err(e);
                }
            }
        }
        Ok(out.len() - before)
    }
}

impl Head {
    /// An iterator over the series' samples in `[mint, maxt]`, or `None`
    /// when no chunk overlaps the range.
    pub(crate) fn series_iter(
        &self,
        h: &SeriesHandle,
        mint: i64,
        maxt: i64,
    ) -> Result<Option<SeriesSamples>, StorageError> {
        let s = lock(h);
        let mut chunks = Vec::new();
        for c in &s.disk_chunks {
            if c.maxt >= mint && c.mint <= maxt {
                let src = self
                    .disk()
                    .reader(c.loc)
                    .map_err(|e| StorageError::read(format!("head series {}", s.labels), e))?;
                chunks.push((c.mint, c.maxt, Src::Disk(src)));
            }
        }
        if let Some(o) = &s.open {
            if o.maxt >= mint && o.mint <= maxt {
                chunks.push((o.mint, o.maxt, Src::Mem(o.chunk.bytes().to_vec())));
            }
        }
        let lo = s.ooo.partition_point(|x| x.t < mint);
        let hi = s.ooo.partition_point(|x| x.t <= maxt);
        let ooo = &s.ooo[lo..hi];
        if chunks.is_empty() && ooo.is_empty() {
            return Ok(None);
        }
        let it = ChunksIter { chunks, next_chunk: 0, buf: Vec::new(), pos: 0, mint, maxt, failed: false };
        let it: Box<dyn SampleIter + Send> = if ooo.is_empty() {
            Box::new(it)
        } else {
            Box::new(MergeIter::new(vec![Box::new(it), Box::new(VecIter::new(ooo.to_vec()))]))
        };
        let starts = s.starts_in(mint, maxt);
        let it: Box<dyn SampleIter + Send> =
            if starts.is_empty() { it } else { Box::new(StartIter::new(it, starts.to_vec())) };
        Ok(Some((s.labels.clone(), it)))
    }

    /// Series matching `matchers` with samples possibly in `[mint, maxt]`,
    /// sorted by labels; the iterators own what they read.
    pub(crate) fn select(
        &self,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
    ) -> Result<Vec<Series<'static>>, StorageError> {
        let mut out = Vec::new();
        if mint > maxt {
            return Ok(out);
        }
        for h in self.select_series(matchers) {
            if let Some((labels, it)) = self.series_iter(&h, mint, maxt)? {
                out.push(Series { labels, samples: it });
            }
        }
        Ok(out)
    }

    /// Whether the series has a chunk overlapping `[mint, maxt]`.
    fn overlaps(h: &SeriesHandle, mint: i64, maxt: i64) -> bool {
        let s = lock(h);
        s.disk_chunks.iter().any(|c| c.maxt >= mint && c.mint <= maxt)
            || s.open.as_ref().is_some_and(|o| o.maxt >= mint && o.mint <= maxt)
            || s.ooo.iter().any(|x| x.t >= mint && x.t <= maxt)
    }
}

/// A querier over the head's samples in `[mint, maxt]`.
#[derive(Debug)]
pub(crate) struct HeadQuerier<'a> {
    pub head: &'a Head,
    pub mint: i64,
    pub maxt: i64,
}

impl HeadQuerier<'_> {
    fn matching(&self, matchers: &[Matcher]) -> Vec<SeriesHandle> {
        self.head
            .select_series(matchers)
            .into_iter()
            .filter(|h| Head::overlaps(h, self.mint, self.maxt))
            .collect()
    }
}

impl Querier for HeadQuerier<'_> {
    fn select<'a>(
        &'a self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<Series<'a>>, StorageError> {
        self.head.select(hints.mint.max(self.mint), hints.maxt.min(self.maxt), matchers)
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut names = BTreeSet::new();
        for h in self.matching(matchers) {
            for l in &lock(&h).labels {
                if !names.contains(&l.name) {
                    names.insert(l.name.clone());
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut values = BTreeSet::new();
        for h in self.matching(matchers) {
            if let Some(v) = lock(&h).labels.get(name) {
                if !values.contains(v) {
                    values.insert(v.to_string());
                }
            }
        }
        Ok(values.into_iter().collect())
    }
}
