//! `cetrail ingest`: source → parse → lake, in parallel, crash-safe.
//!
//! ```text
//!  lister thread ──▶ admit (ledger, prune, shard) ──▶ chunks of ≤ 128·threads objects
//!  (streamed walk,       main thread                  (key order, ≤ 16 MB compressed)
//!   key order)                                              │
//!                          reader: READ_THREADS fetches in flight for the next chunk
//!                          (S3: download; local: open, fstat, start the read-ahead,
//!                          or nothing when the files are page-cached: see ReadMode)
//!                                                           │
//!                          parser: rayon pool of `threads` — read (local), gunzip,
//!                                  prefilter, scan, parse, derive; rows copied out
//!                                  (owned), in key order
//!                                                           │
//!                          writer thread: dedup by event_id, one Arrow batch per month
//!                          and chunk, buffer
//!                                                           │
//!                          committer thread: sort, Parquet, ledger segment, publish
//! ```
//! A local listing does not stat files: an object's size and version come from the
//! open file when it is fetched (a `stat` per file was half of the listing's cost), and
//! only keys the ledger already knows, or that get an entry unread, are stat'ed.
//! Parsing runs on a rayon pool of `threads` workers. Fetching (which blocks on the
//! disk when the archive is not in the page cache) runs ahead of it on its own
//! threads; a local file is handed over open, with the kernel already reading it
//! (`posix_fadvise`), and the parser copies it into a buffer it reuses (a buffer filled
//! on another thread and freed on this one cost more than the copy). When the files
//! are in the page cache, fetching ahead only adds work (a second thread, a stat and an
//! advice call per file): the parsers then open and read them themselves, and the
//! reader goes back to fetching ahead when their reads find files missing from the
//! page cache ([`ReadMode`]). Commits run on
//! their own thread, so parsing goes on while one writes. Memory is bounded by the
//! chunk size (three chunks in flight), the flush thresholds (two commits' worth at
//! most) and the set of event-id hashes of this run (16 bytes per kept event); it does
//! not grow with the size of the archive.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};
use std::time::Instant;

use arrow::array::RecordBatch;
use chrono::{DateTime, Datelike};
use rayon::prelude::*;
use serde::Serialize;

use crate::config::Config;
use crate::error::{LakeError, ObjectError};
use crate::lake::ledger::{EntryLines, LedgerIndex, ObjectEntry, Status};
use crate::lake::{Lake, LakeLocation, schema, writer};
use crate::record::filter::Prefilter;
use crate::record::gunzip::{DEFAULT_MAX_DECOMPRESSED, Gunzip, is_gzip};
use crate::record::{DEFAULT_MAX_RECORD_BYTES, EventRow, Kind, ParseOptions, parse_log};
use crate::source::{
    Fetched, KeyClass, Object, ProbeStats, Prune, Shard, Source, SourceKind, classify_key,
};

/// How an ingest runs.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub prune: Prune,
    /// Take only this shard's part of the key space (`--shard K/N`).
    pub shard: Option<Shard>,
    pub all_events: bool,
    pub threads: usize,
    pub max_decompressed: u64,
    pub max_record_bytes: usize,
    /// Commit when this many rows are buffered…
    pub flush_rows: usize,
    /// …or their Arrow buffers reach this many bytes…
    pub flush_bytes: usize,
    /// …or this many objects are pending.
    pub flush_objects: usize,
    /// How local files are read (see [`ReadAhead`]).
    pub read_ahead: ReadAhead,
    /// `lake repair`: what to read again (see [`Repair`]).
    pub repair: Option<Repair>,
}

pub use crate::lake::repair::Repair;

/// How the files of a local archive are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ReadAhead {
    /// Decided as the ingest goes, from whether the files were in the page cache.
    #[default]
    Auto,
    /// Every file is opened ahead of its parser, with the kernel's read-ahead started
    /// (a cold disk or a network file system: many reads in flight).
    Always,
    /// The parsers open and read every file themselves (a page-cached archive: the
    /// least work per file).
    Never,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            prune: Prune::default(),
            shard: None,
            all_events: false,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_decompressed: DEFAULT_MAX_DECOMPRESSED,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            flush_rows: 200_000,
            flush_bytes: 96 << 20,
            flush_objects: 20_000,
            read_ahead: ReadAhead::Auto,
            repair: None,
        }
    }
}

/// Live counters, for a progress display polled from another thread.
#[derive(Debug, Default)]
pub struct Progress {
    pub objects_total: AtomicU64,
    pub objects_done: AtomicU64,
    pub bytes_read: AtomicU64,
    pub bytes_decompressed: AtomicU64,
    pub events_kept: AtomicU64,
}

/// One rejected object or record, for the summary.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Rejection {
    pub key: String,
    pub reason: String,
}

/// The end-of-run summary (`--json` prints it as is).
#[derive(Debug, Default, Clone, Serialize)]
pub struct Summary {
    pub source: String,
    pub lake: String,
    pub objects_seen: u64,
    pub already_in_ledger: u64,
    pub pruned: u64,
    /// Objects left to the other shards of a sharded ingest.
    pub other_shards: u64,
    pub skipped_not_a_log: u64,
    pub ingested: u64,
    pub rejected: u64,
    pub records_read: u64,
    pub bad_records: u64,
    /// Records skipped by rule: CloudTrail Insights records (no API call), EventBridge
    /// events of another detail type than CloudTrail's.
    pub skipped_records: u64,
    pub kept: BTreeMap<String, u64>,
    pub kept_total: u64,
    pub duplicates_dropped: u64,
    pub bytes_read: u64,
    pub bytes_decompressed: u64,
    pub seconds: f64,
    pub mb_per_second: f64,
    pub events_per_second: f64,
    pub commits: u64,
    pub recovered_files: u64,
    pub discarded_staged_files: u64,
    /// Rejected objects, and objects with rejected records (first reason each).
    pub rejections: Vec<Rejection>,
    /// What an S3 source asked of S3 (absent for other sources).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<crate::source::Requests>,
}

