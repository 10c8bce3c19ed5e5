//! Chunk files: a header, compressed blocks back to back, an index of
//! streams and their blocks, and a footer locating the index.
//!
//! ```text
//! header  "LSCK" | version u8 (3; 1 and 2 are read too) | 3 zero bytes
//! blocks  per block: zstd frame (version 3: two frames, lines then
//!         columns), then (version >= 2) its filter, if any
//! index   uvarint wal_upto | uvarint stream count | per stream:
//!           uvarint label count | (uvarint-str name, uvarint-str value)* |
//!           uvarint block count | per block: varint min_t | varint max_t |
//!           uvarint entries | uvarint line_bytes | uvarint raw_len |
//!           uvarint offset | uvarint length | be32 crc32c(block bytes) |
//!           version >= 2: uvarint filter_len |
//!             if filter_len > 0: be32 crc32c(filter bytes)
//! footer  be64 index offset | be32 crc32c(index) | "LSCI"
//! ```
//!
//! A block's filter (`super::filter`) lies right after its frame, at
//! `offset + length`. Versions 1 and 2 hold blocks in the first block
//! layout, version 3 in the second (`super::block::BlockFormat`).
//!
//! Files are written under `<name>.tmp`, fsynced and renamed into place, and
//! never modified afterwards, which is what makes memory-mapping them sound.
//! For the same reason a block's (or filter's) CRC is checked the first
//! time it is read after the file is opened, not on every read: the bytes
//! cannot change while the file is open, and the check costs a few percent
//! of a scan that decompresses every block.

use super::block::BlockFormat;
use super::BlockMeta;
use crate::error::ChunkError;
use model::{Label, Labels};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tsdb::encoding::{crc32, Decbuf, Encbuf};
use tsdb::fs::{IoContext, IoError, Mmap};

/// Magic opening a chunk file.
pub(crate) const MAGIC: [u8; 4] = *b"LSCK";
/// Magic closing a chunk file.
pub(crate) const FOOTER_MAGIC: [u8; 4] = *b"LSCI";
/// Format version written. Versions 1 (no block filters) and 2 (first
/// block layout) are read too.
pub(crate) const VERSION: u8 = 3;
const HEADER_LEN: usize = 8;
const FOOTER_LEN: usize = 16;

/// A block to write: metadata, compressed bytes, filter.
pub(crate) type BlockToWrite<'a> = (BlockMeta, &'a [u8], Option<&'a [u8]>);

/// One stream's blocks to write.
pub(crate) struct StreamBlocks<'a> {
    pub labels: &'a Labels,
    pub blocks: Vec<BlockToWrite<'a>>,
}

/// Writes a chunk file durably at `path`. Returns the file size.
pub(crate) fn write_chunk_file(
    path: &Path,
    wal_upto: u32,
    streams: &[StreamBlocks<'_>],
) -> Result<u64, IoError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(tsdb::fs::TMP_SUFFIX);
    let tmp = PathBuf::from(tmp);
    let file = std::fs::File::create(&tmp).ctx("create", &tmp)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut header = [0u8; HEADER_LEN];
    header[..4].copy_from_slice(&MAGIC);
    header[4] = VERSION;
    w.write_all(&header).ctx("write", &tmp)?;
    let mut offset = HEADER_LEN as u64;
    let mut index = Encbuf::new();
    index.put_uvarint(u64::from(wal_upto));
    index.put_uvarint(streams.len() as u64);
    for s in streams {
        index.put_uvarint(s.labels.len() as u64);
        for l in s.labels.iter() {
            index.put_uvarint_str(&l.name);
            index.put_uvarint_str(&l.value);
        }
        index.put_uvarint(s.blocks.len() as u64);
        for (m, bytes, filter) in &s.blocks {
            w.write_all(bytes).ctx("write", &tmp)?;
            let filter = filter.unwrap_or_default();
            w.write_all(filter).ctx("write", &tmp)?;
            index.put_varint(m.min_t);
            index.put_varint(m.max_t);
            index.put_uvarint(u64::from(m.entries));
            index.put_uvarint(m.line_bytes);
            index.put_uvarint(u64::from(m.raw_len));
            index.put_uvarint(offset);
            index.put_uvarint(bytes.len() as u64);
            index.put_be32(crc32(bytes));
            index.put_uvarint(filter.len() as u64);
            if !filter.is_empty() {
                index.put_be32(crc32(filter));
            }
            offset += (bytes.len() + filter.len()) as u64;
        }
    }
    w.write_all(index.get()).ctx("write", &tmp)?;
    let mut footer = Encbuf::new();
    footer.put_be64(offset);
    footer.put_be32(crc32(index.get()));
    footer.put_bytes(&FOOTER_MAGIC);
    w.write_all(footer.get()).ctx("write", &tmp)?;
    let file = w.into_inner().map_err(|e| IoError::new("write", &tmp, e.into_error()))?;
    file.sync_all().ctx("fsync", &tmp)?;
    drop(file);
    tsdb::fs::rename_durable(&tmp, path)?;
    Ok(offset + index.len() as u64 + FOOTER_LEN as u64)
}

