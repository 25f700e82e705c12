//! The ledger: every input object seen, and the commit log of the lake's files.
//!
//! The ledger is a folder of segments, `_cetrail/ledger/<run>-<seq>.jsonl`. One segment
//! is one commit: its first line lists the Parquet files the commit adds, each
//! following line is one input object (key, size, version, status, counts). A segment
//! is written under a temporary name, synced and renamed: it exists whole or not at
//! all, and its existence is the commit point of everything it lists.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::LakeError;

/// Version of the segment format.
pub const LEDGER_FORMAT: u32 = 1;

/// What happened to an input object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Read; its CE events (possibly none) are in the lake.
    Ingested,
    /// Not an event log (digest, insight, other file): skipped by rule.
    SkippedNotALog,
    /// Could not be read as a log file; `reason` says why.
    Rejected,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ingested => "ingested",
            Status::SkippedNotALog => "skipped-not-a-log",
            Status::Rejected => "rejected",
        }
    }
}

/// One input object in the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectEntry {
    pub key: String,
    pub size: u64,
    /// mtime (local) or ETag (S3): a changed version is a new object.
    pub version: String,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Account, region and delivery day (`YYYY-MM-DD`) of a log in the CloudTrail key
    /// layout. Not written: they follow from the key; a reader that needs them calls
    /// [`ObjectEntry::fill_from_key`] (segments of earlier versions hold them).
    #[serde(default, skip_serializing)]
    pub account: Option<String>,
    #[serde(default, skip_serializing)]
    pub region: Option<String>,
    #[serde(default, skip_serializing)]
    pub day: Option<String>,
    #[serde(default)]
    pub records: u64,
    /// Events written to the lake (after in-run deduplication).
    #[serde(default)]
    pub kept: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bad_records: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub duplicates: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_event: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event: Option<String>,
    /// For a time slice of an API source (`logs:…`, `event-history:…`, see
    /// `source::slices`): the ids of the events read in its unsettled tail.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl ObjectEntry {
    /// Sets account, region and day from the key when they are missing (a log in the
    /// CloudTrail key layout; other objects have none).
    pub fn fill_from_key(&mut self) {
        if self.account.is_some() {
            return;
        }
        if let crate::source::KeyClass::Log(k) = crate::source::classify_key(&self.key) {
            self.account = Some(k.account);
            self.region = Some(k.region);
            self.day = Some(k.date.to_string());
        }
    }
}

/// A Parquet file added by a commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataFile {
    pub month: String,
    /// Final path, relative to the lake root.
    pub path: String,
    /// Staging path, relative to the lake root (moved to `path` after the commit).
    pub staged: String,
    pub rows: u64,
    /// Its bytes (segments written before checksums have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The xxh3-64 of its bytes, 16 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xxh3: Option<String>,
}

impl DataFile {
    /// The file with what writing it gave.
    pub fn sealed(self, seal: super::writer::Seal) -> Self {
        Self {
            rows: seal.rows,
            size: Some(seal.size),
            xxh3: Some(format!("{:016x}", seal.xxh3)),
            ..self
        }
    }
}

/// The first line of a segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentHeader {
    pub format: u32,
    pub run: String,
    pub seq: u64,
    pub committed_at: String,
    pub files: Vec<DataFile>,
    /// Lake files this commit replaces (compaction): deleted after `files` are
    /// published, and by recovery when a crash interrupted that.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    /// Damaged lake files this commit retires (`lake repair`): moved to
    /// `_cetrail/quarantine/` after `files` are published (by recovery when a crash
    /// interrupted that), so that no engine reads them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<String>,
}

/// A whole segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub header: SegmentHeader,
    pub objects: Vec<ObjectEntry>,
}

pub(crate) fn ledger_dir(root: &Path) -> PathBuf {
    root.join("_cetrail").join("ledger")
}

/// Reads every committed segment, in name order (oldest run first).
pub fn read_segments(root: &Path) -> Result<Vec<Segment>, LakeError> {
    let dir = ledger_dir(root);
    segment_names(&dir)?
        .iter()
        .map(|n| read_segment(&dir.join(n)))
        .collect()
}

/// The file names of the committed segments in `dir`, sorted (none when the folder
/// does not exist).
fn segment_names(dir: &Path) -> Result<Vec<String>, LakeError> {
    let mut names = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for e in entries {
                let e = e.map_err(LakeError::io(dir))?;
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".jsonl") && !name.starts_with('.') {
                    names.push(name);
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(LakeError::Io {
                path: dir.to_path_buf(),
                source: e,
            });
        }
    }
    names.sort();
    Ok(names)
}

