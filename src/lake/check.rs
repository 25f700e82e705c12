//! `cetrail lake check`: the lake's files against its ledger (SPEC §11).
//!
//! The ledger is the table: the committed files are those its segments add, less those
//! a later segment removes (compaction). Each is checked for presence and size (and,
//! for segments written before sizes were recorded, for a readable footer with the
//! recorded row count); `--deep` re-reads every file and compares the xxh3 of its bytes
//! with the one recorded, in parallel. A Parquet file in `events/` that no segment
//! commits is reported too: cetrail never reads it, but other engines globbing
//! `events/` would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use super::ledger::{DataFile, ledger_dir, read_headers};
use crate::error::LakeError;

/// A committed file and the segment that committed it.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    pub file: DataFile,
    /// The segment's path relative to the lake root.
    pub segment: String,
}

/// The files the ledger commits and does not remove, by path.
pub fn committed(root: &Path) -> Result<Vec<Committed>, LakeError> {
    let mut files: BTreeMap<String, Committed> = BTreeMap::new();
    for (name, header) in read_headers(root)? {
        let segment = format!("_cetrail/ledger/{name}");
        for r in header.removed.iter().chain(&header.retired) {
            files.remove(r);
        }
        for f in header.files {
            files.insert(
                f.path.clone(),
                Committed {
                    file: f,
                    segment: segment.clone(),
                },
            );
        }
    }
    Ok(files.into_values().collect())
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file, relative to the lake root.
    pub file: String,
    /// The segment that committed it (none for a stray file).
    pub segment: Option<String>,
    /// `missing`, `size`, `unreadable`, `rows`, `checksum` or `not-committed`.
    pub problem: &'static str,
    pub detail: String,
}

/// What `lake check` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub files: u64,
    pub bytes: u64,
    /// Files checked by checksum (`--deep`).
    pub hashed: u64,
    pub problems: Vec<Problem>,
}

fn footer_rows(path: &Path) -> Result<u64, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let reader = parquet::file::serialized_reader::SerializedFileReader::new(file)
        .map_err(|e| e.to_string())?;
    use parquet::file::reader::FileReader as _;
    Ok(reader.metadata().file_metadata().num_rows().max(0) as u64)
}

/// Checks one committed file; `deep`: its checksum too.
fn check_file(root: &Path, c: &Committed, deep: bool) -> (u64, bool, Option<Problem>) {
    let path = root.join(&c.file.path);
    let problem = |problem: &'static str, detail: String| Problem {
        file: c.file.path.clone(),
        segment: Some(c.segment.clone()),
        problem,
        detail,
    };
    let size = match std::fs::metadata(&path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return (0, false, Some(problem("missing", "no such file".into())));
        }
        Err(e) => return (0, false, Some(problem("unreadable", e.to_string()))),
    };
    if let Some(want) = c.file.size
        && want != size
    {
        return (
            size,
            false,
            Some(problem(
                "size",
                format!("{size} bytes, committed with {want}"),
            )),
        );
    }
    if deep && let Some(want) = &c.file.xxh3 {
        return match super::writer::xxh3_of(&path) {
            Ok((_, got)) if format!("{got:016x}") == *want => (size, true, None),
            Ok((_, got)) => (
                size,
                true,
                Some(problem(
                    "checksum",
                    format!("xxh3 {got:016x}, committed with {want}"),
                )),
            ),
            Err(e) => (size, false, Some(problem("unreadable", e.to_string()))),
        };
    }
    // Without a checksum (or without --deep): the footer must read, with the rows the
    // segment recorded. With a recorded size and no --deep, the size is the check.
    if c.file.size.is_none() || deep {
        return match footer_rows(&path) {
            Ok(rows) if rows == c.file.rows => (size, false, None),
            Ok(rows) => (
                size,
                false,
                Some(problem(
                    "rows",
                    format!("{rows} rows in its footer, committed with {}", c.file.rows),
                )),
            ),
            Err(e) => (size, false, Some(problem("unreadable", e))),
        };
    }
    (size, false, None)
}

