//! The Parquet lake (SPEC §4): layout, commit protocol and recovery.
//!
//! ```text
//! <lake>/events/month=YYYY-MM/part-<run>-<n>.parquet     what readers see
//! <lake>/_cetrail/ledger/<run>-<seq>.jsonl               committed segments (ledger.rs)
//! <lake>/_cetrail/staging/<run>/…                        files not yet committed
//! <lake>/_cetrail/lock[-sKofN]                           one writer per shard at a time
//! ```
//! `<run>` is the writer's start time and process id, plus `-sKofN` for a shard of a
//! sharded ingest (`ingest --shard K/N`): N writers can share one lake, their names never
//! collide, and each one recovers only its own shard's unfinished commits.
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

pub mod check;
pub mod compact;
pub mod coverage;
pub mod ledger;
pub mod remote;
pub mod repair;
pub mod schema;
pub mod sources;
pub mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;

use crate::error::LakeError;
use ledger::{DataFile, EntryLines, LedgerIndex, Segment, SegmentHeader};

/// An open lake, locked for writing.
pub struct Lake {
    root: PathBuf,
    run: String,
    seq: u64,
    /// Files named so far by this writer (part of every file name).
    files: u64,
    /// The lake on S3 when `root` is only the local spool (staging and mirror).
    remote: Option<remote::RemoteLake>,
    /// Damaged files the next commit retires (`lake repair`).
    retiring: Vec<String>,
    _lock: File,
}

/// Where a lake lives.
pub enum LakeLocation {
    Local(PathBuf),
    /// On S3; `spool` is a local folder for staged files and the mirror readers use.
    S3 {
        remote: remote::RemoteLake,
        spool: PathBuf,
    },
}