/// Every committed segment's header (its first line only: what the lake's table is
/// made of, without the input objects), in name order, with the segment's file name.
pub fn read_headers(root: &Path) -> Result<Vec<(String, SegmentHeader)>, LakeError> {
    use std::io::BufRead;
    let dir = ledger_dir(root);
    let names = segment_names(&dir)?;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let path = dir.join(&name);
        let file = std::fs::File::open(&path).map_err(LakeError::io(&path))?;
        let mut line = String::new();
        std::io::BufReader::new(file)
            .read_line(&mut line)
            .map_err(LakeError::io(&path))?;
        let header = serde_json::from_str(&line).map_err(|e| LakeError::Ledger {
            path: path.clone(),
            message: format!("line 1: {e}"),
        })?;
        out.push((name, header));
    }
    Ok(out)
}

fn read_segment(path: &Path) -> Result<Segment, LakeError> {
    let text = std::fs::read_to_string(path).map_err(LakeError::io(path))?;
    parse_segment(&text, path)
}

/// The file name of a segment (`<run>-<seq>.jsonl`).
pub fn segment_name(header: &SegmentHeader) -> String {
    format!("{}-{:06}.jsonl", header.run, header.seq)
}

/// Parses a segment's text; `path` names it in errors.
pub fn parse_segment(text: &str, path: &Path) -> Result<Segment, LakeError> {
    let mut lines = text.lines().enumerate();
    let bad = |line: usize, e: serde_json::Error| LakeError::Ledger {
        path: path.to_path_buf(),
        message: format!("line {}: {e}", line + 1),
    };
    let header: SegmentHeader = match lines.next() {
        Some((i, l)) => serde_json::from_str(l).map_err(|e| bad(i, e))?,
        None => {
            return Err(LakeError::Ledger {
                path: path.to_path_buf(),
                message: "empty segment".into(),
            });
        }
    };
    let objects = lines
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| bad(i, e)))
        .collect::<Result<Vec<ObjectEntry>, _>>()?;
    Ok(Segment { header, objects })
}

/// Ledger entries serialised as they arrive, one JSON line each, so that a commit only
/// writes bytes (an ingest makes one entry per input object: tens of thousands).
#[derive(Debug, Default)]
pub struct EntryLines {
    bytes: Vec<u8>,
    count: usize,
}

impl EntryLines {
    /// Appends one entry: the line `serde_json` writes for it (the same fields in the
    /// same order, the same escapes; a test holds the two equal), written by hand
    /// because serde's generic path cost more than the rest of the writer's work on
    /// each object.
    pub fn push(&mut self, entry: &ObjectEntry) -> Result<(), LakeError> {
        let out = &mut self.bytes;
        let text = |out: &mut Vec<u8>, name: &[u8], value: &str| -> Result<(), LakeError> {
            out.extend_from_slice(name);
            push_json_str(out, value).map_err(|e| LakeError::Ledger {
                path: PathBuf::from(&entry.key),
                message: format!("cannot serialise the entry: {e}"),
            })
        };
        let number = |out: &mut Vec<u8>, name: &[u8], value: u64| {
            out.extend_from_slice(name);
            out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        };
        text(out, b"{\"key\":", &entry.key)?;
        number(out, b",\"size\":", entry.size);
        text(out, b",\"version\":", &entry.version)?;
        text(out, b",\"status\":", entry.status.as_str())?;
        if let Some(reason) = &entry.reason {
            text(out, b",\"reason\":", reason)?;
        }
        number(out, b",\"records\":", entry.records);
        number(out, b",\"kept\":", entry.kept);
        if entry.bad_records != 0 {
            number(out, b",\"bad_records\":", entry.bad_records);
        }
        if entry.duplicates != 0 {
            number(out, b",\"duplicates\":", entry.duplicates);
        }
        if let Some(first) = &entry.first_event {
            text(out, b",\"first_event\":", first)?;
        }
        if let Some(last) = &entry.last_event {
            text(out, b",\"last_event\":", last)?;
        }
        if !entry.ids.is_empty() {
            for (i, id) in entry.ids.iter().enumerate() {
                text(out, if i == 0 { b",\"ids\":[" } else { b"," }, id)?;
            }
            out.push(b']');
        }
        out.extend_from_slice(b"}\n");
        self.count += 1;
        Ok(())
    }

