//! Sources of input objects: where log files come from and what their keys say.
//!
//! A source lists objects (key, size, version) and reads their bytes. The key alone
//! tells whether an object is a CloudTrail log file, a digest/insight/aggregated
//! sibling, or something else, and gives its account, region and delivery date, which
//! is what pruning by `--accounts/--regions/--from/--to` uses before any byte is read.

pub mod event_history;
pub mod local;
pub mod log_group;
pub mod s3;
pub mod slices;

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::NaiveDate;
use serde::Serialize;

use crate::error::SourceError;

/// Where input objects come from. Implementations list every object once (sorted by
/// key) and read one object's bytes whole; a failed read is that object's problem only.
pub trait Source: Sync {
    /// A name for messages (`/path/to/folder`, `s3://bucket/prefix`).
    fn describe(&self) -> String;
    /// Every object, sorted by key.
    fn list(&self) -> Result<Vec<Object>, SourceError>;
    /// Every object, sorted by key, handed to `sink` in batches as the listing goes
    /// (so that reading can start before the listing ends, and the whole listing is
    /// never held); `sink` returns `false` to stop early. Default: [`Source::list`] as
    /// one batch.
    fn list_each(&self, sink: &mut dyn FnMut(Vec<Object>) -> bool) -> Result<(), SourceError> {
        sink(self.list()?);
        Ok(())
    }
    /// [`Source::list_each`], but the source may leave an object's `size` and
    /// `version` to be learnt when it is read (`stat_deferred`): a local folder so saves
    /// a `stat` per file, a good part of the listing's cost. [`Source::fetch`] and
    /// [`Source::stat`] give them. Default: [`Source::list_each`].
    fn list_each_deferred(
        &self,
        sink: &mut dyn FnMut(Vec<Object>) -> bool,
    ) -> Result<(), SourceError> {
        self.list_each(sink)
    }
    /// The bytes of one object.
    fn read(&self, object: &Object) -> Result<Vec<u8>, String>;
    /// Reads an object for ingest. For an object listed with `stat_deferred`, its size
    /// and version come with it (read from the open file), and an object larger than
    /// `max_bytes` is not read (`bytes: None`). Default: [`Source::read`].
    fn fetch(&self, object: &Object, _max_bytes: u64) -> Result<Fetched, String> {
        self.read(object).map(|bytes| Fetched {
            body: Body::Bytes(bytes),
            stat: None,
            ids: Vec::new(),
        })
    }
    /// The size and version of an object listed with `stat_deferred`. Default: the
    /// listing's.
    fn stat(&self, object: &Object) -> Result<(u64, String), String> {
        Ok((object.size, object.version.clone()))
    }
    /// Announces the objects that will be read, in this order: a remote source starts
    /// downloading ahead (bounded), so network and parsing overlap. Local: nothing.
    fn prefetch(&self, _objects: &mut dyn Iterator<Item = &Object>) {}
    /// A body for `object` that its parser opens and reads itself, on its own thread,
    /// with nothing done ahead ([`Body::Path`]): the cheapest way to read a local file
    /// that is in the page cache. `None` (the default): the object must be fetched.
    fn defer(&self, _object: &Object) -> Option<Body> {
        None
    }
    /// The requests a remote source made, for the summary. Local: none.
    fn requests(&self) -> Option<Requests> {
        None
    }
    /// One user metadata value of an object (S3 `x-amz-meta-<name>`); a folder has none.
    fn metadata(&self, _object: &Object, _name: &str) -> Result<Option<String>, String> {
        Ok(None)
    }
    /// Called once, before the listing, with the lake's ledger: an API source plans
    /// what to read from what earlier runs read ([`slices`]) and returns the ids of
    /// events already in the lake that it will read again (its overlap), which the
    /// run's dedup then drops. Files: nothing.
    fn resume(
        &self,
        _ledger: &crate::lake::ledger::LedgerIndex,
    ) -> Result<Vec<String>, SourceError> {
        Ok(Vec::new())
    }
}

/// The requests an S3 source made in a run (the ingest summary's `requests`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Requests {
    pub lists: u64,
    pub gets: u64,
    /// Attempts answered with throttling (503 SlowDown and kin), retried.
    pub throttled: u64,
    /// The most requests in flight at once.
    pub peak_in_flight: u64,
    /// How many the concurrency controller allowed at the end, and its cuts.
    pub final_limit: u64,
    pub limit_cuts: u64,
}