impl LakeLocation {
    pub fn describe(&self) -> String {
        match self {
            LakeLocation::Local(p) => p.display().to_string(),
            LakeLocation::S3 { remote, .. } => remote.url(),
        }
    }
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
        Self::open_shard(root, None)
    }

    /// [`Lake::open`] for one shard of a sharded ingest (`tag` as `s2of8`).
    pub fn open_shard(
        root: &Path,
        tag: Option<&str>,
    ) -> Result<(Lake, LedgerIndex, Recovery), LakeError> {
        Self::open_at(LakeLocation::Local(root.to_path_buf()), tag)
    }

    /// Opens a lake in a folder or on S3 for writing, as shard `tag` (or unsharded).
    pub fn open_at(
        location: LakeLocation,
        tag: Option<&str>,
    ) -> Result<(Lake, LedgerIndex, Recovery), LakeError> {
        let (root, remote) = match location {
            LakeLocation::Local(p) => (p, None),
            LakeLocation::S3 { remote, spool } => (spool, Some(remote)),
        };
        let root = root.as_path();
        let meta = root.join("_cetrail");
        mkdir(&ledger::ledger_dir(root))?;
        mkdir(&staging_dir(root))?;
        mkdir(&root.join("events"))?;
        let lock_path = match tag {
            Some(t) => meta.join(format!("lock-{t}")),
            None => meta.join("lock"),
        };
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
                    lock: lock_path,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(LakeError::Io {
                    path: lock_path,
                    source: e,
                });
            }
        }
        let (segments, recovery) = match &remote {
            None => {
                let segments = ledger::read_segments(root)?;
                let recovery = recover(root, &segments, tag)?;
                (segments, recovery)
            }
            Some(r) => {
                let segments = remote_segments(r)?;
                // The local spool's staged files of this shard are from a dead run: what
                // it committed is on S3 already.
                let mut recovery = recover(root, &[], tag)?;
                let remote_rec = recover_remote(r, &segments, tag)?;
                recovery.rolled_forward += remote_rec.rolled_forward;
                recovery.rolled_back += remote_rec.rolled_back;
                (segments, recovery)
            }
        };
        let index = LedgerIndex::from_segments(&segments);
        let now = chrono::Utc::now();
        let mut run = format!(
            "{}-{:05}",
            now.format("%Y%m%dT%H%M%S%3fZ"),
            std::process::id() % 100_000
        );
        if let Some(t) = tag {
            run = format!("{run}-{t}");
        }
        Ok((
            Lake {
                root: root.to_path_buf(),
                run,
                seq: 0,
                files: 0,
                remote,
                retiring: Vec::new(),
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
        objects: EntryLines,
    ) -> Result<(), LakeError> {
        if months.is_empty() && objects.is_empty() {
            return Ok(());
        }
        self.seq += 1;
        let mut files = Vec::with_capacity(months.len());
        for (month, batch) in &months {
            let f = self.new_file(month)?;
            let seal = writer::write_parquet(&self.root.join(&f.staged), batch)?;
            files.push(f.sealed(seal));
        }
        self.commit_segment(files, Vec::new(), objects)
    }

    /// Names a new staged file of `month` (rows 0 until written); the caller writes it
    /// at `root/staged` and commits it with [`Lake::commit_files`].
    pub fn new_file(&mut self, month: &str) -> Result<DataFile, LakeError> {
        self.files += 1;
        let stage = staging_dir(&self.root).join(&self.run);
        mkdir(&stage)?;
        let name = format!("part-{}-{:06}.parquet", self.run, self.files);
        Ok(DataFile {
            month: month.to_string(),
            staged: format!("_cetrail/staging/{}/{month}-{name}", self.run),
            path: format!("events/month={month}/{name}"),
            rows: 0,
            size: None,
            xxh3: None,
        })
    }

    /// The lake's root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Commits staged `files` that replace the lake files `removed` (paths relative to
    /// the root), with no input objects: compaction's commit.
    pub fn commit_files(
        &mut self,
        files: Vec<DataFile>,
        removed: Vec<String>,
    ) -> Result<(), LakeError> {
        self.seq += 1;
        self.commit_segment(files, removed, EntryLines::default())
    }

    fn commit_segment(
        &mut self,
        files: Vec<DataFile>,
        removed: Vec<String>,
        objects: EntryLines,
    ) -> Result<(), LakeError> {
        if !files.is_empty() {
            ledger::sync_dir(&staging_dir(&self.root).join(&self.run))?;
            crash_point("before-commit");
        }
        let header = SegmentHeader {
            format: ledger::LEDGER_FORMAT,
            run: self.run.clone(),
            seq: self.seq,
            committed_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            files,
            removed,
            retired: std::mem::take(&mut self.retiring),
        };
        if let Some(remote) = &self.remote {
            return commit_remote(remote, &self.root, &header, &objects);
        }
        ledger::write_segment(&self.root, &header, &objects)?;
        if !header.files.is_empty() {
            crash_point("after-commit");
        }
        for f in &header.files {
            publish(&self.root, f)?;
        }
        check::note_verified(&self.root, &header.files);
        remove_replaced(&self.root, &header.removed)?;
        quarantine(&self.root, &header.retired)
    }

    /// Makes the next commit retire these committed files (paths relative to the
    /// root): `lake repair` commits the events read again and retires the damaged
    /// files they replace in one segment.
    pub fn retire(&mut self, paths: Vec<String>) {
        self.retiring = paths;
    }

    /// The lake on S3, when this writer writes there.
    pub fn remote(&self) -> Option<&remote::RemoteLake> {
        self.remote.as_ref()
    }
}

fn ledger_rel(header: &SegmentHeader) -> String {
    format!("_cetrail/ledger/{}", ledger::segment_name(header))
}

/// The commit protocol on S3 (see `remote.rs`): upload staged files, put the segment
/// (the commit point), copy into `events/`, delete the staged and replaced objects.
fn commit_remote(
    remote: &remote::RemoteLake,
    spool: &Path,
    header: &SegmentHeader,
    objects: &EntryLines,
) -> Result<(), LakeError> {
    for f in &header.files {
        remote.upload(&spool.join(&f.staged), &f.staged)?;
    }
    if !header.files.is_empty() {
        crash_point("before-commit");
    }
    let rel = ledger_rel(header);
    remote.put(
        &rel,
        ledger::segment_bytes(header, objects, Path::new(&rel))?,
    )?;
    if !header.files.is_empty() {
        crash_point("after-commit");
    }
    for f in &header.files {
        remote.copy(&f.staged, &f.path)?;
        remote.delete(&f.staged)?;
        let local = spool.join(&f.staged);
        let _ = std::fs::remove_file(&local);
    }
    for r in &header.removed {
        remote.delete(r)?;
    }
    for r in &header.retired {
        if remote.exists(r)? {
            remote.copy(r, &quarantined(r))?;
            remote.delete(r)?;
        }
    }
    quarantine(spool, &header.retired)
}

/// Where a retired lake file goes.
fn quarantined(rel: &str) -> String {
    format!("_cetrail/quarantine/{rel}")
}

/// Moves retired lake files out of `events/` into `_cetrail/quarantine/` (those already
/// moved, or missing, are left as they are).
fn quarantine(root: &Path, retired: &[String]) -> Result<(), LakeError> {
    for r in retired {
        let from = root.join(r);
        if !from.exists() {
            continue;
        }
        let to = root.join(quarantined(r));
        if let Some(parent) = to.parent() {
            mkdir(parent)?;
        }
        std::fs::rename(&from, &to).map_err(LakeError::io(&from))?;
    }
    Ok(())
}

/// Every committed segment of a lake on S3, in name order.
fn remote_segments(remote: &remote::RemoteLake) -> Result<Vec<Segment>, LakeError> {
    let mut out = Vec::new();
    for o in remote.list("_cetrail/ledger/")? {
        let name = o.rel.rsplit('/').next().unwrap_or("");
        if !name.ends_with(".jsonl") || name.starts_with('.') {
            continue;
        }
        let bytes = remote.get(&o.rel)?;
        let text = String::from_utf8(bytes).map_err(|e| LakeError::Ledger {
            path: PathBuf::from(&o.rel),
            message: e.to_string(),
        })?;
        out.push(ledger::parse_segment(&text, Path::new(&o.rel))?);
    }
    Ok(out)
}

/// Recovery on S3 for shard `tag`: committed staged objects are copied forward, the
/// rest of the shard's staging is deleted and its incomplete uploads aborted.
fn recover_remote(
    remote: &remote::RemoteLake,
    segments: &[Segment],
    tag: Option<&str>,
) -> Result<Recovery, LakeError> {
    let mut rec = Recovery::default();
    let staged: std::collections::HashSet<String> = remote
        .list("_cetrail/staging/")?
        .into_iter()
        .map(|o| o.rel)
        .collect();
    let published: std::collections::HashSet<String> =
        remote.list("events/")?.into_iter().map(|o| o.rel).collect();
    let mut committed = std::collections::HashSet::new();
    for s in segments.iter().filter(|s| run_tag(&s.header.run) == tag) {
        for f in &s.header.files {
            committed.insert(f.staged.clone());
            if staged.contains(&f.staged) {
                if !published.contains(&f.path) {
                    remote.copy(&f.staged, &f.path)?;
                    rec.rolled_forward += 1;
                }
                remote.delete(&f.staged)?;
            }
        }
        for r in &s.header.removed {
            if published.contains(r) {
                remote.delete(r)?;
            }
        }
        for r in &s.header.retired {
            if published.contains(r) {
                remote.copy(r, &quarantined(r))?;
                remote.delete(r)?;
            }
        }
    }
    let own = |rel: &str| {
        rel.strip_prefix("_cetrail/staging/")
            .and_then(|r| r.split('/').next())
            .is_some_and(|run| run_tag(run) == tag)
    };
    for k in &staged {
        if own(k) && !committed.contains(k) {
            remote.delete(k)?;
            rec.rolled_back += 1;
        }
    }
    rec.rolled_back += remote.abort_uploads("_cetrail/staging/", own)?;
    Ok(rec)
}

/// Deletes lake files replaced by a committed compaction (missing ones are already gone).
fn remove_replaced(root: &Path, removed: &[String]) -> Result<(), LakeError> {
    for r in removed {
        let p = root.join(r);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LakeError::Io { path: p, source: e }),
        }
    }
    Ok(())
}

