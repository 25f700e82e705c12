//! The Parquet lake (SPEC §4): layout, commit protocol and recovery.
//!
//! ```text
//! <lake>/events/month=YYYY-MM/part-<run>-<seq>.parquet   what readers see
//! <lake>/_cetrail/ledger/<run>-<seq>.jsonl               committed segments (ledger.rs)
//! <lake>/_cetrail/staging/<run>/…                        files not yet committed
//! <lake>/_cetrail/lock                                   one writer at a time
//! ```
//! A commit, in order:
//! 1. each month's rows are sorted and written to `staging/` and synced;
//! 2. the segment naming those files and the input objects they hold is written
//!    atomically (temp + fsync + rename): **the commit point**;
//! 3. the staged files are renamed into `events/month=…/`.
//!
//! Recovery, when a writer opens the lake: staged files named by a committed segment
//! are moved into place (roll forward); every other staged file belongs to a commit
//! that never happened and is deleted (roll back). So after a crash at any instant and
//! a rerun, the lake holds exactly the events of one clean run, readers never see a
//! partial file (renames are atomic and staged names are outside `events/`), and the
//! objects of an unfinished commit are not in the ledger, so the rerun reads them again.

pub mod coverage;
pub mod ledger;
pub mod schema;
pub mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;

use crate::error::LakeError;
use ledger::{DataFile, LedgerIndex, ObjectEntry, Segment, SegmentHeader};

/// An open lake, locked for writing.
pub struct Lake {
    root: PathBuf,
    run: String,
    seq: u64,
    _lock: File,
}

/// What recovery did when the lake was opened.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    pub rolled_forward: u64,
    pub rolled_back: u64,
}

fn staging_dir(root: &Path) -> PathBuf {
    root.join("_cetrail").join("staging")
}

fn mkdir(p: &Path) -> Result<(), LakeError> {
    std::fs::create_dir_all(p).map_err(LakeError::io(p))
}

impl Lake {
    /// Opens (creating if needed) the lake at `root` for writing: takes the lock and
    /// recovers from any interrupted run. Returns the ledger index.
    pub fn open(root: &Path) -> Result<(Lake, LedgerIndex, Recovery), LakeError> {
        let meta = root.join("_cetrail");
        mkdir(&ledger::ledger_dir(root))?;
        mkdir(&staging_dir(root))?;
        mkdir(&root.join("events"))?;
        let lock_path = meta.join("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(LakeError::io(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(LakeError::Locked {
                    path: root.to_path_buf(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(LakeError::Io {
                    path: lock_path,
                    source: e,
                });
            }
        }
        let segments = ledger::read_segments(root)?;
        let recovery = recover(root, &segments)?;
        let index = LedgerIndex::from_segments(&segments);
        let now = chrono::Utc::now();
        let run = format!(
            "{}-{:05}",
            now.format("%Y%m%dT%H%M%S%3fZ"),
            std::process::id() % 100_000
        );
        Ok((
            Lake {
                root: root.to_path_buf(),
                run,
                seq: 0,
                _lock: lock,
            },
            index,
            recovery,
        ))
    }

    /// Commits `months` (month → sorted batch) and the `objects` they came from.
    /// An empty `months` still commits the objects (files with no CE events).
    pub fn commit(
        &mut self,
        months: Vec<(String, RecordBatch)>,
        objects: Vec<ObjectEntry>,
    ) -> Result<(), LakeError> {
        if months.is_empty() && objects.is_empty() {
            return Ok(());
        }
        self.seq += 1;
        let stage = staging_dir(&self.root).join(&self.run);
        mkdir(&stage)?;
        let mut files = Vec::with_capacity(months.len());
        for (month, batch) in &months {
            let name = format!("part-{}-{:06}.parquet", self.run, self.seq);
            let staged = format!("_cetrail/staging/{}/{month}-{name}", self.run);
            let path = format!("events/month={month}/{name}");
            writer::write_parquet(&self.root.join(&staged), batch)?;
            files.push(DataFile {
                month: month.clone(),
                path,
                staged,
                rows: batch.num_rows() as u64,
            });
        }
        if !files.is_empty() {
            ledger::sync_dir(&stage)?;
            crash_point("before-commit");
        }
        let segment = Segment {
            header: SegmentHeader {
                format: ledger::LEDGER_FORMAT,
                run: self.run.clone(),
                seq: self.seq,
                committed_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                files,
            },
            objects,
        };
        ledger::write_segment(&self.root, &segment)?;
        if !segment.header.files.is_empty() {
            crash_point("after-commit");
        }
        for f in &segment.header.files {
            publish(&self.root, f)?;
        }
        Ok(())
    }
}

