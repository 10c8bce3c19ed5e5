//! Checkpoints: the still-needed contents of old segments, so the segments
//! can be deleted.

use super::reader::{read_segment, ApplyError, ReplayOutcome};
use super::{
    io_err, last_checkpoint, list_segments, record_header, segment_header, segment_name, sync_dir,
    WalError,
};
use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::Path;

/// What a checkpoint kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    /// Index of the newest segment the checkpoint covers.
    pub upto: u32,
    /// Records read from the previous checkpoint and the segments.
    pub records_read: u64,
    /// Records written to the new checkpoint.
    pub records_kept: u64,
}

/// Writes `checkpoint.<upto>`: every record of the previous checkpoint and
/// of segments `..= upto`, passed through `filter` (which returns the
/// payload to keep, possibly rewritten, or `None` to drop it).
///
/// The checkpoint is written to a temporary directory, synced, and renamed
/// into place, so a crash leaves either the old or the new checkpoint.
/// Older checkpoints are then removed. The caller deletes the covered
/// segments afterwards (see [`super::Wal::remove_segments_upto`]); the
/// segments must be closed (not the one being written).
pub fn checkpoint<F>(dir: &Path, upto: u32, mut filter: F) -> Result<CheckpointStats, WalError>
where
    F: FnMut(&[u8]) -> Result<Option<Vec<u8>>, ApplyError>,
{
    let prev = last_checkpoint(dir)?;
    let final_dir = dir.join(format!("checkpoint.{}", segment_name(upto)));
    let tmp_dir = dir.join(format!("checkpoint.{}.tmp", segment_name(upto)));
    if tmp_dir.exists() {
        std::fs::remove_dir_all(&tmp_dir).map_err(|e| io_err(&tmp_dir, e))?;
    }
    std::fs::create_dir_all(&tmp_dir).map_err(|e| io_err(&tmp_dir, e))?;
    let seg_path = tmp_dir.join(segment_name(0));
    let file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&seg_path)
        .map_err(|e| io_err(&seg_path, e))?;
    let mut w = BufWriter::with_capacity(1 << 16, file);
    w.write_all(&segment_header()).map_err(|e| io_err(&seg_path, e))?;

    let mut stats = CheckpointStats { upto, ..Default::default() };
    let mut write_err: Option<WalError> = None;
    let mut visit = |payload: &[u8]| -> Result<(), ApplyError> {
        stats.records_read += 1;
        if let Some(keep) = filter(payload)? {
            let res = w.write_all(&record_header(&keep)).and_then(|()| w.write_all(&keep));
            if let Err(e) = res {
                write_err = Some(io_err(&seg_path, e));
                return Err("checkpoint write failed".into());
            }
            stats.records_kept += 1;
        }
        Ok(())
    };
    let mut scratch = ReplayOutcome::default();
    let mut from = 0;
    let result = (|| {
        if let Some((idx, cp_dir)) = &prev {
            if *idx >= upto {
                return Err(WalError::Corrupt {
                    path: cp_dir.clone(),
                    offset: 0,
                    reason: format!("checkpoint {idx} is not older than requested {upto}"),
                });
            }
            for i in list_segments(cp_dir)? {
                read_segment(&cp_dir.join(segment_name(i)), false, &mut visit, &mut scratch)?;
            }
            from = idx + 1;
        }
        for i in list_segments(dir)? {
            if i >= from && i <= upto {
                read_segment(&dir.join(segment_name(i)), false, &mut visit, &mut scratch)?;
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp_dir);
        return Err(write_err.take().unwrap_or(e));
    }
    let file = w.into_inner().map_err(|e| io_err(&seg_path, e.into_error()))?;
    file.sync_all().map_err(|e| io_err(&seg_path, e))?;
    sync_dir(&tmp_dir)?;
    std::fs::rename(&tmp_dir, &final_dir).map_err(|e| io_err(&final_dir, e))?;
    sync_dir(dir)?;
    if let Some((_, old)) = prev {
        std::fs::remove_dir_all(&old).map_err(|e| io_err(&old, e))?;
    }
    Ok(stats)
}