    /// The lines of `entries`.
    pub fn of(entries: &[ObjectEntry]) -> Result<Self, LakeError> {
        let mut out = Self::default();
        for e in entries {
            out.push(e)?;
        }
        Ok(out)
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// Appends `value` as a JSON string: verbatim between quotes when nothing in it needs an
/// escape (keys, versions and times never do), else as `serde_json` escapes it.
fn push_json_str(out: &mut Vec<u8>, value: &str) -> serde_json::Result<()> {
    if value.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(out, value)
    }
}

/// Writes a segment atomically (temporary file, fsync, rename, fsync of the folder).
pub(crate) fn write_segment(
    root: &Path,
    header: &SegmentHeader,
    objects: &EntryLines,
) -> Result<PathBuf, LakeError> {
    let dir = ledger_dir(root);
    let name = segment_name(header);
    let tmp = dir.join(format!(".tmp-{name}"));
    let fin = dir.join(&name);
    // The header line, then the entries' lines as they are (not copied into one
    // buffer first: a segment of a large ingest holds megabytes of them).
    let head = header_line(header, &fin)?;
    let mut f = std::fs::File::create(&tmp).map_err(LakeError::io(&tmp))?;
    f.write_all(&head)
        .and_then(|()| f.write_all(&objects.bytes))
        .map_err(LakeError::io(&tmp))?;
    f.sync_all().map_err(LakeError::io(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, &fin).map_err(LakeError::io(&fin))?;
    sync_dir(&dir)?;
    Ok(fin)
}

/// The first line of a segment (with its line break); `name` names it in errors.
fn header_line(header: &SegmentHeader, name: &Path) -> Result<Vec<u8>, LakeError> {
    let mut buf = serde_json::to_vec(header).map_err(|e| LakeError::Ledger {
        path: name.to_path_buf(),
        message: e.to_string(),
    })?;
    buf.push(b'\n');
    Ok(buf)
}

/// A segment as JSON lines: the header, then one object per line.
pub(crate) fn segment_bytes(
    header: &SegmentHeader,
    objects: &EntryLines,
    name: &Path,
) -> Result<Vec<u8>, LakeError> {
    let mut buf = header_line(header, name)?;
    buf.extend_from_slice(&objects.bytes);
    Ok(buf)
}

/// fsync a folder so that renames into it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LakeError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(LakeError::io(dir))
}

/// What the ledger says about objects already seen: key → (size, version); and the
/// time slices read from API sources (`source::slices`).
#[derive(Debug, Default)]
pub struct LedgerIndex {
    seen: HashMap<String, (u64, String)>,
    /// (key, version, ids) of each slice entry, in ledger order.
    slices: Vec<(String, String, Vec<String>)>,
    pub segments: u64,
}

impl LedgerIndex {
    pub fn from_segments(segments: &[Segment]) -> Self {
        let mut idx = LedgerIndex::default();
        for s in segments {
            idx.segments += 1;
            for o in &s.objects {
                idx.seen.insert(o.key.clone(), (o.size, o.version.clone()));
                if o.status == Status::Ingested
                    && crate::source::slices::slice_source(&o.key).is_some()
                {
                    idx.note_slice(&o.key, &o.version, o.ids.clone());
                }
            }
        }
        idx
    }

    /// Notes a slice read from an API source.
    pub fn note_slice(&mut self, key: &str, version: &str, ids: Vec<String>) {
        self.slices
            .push((key.to_string(), version.to_string(), ids));
    }

    /// The slices read from `source` (`logs:<group>`, `event-history:<region>`):
    /// key, version and the ids of their unsettled tails.
    pub fn slices<'a>(
        &'a self,
        source: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str, &'a [String])> + 'a {
        self.slices
            .iter()
            .filter(move |(k, _, _)| crate::source::slices::slice_source(k) == Some(source))
            .map(|(k, v, ids)| (k.as_str(), v.as_str(), ids.as_slice()))
    }

    /// Whether the ledger has any version of the object.
    pub fn has_key(&self, key: &str) -> bool {
        self.seen.contains_key(key)
    }