/// Checks the lake at `root` against its ledger (see the module doc).
pub fn check(root: &Path, deep: bool) -> Result<Report, LakeError> {
    if !ledger_dir(root).is_dir() {
        return Err(LakeError::NotALake {
            path: root.to_path_buf(),
            message: "no _cetrail/ledger/ folder (run `cetrail ingest` first)".into(),
        });
    }
    let committed = committed(root)?;
    let results: Vec<(u64, bool, Option<Problem>)> = committed
        .par_iter()
        .map(|c| check_file(root, c, deep))
        .collect();
    let mut report = Report {
        files: committed.len() as u64,
        ..Report::default()
    };
    for (size, hashed, problem) in results {
        report.bytes += size;
        report.hashed += u64::from(hashed);
        report.problems.extend(problem);
    }
    let known: std::collections::HashSet<&str> =
        committed.iter().map(|c| c.file.path.as_str()).collect();
    let present: Vec<PathBuf> = match super::data_files(root) {
        Ok(f) => f,
        Err(LakeError::NotALake { .. }) => Vec::new(),
        Err(e) => return Err(e),
    };
    for p in present {
        let rel = p
            .strip_prefix(root)
            .map(|r| r.to_string_lossy().replace('\\', "/"))
            .unwrap_or_else(|_| p.to_string_lossy().into_owned());
        if !known.contains(rel.as_str()) {
            report.problems.push(Problem {
                file: rel,
                segment: None,
                problem: "not-committed",
                detail: "no ledger segment commits it: cetrail does not read it, other engines reading events/ would".into(),
            });
        }
    }
    report.problems.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(report)
}

/// The files a read command reads (SPEC §11): exactly those the ledger commits and
/// does not remove, each present, of its committed size and with its committed bytes;
/// a file in `events/` that no segment commits is not read. A damaged file stops the
/// read with [`LakeError::Damaged`], which names it, its segment and the way out. A
/// lake folder without a ledger is no lake.
///
/// Bytes are checked once per version of a file: `_cetrail/verified.tsv` remembers the
/// size and modification time each file had when its xxh3 last matched the ledger's,
/// so a lake read again costs a stat per file, and a file rewritten since (another
/// mtime) is hashed again (in parallel). The record is a cache: when it cannot be
/// written (a read-only lake) the files are hashed at every read.
pub fn read_files(root: &Path) -> Result<Vec<PathBuf>, LakeError> {
    if !ledger_dir(root).is_dir() {
        return Err(LakeError::NotALake {
            path: root.to_path_buf(),
            message: "no _cetrail/ledger/ folder (run `cetrail ingest` first)".into(),
        });
    }
    let committed = committed(root)?;
    let verified = read_verified(root);
    let damaged = |c: &Committed, problem: String| LakeError::Damaged {
        root: root.to_path_buf(),
        file: c.file.path.clone(),
        segment: c.segment.clone(),
        problem,
    };
    // Size first, for every file; the files whose bytes were not verified in this
    // version are hashed after.
    let mut out = Vec::with_capacity(committed.len());
    let mut to_hash: Vec<(&Committed, u64, u128)> = Vec::new();
    for c in &committed {
        let path = root.join(&c.file.path);
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(damaged(c, "is missing".into()));
            }
            Err(e) => return Err(damaged(c, format!("cannot be read: {e}"))),
        };
        if let Some(want) = c.file.size
            && meta.len() != want
        {
            return Err(damaged(
                c,
                format!("has {} bytes where {want} were committed", meta.len()),
            ));
        }
        if let Some(want) = &c.file.xxh3 {
            let mtime = mtime_of(&meta);
            let known = verified
                .get(&c.file.path)
                .is_some_and(|(s, m, h)| *s == meta.len() && *m == mtime && h == want);
            if !known {
                to_hash.push((c, meta.len(), mtime));
            }
        }
        out.push(path);
    }
    if to_hash.is_empty() {
        return Ok(out);
    }
    let hashed: Vec<Result<(), LakeError>> = to_hash
        .par_iter()
        .map(|(c, _, _)| {
            let want = c.file.xxh3.as_deref().unwrap_or_default();
            let (_, got) = super::writer::xxh3_of(&root.join(&c.file.path))?;
            if format!("{got:016x}") == want {
                Ok(())
            } else {
                Err(damaged(
                    c,
                    format!("differs from what was committed (xxh3 {got:016x}, committed {want})"),
                ))
            }
        })
        .collect();
    for r in hashed {
        r?;
    }
    // Remember what was verified (best effort: a cache).
    let mut records = verified;
    for (c, size, mtime) in to_hash {
        records.insert(
            c.file.path.clone(),
            (size, mtime, c.file.xxh3.clone().unwrap_or_default()),
        );
    }
    let live: std::collections::HashSet<&str> =
        committed.iter().map(|c| c.file.path.as_str()).collect();
    records.retain(|k, _| live.contains(k.as_str()));
    write_verified(root, &records);
    Ok(out)
}