/// Every object of `source`, sorted, collected from [`Source::list_each`] (the
/// `list` of sources that stream their listing).
pub(crate) fn collect_listing(source: &dyn Source) -> Result<Vec<Object>, SourceError> {
    let mut all = Vec::new();
    source.list_each(&mut |batch| {
        all.extend(batch);
        true
    })?;
    Ok(all)
}

/// One input object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// Key relative to the source root, `/`-separated (lossy for non-UTF-8 names).
    pub key: String,
    pub size: u64,
    /// What changes when the object changes: an mtime (local) or an ETag (S3).
    pub version: String,
    /// Why the object cannot even be named faithfully (e.g. a non-UTF-8 file name).
    pub unreadable_name: Option<String>,
    /// `size` (0) and `version` (empty) are not known yet: see
    /// [`Source::list_each_deferred`].
    pub stat_deferred: bool,
}

/// What [`Source::fetch`] got.
#[derive(Debug)]
pub struct Fetched {
    pub body: Body,
    /// Size and version, for an object listed without them (or known only once read:
    /// an API slice's settled instant).
    pub stat: Option<(u64, String)>,
    /// Event ids the ledger entry keeps (an API slice's unsettled tail).
    pub ids: Vec<String>,
}

/// An object's content as [`Source::fetch`] hands it over.
#[derive(Debug)]
pub enum Body {
    /// The bytes, read (a remote object).
    Bytes(Vec<u8>),
    /// A local file, opened and its read-ahead started: the parser reads it into a
    /// buffer of its own, on its own thread (a copy from the page cache is cheaper
    /// there than a buffer allocated on a reader thread and handed over).
    File {
        file: std::fs::File,
        /// Its size when opened (the buffer is sized for it).
        size: u64,
        /// Read what the page cache holds first, without waiting for the disk, and
        /// count the read as cold when that was not the whole file (see
        /// [`Body::read_into`]).
        probe: bool,
    },
    /// A local file not opened yet ([`Source::defer`]): [`Body::open`] opens it on the
    /// parser's thread.
    Path(local::Deferred),
    /// Larger than the limit: not read.
    TooLarge,
}

impl Body {
    /// The bytes this body holds or will hold once read (a file's size when opened).
    pub fn size(&self) -> u64 {
        match self {
            Body::Bytes(b) => b.len() as u64,
            Body::File { size, .. } => *size,
            Body::Path(_) | Body::TooLarge => 0,
        }
    }

    /// Opens a [`Body::Path`]: the file, ready to be read with a probe of the page
    /// cache, or `TooLarge`, with its size and version. Other bodies are returned as
    /// they are, without them.
    pub fn open(self, max_bytes: u64) -> Result<(Body, Option<(u64, String)>), String> {
        match self {
            Body::Path(deferred) => {
                let (body, stat) = deferred.open(max_bytes)?;
                Ok((body, Some(stat)))
            }
            other => Ok((other, None)),
        }
    }

    /// The whole content: the bytes, or the file read to its end into `buf` (whose
    /// length may end up larger than the content: the slice returned is the content).
    /// A file opened with `probe` is counted in `stats`. `Ok(None)`: too large, not
    /// read. A `Path` must be opened first.
    pub fn read_into<'b>(
        &'b self,
        buf: &'b mut Vec<u8>,
        stats: &ProbeStats,
    ) -> std::io::Result<Option<&'b [u8]>> {
        match self {
            Body::Bytes(b) => Ok(Some(b)),
            Body::File {
                file,
                size,
                probe: false,
            } => {
                read_file_into(file, *size, buf)?;
                Ok(Some(buf.as_slice()))
            }
            Body::File {
                file,
                size,
                probe: true,
            } => {
                let (n, cached) = local::read_probing(file, *size, buf)?;
                stats.probed.fetch_add(1, Ordering::Relaxed);
                if !cached {
                    stats.cold.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Some(&buf[..n]))
            }
            Body::Path(deferred) => Err(std::io::Error::other(format!(
                "{} was not opened before it was read",
                deferred.path().display()
            ))),
            Body::TooLarge => Ok(None),
        }
    }
}

/// Reads of files opened with `probe`: how many, and how many found some of the file
/// missing from the page cache (they waited for the disk).
#[derive(Debug, Default)]
pub struct ProbeStats {
    pub probed: AtomicU64,
    pub cold: AtomicU64,
}

/// Reads `file` to its end into `buf` (cleared first), reserving room for `size` bytes
/// (a file that grew since its size was taken is still read whole).
pub fn read_file_into(
    mut file: &std::fs::File,
    size: u64,
    buf: &mut Vec<u8>,
) -> std::io::Result<()> {
    use std::io::Read;
    buf.clear();
    buf.reserve(usize::try_from(size).unwrap_or(0).saturating_add(1));
    file.read_to_end(buf)?;
    Ok(())
}