impl Summary {
    /// Whether anything was rejected in this run (exit status 3).
    pub fn has_rejections(&self) -> bool {
        self.rejected > 0 || self.bad_records > 0
    }
}

/// Errors that stop an ingest (a single bad object never does).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Source(#[from] crate::error::SourceError),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("cannot start {0} worker threads: {1}")]
    Threads(usize, String),
    /// A thread of the pipeline (lister, reader, parser, writer) panicked.
    #[error("the {0} thread of the ingest stopped unexpectedly")]
    ThreadGone(&'static str),
}

/// Reads in flight at once (a chunk is read by this many threads while the previous
/// one is parsed).
const READ_THREADS: usize = 8;

/// A chunk is cut at this many compressed bytes even when it has fewer objects (the
/// bytes of up to three chunks are held: one parsed, one read, one waiting).
const CHUNK_BYTES: u64 = 16 << 20;

/// Objects listed without a size are read at least this many at a time (more when the
/// objects read so far were small, see [`read_part`]), and their chunk is cut once it
/// holds `CHUNK_BYTES` (the listing could not cut it by size).
const READ_WINDOW: usize = 32;

/// At most this many objects are fetched into one part of a chunk: a local file is
/// handed over open, and three parts are in flight (768 descriptors, under the usual
/// soft limit of 1,024).
const OPEN_FILES: usize = 256;
/// Once the listing is complete and this many objects or fewer remain to be written,
/// the writer commits what it holds: the last commit, which nothing overlaps (parsing
/// is over), then holds only the tail (see [`buffer_loop`]).
const TAIL_OBJECTS: u64 = 4096;

/// A chunk of objects and what reading each one gave.
type Loaded = (Vec<(Object, KeyClass)>, Vec<Result<Fetched, String>>);

/// What a worker made of one object.
struct ObjectResult {
    entry: ObjectEntry,
    /// How the object's events reached the lake (from its content and key).
    kind: SourceKind,
    /// Units skipped by rule (Insights records, EventBridge events of other detail
    /// types).
    skipped_records: u64,
    /// The CE rows, copied out of the worker's buffer (a per-object Arrow batch of one
    /// or two rows cost more than the rows: batches are built per chunk by the writer).
    rows: Vec<EventRow<'static>>,
    decompressed: u64,
    rejection: Option<Rejection>,
}

thread_local! {
    /// A worker's decompressor, decompressed buffer and input buffer (local files are
    /// read into it).
    static GUNZIP: RefCell<(Option<Gunzip>, Vec<u8>, Vec<u8>)> =
        const { RefCell::new((None, Vec::new(), Vec::new())) };
}

/// The ledger entry of an object (its key and the key's parts move into it).
fn entry_for(object: Object, class: KeyClass, status: Status) -> ObjectEntry {
    let (account, region, day) = match class {
        KeyClass::Log(k) => (
            Some(k.account),
            Some(k.region),
            // `NaiveDate`'s Display is `%Y-%m-%d` without parsing a format string.
            Some(k.date.to_string()),
        ),
        _ => (None, None, None),
    };
    ObjectEntry {
        key: object.key,
        size: object.size,
        version: object.version,
        status,
        reason: None,
        account,
        region,
        day,
        records: 0,
        kept: 0,
        bad_records: 0,
        duplicates: 0,
        first_event: None,
        last_event: None,
        ids: Vec::new(),
    }
}

fn process_object(
    read: Result<Fetched, String>,
    object: Object,
    class: KeyClass,
    config: &Config,
    prefilter: &Prefilter,
    options: &IngestOptions,
    probes: &ProbeStats,
) -> ObjectResult {
    let stat_deferred = object.stat_deferred;
    // What the key alone says: content that is no log is skipped in a file whose name
    // does not claim a log, rejected in one whose name does; an export's part may be
    // empty.
    let content_only = matches!(class, KeyClass::Content);
    let export_part = crate::record::envelope::is_export_part(&object.key);
    let in_layout = matches!(class, KeyClass::Log(_));
    let mut entry = entry_for(object, class, Status::Ingested);
    let reject = |mut entry: ObjectEntry, e: ObjectError| {
        let (status, rejection) = match e {
            ObjectError::NotALog(why) if content_only => (Status::SkippedNotALog, why),
            ObjectError::NotALog(why) => (Status::Rejected, ObjectError::NotJson(why).to_string()),
            // CloudWatch Logs' write test is no log wherever it is.
            e @ ObjectError::ExportWriteTest => (Status::SkippedNotALog, e.to_string()),
            // An export's part with no events in it.
            ObjectError::Empty if export_part => {
                return ObjectResult {
                    entry,
                    kind: SourceKind::LogExport,
                    skipped_records: 0,
                    rows: Vec::new(),
                    decompressed: 0,
                    rejection: None,
                };
            }
            e => (Status::Rejected, e.to_string()),
        };
        entry.status = status;
        entry.reason = Some(rejection.clone());
        ObjectResult {
            rejection: (status == Status::Rejected).then(|| Rejection {
                key: entry.key.clone(),
                reason: rejection,
            }),
            entry,
            kind: SourceKind::Trail,
            skipped_records: 0,
            rows: Vec::new(),
            decompressed: 0,
        }
    };
    // A deferred local file is opened here, on the parser's thread.
    let opened = read.and_then(|f| {
        let (body, stat) = f.body.open(options.max_decompressed)?;
        Ok((body, f.stat.or(stat.filter(|_| stat_deferred)), f.ids))
    });
    let (body, stat) = match opened {
        Ok((body, stat, ids)) => {
            entry.ids = ids;
            (body, stat)
        }
        Err(e) => return reject(entry, ObjectError::Io(e)),
    };
    if let Some((size, version)) = stat {
        entry.size = size;
        entry.version = version;
    }
    GUNZIP.with(|cell| {
        let mut guard = cell.borrow_mut();
        let (gz, buf, input) = &mut *guard;
        // A local file is read here, into this thread's buffer.
        let bytes = match body.read_into(input, probes) {
            Ok(Some(b)) => b,
            // Larger than the limit when compressed: it cannot decompress under it.
            Ok(None) => {
                return reject(
                    entry,
                    ObjectError::TooLarge {
                        limit: options.max_decompressed,
                    },
                );
            }
            Err(e) => return reject(entry, ObjectError::Io(e.to_string())),
        };
        if bytes.is_empty() {
            return reject(entry, ObjectError::Empty);
        }
        let data: &[u8] = if is_gzip(bytes) {
            if gz.is_none() {
                *gz = Gunzip::new();
            }
            let Some(g) = gz.as_mut() else {
                return reject(
                    entry,
                    ObjectError::Io("cannot allocate a decompressor".into()),
                );
            };
            if let Err(e) = g.decompress(bytes, buf, options.max_decompressed) {
                return reject(entry, e);
            }
            buf.as_slice()
        } else {
            if bytes.len() as u64 > options.max_decompressed {
                return reject(
                    entry,
                    ObjectError::TooLarge {
                        limit: options.max_decompressed,
                    },
                );
            }
            bytes
        };
        let decompressed = data.len() as u64;
        let parse_options = ParseOptions {
            config,
            prefilter,
            all_events: options.all_events,
            max_record_bytes: options.max_record_bytes,
        };
        let parsed = match parse_log(data, &parse_options) {
            Ok(p) => p,
            Err(e) => return reject(entry, e),
        };
        entry.records = parsed.records;
        entry.bad_records = parsed.bad_records;
        let rejection = parsed.record_errors.first().map(|first| {
            let reason = format!("{} record(s) rejected; first: {first}", parsed.bad_records);
            entry.reason = Some(reason.clone());
            Rejection {
                key: entry.key.clone(),
                reason,
            }
        });
        let kind = SourceKind::of(
            parsed.format,
            crate::record::split::has_records_envelope(data),
            &entry.key,
            in_layout,
        );
        let skipped_records = parsed.skipped;
        let mut rows: Vec<EventRow<'static>> =
            parsed.rows.into_iter().map(EventRow::into_owned).collect();
        if let Some(r) = &options.repair {
            // The other months' rows are in intact files.
            rows.retain(|row| r.months.contains(&month_of(row.event_time)));
        }
        // A buffer that grew far beyond the usual size is released.
        if buf.capacity() > 256 << 20 {
            *buf = Vec::new();
        }
        if input.capacity() > 64 << 20 {
            *input = Vec::new();
        }
        ObjectResult {
            entry,
            kind,
            skipped_records,
            rows,
            decompressed,
            rejection,
        }
    })
}

