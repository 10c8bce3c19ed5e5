//! Writing an index file.

use super::{ChunkMeta, IndexError, HEADER_SIZE, INDEX_VERSION, MAGIC_INDEX};
use crate::encoding::{crc32, Encbuf};
use crate::fs::{IoContext, IoError};
use model::Labels;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Sizes of the sections of a written index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Number of series.
    pub series: u64,
    /// Number of distinct symbols (label names and values).
    pub symbols: u64,
    /// Number of postings lists (label pairs plus the all-series list).
    pub postings_lists: u64,
    /// Total file size in bytes.
    pub bytes: u64,
}

/// Builds an index file.
///
/// Series must be added in strictly increasing [`Labels`] order. Only the
/// labels and chunk metadata of each series are kept in memory until
/// [`IndexWriter::finish`], which writes the whole file (the symbol table
/// must precede the series and cannot be known before every series is
/// seen); sample data never passes through the index writer.
#[derive(Debug)]
pub struct IndexWriter {
    path: PathBuf,
    series: Vec<(Labels, Vec<ChunkMeta>)>,
}

impl IndexWriter {
    /// A writer that will create the file at `path` on `finish`.
    pub fn new(path: &Path) -> Self {
        IndexWriter { path: path.to_path_buf(), series: Vec::new() }
    }

    /// Number of series added so far.
    pub fn num_series(&self) -> usize {
        self.series.len()
    }

    /// Adds a series with its chunks, which must be sorted by time and not
    /// overlap. Returns the series' position (0-based) in the index.
    pub fn add_series(
        &mut self,
        labels: &Labels,
        chunks: &[ChunkMeta],
    ) -> Result<usize, IndexError> {
        let invalid =
            |detail: String| IndexError::InvalidSeries { series: labels.to_string(), detail };
        if let Some((prev, _)) = self.series.last() {
            if prev >= labels {
                return Err(invalid(format!("added out of order after {prev}")));
            }
        }
        if labels.iter().any(|l| l.name.is_empty()) {
            return Err(invalid("empty label name".into()));
        }
        for (i, c) in chunks.iter().enumerate() {
            if c.mint > c.maxt {
                return Err(invalid(format!("chunk {i} has mint {} > maxt {}", c.mint, c.maxt)));
            }
            if i > 0 && c.mint <= chunks[i - 1].maxt {
                return Err(invalid(format!("chunk {i} overlaps the previous chunk")));
            }
        }
        self.series.push((labels.clone(), chunks.to_vec()));
        Ok(self.series.len() - 1)
    }

    /// Writes and fsyncs the file.
    pub fn finish(self) -> Result<IndexStats, IndexError> {
        let path = self.path.clone();
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .ctx("create index", &path)?;
        let mut w = Out { w: BufWriter::with_capacity(1 << 20, f), pos: 0, path: path.clone() };
        let stats = self.write_all(&mut w)?;
        let f = w.w.into_inner().map_err(|e| IoError::new("flush", &path, e.into_error()))?;
        f.sync_all().ctx("fsync", &path)?;
        Ok(stats)
    }