/// What a key says about its object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClass {
    /// A CloudTrail log file in the standard layout.
    Log(LogKey),
    /// A log-like file outside the standard layout (`*.json.gz`, `*.json`, `*.jsonl`,
    /// `*.gz`): read, but it cannot be pruned by key; content that is no log is
    /// rejected.
    LooseLog,
    /// Any other file outside the standard layout: read, its content says what it is
    /// (SPEC §10); content of none of the known shapes is skipped, not rejected.
    Content,
    /// Not an event log: the reason (digest, insight, aggregated, other file).
    NotLog(&'static str),
}

/// One of `n` disjoint parts of an archive's key space (`ingest --shard K/N`).
///
/// Log files are assigned by account × region × delivery day, every other object by
/// its whole key, through a fixed hash (FNV-1a 64): the split depends only on the keys,
/// so N machines listing the same archive take every object exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based index of this shard.
    pub k: u32,
    pub n: u32,
}

impl Shard {
    /// Parses `K/N` (1 ≤ K ≤ N).
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (k, n) = text
            .split_once('/')
            .ok_or_else(|| format!("shard `{text}`: expected K/N, e.g. 2/8"))?;
        let k: u32 = k
            .trim()
            .parse()
            .map_err(|_| format!("shard `{text}`: K is not a number"))?;
        let n: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("shard `{text}`: N is not a number"))?;
        if n == 0 || k == 0 || k > n {
            return Err(format!("shard `{text}`: need 1 <= K <= N"));
        }
        Ok(Shard { k, n })
    }

    /// The tag carried by this shard's file and ledger names (`s2of8`).
    pub fn tag(&self) -> String {
        format!("s{}of{}", self.k, self.n)
    }

    /// Whether this shard takes the object at `key`.
    pub fn owns(&self, key: &str, class: &KeyClass) -> bool {
        let h = match class {
            KeyClass::Log(k) => {
                let mut h = fnv1a(FNV_OFFSET, k.account.as_bytes());
                h = fnv1a(h, b"/");
                h = fnv1a(h, k.region.as_bytes());
                fnv1a(h, k.date.format("/%Y/%m/%d").to_string().as_bytes())
            }
            _ => fnv1a(FNV_OFFSET, key.as_bytes()),
        };
        h % u64::from(self.n) == u64::from(self.k - 1)
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The parts of a standard CloudTrail log key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogKey {
    pub org: Option<String>,
    pub account: String,
    pub region: String,
    /// The delivery date (the folder date): events may be of earlier days.
    pub date: NaiveDate,
}

/// File names of verification material that `generate` writes beside `AWSLogs/`
/// (the `list-public-keys` JSON and the digest signatures): not logs.
const KEY_MATERIAL: [&str; 2] = ["public-keys.json", "digest-signatures.json"];

fn is_log_file_name(name: &str) -> bool {
    [".json.gz", ".json", ".jsonl", ".jsonl.gz", ".gz"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// Which way an event reached the lake: the lake's `source_kind` (SPEC §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// A CloudTrail log file (what `verify` can prove).
    Trail,
    /// A CloudWatch Logs export (`create-export-task`).
    LogExport,
    /// EventBridge events delivered to S3 (Firehose, archives).
    #[serde(rename = "eventbridge")]
    EventBridge,
    /// The log group itself (`logs:<group>`, or `filter-log-events` output).
    LogGroup,
    /// Event History (`event-history:<region>`, `lookup-events` output, console
    /// downloads).
    EventHistory,
}

impl SourceKind {
    pub const ALL: [SourceKind; 5] = [
        SourceKind::Trail,
        SourceKind::LogExport,
        SourceKind::EventBridge,
        SourceKind::LogGroup,
        SourceKind::EventHistory,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Trail => "trail",
            SourceKind::LogExport => "log-export",
            SourceKind::EventBridge => "eventbridge",
            SourceKind::LogGroup => "log-group",
            SourceKind::EventHistory => "event-history",
        }
    }

    /// The kind of a file of `format` at `key` (`enveloped`: framed `{"Records":[…]}`).
    /// CloudTrail's own shapes are a trail's file, except `{"Records":[…]}` outside the
    /// trail's key layout and file naming: that is the console's download of Event
    /// History.
    /// `in_layout`: the key is in the trail's key layout.
    pub fn of(
        format: crate::record::envelope::Format,
        enveloped: bool,
        key: &str,
        in_layout: bool,
    ) -> Self {
        use crate::record::envelope::Format;
        match format {
            Format::Records => {
                let name = key.rsplit('/').next().unwrap_or("");
                if !enveloped || in_layout || name.contains("_CloudTrail_") {
                    SourceKind::Trail
                } else {
                    SourceKind::EventHistory
                }
            }
            Format::LogExport => SourceKind::LogExport,
            Format::EventBridge => SourceKind::EventBridge,
            Format::LogEvents => SourceKind::LogGroup,
            Format::LookupEvents => SourceKind::EventHistory,
        }
    }
}

/// The segments of a key after `AWSLogs/` and the organization id (`o-…`) when the
/// trail is an organization trail; `None` when the key has no `AWSLogs` segment.
pub fn awslogs_parts(key: &str) -> Option<(Option<&str>, Vec<&str>)> {
    let parts: Vec<&str> = key.split('/').collect();
    let at = parts.iter().rposition(|p| *p == "AWSLogs")?;
    let rest = &parts[at + 1..];
    match rest.first() {
        Some(p) if p.starts_with("o-") => Some((Some(*p), rest[1..].to_vec())),
        _ => Some((None, rest.to_vec())),
    }
}

/// Classifies a key of the form
/// `[prefix/]AWSLogs/[o-orgid/]<account>/CloudTrail/<region>/YYYY/MM/DD/<file>`.
pub fn classify_key(key: &str) -> KeyClass {
    let file = key.rsplit('/').next().unwrap_or("");
    let Some((org, rest)) = awslogs_parts(key) else {
        return if KEY_MATERIAL.contains(&file) {
            KeyClass::NotLog("public keys or signatures for verify")
        } else if is_log_file_name(file) {
            KeyClass::LooseLog
        } else {
            KeyClass::Content
        };
    };
    let org = org.map(str::to_string);
    // account / service / region / YYYY / MM / DD / file
    if rest.len() != 7 {
        return match rest.get(1) {
            Some(s) if s.starts_with("CloudTrail-") => sibling(s),
            _ => KeyClass::NotLog("not in the CloudTrail key layout"),
        };
    }
    let (account, service, region) = (rest[0], rest[1], rest[2]);
    if service != "CloudTrail" {
        return sibling(service);
    }
    if !is_log_file_name(file) {
        return KeyClass::NotLog("not a log file name");
    }
    let date = match (rest[3].parse(), rest[4].parse(), rest[5].parse()) {
        (Ok(y), Ok(m), Ok(d)) => NaiveDate::from_ymd_opt(y, m, d),
        _ => None,
    };
    match date {
        Some(date) if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) => {
            KeyClass::Log(LogKey {
                org,
                account: account.to_string(),
                region: region.to_string(),
                date,
            })
        }
        _ => KeyClass::NotLog("not in the CloudTrail key layout"),
    }
}