/// An open, memory-mapped chunk file.
#[derive(Debug)]
pub(crate) struct ChunkFile {
    pub path: PathBuf,
    map: Mmap,
    /// WAL segments up to this index are covered by this and older files.
    pub wal_upto: u32,
    /// Layout of the file's blocks.
    pub format: BlockFormat,
    /// Bit `2 * ordinal` is set once block `ordinal`'s CRC has been
    /// checked, bit `2 * ordinal + 1` once its filter's has.
    checked: Box<[AtomicU64]>,
}

/// A block located in a chunk file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FileBlock {
    pub meta: BlockMeta,
    pub offset: usize,
    pub len: usize,
    pub crc: u32,
    /// Length and CRC of the filter stored after the block (0: none).
    pub filter_len: usize,
    pub filter_crc: u32,
    /// Position of the block in the file (0 for the first one).
    pub ordinal: u32,
}

/// The streams of a chunk file with their blocks, in file order.
pub(crate) type FileIndex = Vec<(Labels, Vec<FileBlock>)>;

impl ChunkFile {
    /// Maps and validates the file at `path` and reads its index.
    pub fn open(path: &Path) -> Result<(Arc<ChunkFile>, FileIndex), OpenChunkError> {
        let map = Mmap::open(path).ctx("open", path)?;
        let (wal_upto, index) = parse(&map).map_err(|(offset, reason)| ChunkError {
            path: path.to_path_buf(),
            offset,
            reason,
        })?;
        // `parse` checked that the header is there and the version known.
        let format = if map.get(4).is_some_and(|&v| v >= 3) { BlockFormat::V3 } else { BlockFormat::V1 };
        let blocks: usize = index.iter().map(|(_, b)| b.len()).sum();
        let checked = (0..(2 * blocks).div_ceil(64)).map(|_| AtomicU64::new(0)).collect();
        let file = ChunkFile { path: path.to_path_buf(), map, wal_upto, format, checked };
        Ok((Arc::new(file), index))
    }

    /// Whether check `bit` (see `checked`) has passed.
    fn is_checked(&self, bit: usize) -> bool {
        self.checked.get(bit / 64).is_some_and(|w| w.load(Ordering::Relaxed) & (1 << (bit % 64)) != 0)
    }

    /// Records that check `bit` passed.
    fn set_checked(&self, bit: usize) {
        if let Some(w) = self.checked.get(bit / 64) {
            w.fetch_or(1 << (bit % 64), Ordering::Relaxed);
        }
    }

    /// The bytes of a block, checked against its CRC (the first time).
    pub fn block(&self, b: &FileBlock) -> Result<&[u8], ChunkError> {
        let bytes = self
            .map
            .get(b.offset..b.offset + b.len)
            .ok_or_else(|| self.err(b.offset, "block out of bounds"))?;
        let bit = 2 * b.ordinal as usize;
        if !self.is_checked(bit) {
            if crc32(bytes) != b.crc {
                return Err(self.err(b.offset, "block checksum mismatch"));
            }
            self.set_checked(bit);
        }
        Ok(bytes)
    }

    /// The block's filter, if it has one, checked against its CRC (the
    /// first time).
    pub fn filter(&self, b: &FileBlock) -> Result<Option<&[u8]>, ChunkError> {
        if b.filter_len == 0 {
            return Ok(None);
        }
        let at = b.offset + b.len;
        let bytes = self
            .map
            .get(at..at + b.filter_len)
            .ok_or_else(|| self.err(at, "block filter out of bounds"))?;
        let bit = 2 * b.ordinal as usize + 1;
        if !self.is_checked(bit) {
            if crc32(bytes) != b.filter_crc {
                return Err(self.err(at, "block filter checksum mismatch"));
            }
            self.set_checked(bit);
        }
        Ok(Some(bytes))
    }