impl Drop for Lake {
    fn drop(&mut self) {
        // The run's staging folder is empty once every commit is published; removing
        // an empty folder cannot lose data, and a non-empty one is left to recovery.
        let _ = std::fs::remove_dir(staging_dir(&self.root).join(&self.run));
    }
}

/// Moves a committed staged file into `events/`.
fn publish(root: &Path, f: &DataFile) -> Result<(), LakeError> {
    let dst = root.join(&f.path);
    if let Some(parent) = dst.parent() {
        mkdir(parent)?;
    }
    let src = root.join(&f.staged);
    std::fs::rename(&src, &dst).map_err(LakeError::io(&src))?;
    if let Some(parent) = dst.parent() {
        ledger::sync_dir(parent)?;
    }
    Ok(())
}

fn recover(root: &Path, segments: &[Segment]) -> Result<Recovery, LakeError> {
    let mut rec = Recovery::default();
    let staging = staging_dir(root);
    for s in segments {
        for f in &s.header.files {
            if root.join(&f.staged).exists() && !root.join(&f.path).exists() {
                publish(root, f)?;
                rec.rolled_forward += 1;
            }
        }
    }
    // Everything left in staging is from a commit that never happened.
    if let Ok(runs) = std::fs::read_dir(&staging) {
        for run in runs.flatten() {
            let p = run.path();
            if let Ok(files) = std::fs::read_dir(&p) {
                rec.rolled_back += files.flatten().count() as u64;
            }
            let r = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            r.map_err(LakeError::io(&p))?;
        }
    }
    // Half-written ledger segments.
    let ldir = ledger::ledger_dir(root);
    if let Ok(entries) = std::fs::read_dir(&ldir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(".tmp-") {
                let p = e.path();
                std::fs::remove_file(&p).map_err(LakeError::io(&p))?;
            }
        }
    }
    Ok(rec)
}

/// Test hook: `CETRAIL_CRASH_AT=<name>[:<n>]` aborts the process the `n`-th time (default
/// the first) it reaches the named point, so tests can kill the writer at the exact
/// instants that matter (SIGKILL tests cover the rest).
pub fn crash_point(name: &str) {
    static HITS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let Some(want) = std::env::var_os("CETRAIL_CRASH_AT") else {
        return;
    };
    let want = want.to_string_lossy();
    let (point, nth) = match want.split_once(':') {
        Some((p, n)) => (p, n.parse::<u64>().unwrap_or(1)),
        None => (want.as_ref(), 1),
    };
    if point == name && HITS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == nth {
        std::process::abort();
    }
}

/// Lists the Parquet files of a lake (`events/month=*/*.parquet`), sorted.
pub fn data_files(root: &Path) -> Result<Vec<PathBuf>, LakeError> {
    let events = root.join("events");
    if !events.is_dir() {
        return Err(LakeError::NotALake {
            path: root.to_path_buf(),
            message: "no events/ folder".into(),
        });
    }
    let mut out = Vec::new();
    for m in std::fs::read_dir(&events).map_err(LakeError::io(&events))? {
        let m = m.map_err(LakeError::io(&events))?;
        if !m.file_name().to_string_lossy().starts_with("month=") {
            continue;
        }
        let dir = m.path();
        for f in std::fs::read_dir(&dir).map_err(LakeError::io(&dir))? {
            let f = f.map_err(LakeError::io(&dir))?;
            let name = f.file_name().to_string_lossy().into_owned();
            if name.ends_with(".parquet") && !name.starts_with('.') && !name.starts_with('_') {
                out.push(f.path());
            }
        }
    }
    out.sort();
    Ok(out)
}
