//! Reading an index file from a memory map.

use super::postings::{intersect, merge, subtract, SeriesRef};
use super::{ChunkMeta, IndexError, HEADER_SIZE, INDEX_VERSION, MAGIC_INDEX, TOC_SIZE};
use crate::encoding::{crc32, Decbuf, DecodeError};
use crate::fs::{IoContext, Mmap};
use model::{Label, Labels, MatchType, Matcher};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One label name of the postings offset table and its values.
#[derive(Debug)]
struct NameEntry {
    name: Range<usize>,
    /// (value, offset of the postings list), sorted by value.
    values: Vec<(Range<usize>, u64)>,
}

/// Reads an index file through a memory map.
///
/// Opening validates the header, the table of contents, the symbol table
/// and the postings offset table (and their checksums); series entries and
/// postings lists are checked when read. Errors name the file and offset.
#[derive(Debug)]
pub struct IndexReader {
    map: Mmap,
    /// Offset of every symbol's bytes (after its length varint) and length.
    symbols: Vec<(usize, usize)>,
    names: Vec<NameEntry>,
    all_postings: u64,
    series_range: Range<u64>,
}

impl IndexReader {
    /// Opens and validates the index at `path`.
    pub fn open(path: &Path) -> Result<Self, IndexError> {
        let map = Mmap::open(path).ctx("mmap", path)?;
        let mut r = IndexReader {
            map,
            symbols: Vec::new(),
            names: Vec::new(),
            all_postings: 0,
            series_range: 0..0,
        };
        r.load()?;
        Ok(r)
    }

    /// The file this index was read from.
    pub fn path(&self) -> &Path {
        self.map.path()
    }

    /// Size of the file in bytes.
    pub fn size(&self) -> u64 {
        self.map.len() as u64
    }

    fn corrupt(&self, offset: u64, detail: impl Into<String>) -> IndexError {
        IndexError::Corrupt { path: self.map.path().to_path_buf(), offset, detail: detail.into() }
    }

    fn dec_err(&self, e: DecodeError) -> IndexError {
        IndexError::Corrupt {
            path: self.map.path().to_path_buf(),
            offset: e.offset,
            detail: match e.kind {
                crate::encoding::DecodeErrorKind::Invalid(m) => m,
                _ => {
                    let s = e.to_string();
                    s.rsplit_once(" at offset").map(|(a, _)| a.to_string()).unwrap_or(s)
                }
            },
        }
    }

    /// The body of a `len u32 | body | crc32` section at `off`.
    fn section(&self, off: u64, what: &str) -> Result<(&[u8], u64), IndexError> {
        let data: &[u8] = &self.map;
        let o = usize::try_from(off).unwrap_or(usize::MAX);
        if o > data.len() || data.len() - o < 8 {
            return Err(
                self.corrupt(off, format!("{what} section starts past the end of the file"))
            );
        }
        let len = u32::from_be_bytes([data[o], data[o + 1], data[o + 2], data[o + 3]]) as usize;
        if data.len() - o - 8 < len {
            return Err(
                self.corrupt(off, format!("{what} section of {len} bytes runs past the end"))
            );
        }
        let body = &data[o + 4..o + 4 + len];
        let c = &data[o + 4 + len..o + 8 + len];
        let want = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        let got = crc32(body);
        if want != got {
            return Err(self.corrupt(
                off,
                format!("{what} checksum mismatch: stored {want:#010x}, computed {got:#010x}"),
            ));
        }
        Ok((body, off + 4))
    }