    /// Whether this exact version of the object is already in the ledger.
    pub fn contains(&self, key: &str, size: u64, version: &str) -> bool {
        self.seen
            .get(key)
            .is_some_and(|(s, v)| *s == size && v == version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str) -> ObjectEntry {
        ObjectEntry {
            key: key.into(),
            size: 10,
            version: "mtime:1".into(),
            status: Status::Ingested,
            reason: None,
            account: None,
            region: None,
            day: None,
            records: 3,
            kept: 1,
            bad_records: 0,
            duplicates: 2,
            first_event: None,
            last_event: None,
            ids: Vec::new(),
        }
    }

    #[test]
    fn lines_leave_out_what_the_key_says_and_reading_restores_it() {
        let log = "o/AWSLogs/123456789012/CloudTrail/eu-west-1/2026/09/07/123456789012_CloudTrail_eu-west-1_20260907T0010Z_ab.json.gz";
        let mut a = entry(log);
        a.fill_from_key();
        let b = entry("o/AWSLogs/123456789012/CloudTrail-Digest/eu-west-1/2026/09/07/x.json.gz");
        let lines = EntryLines::of(&[a.clone(), b.clone()]).unwrap_or_default();
        let text = String::from_utf8_lossy(&lines.bytes).into_owned();
        assert!(
            !text.contains("\"account\"") && !text.contains("\"day\""),
            "{text}"
        );
        assert!(
            !text.contains("bad_records") && text.contains("\"duplicates\":2"),
            "{text}"
        );
        let header = r#"{"format":1,"run":"r","seq":1,"committed_at":"t","files":[]}"#;
        let seg = parse_segment(&format!("{header}\n{text}"), Path::new("s.jsonl"));
        let mut objects = seg.map(|s| s.objects).unwrap_or_default();
        assert_eq!(objects[0].account, None);
        objects.iter_mut().for_each(ObjectEntry::fill_from_key);
        assert_eq!(objects, vec![a.clone(), b]);
        assert_eq!(objects[0].account.as_deref(), Some("123456789012"));
        assert_eq!(objects[0].region.as_deref(), Some("eu-west-1"));
        assert_eq!(objects[0].day.as_deref(), Some("2026-09-07"));
        assert_eq!(objects[1].account, None);
        // A line of an earlier version, with the fields written out, reads the same.
        let old = format!(
            r#"{{"key":"{log}","size":10,"version":"mtime:1","status":"ingested","account":"123456789012","region":"eu-west-1","day":"2026-09-07","records":3,"kept":1,"bad_records":0,"duplicates":2}}"#
        );
        let seg = parse_segment(&format!("{header}\n{old}\n"), Path::new("s.jsonl"));
        assert_eq!(seg.map(|s| s.objects).unwrap_or_default(), vec![a]);
    }

    /// The hand-written line is byte for byte the line serde writes, for every shape
    /// of entry: optional fields present or not, zero and large counts, text that
    /// needs escapes (quotes, backslashes, control characters) and text beyond ASCII.
    #[test]
    fn lines_are_the_lines_serde_writes() -> Result<(), Box<dyn std::error::Error>> {
        let texts = [
            "",
            "plain/key.json.gz",
            "quote \" and back\\slash",
            "tab\tnew\nline\u{1}\u{1f}",
            "caf\u{e9} \u{2603} \u{1F600}",
            "del \u{7f} ok",
        ];
        let statuses = [Status::Ingested, Status::SkippedNotALog, Status::Rejected];
        let mut n = 0u64;
        for (i, key) in texts.iter().enumerate() {
            for (j, other) in texts.iter().enumerate() {
                n += 1;
                let some = |k: usize| k.is_multiple_of(2).then(|| other.to_string());
                let e = ObjectEntry {
                    key: key.to_string(),
                    size: [0, 1, u64::MAX][j % 3],
                    version: other.to_string(),
                    status: statuses[(i + j) % 3],
                    reason: some(i + j),
                    account: Some("123456789012".into()),
                    region: None,
                    day: None,
                    records: n * 1_000_003,
                    kept: [0, 7][i % 2],
                    bad_records: [0, 3, u64::MAX][(i + 2 * j) % 3],
                    duplicates: [0, 12][j % 2],
                    first_event: some(i),
                    last_event: some(j + 1),
                    ids: match j % 3 {
                        0 => Vec::new(),
                        1 => vec![other.to_string()],
                        _ => vec![key.to_string(), other.to_string()],
                    },
                };
                let mut want = serde_json::to_vec(&e)?;
                want.push(b'\n');
                let mut got = EntryLines::default();
                got.push(&e)?;
                assert_eq!(
                    String::from_utf8_lossy(&got.bytes),
                    String::from_utf8_lossy(&want)
                );
            }
        }
        Ok(())
    }
}