impl Drop for Lake {
    fn drop(&mut self) {
        // The run's staging folder is empty once every commit is published; removing
        // an empty folder cannot lose data, and a non-empty one is left to recovery.
        let _ = std::fs::remove_dir(staging_dir(&self.root).join(&self.run));
    }
}

/// The shard tag of a run name (`…-s2of8`), `None` for an unsharded writer.
pub fn run_tag(run: &str) -> Option<&str> {
    let last = run.rsplit('-').next()?;
    let rest = last.strip_prefix('s')?;
    let (k, n) = rest.split_once("of")?;
    (!k.is_empty()
        && !n.is_empty()
        && k.bytes().all(|b| b.is_ascii_digit())
        && n.bytes().all(|b| b.is_ascii_digit()))
    .then_some(last)
}

/// Moves a committed staged file into `events/`.
fn publish(root: &Path, f: &DataFile) -> Result<(), LakeError> {
    let dst = root.join(&f.path);
    if let Some(parent) = dst.parent() {
        mkdir(parent)?;
    }
    let src = root.join(&f.staged);
    if let Err(e) = std::fs::rename(&src, &dst) {
        // Already published (by recovery of the same shard after a crash).
        if !(e.kind() == std::io::ErrorKind::NotFound && dst.exists()) {
            return Err(LakeError::Io {
                path: src,
                source: e,
            });
        }
    }
    if let Some(parent) = dst.parent() {
        ledger::sync_dir(parent)?;
    }
    Ok(())
}

/// Rolls forward the committed and back the uncommitted work of earlier writers of the
/// same shard (`tag`); other shards' writers may be running and are left alone.
fn recover(root: &Path, segments: &[Segment], tag: Option<&str>) -> Result<Recovery, LakeError> {
    let mut rec = Recovery::default();
    let staging = staging_dir(root);
    for s in segments.iter().filter(|s| run_tag(&s.header.run) == tag) {
        for f in &s.header.files {
            if root.join(&f.staged).exists() && !root.join(&f.path).exists() {
                publish(root, f)?;
                rec.rolled_forward += 1;
            }
        }
        remove_replaced(root, &s.header.removed)?;
        quarantine(root, &s.header.retired)?;
    }
    // Everything left in staging is from a commit that never happened.
    if let Ok(runs) = std::fs::read_dir(&staging) {
        for run in runs.flatten() {
            if run_tag(&run.file_name().to_string_lossy()) != tag {
                continue;
            }
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
            let name = e.file_name().to_string_lossy().into_owned();
            let run = name
                .strip_prefix(".tmp-")
                .and_then(|n| n.strip_suffix(".jsonl"))
                .and_then(|n| n.rsplit_once('-'))
                .map(|(run, _seq)| run);
            if run.is_some_and(|r| run_tag(r) == tag) {
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