    /// An error about this file at `offset`.
    pub fn err(&self, offset: usize, reason: impl Into<String>) -> ChunkError {
        ChunkError { path: self.path.clone(), offset: offset as u64, reason: reason.into() }
    }
}

/// Opening a chunk file failed.
#[derive(Debug)]
pub(crate) enum OpenChunkError {
    Io(IoError),
    Corrupt(ChunkError),
}

impl From<IoError> for OpenChunkError {
    fn from(e: IoError) -> Self {
        OpenChunkError::Io(e)
    }
}
impl From<ChunkError> for OpenChunkError {
    fn from(e: ChunkError) -> Self {
        OpenChunkError::Corrupt(e)
    }
}

/// Parses a whole chunk file. Errors carry the offset and the reason.
pub(crate) fn parse(data: &[u8]) -> Result<(u32, FileIndex), (u64, String)> {
    if data.len() < HEADER_LEN + FOOTER_LEN {
        return Err((0, format!("file of {} bytes is too short", data.len())));
    }
    if data[..4] != MAGIC {
        return Err((0, format!("bad magic {:02x?}", &data[..4])));
    }
    let version = data[4];
    if !(1..=VERSION).contains(&version) {
        return Err((4, format!("unsupported version {version}")));
    }
    if data[5..8] != [0, 0, 0] {
        return Err((5, "reserved header bytes are not zero".into()));
    }
    let foot_at = data.len() - FOOTER_LEN;
    let mut f = Decbuf::with_base(&data[foot_at..], foot_at as u64);
    let de = |e: tsdb::encoding::DecodeError| (e.offset, e.to_string());
    let index_off = f.be64().map_err(de)?;
    let index_crc = f.be32().map_err(de)?;
    if f.bytes(4).map_err(de)? != FOOTER_MAGIC {
        return Err((foot_at as u64 + 12, "bad footer magic".into()));
    }
    if index_off < HEADER_LEN as u64 || index_off > foot_at as u64 {
        return Err((foot_at as u64, format!("index offset {index_off} out of bounds")));
    }
    let index_off = index_off as usize;
    let index = &data[index_off..foot_at];
    if crc32(index) != index_crc {
        return Err((index_off as u64, "index checksum mismatch".into()));
    }
    let mut d = Decbuf::with_base(index, index_off as u64);
    let wal_upto = d.uvarint32().map_err(de)?;
    let n_streams = d.uvarint_len(2).map_err(de)?;
    let mut out = Vec::with_capacity(n_streams);
    let mut ordinal = 0u32;
    for _ in 0..n_streams {
        let n_labels = d.uvarint_len(2).map_err(de)?;
        let mut labels = Vec::with_capacity(n_labels);
        for _ in 0..n_labels {
            let name = d.uvarint_str().map_err(de)?;
            let value = d.uvarint_str().map_err(de)?;
            labels.push(Label::new(name, value));
        }
        let at = d.offset();
        let labels = Labels::from_sorted(labels)
            .ok_or_else(|| (at, "stream labels not sorted and unique".to_string()))?;
        let n_blocks = d.uvarint_len(11).map_err(de)?;
        let mut blocks = Vec::with_capacity(n_blocks);
        for _ in 0..n_blocks {
            let at = d.offset();
            let min_t = d.varint().map_err(de)?;
            let max_t = d.varint().map_err(de)?;
            let entries = d.uvarint32().map_err(de)?;
            let line_bytes = d.uvarint().map_err(de)?;
            let raw_len = d.uvarint32().map_err(de)?;
            let offset = d.uvarint().map_err(de)?;
            let len = d.uvarint().map_err(de)?;
            let crc = d.be32().map_err(de)?;
            let (filter_len, filter_crc) = if version >= 2 {
                let n = d.uvarint().map_err(de)?;
                (n, if n > 0 { d.be32().map_err(de)? } else { 0 })
            } else {
                (0, 0)
            };
            if min_t > max_t || entries == 0 {
                return Err((
                    at,
                    format!("block entry has min_t {min_t} > max_t {max_t} or no entries"),
                ));
            }
            if offset < HEADER_LEN as u64
                || offset
                    .checked_add(len)
                    .and_then(|e| e.checked_add(filter_len))
                    .is_none_or(|e| e > index_off as u64)
            {
                return Err((
                    at,
                    format!(
                        "block at {offset} of {len} bytes (filter {filter_len}) lies outside the block area"
                    ),
                ));
            }
            let meta = BlockMeta { min_t, max_t, entries, line_bytes, raw_len };
            blocks.push(FileBlock {
                meta,
                offset: offset as usize,
                len: len as usize,
                crc,
                filter_len: filter_len as usize,
                filter_crc,
                ordinal,
            });
            ordinal = ordinal.saturating_add(1);
        }
        out.push((labels, blocks));
    }
    if !d.is_empty() {
        return Err((d.offset(), format!("{} trailing bytes in the index", d.remaining())));
    }
    Ok((wal_upto, out))
}