/// Fetches the head of a chunk on `io_pool` (several fetches in flight for a cold disk
/// or the network): a remote object is downloaded, a local file is opened and its
/// read-ahead started (the parser reads it). A chunk whose objects were listed with
/// their sizes was already cut by bytes and is fetched whole, up to `OPEN_FILES`.
/// Otherwise it is fetched in windows sized so that a window of objects like those
/// fetched so far (`seen`: objects and bytes, across chunks) holds a quarter of
/// `CHUNK_BYTES`, at least `READ_WINDOW` objects, until the chunk ends, the bytes
/// reach `CHUNK_BYTES` or `OPEN_FILES` objects are fetched: small files are fetched a
/// whole chunk at once (each window costs a wake-up of the pool), large ones a few at
/// a time. Returns how many objects were fetched, and what each gave.
fn read_part(
    source: &dyn Source,
    io_pool: &rayon::ThreadPool,
    part: &[(Object, KeyClass)],
    max_bytes: u64,
    seen: &mut (u64, u64),
) -> (usize, Vec<Result<Fetched, String>>) {
    let deferred = part.iter().any(|(o, _)| o.stat_deferred);
    let mut fetched: Vec<Result<Fetched, String>> = Vec::with_capacity(part.len());
    let mut bytes = 0u64;
    while fetched.len() < part.len() && bytes < CHUNK_BYTES && fetched.len() < OPEN_FILES {
        let step = if !deferred {
            part.len()
        } else {
            match seen.1.checked_div(seen.0) {
                Some(average) => usize::try_from(CHUNK_BYTES / 4 / average.max(1))
                    .unwrap_or(usize::MAX)
                    .max(READ_WINDOW),
                None => READ_WINDOW,
            }
        };
        let step = step.min(OPEN_FILES - fetched.len());
        let window = &part[fetched.len()..fetched.len().saturating_add(step).min(part.len())];
        let got: Vec<Result<Fetched, String>> = io_pool.install(|| {
            window
                .par_iter()
                .map(|(o, _)| source.fetch(o, max_bytes))
                .collect()
        });
        let window_bytes = got
            .iter()
            .filter_map(|r| Some(r.as_ref().ok()?.body.size()))
            .sum::<u64>();
        bytes += window_bytes;
        seen.0 += got.len() as u64;
        seen.1 += window_bytes;
        fetched.extend(got);
    }
    (fetched.len(), fetched)
}

/// How the reader hands a part's objects to the parsers: fetched ahead (opened, the
/// kernel's read-ahead started: what a cold archive needs, many reads in flight) or
/// deferred (the parsers open and read them themselves: what a page-cached archive
/// needs, nothing done twice and no hand-over between threads).
///
/// The parsers count the deferred reads, and those that found part of their file
/// missing from the page cache ([`ProbeStats`]). The reader starts with trial parts,
/// whose first `TRIAL_OBJECTS` are deferred and the rest fetched. It judges the reads
/// made since its last judgement once there are `DECISION_READS` of them (or
/// `MIN_SAMPLE`, most of them cold). When more than one in `COLD_SHARE` were cold, it
/// fetches ahead for a number of parts that doubles each time (4 to 256), then tries
/// again; when a trial's reads were warm, it defers whole parts. Reads judged warm
/// reset the doubling, so the next cold stretch fetches for 4 parts again (a cached
/// archive whose pages were partly evicted reads cold in places: fetching ahead costs
/// more CPU than reading, so it should not outlast them). A few cold files in a cached
/// archive are simply read by the parser, which waits for them.
/// `--read-ahead always` and `never` fix the choice.
#[derive(Debug)]
struct ReadMode {
    policy: ReadAhead,
    /// The counts at the last look.
    seen: (u64, u64),
    state: ReadState,
    backoff: u32,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ReadState {
    #[default]
    Trial,
    Deferring,
    Fetching {
        parts_left: u32,
    },
}

/// See [`ReadMode`].
const COLD_SHARE: u64 = 16;
/// See [`ReadMode`].
const TRIAL_OBJECTS: usize = 32;
/// Deferred reads over which [`ReadMode`] judges the share of cold ones…
const DECISION_READS: u64 = 256;
/// …or fewer, but at least this many, when most of them were cold.
const MIN_SAMPLE: u64 = 16;

impl ReadMode {
    fn new(policy: ReadAhead) -> Self {
        Self {
            policy,
            seen: (0, 0),
            state: ReadState::Trial,
            backoff: 0,
        }
    }

