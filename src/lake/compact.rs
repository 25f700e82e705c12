//! `cetrail lake compact`: merges a month's files into few large ones.
//!
//! Invariants kept:
//! - **order**: every input file is sorted by (`event_time`, `event_id`); a streaming
//!   k-way merge on (`event_time`, `event_id`, a trail's copy first, `source_object`)
//!   keeps the output sorted
//!   with only one small batch per input file in memory;
//! - **one row per event**: copies of an event id (two shards, two runs that read
//!   overlapping archives) meet side by side in that order, and the first one, from the
//!   smallest source object, is kept (the query view's rule); copies whose times differ
//!   (not CloudTrail's behaviour) are left to the view's read-time deduplication;
//! - **crash safety**: outputs are staged, then one ledger segment adds them and names
//!   the replaced files (the commit point), then they are published and the old files
//!   deleted. Recovery finishes an interrupted publish or deletion; an uncommitted
//!   compaction leaves only staged files, which recovery discards. Readers may see old
//!   and new files side by side for an instant (duplicates the view removes), never a
//!   partial file and never a gap.
//!
//! More inputs than [`FAN_IN`] are merged in rounds through staged intermediate files,
//! so memory does not grow with the number of files.

use std::cmp::Ordering;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::compute::interleave_record_batch;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use serde::Serialize;

use super::ledger::DataFile;
use super::writer::LakeFileWriter;
use super::{Lake, LakeLocation};
use crate::error::LakeError;

/// Most files merged at once.
pub const FAN_IN: usize = 64;
/// Rows read per input file at a time.
const READ_ROWS: usize = 4096;
/// Rows per output batch.
const OUT_ROWS: usize = 8192;

/// What compaction did to one month.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MonthCompaction {
    pub month: String,
    pub files_before: u64,
    pub files_after: u64,
    pub rows_before: u64,
    pub rows_after: u64,
    pub duplicates_removed: u64,
}

/// Compacts `month` (`YYYY-MM`), or every month, into files of about `target_bytes`.
/// Months already held in one file are left alone.
pub fn compact(
    root: &Path,
    month: Option<&str>,
    target_bytes: u64,
) -> Result<Vec<MonthCompaction>, LakeError> {
    compact_at(LakeLocation::Local(root.to_path_buf()), month, target_bytes)
}

/// [`compact`] for a lake in a folder or on S3 (merged from the local mirror, committed
/// on S3).
pub fn compact_at(
    location: LakeLocation,
    month: Option<&str>,
    target_bytes: u64,
) -> Result<Vec<MonthCompaction>, LakeError> {
    let (mut lake, _, _) = Lake::open_at(location, None)?;
    if let Some(r) = lake.remote() {
        super::remote::mirror(r, lake.root())?;
    }
    let root = lake.root().to_path_buf();
    let mut by_month: std::collections::BTreeMap<String, Vec<PathBuf>> = Default::default();
    // Exactly the committed files (a stray file in events/ is not merged in).
    for f in super::check::read_files(&root)? {
        let m = f
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("month="))
            .unwrap_or_default()
            .to_string();
        if month.is_none_or(|want| want == m) {
            by_month.entry(m).or_default().push(f);
        }
    }
    let mut out = Vec::new();
    for (m, files) in by_month {
        if files.len() < 2 {
            continue;
        }
        out.push(compact_month(&mut lake, &m, &files, target_bytes)?);
    }
    Ok(out)
}

