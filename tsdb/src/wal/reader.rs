//! Reading the WAL back: checkpoint first, then segments, repairing a torn
//! tail of the last segment.

use super::{
    io_err, last_checkpoint, list_segments, segment_header, sync_dir, RepairReport, WalError,
    MAX_RECORD_LEN, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN, SEGMENT_MAGIC, SEGMENT_VERSION,
};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// The consumer's error type for [`replay`].
pub type ApplyError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What [`replay`] read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayOutcome {
    /// Index of the checkpoint replayed first, if any.
    pub checkpoint: Option<u32>,
    /// Number of segments read (excluding the checkpoint's).
    pub segments: usize,
    /// Number of records handed to the consumer (including the checkpoint's).
    pub records: u64,
    /// The torn tail that was cut off, if any.
    pub repair: Option<RepairReport>,
}

/// Reads every record of the WAL in `dir` in order (the newest checkpoint,
/// then the segments after it), passing each payload to `visit`.
///
/// A torn tail of the last segment is truncated on disk and reported in
/// the outcome. Any other damage — a bad record followed by more data, a
/// damaged older segment or checkpoint, a gap in the segment numbers — is
/// an error naming the file and offset, and nothing is modified.
/// A missing directory is an empty WAL.
pub fn replay<F>(dir: &Path, mut visit: F) -> Result<ReplayOutcome, WalError>
where
    F: FnMut(&[u8]) -> Result<(), ApplyError>,
{
    let mut out = ReplayOutcome::default();
    let cp = last_checkpoint(dir)?;
    if let Some((idx, cp_dir)) = &cp {
        out.checkpoint = Some(*idx);
        let segs = list_segments(cp_dir)?;
        check_contiguous(cp_dir, &segs)?;
        for i in segs {
            let p = cp_dir.join(super::segment_name(i));
            read_segment(&p, false, &mut visit, &mut out)?;
        }
    }
    let cp_idx = cp.as_ref().map(|(i, _)| *i);
    // Segments covered by the checkpoint may linger if a crash interrupted
    // their removal; they are superseded and skipped.
    let segs: Vec<u32> =
        list_segments(dir)?.into_iter().filter(|i| cp_idx.is_none_or(|c| *i > c)).collect();
    check_contiguous(dir, &segs)?;
    if let (Some(c), Some(first)) = (cp_idx, segs.first()) {
        if *first != c + 1 {
            return Err(WalError::MissingSegment {
                dir: dir.to_path_buf(),
                missing: c + 1,
                first: *first,
                last: *segs.last().unwrap_or(first),
            });
        }
    }
    let n = segs.len();
    for (k, i) in segs.into_iter().enumerate() {
        let p = dir.join(super::segment_name(i));
        read_segment(&p, k + 1 == n, &mut visit, &mut out)?;
        out.segments += 1;
    }
    Ok(out)
}

fn check_contiguous(dir: &Path, segs: &[u32]) -> Result<(), WalError> {
    for w in segs.windows(2) {
        if w[1] != w[0] + 1 {
            return Err(WalError::MissingSegment {
                dir: dir.to_path_buf(),
                missing: w[0] + 1,
                first: segs[0],
                last: segs[segs.len() - 1],
            });
        }
    }
    Ok(())
}

fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> WalError {
    WalError::Corrupt { path: path.to_path_buf(), offset, reason: reason.into() }
}