    /// How many objects at the head of the next part are deferred (the rest are
    /// fetched ahead).
    fn deferred_objects(&mut self, stats: &ProbeStats) -> usize {
        match self.policy {
            ReadAhead::Always => return 0,
            ReadAhead::Never => return usize::MAX,
            ReadAhead::Auto => {}
        }
        let now = (
            stats.probed.load(Ordering::Relaxed),
            stats.cold.load(Ordering::Relaxed),
        );
        let (probed, cold) = (now.0 - self.seen.0, now.1 - self.seen.1);
        // A few reads are a small sample: a cached archive has pages evicted here and
        // there (on a busy host, ~1 % of the files between two runs), so some reads
        // are cold. The share is judged once `DECISION_READS` reads have been made
        // since the last judgement, or sooner when most were cold (a cold archive).
        let enough =
            probed >= DECISION_READS || (probed >= MIN_SAMPLE && cold.saturating_mul(2) > probed);
        let looks_cold = cold > 0 && cold.saturating_mul(COLD_SHARE) > probed;
        if enough {
            self.seen = now;
        }
        if enough && looks_cold {
            self.backoff = (self.backoff * 2).clamp(4, 256);
            self.state = ReadState::Fetching {
                parts_left: self.backoff,
            };
        } else if self.state == ReadState::Trial && probed > 0 && !looks_cold {
            self.state = ReadState::Deferring;
        }
        if enough && !looks_cold {
            // Warm again: a later cold stretch starts over from the shortest fetching
            // run instead of the longest.
            self.backoff = 0;
        }
        match self.state {
            ReadState::Deferring => usize::MAX,
            ReadState::Trial => TRIAL_OBJECTS,
            ReadState::Fetching { parts_left } => {
                self.state = match parts_left {
                    0 | 1 => ReadState::Trial,
                    n => ReadState::Fetching { parts_left: n - 1 },
                };
                0
            }
        }
    }
}

/// Reads the head of `part`: its first `deferred` objects as deferred bodies
/// ([`Source::defer`]; fetched when the source does not defer them), then, when that
/// was not the whole part, the rest as [`read_part`] fetches it.
fn load_part(
    source: &dyn Source,
    io_pool: &rayon::ThreadPool,
    part: &[(Object, KeyClass)],
    deferred: usize,
    max_bytes: u64,
    seen: &mut (u64, u64),
) -> (usize, Vec<Result<Fetched, String>>) {
    let head = part.len().min(deferred);
    let mut out: Vec<Result<Fetched, String>> = Vec::with_capacity(part.len());
    for (o, _) in &part[..head] {
        match source.defer(o) {
            Some(body) => out.push(Ok(Fetched {
                body,
                stat: None,
                ids: Vec::new(),
            })),
            // The source does not defer: the whole part is fetched.
            None => break,
        }
    }
    let taken = out.len();
    if taken == part.len() {
        return (taken, out);
    }
    let (more, fetched) = read_part(source, io_pool, &part[taken..], max_bytes, seen);
    out.extend(fetched);
    (taken + more, out)
}

/// What becomes of one listed object before it is read: `Some` when it is to be
/// parsed; otherwise it is counted (other shard, already in the ledger, pruned) or
/// gets an immediate ledger entry (not a log, unreadable name, too large).
fn admit(
    mut object: Object,
    source: &dyn Source,
    index: &LedgerIndex,
    options: &IngestOptions,
    summary: &mut Summary,
    immediate: &mut Vec<ObjectEntry>,
) -> Option<(Object, KeyClass)> {
    if let Some(r) = &options.repair
        && !r.keys.contains(&object.key)
    {
        summary.pruned += 1;
        return None;
    }
    let class = classify_key(&object.key);
    if let Some(shard) = &options.shard
        && !shard.owns(&object.key, &class)
    {
        summary.other_shards += 1;
        return None;
    }
    // An object listed without its size and version needs them now when the ledger
    // knows its key (a rerun: is it the same version?) or when it gets its ledger
    // entry without being read (not a log); the others learn them when they are read.
    // (Files whose names are not UTF-8 are listed with them.)
    let mut stat_error = None;
    let entry_now = matches!(class, KeyClass::NotLog(_));
    if object.stat_deferred && (entry_now || index.has_key(&object.key)) {
        match source.stat(&object) {
            Ok((size, version)) => {
                object.size = size;
                object.version = version;
                object.stat_deferred = false;
            }
            Err(e) => stat_error = Some(format!("cannot stat: {e}")),
        }
    }
    if stat_error.is_none()
        && options.repair.is_none()
        && index.contains(&object.key, object.size, &object.version)
    {
        summary.already_in_ledger += 1;
        return None;
    }
    let rejection = if let Some(reason) = &object.unreadable_name {
        Some(reason.clone())
    } else if stat_error.is_some() {
        stat_error
    } else {
        match &class {
            KeyClass::NotLog(reason) => {
                let reason = (*reason).to_string();
                let mut e = entry_for(object, class, Status::SkippedNotALog);
                e.reason = Some(reason);
                summary.skipped_not_a_log += 1;
                immediate.push(e);
                return None;
            }
            KeyClass::Log(k) if !options.prune.keeps(k) => {
                summary.pruned += 1;
                return None;
            }
            // A compressed object larger than the limit cannot decompress under it: it
            // is rejected without being read.
            _ if object.size > options.max_decompressed => Some(
                ObjectError::TooLarge {
                    limit: options.max_decompressed,
                }
                .to_string(),
            ),
            _ => None,
        }
    };
    match rejection {
        Some(reason) => {
            summary.rejected += 1;
            summary.rejections.push(Rejection {
                key: object.key.clone(),
                reason: reason.clone(),
            });
            let mut e = entry_for(object, class, Status::Rejected);
            e.reason = Some(reason);
            immediate.push(e);
            None
        }
        None => Some((object, class)),
    }
}

/// Runs an ingest of `source` into the lake at `lake_root`.
pub fn ingest(
    source: &dyn Source,
    lake_root: &Path,
    config: &Config,
    options: &IngestOptions,
    progress: &Progress,
) -> Result<Summary, IngestError> {
    ingest_at(
        source,
        LakeLocation::Local(lake_root.to_path_buf()),
        config,
        options,
        progress,
    )
}

/// [`ingest`] into a lake in a folder or on S3.
pub fn ingest_at(
    source: &dyn Source,
    location: LakeLocation,
    config: &Config,
    options: &IngestOptions,
    progress: &Progress,
) -> Result<Summary, IngestError> {
    let started = Instant::now();
    let tag = options.shard.map(|s| s.tag());
    let lake_name = location.describe();
    let (mut lake, index, recovery) = Lake::open_at(location, tag.as_deref())?;
    // An API source plans from the ledger; the events of its overlap already in the
    // lake are dropped as duplicates.
    let edge_ids = source.resume(&index)?;
    let mut summary = Summary {
        source: source.describe(),
        lake: lake_name,
        recovered_files: recovery.rolled_forward,
        discarded_staged_files: recovery.rolled_back,
        ..Summary::default()
    };

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads.max(1))
        .thread_name(|i| format!("cetrail-parse-{i}"))
        .build()
        .map_err(|e| IngestError::Threads(options.threads, e.to_string()))?;
    let io_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(READ_THREADS)
        .thread_name(|i| format!("cetrail-read-{i}"))
        .build()
        .map_err(|e| IngestError::Threads(READ_THREADS, e.to_string()))?;
    let (pool, io_pool) = (&pool, &io_pool);
    let prefilter = Prefilter::new(config);
    let prefilter = &prefilter;
    let probes = ProbeStats::default();
    let probes = &probes;
    let (tx, rx) = sync_channel::<Vec<ObjectResult>>(2);
    let flush = Flush {
        rows: options.flush_rows,
        bytes: options.flush_bytes,
        objects: options.flush_objects,
        once: options.repair.is_some(),
    };
    if let Some(r) = &options.repair {
        lake.retire(r.retire.clone());
    }
    // Entries decided from the key alone (not a log, unreadable name, too large).
    let mut immediate: Vec<ObjectEntry> = Vec::new();
    // The number of objects to parse, once the listing is complete (`u64::MAX` until
    // then).
    let listed = AtomicU64::new(u64::MAX);
    let mut admitted_total = 0u64;
    let lake_ref = &mut lake;
    let outcome = std::thread::scope(|scope| -> Result<Written, IngestError> {
        let listed = &listed;
        let seen = SeenIds::seeded(&edge_ids);
        let writer = scope.spawn(move || write_loop(lake_ref, rx, flush, progress, listed, seen));
        // The listing streams in key order while the first chunks are parsed.
        let (list_tx, list_rx) = sync_channel::<Vec<Object>>(16);
        let lister =
            scope.spawn(move || source.list_each_deferred(&mut |b| list_tx.send(b).is_ok()));
        // Objects are parsed in listing order (in-run dedup keeps the first copy, the
        // smallest key), a chunk at a time; each chunk ends with a wait for its slowest
        // object, so chunks are large (16 per thread lost ~7 % to those waits). The
        // next chunk is read while one is parsed: reads block on the disk when the
        // archive is not in the page cache, and `READ_THREADS` keep several in flight.
        let chunk = (options.threads.max(1) * 128).max(128);
        let (chunk_tx, chunk_rx) = sync_channel::<Vec<(Object, KeyClass)>>(1);
        let (loaded_tx, loaded_rx) = sync_channel::<Loaded>(1);
        let reader = scope.spawn(move || {
            let mut seen = (0u64, 0u64);
            let mut mode = ReadMode::new(options.read_ahead);
            for mut part in chunk_rx {
                while !part.is_empty() {
                    let (taken, fetched) = load_part(
                        source,
                        io_pool,
                        &part,
                        mode.deferred_objects(probes),
                        options.max_decompressed,
                        &mut seen,
                    );
                    let rest = part.split_off(taken);
                    if loaded_tx.send((part, fetched)).is_err() {
                        return;
                    }
                    part = rest;
                }
            }
        });
        let parser = scope.spawn(move || {
            for (part, bytes) in loaded_rx {
                let results: Vec<ObjectResult> = pool.install(|| {
                    part.into_par_iter()
                        .zip(bytes.into_par_iter())
                        .map(|((object, class), read)| {
                            let r = process_object(
                                read, object, class, config, prefilter, options, probes,
                            );
                            progress.objects_done.fetch_add(1, Ordering::Relaxed);
                            progress
                                .bytes_read
                                .fetch_add(r.entry.size, Ordering::Relaxed);
                            progress
                                .bytes_decompressed
                                .fetch_add(r.decompressed, Ordering::Relaxed);
                            r
                        })
                        .collect()
                });
                // The writer only stops receiving when it failed; its error is returned
                // below.
                if tx.send(results).is_err() {
                    break;
                }
            }
        });
        let mut work: Vec<(Object, KeyClass)> = Vec::with_capacity(chunk);
        let mut work_bytes = 0u64;
        'listing: for batch in list_rx {
            summary.objects_seen += batch.len() as u64;
            let admitted: Vec<(Object, KeyClass)> = batch
                .into_iter()
                .filter_map(|o| admit(o, source, &index, options, &mut summary, &mut immediate))
                .collect();
            admitted_total += admitted.len() as u64;
            progress
                .objects_total
                .fetch_add(admitted.len() as u64, Ordering::Relaxed);
            // Announced before any of them is read (S3 downloads ahead).
            source.prefetch(&mut admitted.iter().map(|(o, _)| o));
            for item in admitted {
                work_bytes += item.0.size;
                work.push(item);
                if work.len() >= chunk || work_bytes >= CHUNK_BYTES {
                    work_bytes = 0;
                    // A failed send means a later stage stopped (the writer failed).
                    if chunk_tx
                        .send(std::mem::replace(&mut work, Vec::with_capacity(chunk)))
                        .is_err()
                    {
                        break 'listing;
                    }
                }
            }
        }
        listed.store(admitted_total, Ordering::Relaxed);
        if !work.is_empty() {
            // A failed send means the writer failed: its error is returned below.
            let _ = chunk_tx.send(work);
        }
        drop(chunk_tx);
        reader
            .join()
            .map_err(|_| IngestError::ThreadGone("reader"))?;
        parser
            .join()
            .map_err(|_| IngestError::ThreadGone("parser"))?;
        let written = writer
            .join()
            .map_err(|_| IngestError::ThreadGone("writer"))??;
        lister
            .join()
            .map_err(|_| IngestError::ThreadGone("lister"))??;
        Ok(written)
    })?;
    if options.repair.is_some() && outcome.commits == 0 {
        // Nothing was read again: the damaged files are not retired.
        lake.retire(Vec::new());
    }
    if !immediate.is_empty() {
        lake.commit(Vec::new(), EntryLines::of(&immediate)?)?;
        summary.commits += 1;
    }

    summary.ingested = outcome.ingested;
    summary.skipped_not_a_log += outcome.skipped;
    summary.skipped_records = outcome.skipped_records;
    summary.rejected += outcome.rejected;
    summary.records_read = outcome.records;
    summary.bad_records = outcome.bad_records;
    summary.duplicates_dropped = outcome.duplicates;
    summary.bytes_read = outcome.bytes_read;
    summary.bytes_decompressed = outcome.decompressed;
    summary.commits += outcome.commits;
    summary.rejections.extend(outcome.rejections);
    for kind in Kind::ALL {
        let n = outcome.kinds[kind as usize];
        if n > 0 || kind != Kind::Other {
            summary.kept.insert(kind.as_str().to_string(), n);
        }
    }
    summary.kept_total = outcome.kinds.iter().sum();
    summary.requests = source.requests();
    summary.seconds = started.elapsed().as_secs_f64();
    if summary.seconds > 0.0 {
        summary.mb_per_second = summary.bytes_decompressed as f64 / 1e6 / summary.seconds;
        summary.events_per_second = summary.records_read as f64 / summary.seconds;
    }
    Ok(summary)
}