fn sibling(service: &str) -> KeyClass {
    match service {
        "CloudTrail-Digest" => KeyClass::NotLog("digest file"),
        "CloudTrail-Insight" => KeyClass::NotLog("insight file"),
        "CloudTrail-Aggregated" => KeyClass::NotLog("aggregated file"),
        _ => KeyClass::NotLog("not a CloudTrail event log"),
    }
}

/// The delivery minute in a log file's name
/// (`<account>_CloudTrail_<region>_YYYYMMDDTHHMMZ_<unique>.json.gz`).
pub fn delivery_stamp(key: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let name = key.rsplit('/').next()?;
    let stamp = name.split('_').nth(3)?;
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%MZ")
        .ok()
        .map(|t| t.and_utc())
}

/// Key-based pruning (`--accounts`, `--regions`, `--from`, `--to`).
#[derive(Debug, Clone, Default)]
pub struct Prune {
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    /// First day of events wanted (inclusive).
    pub from: Option<NaiveDate>,
    /// Day after the last day wanted (exclusive).
    pub to: Option<NaiveDate>,
}

impl Prune {
    /// Whether a log key may hold wanted events. A file delivered on day D holds events
    /// of D or earlier, so files delivered up to one day after the range are read
    /// (late delivery slack); files delivered before `from` are not.
    pub fn keeps(&self, key: &LogKey) -> bool {
        if !self.accounts.is_empty() && !self.accounts.contains(&key.account) {
            return false;
        }
        if !self.regions.is_empty() && !self.regions.contains(&key.region) {
            return false;
        }
        if let Some(from) = self.from
            && key.date < from
        {
            return false;
        }
        if let Some(to) = self.to
            && key.date > to
        {
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn shards_partition_the_key_space() {
        assert!(Shard::parse("0/3").is_err());
        assert!(Shard::parse("4/3").is_err());
        assert!(Shard::parse("x/3").is_err());
        assert_eq!(Shard::parse("2/3"), Ok(Shard { k: 2, n: 3 }));
        let shards: Vec<Shard> = (1..=3).map(|k| Shard { k, n: 3 }).collect();
        let mut per_shard = [0u32; 3];
        for acct in ["111111111111", "222222222222"] {
            for day in 1..=28 {
                // Two files of one account × region × day always go to one shard.
                let keys = [1, 2].map(|i| {
                    format!(
                        "AWSLogs/{acct}/CloudTrail/eu-west-1/2026/02/{day:02}/{acct}_CloudTrail_eu-west-1_2026020{i}T0000Z_x{i}.json.gz"
                    )
                });
                let owners: Vec<Vec<usize>> = keys
                    .iter()
                    .map(|key| {
                        let class = classify_key(key);
                        (0..3).filter(|&i| shards[i].owns(key, &class)).collect()
                    })
                    .collect();
                assert_eq!(owners[0].len(), 1, "exactly one owner for {}", keys[0]);
                assert_eq!(owners[0], owners[1]);
                per_shard[owners[0][0]] += 1;
            }
        }
        // 56 account-days spread over all three shards.
        assert!(per_shard.iter().all(|&c| c >= 8), "{per_shard:?}");
        let loose = "exports/odd.json.gz";
        let class = classify_key(loose);
        assert_eq!(shards.iter().filter(|s| s.owns(loose, &class)).count(), 1);
    }

    #[test]
    fn keys() {
        let k = "x/y/AWSLogs/111122223333/CloudTrail/eu-west-1/2026/10/01/111122223333_CloudTrail_eu-west-1_20261001T0000Z_abc.json.gz";
        assert_eq!(
            classify_key(k),
            KeyClass::Log(LogKey {
                org: None,
                account: "111122223333".into(),
                region: "eu-west-1".into(),
                date: d("2026-10-01")
            })
        );
        let org = "AWSLogs/o-abc123/111122223333/CloudTrail/us-east-1/2026/10/02/f.json.gz";
        assert!(matches!(
            classify_key(org),
            KeyClass::Log(LogKey { org: Some(_), .. })
        ));
        let dig = "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/10/02/f.json.gz";
        assert_eq!(classify_key(dig), KeyClass::NotLog("digest file"));
        let ins = "AWSLogs/111122223333/CloudTrail-Insight/us-east-1/2026/10/02/f.json.gz";
        assert_eq!(classify_key(ins), KeyClass::NotLog("insight file"));
        assert_eq!(classify_key("readme.txt"), KeyClass::Content);
        assert_eq!(
            classify_key("exports/aws-logs-write-test"),
            KeyClass::Content
        );
        assert_eq!(classify_key("loose/file.json.gz"), KeyClass::LooseLog);
        assert_eq!(classify_key("exports/t/s/000000.gz"), KeyClass::LooseLog);
        let bad_date = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/13/02/f.json.gz";
        assert!(matches!(classify_key(bad_date), KeyClass::NotLog(_)));
    }

    #[test]
    fn delivery_stamps() {
        let k = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/10/01/111122223333_CloudTrail_us-east-1_20261001T0905Z_AbC.json.gz";
        assert_eq!(
            delivery_stamp(k).map(|t| t.to_rfc3339()),
            Some("2026-10-01T09:05:00+00:00".to_string())
        );
        assert_eq!(delivery_stamp("AWSLogs/x/y.json.gz"), None);
        assert_eq!(
            classify_key("public-keys.json"),
            KeyClass::NotLog("public keys or signatures for verify")
        );
    }

    #[test]
    fn pruning_has_one_day_of_slack() {
        let p = Prune {
            from: Some(d("2026-10-05")),
            to: Some(d("2026-10-10")),
            ..Prune::default()
        };
        let key = |date: &str| LogKey {
            org: None,
            account: "111122223333".into(),
            region: "eu-west-1".into(),
            date: d(date),
        };
        assert!(!p.keeps(&key("2026-10-04")));
        assert!(p.keeps(&key("2026-10-05")));
        assert!(p.keeps(&key("2026-10-10")));
        assert!(!p.keeps(&key("2026-10-11")));
        let acc = Prune {
            accounts: vec!["999999999999".into()],
            ..Prune::default()
        };
        assert!(!acc.keeps(&key("2026-10-05")));
    }
}