/// Reads one segment. `last` allows repairing a torn tail.
pub(crate) fn read_segment<F>(
    path: &Path,
    last: bool,
    visit: &mut F,
    out: &mut ReplayOutcome,
) -> Result<(), WalError>
where
    F: FnMut(&[u8]) -> Result<(), ApplyError>,
{
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    let file_len = file.metadata().map_err(|e| io_err(path, e))?.len();
    let mut r = BufReader::with_capacity(1 << 16, file);

    if file_len < SEGMENT_HEADER_LEN {
        if last {
            // Died while creating the segment: rewrite an empty one.
            let mut f = OpenOptions::new().write(true).open(path).map_err(|e| io_err(path, e))?;
            f.set_len(0).map_err(|e| io_err(path, e))?;
            f.write_all(&segment_header()).map_err(|e| io_err(path, e))?;
            f.sync_all().map_err(|e| io_err(path, e))?;
            out.repair = Some(RepairReport {
                segment: path.to_path_buf(),
                offset: 0,
                discarded_bytes: file_len,
                reason: "incomplete segment header".into(),
            });
            return Ok(());
        }
        return Err(corrupt(path, 0, format!("segment is only {file_len} bytes long")));
    }
    let mut hdr = [0u8; SEGMENT_HEADER_LEN as usize];
    r.read_exact(&mut hdr).map_err(|e| io_err(path, e))?;
    if hdr[0..4] != SEGMENT_MAGIC {
        return Err(corrupt(path, 0, format!("bad segment magic {:02x?}", &hdr[0..4])));
    }
    if hdr[4] != SEGMENT_VERSION {
        return Err(corrupt(path, 4, format!("unsupported segment version {}", hdr[4])));
    }

    let mut offset = SEGMENT_HEADER_LEN;
    let mut payload = Vec::new();
    loop {
        let remaining = file_len - offset;
        if remaining == 0 {
            return Ok(());
        }
        if remaining < RECORD_HEADER_LEN as u64 {
            let why = format!("{remaining} trailing bytes, shorter than a record header");
            return torn_tail(path, last, offset, file_len, why, out);
        }
        let mut h = [0u8; RECORD_HEADER_LEN];
        r.read_exact(&mut h).map_err(|e| io_err(path, e))?;
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        let hcrc = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
        if crate::encoding::crc32(&h[0..8]) != hcrc {
            // A zero-filled tail is what a file system leaves after a crash
            // that extended the file but did not write the data.
            if last && h.iter().all(|b| *b == 0) && rest_is_zero(path, &mut r)? {
                return repair(path, offset, file_len, "zero-filled tail".into(), out);
            }
            return Err(corrupt(path, offset, "record header checksum mismatch"));
        }
        if len > MAX_RECORD_LEN {
            return Err(corrupt(path, offset, format!("record length {len} exceeds limit")));
        }
        let end = offset + RECORD_HEADER_LEN as u64 + len as u64;
        if end > file_len {
            let why = format!("record of {len} bytes extends past the end of the segment");
            return torn_tail(path, last, offset, file_len, why, out);
        }
        payload.resize(len, 0);
        r.read_exact(&mut payload).map_err(|e| io_err(path, e))?;
        if crate::encoding::crc32(&payload) != crc {
            if last && end == file_len {
                return repair(path, offset, file_len, "last record checksum mismatch".into(), out);
            }
            return Err(corrupt(path, offset, "record checksum mismatch"));
        }
        visit(&payload).map_err(|source| WalError::Apply {
            path: path.to_path_buf(),
            offset,
            source,
        })?;
        out.records += 1;
        offset = end;
    }
}

/// A tail that cannot hold a complete record: repaired in the last
/// segment, corruption anywhere else.
fn torn_tail(
    path: &Path,
    last: bool,
    offset: u64,
    file_len: u64,
    why: String,
    out: &mut ReplayOutcome,
) -> Result<(), WalError> {
    if last {
        repair(path, offset, file_len, why, out)
    } else {
        Err(corrupt(path, offset, why))
    }
}

fn rest_is_zero(path: &Path, r: &mut BufReader<File>) -> Result<bool, WalError> {
    let mut buf = [0u8; 8192];
    loop {
        let n = match r.read(&mut buf) {
            Ok(n) => n,
            Err(e) => return Err(io_err(path, e)),
        };
        if n == 0 {
            return Ok(true);
        }
        if buf[..n].iter().any(|b| *b != 0) {
            return Ok(false);
        }
    }
}

fn repair(
    path: &Path,
    offset: u64,
    file_len: u64,
    reason: String,
    out: &mut ReplayOutcome,
) -> Result<(), WalError> {
    let mut f = OpenOptions::new().write(true).open(path).map_err(|e| io_err(path, e))?;
    f.set_len(offset).map_err(|e| io_err(path, e))?;
    f.seek(SeekFrom::End(0)).map_err(|e| io_err(path, e))?;
    f.sync_all().map_err(|e| io_err(path, e))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    out.repair = Some(RepairReport {
        segment: path.to_path_buf(),
        offset,
        discarded_bytes: file_len - offset,
        reason,
    });
    Ok(())
}