    fn load(&mut self) -> Result<(), IndexError> {
        let data: &[u8] = &self.map;
        if data.len() < HEADER_SIZE + TOC_SIZE {
            return Err(self.corrupt(0, format!("file of {} bytes is too short", data.len())));
        }
        let magic = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
        if magic != MAGIC_INDEX {
            return Err(self.corrupt(0, format!("bad magic {magic:#010x}")));
        }
        if data[4] != INDEX_VERSION {
            return Err(self.corrupt(4, format!("unsupported version {}", data[4])));
        }
        let toc_at = data.len() - TOC_SIZE;
        let toc = &data[toc_at..];
        let want = u32::from_be_bytes([toc[32], toc[33], toc[34], toc[35]]);
        if crc32(&toc[..32]) != want {
            return Err(self.corrupt(toc_at as u64, "table of contents checksum mismatch"));
        }
        let mut d = Decbuf::with_base(&toc[..32], toc_at as u64);
        let mut offs = [0u64; 4];
        for o in &mut offs {
            *o = d.be64().map_err(|e| self.dec_err(e))?;
        }
        let [symbols_off, series_off, postings_off, table_off] = offs;
        let toc_at = toc_at as u64;
        if !(HEADER_SIZE as u64 <= symbols_off
            && symbols_off <= series_off
            && series_off <= postings_off
            && postings_off <= table_off
            && table_off <= toc_at)
        {
            return Err(self.corrupt(toc_at, "table of contents offsets out of order"));
        }
        self.series_range = series_off..postings_off;

        // Symbols.
        let (body, base) = self.section(symbols_off, "symbol table")?;
        let mut d = Decbuf::with_base(body, base);
        let n = d.be32().map_err(|e| self.dec_err(e))? as usize;
        if n > body.len() {
            return Err(self.corrupt(base, format!("symbol count {n} exceeds section size")));
        }
        let mut symbols = Vec::with_capacity(n);
        for _ in 0..n {
            let s = d.uvarint_str().map_err(|e| self.dec_err(e))?;
            let start = d.offset() as usize - s.len();
            symbols.push((start, s.len()));
        }
        // Sortedness lets writers and readers agree on references only if
        // nobody tampered with the table.
        self.symbols = symbols;

        // Postings offset table.
        let (body, base) = self.section(table_off, "postings offset table")?;
        let mut d = Decbuf::with_base(body, base);
        let n = d.be32().map_err(|e| self.dec_err(e))? as usize;
        if n > body.len() {
            return Err(
                self.corrupt(base, format!("postings table count {n} exceeds section size"))
            );
        }
        let mut names: Vec<NameEntry> = Vec::new();
        let mut all = None;
        let mut prev: Option<(&str, &str)> = None;
        for _ in 0..n {
            let at = d.offset();
            let name = d.uvarint_str().map_err(|e| self.dec_err(e))?;
            let name_start = d.offset() as usize - name.len();
            let value = d.uvarint_str().map_err(|e| self.dec_err(e))?;
            let value_start = d.offset() as usize - value.len();
            let off = d.uvarint().map_err(|e| self.dec_err(e))?;
            if off < postings_off || off >= table_off {
                return Err(
                    self.corrupt(at, format!("postings offset {off} outside postings section"))
                );
            }
            if let Some(p) = prev {
                if p >= (name, value) {
                    return Err(self.corrupt(at, "postings offset table is not sorted"));
                }
            }
            prev = Some((name, value));
            if name.is_empty() {
                all = Some(off);
                continue;
            }
            let vr = value_start..value_start + value.len();
            match names.last_mut() {
                Some(e) if data[e.name.clone()] == *name.as_bytes() => e.values.push((vr, off)),
                _ => names.push(NameEntry {
                    name: name_start..name_start + name.len(),
                    values: vec![(vr, off)],
                }),
            }
        }
        self.names = names;
        self.all_postings = all.ok_or_else(|| self.corrupt(base, "missing all-series postings"))?;
        Ok(())
    }

    fn str_at(&self, r: &Range<usize>) -> &str {
        // Ranges were validated as UTF-8 when the tables were loaded.
        std::str::from_utf8(&self.map[r.clone()]).unwrap_or("")
    }

    /// The symbol with index `i`.
    pub fn symbol(&self, i: u64) -> Result<&str, IndexError> {
        let Some(&(start, len)) = usize::try_from(i).ok().and_then(|i| self.symbols.get(i)) else {
            return Err(self.corrupt(0, format!("symbol reference {i} out of range")));
        };
        let r = start..start + len;
        // Validated as UTF-8 when the symbol table was loaded.
        Ok(std::str::from_utf8(&self.map[r]).unwrap_or(""))
    }

    /// Number of symbols.
    pub fn num_symbols(&self) -> usize {
        self.symbols.len()
    }

    /// Sorted label names of all series.
    pub fn label_names(&self) -> Vec<String> {
        self.names.iter().map(|n| self.str_at(&n.name).to_string()).collect()
    }