fn compact_month(
    lake: &mut Lake,
    month: &str,
    files: &[PathBuf],
    target_bytes: u64,
) -> Result<MonthCompaction, LakeError> {
    let root = lake.root().to_path_buf();
    let mut rows_before = 0;
    for f in files {
        rows_before += row_count(f)?;
    }
    let mut inputs: Vec<PathBuf> = files.to_vec();
    let mut temps: Vec<PathBuf> = Vec::new();
    // Rounds of FAN_IN-way merges until one round can take every input.
    while inputs.len() > FAN_IN {
        let mut next = Vec::new();
        for group in inputs.chunks(FAN_IN) {
            let f = lake.new_file(month)?;
            let path = root.join(&f.staged);
            let mut out = Output::single(path.clone())?;
            merge(group, &mut out)?;
            out.finish()?;
            next.push(path.clone());
            temps.push(path);
        }
        inputs = next;
    }
    let mut output = Output::sized(lake, month, target_bytes)?;
    merge(&inputs, &mut output)?;
    let new_files = output.finish()?;
    let files_after = new_files.len() as u64;
    let rows_after = new_files.iter().map(|f| f.rows).sum();
    let removed: Vec<String> = files
        .iter()
        .filter_map(|p| p.strip_prefix(&root).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    lake.commit_files(new_files, removed)?;
    for t in temps {
        let _ = std::fs::remove_file(t);
    }
    Ok(MonthCompaction {
        month: month.to_string(),
        files_before: files.len() as u64,
        files_after,
        rows_before,
        rows_after,
        duplicates_removed: rows_before.saturating_sub(rows_after),
    })
}

/// Where merged rows go: one file, or files rolled over at a target size.
struct Output<'a> {
    lake: Option<(&'a mut Lake, String, u64)>,
    current: Option<(DataFile, LakeFileWriter)>,
    done: Vec<DataFile>,
    single: Option<LakeFileWriter>,
}

impl<'a> Output<'a> {
    fn single(path: PathBuf) -> Result<Self, LakeError> {
        Ok(Self {
            lake: None,
            current: None,
            done: Vec::new(),
            single: Some(LakeFileWriter::create(&path)?),
        })
    }

    fn sized(lake: &'a mut Lake, month: &str, target: u64) -> Result<Self, LakeError> {
        Ok(Self {
            lake: Some((lake, month.to_string(), target.max(1))),
            current: None,
            done: Vec::new(),
            single: None,
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), LakeError> {
        if let Some(w) = &mut self.single {
            return w.write(batch);
        }
        let Some((lake, month, target)) = &mut self.lake else {
            return Ok(());
        };
        if self.current.is_none() {
            let f = lake.new_file(month)?;
            let w = LakeFileWriter::create(&lake.root().join(&f.staged))?;
            self.current = Some((f, w));
        }
        if let Some((_, w)) = &mut self.current {
            w.write(batch)?;
            if w.size() >= *target
                && let Some((f, w)) = self.current.take()
            {
                let seal = w.finish()?;
                self.done.push(f.sealed(seal));
            }
        }
        Ok(())
    }

    /// Closes the outputs; returns the sized files written (none for a single file).
    fn finish(mut self) -> Result<Vec<DataFile>, LakeError> {
        if let Some(w) = self.single.take() {
            w.finish()?;
        }
        if let Some((f, w)) = self.current.take() {
            let seal = w.finish()?;
            self.done.push(f.sealed(seal));
        }
        Ok(self.done)
    }
}

fn row_count(path: &Path) -> Result<u64, LakeError> {
    let file = File::open(path).map_err(LakeError::io(path))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(read_err(path))?;
    Ok(builder.metadata().file_metadata().num_rows().max(0) as u64)
}

/// One input file being merged: its reader and current batch.
struct Cursor {
    path: PathBuf,
    reader: ParquetRecordBatchReader,
    batch: Option<RecordBatch>,
    row: usize,
    time: Option<TimestampMicrosecondArray>,
    id: Option<StringArray>,
    source: Option<StringArray>,
    /// `source_kind` (null in files written before it: a trail's).
    kind: Option<StringArray>,
}

fn read_err(path: &Path) -> impl Fn(parquet::errors::ParquetError) -> LakeError + '_ {
    move |e| LakeError::Parquet {
        path: path.to_path_buf(),
        message: format!("reading: {e}"),
    }
}

impl Cursor {
    fn open(path: &Path) -> Result<Self, LakeError> {
        let file = File::open(path).map_err(LakeError::io(path))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(read_err(path))?;
        if !super::schema::readable(builder.schema()) {
            return Err(LakeError::NotALake {
                path: path.to_path_buf(),
                message: "schema differs from this cetrail's lake schema".into(),
            });
        }
        let reader = builder
            .with_batch_size(READ_ROWS)
            .build()
            .map_err(read_err(path))?;
        let mut c = Cursor {
            path: path.to_path_buf(),
            reader,
            batch: None,
            row: 0,
            time: None,
            id: None,
            source: None,
            kind: None,
        };
        c.advance_batch()?;
        Ok(c)
    }

    fn advance_batch(&mut self) -> Result<(), LakeError> {
        self.row = 0;
        self.batch = None;
        for next in self.reader.by_ref() {
            let b = next.map_err(|e| LakeError::Parquet {
                path: self.path.clone(),
                message: format!("reading: {e}"),
            })?;
            if b.num_rows() == 0 {
                continue;
            }
            let b = super::schema::conform(b)?;
            let col = |name: &str| -> Result<&dyn Array, LakeError> {
                b.column_by_name(name)
                    .map(|c| c.as_ref())
                    .ok_or_else(|| LakeError::NotALake {
                        path: self.path.clone(),
                        message: format!("no column {name}"),
                    })
            };
            let wrong = |name: &str| LakeError::NotALake {
                path: self.path.clone(),
                message: format!("column {name} has an unexpected type"),
            };
            self.time = Some(
                col("event_time")?
                    .as_any()
                    .downcast_ref::<TimestampMicrosecondArray>()
                    .ok_or_else(|| wrong("event_time"))?
                    .clone(),
            );
            self.id = Some(
                col("event_id")?
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .ok_or_else(|| wrong("event_id"))?
                    .clone(),
            );
            self.source = Some(
                col("source_object")?
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .ok_or_else(|| wrong("source_object"))?
                    .clone(),
            );
            self.kind = Some(
                col("source_kind")?
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .ok_or_else(|| wrong("source_kind"))?
                    .clone(),
            );
            self.batch = Some(b);
            break;
        }
        Ok(())
    }

    /// The merge key of the current row: time, id, whether the copy is not a trail's
    /// (a trail's copy comes first), source object.
    fn key(&self) -> Option<Key<'_>> {
        let (t, i, s, k) = (
            self.time.as_ref()?,
            self.id.as_ref()?,
            self.source.as_ref()?,
            self.kind.as_ref()?,
        );
        self.batch.as_ref()?;
        let other = k.is_valid(self.row) && k.value(self.row) != "trail";
        Some((
            t.value(self.row),
            i.value(self.row),
            other,
            s.value(self.row),
        ))
    }
}

/// See [`Cursor::key`].
type Key<'a> = (i64, &'a str, bool, &'a str);

fn key_cmp(a: Key<'_>, b: Key<'_>) -> Ordering {
    a.0.cmp(&b.0)
        .then_with(|| a.1.cmp(b.1))
        .then_with(|| a.2.cmp(&b.2))
        .then_with(|| a.3.cmp(b.3))
}

/// Merges sorted `inputs` into `out`, dropping later copies of an event (same time and
/// id as the row before).
fn merge(inputs: &[PathBuf], out: &mut Output) -> Result<(), LakeError> {
    let mut cursors: Vec<Cursor> = inputs
        .iter()
        .map(|p| Cursor::open(p))
        .collect::<Result<_, _>>()?;
    // Batches referenced by `picks`: (cursor, batch) → slot in `held`.
    let mut held: Vec<RecordBatch> = Vec::new();
    let mut slot_of: Vec<Option<usize>> = vec![None; cursors.len()];
    let mut picks: Vec<(usize, usize)> = Vec::with_capacity(OUT_ROWS);
    let flush = |held: &mut Vec<RecordBatch>,
                 slot_of: &mut Vec<Option<usize>>,
                 picks: &mut Vec<(usize, usize)>,
                 out: &mut Output|
     -> Result<(), LakeError> {
        if !picks.is_empty() {
            let refs: Vec<&RecordBatch> = held.iter().collect();
            let batch = interleave_record_batch(&refs, picks)
                .map_err(|e| LakeError::Arrow(e.to_string()))?;
            out.write(&batch)?;
        }
        picks.clear();
        held.clear();
        slot_of.iter_mut().for_each(|s| *s = None);
        Ok(())
    };
    let mut last_time: Option<i64> = None;
    let mut last_id = String::new();
    loop {
        let mut best: Option<(usize, Key<'_>)> = None;
        for (i, c) in cursors.iter().enumerate() {
            let Some(k) = c.key() else { continue };
            if best.is_none_or(|(_, bk)| key_cmp(k, bk) == Ordering::Less) {
                best = Some((i, k));
            }
        }
        let Some((i, (t, id, _, _))) = best else {
            break;
        };
        let duplicate = last_time == Some(t) && last_id == id;
        if !duplicate {
            last_time = Some(t);
            last_id.clear();
            last_id.push_str(id);
        }
        let c = &mut cursors[i];
        if !duplicate && let Some(b) = &c.batch {
            let slot = match slot_of[i] {
                Some(s) => s,
                None => {
                    held.push(b.clone());
                    slot_of[i] = Some(held.len() - 1);
                    held.len() - 1
                }
            };
            picks.push((slot, c.row));
        }
        c.row += 1;
        let batch_done = c.batch.as_ref().is_some_and(|b| c.row >= b.num_rows());
        if picks.len() >= OUT_ROWS || (batch_done && slot_of[i].is_some()) {
            // Rows picked from a batch are written before it leaves its cursor.
            flush(&mut held, &mut slot_of, &mut picks, out)?;
        }
        if batch_done {
            cursors[i].advance_batch()?;
        }
    }
    flush(&mut held, &mut slot_of, &mut picks, out)
}