#[cfg(test)]
mod tests {
    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// [`ChunkFile::open`] with its error as text.
    fn open(p: &Path) -> Result<(Arc<ChunkFile>, FileIndex), String> {
        ChunkFile::open(p).map_err(|e| format!("{e:?}"))
    }
    use super::*;
    use proptest::prelude::*;

    fn sample_file(dir: &Path) -> PathBuf {
        let p = dir.join("00000001");
        let l = Labels::from_pairs([("job", "a")]);
        let m = BlockMeta { min_t: 1, max_t: 5, entries: 2, line_bytes: 6, raw_len: 20 };
        write_chunk_file(
            &p,
            3,
            &[StreamBlocks {
                labels: &l,
                blocks: vec![(m, b"abcdef", Some(b"filt")), (m, b"xyz", None)],
            }],
        )
        .unwrap();
        p
    }

    #[test]
    fn write_then_read() -> TestResult {
        let dir = tempfile::tempdir()?;
        let p = sample_file(dir.path());
        let (f, idx) = open(&p)?;
        assert_eq!(f.wal_upto, 3);
        assert_eq!(idx.len(), 1);
        assert_eq!(idx[0].1.len(), 2);
        assert_eq!(f.block(&idx[0].1[0])?, b"abcdef");
        assert_eq!(f.block(&idx[0].1[1])?, b"xyz");
        assert_eq!(f.filter(&idx[0].1[0])?, Some(&b"filt"[..]));
        assert_eq!(f.filter(&idx[0].1[1])?, None);
        assert!(!dir.path().join("00000001.tmp").exists());
        Ok(())
    }

    #[test]
    fn every_truncation_and_flip_is_an_error() -> TestResult {
        let dir = tempfile::tempdir()?;
        let data = std::fs::read(sample_file(dir.path()))?;
        for cut in 0..data.len() {
            assert!(parse(&data[..cut]).is_err(), "cut at {cut}");
        }
        // Flipping a bit in the header, index or footer is detected by the
        // magic, version or CRC; in a block or filter (bytes 8..21) by
        // their CRCs at read time.
        for i in (0..8).chain(21..data.len()) {
            let mut d = data.clone();
            d[i] ^= 0x10;
            assert!(parse(&d).is_err(), "flip at {i}");
        }
        let p = dir.path().join("flipped");
        for i in 8..21 {
            let mut d = data.clone();
            d[i] ^= 0x10;
            std::fs::write(&p, &d)?;
            let (f, idx) = open(&p)?;
            let b = &idx[0].1;
            let damaged =
                f.block(&b[0]).is_err() || f.block(&b[1]).is_err() || f.filter(&b[0]).is_err();
            assert!(damaged, "flip at {i}");
        }
        Ok(())
    }

    #[test]
    fn checksums_are_checked_until_one_passes() -> TestResult {
        let dir = tempfile::tempdir()?;
        let mut data = std::fs::read(sample_file(dir.path()))?;
        data[9] ^= 0x10; // inside block 0 ("abcdef" at 8..14)
        let p = dir.path().join("flipped");
        std::fs::write(&p, &data)?;
        let (f, idx) = open(&p)?;
        let b = &idx[0].1;
        assert_eq!((b[0].ordinal, b[1].ordinal), (0, 1));
        for _ in 0..2 {
            // A failed check is not recorded: it fails again.
            assert!(f.block(&b[0]).unwrap_err().to_string().contains("checksum"));
            assert_eq!(f.block(&b[1])?, b"xyz");
            assert_eq!(f.filter(&b[0])?, Some(&b"filt"[..]));
        }
        assert!(!f.is_checked(0));
        assert!(f.is_checked(1) && f.is_checked(2));
        assert!(!f.is_checked(3), "block 1 has no filter");
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse(&b);
            let mut with_magic = b"LSCK\x01\0\0\0".to_vec();
            with_magic.extend_from_slice(&b);
            let _ = parse(&with_magic);
        }
    }
}