    /// Sorted values of label `name` among all series.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        match self.name_entry(name) {
            Some(e) => e.values.iter().map(|(v, _)| self.str_at(v).to_string()).collect(),
            None => Vec::new(),
        }
    }

    fn name_entry(&self, name: &str) -> Option<&NameEntry> {
        self.names
            .binary_search_by(|e| self.map[e.name.clone()].cmp(name.as_bytes()))
            .ok()
            .map(|i| &self.names[i])
    }

    fn read_postings(&self, off: u64) -> Result<Vec<SeriesRef>, IndexError> {
        let (body, base) = self.section(off, "postings list")?;
        let mut d = Decbuf::with_base(body, base);
        let n = d.be32().map_err(|e| self.dec_err(e))? as usize;
        if n > body.len() {
            return Err(self.corrupt(base, format!("postings count {n} exceeds list size")));
        }
        let mut out = Vec::with_capacity(n);
        let mut cur = 0u64;
        for i in 0..n {
            let at = d.offset();
            let v = d.uvarint().map_err(|e| self.dec_err(e))?;
            if i > 0 && v == 0 {
                return Err(self.corrupt(at, "postings list is not strictly increasing"));
            }
            cur = cur.checked_add(v).ok_or_else(|| self.corrupt(at, "postings entry overflows"))?;
            out.push(cur);
        }
        Ok(out)
    }

    /// References of all series, in label order.
    pub fn all_postings(&self) -> Result<Vec<SeriesRef>, IndexError> {
        self.read_postings(self.all_postings)
    }

    /// Series with label `name` equal to `value` (empty when none).
    pub fn postings(&self, name: &str, value: &str) -> Result<Vec<SeriesRef>, IndexError> {
        let Some(e) = self.name_entry(name) else { return Ok(Vec::new()) };
        match e.values.binary_search_by(|(v, _)| self.map[v.clone()].cmp(value.as_bytes())) {
            Ok(i) => self.read_postings(e.values[i].1),
            Err(_) => Ok(Vec::new()),
        }
    }

    /// Union of the postings of the values of `name` accepted by `keep`.
    fn postings_where(
        &self,
        name: &str,
        mut keep: impl FnMut(&str) -> bool,
    ) -> Result<Vec<SeriesRef>, IndexError> {
        let Some(e) = self.name_entry(name) else { return Ok(Vec::new()) };
        let mut lists = Vec::new();
        for (v, off) in &e.values {
            if keep(self.str_at(v)) {
                lists.push(self.read_postings(*off)?);
            }
        }
        Ok(merge(lists))
    }

    /// Union of the postings of `name` for each of `values`.
    fn postings_for_values(
        &self,
        name: &str,
        mut values: Vec<String>,
    ) -> Result<Vec<SeriesRef>, IndexError> {
        values.sort();
        values.dedup();
        let mut lists = Vec::with_capacity(values.len());
        for v in &values {
            lists.push(self.postings(name, v)?);
        }
        Ok(merge(lists))
    }

    /// Series having a value of `m.name` that `m` matches (series without
    /// the label are not included, whatever `m` says about "").
    fn postings_matching(&self, m: &Matcher) -> Result<Vec<SeriesRef>, IndexError> {
        match m.kind {
            MatchType::Equal => self.postings(&m.name, &m.value),
            MatchType::Regex => match m.set_matches() {
                Some(set) => self.postings_for_values(&m.name, set),
                None => self.postings_where(&m.name, |v| m.matches(v)),
            },
            _ => self.postings_where(&m.name, |v| m.matches(v)),
        }
    }

    /// Series having a value of `m.name` that `m` rejects.
    fn postings_not_matching(&self, m: &Matcher) -> Result<Vec<SeriesRef>, IndexError> {
        match m.kind {
            MatchType::NotEqual => self.postings(&m.name, &m.value),
            MatchType::NotRegex => match m.set_matches() {
                Some(set) => self.postings_for_values(&m.name, set),
                None => self.postings_where(&m.name, |v| !m.matches(v)),
            },
            _ => self.postings_where(&m.name, |v| !m.matches(v)),
        }
    }

    /// Sorted references of the series matching every matcher, found
    /// through postings (Prometheus's `PostingsForMatchers`): matchers that
    /// reject "" select the union of postings of the values they accept and
    /// are intersected; matchers that accept "" (and so series without the
    /// label) subtract the postings of the values they reject. With no
    /// selecting matcher the set starts from all series.
    pub fn postings_for_matchers(
        &self,
        matchers: &[Matcher],
    ) -> Result<Vec<SeriesRef>, IndexError> {
        let mut positive: Vec<Vec<SeriesRef>> = Vec::new();
        let mut negative: Vec<Vec<SeriesRef>> = Vec::new();
        for m in matchers {
            if m.matches_empty() {
                negative.push(self.postings_not_matching(m)?);
            } else {
                let p = self.postings_matching(m)?;
                if p.is_empty() {
                    return Ok(Vec::new());
                }
                positive.push(p);
            }
        }
        // Intersect the shortest lists first.
        positive.sort_by_key(Vec::len);
        let mut it = positive.into_iter();
        let mut acc = match it.next() {
            Some(first) => first,
            None => self.all_postings()?,
        };
        for p in it {
            acc = intersect(&acc, &p);
            if acc.is_empty() {
                return Ok(acc);
            }
        }
        for n in negative {
            if !n.is_empty() {
                acc = subtract(&acc, &n);
            }
        }
        Ok(acc)
    }

    /// Reads the series at `r`: its labels and chunk metadata, appended to
    /// the given buffers (which are cleared first).
    pub fn series_into(
        &self,
        r: SeriesRef,
        labels: &mut Vec<Label>,
        chunks: &mut Vec<ChunkMeta>,
    ) -> Result<(), IndexError> {
        labels.clear();
        chunks.clear();
        if !self.series_range.contains(&r) {
            return Err(IndexError::BadRef(r));
        }
        let data: &[u8] = &self.map;
        let end = self.series_range.end as usize;
        let mut d = Decbuf::with_base(&data[r as usize..end], r);
        let len = d.uvarint_len(1).map_err(|e| self.dec_err(e))?;
        let body_at = d.offset();
        let body = d.bytes(len).map_err(|e| self.dec_err(e))?;
        let want = d.be32().map_err(|e| self.dec_err(e))?;
        let got = crc32(body);
        if want != got {
            return Err(self.corrupt(
                r,
                format!(
                    "series entry checksum mismatch: stored {want:#010x}, computed {got:#010x}"
                ),
            ));
        }
        let mut d = Decbuf::with_base(body, body_at);
        let nl = d.uvarint_len(2).map_err(|e| self.dec_err(e))?;
        for _ in 0..nl {
            let n = d.uvarint().map_err(|e| self.dec_err(e))?;
            let v = d.uvarint().map_err(|e| self.dec_err(e))?;
            labels.push(Label::new(self.symbol(n)?, self.symbol(v)?));
        }
        let nc = d.uvarint_len(3).map_err(|e| self.dec_err(e))?;
        let mut prev: Option<ChunkMeta> = None;
        for _ in 0..nc {
            let c = match prev {
                None => {
                    let mint = d.varint().map_err(|e| self.dec_err(e))?;
                    let span = d.uvarint().map_err(|e| self.dec_err(e))?;
                    let cref = d.uvarint().map_err(|e| self.dec_err(e))?;
                    ChunkMeta { mint, maxt: mint.wrapping_add(span as i64), chunk_ref: cref }
                }
                Some(p) => {
                    let gap = d.uvarint().map_err(|e| self.dec_err(e))?;
                    let span = d.uvarint().map_err(|e| self.dec_err(e))?;
                    let dref = d.varint().map_err(|e| self.dec_err(e))?;
                    let mint = p.maxt.wrapping_add(gap as i64);
                    ChunkMeta {
                        mint,
                        maxt: mint.wrapping_add(span as i64),
                        chunk_ref: p.chunk_ref.wrapping_add(dref as u64),
                    }
                }
            };
            chunks.push(c);
            prev = Some(c);
        }
        if !d.is_empty() {
            return Err(self.corrupt(d.offset(), "trailing bytes in series entry"));
        }
        Ok(())
    }

    /// Reads the series at `r`: labels and chunk metadata.
    pub fn series(&self, r: SeriesRef) -> Result<(Labels, Vec<ChunkMeta>), IndexError> {
        let mut labels = Vec::new();
        let mut chunks = Vec::new();
        self.series_into(r, &mut labels, &mut chunks)?;
        let labels = Labels::from_sorted(labels)
            .ok_or_else(|| self.corrupt(r, "series labels are not sorted by name"))?;
        Ok((labels, chunks))
    }

    /// The path of the index file, for error messages.
    pub fn path_buf(&self) -> PathBuf {
        self.map.path().to_path_buf()
    }
}