    fn write_all(self, w: &mut Out) -> Result<IndexStats, IndexError> {
        let mut e = Encbuf::with_capacity(1 << 16);
        e.put_be32(MAGIC_INDEX);
        e.put_u8(INDEX_VERSION);
        debug_assert_eq!(e.len(), HEADER_SIZE);
        w.write(e.get())?;

        // Symbols: every label name and value, sorted; series refer to
        // them by position.
        let mut syms: Vec<&str> = Vec::new();
        for (l, _) in &self.series {
            for label in l.iter() {
                syms.push(&label.name);
                syms.push(&label.value);
            }
        }
        syms.sort_unstable();
        syms.dedup();
        let sym_idx: HashMap<&str, u32> =
            syms.iter().enumerate().map(|(i, s)| (*s, i as u32)).collect();
        let symbols_off = w.pos;
        e.reset();
        e.put_be32(syms.len() as u32);
        for s in &syms {
            e.put_uvarint_str(s);
        }
        w.section(e.get())?;

        // Series entries; remember each one's offset (its reference) and
        // build the postings on the way.
        let series_off = w.pos;
        let mut postings: HashMap<(u32, u32), Vec<u64>> = HashMap::new();
        let mut all: Vec<u64> = Vec::with_capacity(self.series.len());
        let mut body = Encbuf::with_capacity(256);
        for (labels, chunks) in &self.series {
            let sref = w.pos;
            all.push(sref);
            body.reset();
            body.put_uvarint(labels.len() as u64);
            for l in labels.iter() {
                let (n, v) = (sym_idx[l.name.as_str()], sym_idx[l.value.as_str()]);
                body.put_uvarint(u64::from(n));
                body.put_uvarint(u64::from(v));
                postings.entry((n, v)).or_default().push(sref);
            }
            body.put_uvarint(chunks.len() as u64);
            let mut prev: Option<&ChunkMeta> = None;
            for c in chunks {
                match prev {
                    None => {
                        body.put_varint(c.mint);
                        body.put_uvarint(c.maxt.wrapping_sub(c.mint) as u64);
                        body.put_uvarint(c.chunk_ref);
                    }
                    Some(p) => {
                        body.put_uvarint(c.mint.wrapping_sub(p.maxt) as u64);
                        body.put_uvarint(c.maxt.wrapping_sub(c.mint) as u64);
                        body.put_varint(c.chunk_ref.wrapping_sub(p.chunk_ref) as i64);
                    }
                }
                prev = Some(c);
            }
            e.reset();
            e.put_uvarint(body.len() as u64);
            e.put_bytes(body.get());
            e.put_be32(crc32(body.get()));
            w.write(e.get())?;
        }

        // Postings lists, sorted by (name, value) with the all-series list
        // (empty name and value) first.
        let postings_off = w.pos;
        let mut keys: Vec<(&str, &str, Vec<u64>)> = postings
            .into_iter()
            .map(|((n, v), list)| (syms[n as usize], syms[v as usize], list))
            .collect();
        keys.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let mut table: Vec<(&str, &str, u64)> = Vec::with_capacity(keys.len() + 1);
        table.push(("", "", w.pos));
        write_postings(w, &mut e, &all)?;
        for (n, v, list) in &keys {
            table.push((n, v, w.pos));
            write_postings(w, &mut e, list)?;
        }

        let table_off = w.pos;
        e.reset();
        e.put_be32(table.len() as u32);
        for (n, v, off) in &table {
            e.put_uvarint_str(n);
            e.put_uvarint_str(v);
            e.put_uvarint(*off);
        }
        w.section(e.get())?;

        e.reset();
        for off in [symbols_off, series_off, postings_off, table_off] {
            e.put_be64(off);
        }
        e.put_crc32_since(0);
        w.write(e.get())?;
        Ok(IndexStats {
            series: self.series.len() as u64,
            symbols: syms.len() as u64,
            postings_lists: table.len() as u64,
            bytes: w.pos,
        })
    }
}

fn write_postings(w: &mut Out, e: &mut Encbuf, list: &[u64]) -> Result<(), IndexError> {
    e.reset();
    e.put_be32(list.len() as u32);
    let mut prev = 0;
    for (i, &r) in list.iter().enumerate() {
        e.put_uvarint(if i == 0 { r } else { r - prev });
        prev = r;
    }
    w.section(e.get())
}

struct Out {
    w: BufWriter<File>,
    pos: u64,
    path: PathBuf,
}

impl Out {
    fn write(&mut self, b: &[u8]) -> Result<(), IndexError> {
        self.w.write_all(b).ctx("write", &self.path)?;
        self.pos += b.len() as u64;
        Ok(())
    }

    /// Writes `len u32 | body | crc32(body)`.
    fn section(&mut self, body: &[u8]) -> Result<(), IndexError> {
        let len = u32::try_from(body.len()).map_err(|_| IndexError::InvalidSeries {
            series: String::new(),
            detail: format!("index section of {} bytes exceeds 4 GiB", body.len()),
        })?;
        self.write(&len.to_be_bytes())?;
        self.write(body)?;
        self.write(&crc32(body).to_be_bytes())
    }
}