type Verified = std::collections::HashMap<String, (u64, u128, String)>;

fn read_verified(root: &Path) -> Verified {
    std::fs::read_to_string(root.join(VERIFIED))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let (path, size, mtime, hash) = (f.next()?, f.next()?, f.next()?, f.next()?);
            Some((
                path.to_string(),
                (size.parse().ok()?, mtime.parse().ok()?, hash.to_string()),
            ))
        })
        .collect()
}

/// Writes the record (a temporary file of this process, renamed; errors ignored: it is
/// a cache).
fn write_verified(root: &Path, records: &Verified) {
    let mut keys: Vec<&String> = records.keys().collect();
    keys.sort();
    let mut text = String::new();
    for k in keys {
        let (size, mtime, hash) = &records[k];
        text.push_str(&format!("{k}\t{size}\t{mtime}\t{hash}\n"));
    }
    let path = root.join(VERIFIED);
    let tmp = path.with_extension(format!("tsv.{}.tmp", std::process::id()));
    if std::fs::write(&tmp, text).is_err() || std::fs::rename(&tmp, &path).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// The modification time of a file, in ns since the epoch (0 when unknown).
fn mtime_of(meta: &std::fs::Metadata) -> u128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

/// Notes files just published by a commit as verified (their bytes are those the
/// writer hashed): the first read of a new lake file then costs a stat, not a hash.
pub fn note_verified(root: &Path, files: &[DataFile]) {
    let mut records = read_verified(root);
    for f in files {
        let (Some(size), Some(hash)) = (f.size, &f.xxh3) else {
            continue;
        };
        if let Ok(meta) = std::fs::metadata(root.join(&f.path))
            && meta.len() == size
        {
            records.insert(f.path.clone(), (size, mtime_of(&meta), hash.clone()));
        }
    }
    write_verified(root, &records);
}

/// The record of the lake files whose bytes were verified (see [`read_files`]).
const VERIFIED: &str = "_cetrail/verified.tsv";

/// For an error message that names a lake file (`<root>/events/month=…/….parquet`) of a
/// lake with a ledger: the segment that committed it and the way out, as a sentence;
/// `None` when the message names no committed file.
pub fn explain(message: &str) -> Option<String> {
    let at = message.find("/events/month=")?;
    let start = message[..at]
        .rfind(|c: char| c.is_whitespace())
        .map_or(0, |i| i + 1);
    let end = message[at..]
        .find(".parquet")
        .map(|i| at + i + ".parquet".len())?;
    let path = Path::new(&message[start..end]);
    let root = Path::new(&message[start..at]);
    let rel = path.strip_prefix(root).ok()?.to_string_lossy().into_owned();
    let c = committed(root)
        .ok()?
        .into_iter()
        .find(|c| c.file.path == rel)?;
    Some(
        LakeError::Damaged {
            root: root.to_path_buf(),
            file: rel,
            segment: c.segment,
            problem: "cannot be read".into(),
        }
        .to_string(),
    )
}