#[derive(Default)]
struct Written {
    objects: u64,
    ingested: u64,
    /// Objects read and found to be no log by their content.
    skipped: u64,
    skipped_records: u64,
    rejected: u64,
    records: u64,
    bad_records: u64,
    duplicates: u64,
    bytes_read: u64,
    decompressed: u64,
    commits: u64,
    kinds: [u64; 4],
    rejections: Vec<Rejection>,
}

fn id_hash(id: &str) -> u128 {
    let mut a = std::hash::DefaultHasher::new();
    0u8.hash(&mut a);
    id.hash(&mut a);
    let mut b = std::hash::DefaultHasher::new();
    1u8.hash(&mut b);
    id.hash(&mut b);
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

fn month_of(micros: i64) -> String {
    DateTime::from_timestamp_micros(micros)
        .map(|d| format!("{:04}-{:02}", d.year(), d.month()))
        .unwrap_or_else(|| "0000-00".into())
}

/// When the writer commits.
#[derive(Debug, Clone, Copy)]
struct Flush {
    rows: usize,
    bytes: usize,
    objects: usize,
    /// One commit at the end, whatever the thresholds (a repair's).
    once: bool,
}

/// What one commit writes: the kept rows by month, and the objects' ledger lines.
type Commit = (BTreeMap<String, Vec<RecordBatch>>, EntryLines);

/// The writer thread: dedup, split by month, buffer; each commit (sort, Parquet,
/// ledger segment, publish) runs on a committer thread of its own while the next one
/// is buffered, so that parsing does not stall while a commit writes (the parsers'
/// channel holds only two chunks). At most two commits' worth of rows are held: the
/// hand-over waits until the previous commit is done.
fn write_loop(
    lake: &mut Lake,
    rx: Receiver<Vec<ObjectResult>>,
    limits: Flush,
    progress: &Progress,
    listed: &AtomicU64,
    seen: SeenIds,
) -> Result<Written, IngestError> {
    std::thread::scope(|scope| {
        let (commit_tx, commit_rx) = sync_channel::<Commit>(0);
        let committer = scope.spawn(move || -> Result<(), LakeError> {
            for (mut months, mut pending) in commit_rx {
                flush(lake, &mut months, &mut pending)?;
            }
            Ok(())
        });
        let buffered = buffer_loop(rx, limits, progress, listed, &commit_tx, seen);
        drop(commit_tx);
        let committed = committer
            .join()
            .map_err(|_| IngestError::ThreadGone("committer"))?;
        // A commit's error first: a failed hand-over only means the committer stopped.
        committed?;
        buffered
    })
}

/// The writer's loop: dedup, split by month, buffer, hand each commit to `commit`.
/// Besides the `limits`, it commits once when the listing is complete (`listed` holds
/// the number of objects to parse) and only [`TAIL_OBJECTS`] remain: that commit runs
/// while the tail is parsed, and the final one, which waits for nothing else, is small.
fn buffer_loop(
    rx: Receiver<Vec<ObjectResult>>,
    limits: Flush,
    progress: &Progress,
    listed: &AtomicU64,
    commit: &std::sync::mpsc::SyncSender<Commit>,
    mut seen: SeenIds,
) -> Result<Written, IngestError> {
    let mut tail_committed = false;
    let mut w = Written::default();
    let mut months: BTreeMap<String, Vec<RecordBatch>> = BTreeMap::new();
    let mut pending = EntryLines::default();
    let mut pending_rows = 0usize;
    let mut pending_bytes = 0usize;
    // `false` when the committer stopped (its error is the one returned).
    let hand_over = |months: &mut BTreeMap<String, Vec<RecordBatch>>, pending: &mut EntryLines| {
        commit
            .send((std::mem::take(months), std::mem::take(pending)))
            .is_ok()
    };
    for results in rx {
        let mut staged = Staged::default();
        for mut r in results {
            w.objects += 1;
            w.bytes_read += r.entry.size;
            w.decompressed += r.decompressed;
            w.records += r.entry.records;
            w.bad_records += r.entry.bad_records;
            match r.entry.status {
                Status::Rejected => w.rejected += 1,
                Status::SkippedNotALog => w.skipped += 1,
                Status::Ingested => w.ingested += 1,
            }
            w.skipped_records += r.skipped_records;
            if let Some(rej) = r.rejection.take() {
                w.rejections.push(rej);
            }
            if !r.rows.is_empty() {
                let kept = staged.add(
                    std::mem::take(&mut r.rows),
                    &mut r.entry,
                    r.kind,
                    &mut seen,
                    &mut w.kinds,
                );
                w.duplicates += r.entry.duplicates;
                pending_rows += kept;
                progress
                    .events_kept
                    .fetch_add(kept as u64, Ordering::Relaxed);
            }
            pending.push(&r.entry)?;
            let to_come = listed.load(Ordering::Relaxed).saturating_sub(w.objects);
            let tail = !tail_committed
                && to_come > 0
                && to_come <= TAIL_OBJECTS
                && pending.len() as u64 > to_come;
            if limits.once {
                continue;
            }
            if tail
                || pending_rows >= limits.rows
                || pending_bytes + staged.bytes >= limits.bytes
                || pending.len() >= limits.objects
            {
                tail_committed |= tail;
                staged.into_batches(&mut months)?;
                if !hand_over(&mut months, &mut pending) {
                    return Ok(w);
                }
                staged = Staged::default();
                pending_rows = 0;
                pending_bytes = 0;
                w.commits += 1;
            }
        }
        pending_bytes += staged.into_batches(&mut months)?;
    }
    if !pending.is_empty() && hand_over(&mut months, &mut pending) {
        w.commits += 1;
    }
    Ok(w)
}

/// The event ids kept in this run. A trail's copy of an event wins over a copy from
/// another source (SPEC §10: the trail's file is what `verify` proves): a trail row
/// whose id was kept from another source only is kept too, and the query view and
/// compaction choose the trail's. `other` holds the ids kept from other sources only
/// (empty in a trail's ingest).
#[derive(Default)]
struct SeenIds {
    all: HashSet<u128>,
    other: HashSet<u128>,
}

impl SeenIds {
    /// Ids already in the lake from a source other than a trail (an API source's
    /// overlap): another copy from such a source is dropped, a trail's is kept.
    fn seeded(ids: &[String]) -> Self {
        let mut seen = Self::default();
        for id in ids {
            let h = id_hash(id);
            seen.all.insert(h);
            seen.other.insert(h);
        }
        seen
    }

    /// Whether a row of `kind` with this id is kept (and notes it).
    fn keep(&mut self, id: &str, kind: SourceKind) -> bool {
        let h = id_hash(id);
        if self.all.insert(h) {
            if kind != SourceKind::Trail {
                self.other.insert(h);
            }
            return true;
        }
        kind == SourceKind::Trail && self.other.remove(&h)
    }
}

/// The kept rows of a chunk of objects, by month, each with its object's key.
#[derive(Default)]
struct Staged {
    keys: Vec<(String, SourceKind)>,
    months: BTreeMap<String, (Vec<EventRow<'static>>, Vec<usize>)>,
    /// A rough size of the rows' text (for the flush threshold).
    bytes: usize,
}

impl Staged {
    /// Stages the rows of one object whose event id was not kept before in this run;
    /// notes the kept count, duplicates and first/last event in its ledger entry.
    /// Returns the number kept.
    fn add(
        &mut self,
        rows: Vec<EventRow<'static>>,
        entry: &mut ObjectEntry,
        kind: SourceKind,
        seen: &mut SeenIds,
        kinds: &mut [u64; 4],
    ) -> usize {
        let key = self.keys.len();
        // A slice of an API source stands for its source (`logs:<group>`, whose rows
        // name their stream, or `event-history:<region>`).
        let provenance = crate::source::slices::slice_source(&entry.key).unwrap_or(&entry.key);
        self.keys.push((provenance.to_string(), kind));
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        let mut kept = 0usize;
        for row in rows {
            if !seen.keep(&row.event_id, kind) {
                entry.duplicates += 1;
                continue;
            }
            kept += 1;
            lo = lo.min(row.event_time);
            hi = hi.max(row.event_time);
            if let Some(k) = row.kind {
                kinds[k as usize] += 1;
            }
            self.bytes += row_bytes(&row);
            let (rows, keys) = self.months.entry(month_of(row.event_time)).or_default();
            rows.push(row);
            keys.push(key);
        }
        entry.kept = kept as u64;
        if lo <= hi {
            entry.first_event = Some(crate::record::derive::format_utc_seconds(lo));
            entry.last_event = Some(crate::record::derive::format_utc_seconds(hi));
        }
        kept
    }

    /// One Arrow batch per month into `months`; returns their size in bytes.
    fn into_batches(
        self,
        months: &mut BTreeMap<String, Vec<RecordBatch>>,
    ) -> Result<usize, LakeError> {
        let mut bytes = 0;
        for (month, (rows, keys)) in self.months {
            let batch = schema::build_batch(&rows, |i| {
                keys.get(i)
                    .and_then(|k| self.keys.get(*k))
                    .map_or(("", SourceKind::Trail), |(key, kind)| (key.as_str(), *kind))
            })?;
            bytes += batch.get_array_memory_size();
            months.entry(month).or_default().push(batch);
        }
        Ok(bytes)
    }
}

/// The text bytes of a row, roughly what its Arrow columns take.
fn row_bytes(row: &EventRow<'_>) -> usize {
    let raw = [
        &row.request_parameters,
        &row.response_elements,
        &row.additional_event_data,
        &row.user_agent,
        &row.error_message,
    ];
    512 + raw
        .iter()
        .map(|v| v.as_ref().map_or(0, |s| s.len()))
        .sum::<usize>()
}

fn flush(
    lake: &mut Lake,
    months: &mut BTreeMap<String, Vec<RecordBatch>>,
    pending: &mut EntryLines,
) -> Result<(), LakeError> {
    let mut sorted = Vec::with_capacity(months.len());
    for (month, batches) in std::mem::take(months) {
        sorted.push((month, writer::sort_batches(&batches)?));
    }
    lake.commit(sorted, std::mem::take(pending))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `mode` the parsers' counts and returns how many objects it defers.
    fn look(mode: &mut ReadMode, stats: &ProbeStats, probed: u64, cold: u64) -> usize {
        stats.probed.fetch_add(probed, Ordering::Relaxed);
        stats.cold.fetch_add(cold, Ordering::Relaxed);
        mode.deferred_objects(stats)
    }

    #[test]
    fn read_mode_defers_when_warm_and_fetches_ahead_when_cold() {
        let stats = ProbeStats::default();
        let mut mode = ReadMode::new(ReadAhead::Auto);
        // Trial parts until the parsers have read some of them.
        assert_eq!(look(&mut mode, &stats, 0, 0), TRIAL_OBJECTS);
        assert_eq!(look(&mut mode, &stats, 0, 0), TRIAL_OBJECTS);
        // Warm trial reads (one cold in 32 is under the share): whole parts deferred.
        assert_eq!(look(&mut mode, &stats, 32, 1), usize::MAX);
        assert_eq!(look(&mut mode, &stats, 256, 2), usize::MAX);
        // Cold: 4 parts fetched ahead, then a trial.
        assert_eq!(look(&mut mode, &stats, 256, 200), 0);
        for _ in 0..3 {
            assert_eq!(look(&mut mode, &stats, 0, 0), 0);
        }
        assert_eq!(look(&mut mode, &stats, 0, 0), TRIAL_OBJECTS);
        // A cold trial doubles the fetching stretch (8 parts)…
        assert_eq!(look(&mut mode, &stats, 32, 30), 0);
        for _ in 0..7 {
            assert_eq!(look(&mut mode, &stats, 0, 0), 0);
        }
        // …up to 256 parts at most.
        for _ in 0..10 {
            assert_eq!(look(&mut mode, &stats, 32, 32), 0);
        }
        assert_eq!(mode.backoff, 256);
        // A warm trial goes back to deferring.
        for _ in 0..255 {
            assert_eq!(look(&mut mode, &stats, 0, 0), 0);
        }
        assert_eq!(look(&mut mode, &stats, 0, 0), TRIAL_OBJECTS);
        assert_eq!(look(&mut mode, &stats, 32, 0), usize::MAX);
        // Reads judged warm reset the fetching stretch: the next cold one is 4 parts
        // again, not 256.
        assert_eq!(look(&mut mode, &stats, 256, 0), usize::MAX);
        assert_eq!(look(&mut mode, &stats, 256, 100), 0);
        for _ in 0..3 {
            assert_eq!(look(&mut mode, &stats, 0, 0), 0);
        }
        assert_eq!(look(&mut mode, &stats, 0, 0), TRIAL_OBJECTS);
    }

    /// Files evicted here and there from a cached archive: a trial with a few cold
    /// reads keeps trying without fetching ahead, whole parts are deferred while the
    /// cold share of 256 reads stays under one in 16, and fetching starts above it.
    #[test]
    fn read_mode_judges_the_cold_share_over_enough_reads() {
        let stats = ProbeStats::default();
        let mut mode = ReadMode::new(ReadAhead::Auto);
        assert_eq!(look(&mut mode, &stats, 0, 0), TRIAL_OBJECTS);
        // 3 cold of 32: over the share, but a small sample, not a majority.
        assert_eq!(look(&mut mode, &stats, 32, 3), TRIAL_OBJECTS);
        // 32 more, none cold: 3 of 64 is under the share, so whole parts are deferred.
        assert_eq!(look(&mut mode, &stats, 32, 0), usize::MAX);
        // 10 cold of the next 256 (counted with the 64 before): still deferring.
        assert_eq!(look(&mut mode, &stats, 192, 7), usize::MAX);
        assert_eq!(look(&mut mode, &stats, 256, 10), usize::MAX);
        // 20 of 256: fetching ahead.
        assert_eq!(look(&mut mode, &stats, 256, 20), 0);
        // A cold archive is recognised from a handful of reads.
        let (mut cold, fresh) = (ReadMode::new(ReadAhead::Auto), ProbeStats::default());
        assert_eq!(look(&mut cold, &fresh, 0, 0), TRIAL_OBJECTS);
        assert_eq!(look(&mut cold, &fresh, 20, 20), 0);
    }

    #[test]
    fn read_ahead_policies_fix_the_choice() {
        let stats = ProbeStats::default();
        let mut always = ReadMode::new(ReadAhead::Always);
        let mut never = ReadMode::new(ReadAhead::Never);
        for (probed, cold) in [(0, 0), (256, 256), (256, 0)] {
            assert_eq!(look(&mut always, &stats, probed, cold), 0);
            assert_eq!(look(&mut never, &stats, probed, cold), usize::MAX);
        }
    }
}
