//! `verify`: offline integrity validation of a trail from its digest files (SPEC §2, §7).
//!
//! What is checked, per trail (account × region × trail name × home region):
//! - the chain: each digest's `previousDigestS3Object` is the digest before it and its
//!   `previousDigestHashValue` is the SHA-256 of that digest's uncompressed bytes; a
//!   digest named by its successor but absent is *missing*, one whose bytes do not hash
//!   to what its successor recorded is *altered*, one whose `digestS3Object` is not
//!   where it lies is *moved*; a new chain start after an earlier digest is a *gap*
//!   (logging or validation was off);
//! - signatures, when public keys are supplied: SHA256withRSA over the string to sign,
//!   with the signature from the successor's `previousDigestSignature`, from S3 object
//!   metadata (`x-amz-meta-signature`) or from a `digest-signatures.json` sidecar (what
//!   `generate` writes for a folder, which cannot hold metadata); every available copy
//!   is checked;
//! - log files: each listed file's SHA-256 (uncompressed) against the digest; a listed
//!   file absent from its key is *missing*, or *moved* when a file of the same name lies
//!   elsewhere; a log file inside the period the digests cover but listed by none is
//!   *unlisted*.
//!
//! Invariants: every digest and log file in scope ends up in the report, as verified or
//! as a finding that names it; nothing is held but the digests' metadata and one
//! decompressed file per thread.

pub mod digest;
pub mod keys;

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::error::VerifyError;
use crate::record::gunzip::{DEFAULT_MAX_DECOMPRESSED, Gunzip, is_gzip};
use crate::source::{KeyClass, Object, Source, classify_key, delivery_stamp};
use digest::{DigestFile, DigestKey, string_to_sign, tail};
use keys::PublicKeys;

/// The name of the sidecar file holding digest signatures for a folder archive: a JSON
/// object from digest key to hex signature (what S3 keeps as object metadata).
pub const SIGNATURES_FILE: &str = "digest-signatures.json";
/// The name under which `generate` writes the `list-public-keys` JSON of its key.
pub const PUBLIC_KEYS_FILE: &str = "public-keys.json";

/// What to verify and with which keys.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    /// Digests whose period ends after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Digests whose period starts before this instant.
    pub to: Option<DateTime<Utc>>,
    /// Public keys; when empty, signatures are not checked.
    pub keys: PublicKeys,
    /// Digest signatures by key tail (from `AWSLogs/`), e.g. from a sidecar file;
    /// when empty, a `digest-signatures.json` in the source is used if present.
    pub signatures: HashMap<String, String>,
    /// Worker threads (0 = all cores).
    pub threads: usize,
}

/// How bad a finding is: `fail` breaks the verdict, `warn` is for the reader to judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Fail,
    Warn,
}

/// What is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Problem {
    /// A listed log file is not in the source.
    MissingLog,
    /// A log file's SHA-256 differs from its digest's.
    AlteredLog,
    /// A listed log file lies at another key.
    MovedLog,
    /// A log file inside the covered period that no digest lists.
    UnlistedLog,
    /// A listed log file that cannot be read or decompressed.
    UnreadableLog,
    /// A digest named by its successor is not in the source.
    MissingDigest,
    /// A digest's bytes do not hash to what its successor recorded.
    AlteredDigest,
    /// A digest whose own `digestS3Object`/account is not where it lies.
    MovedDigest,
    /// A digest that cannot be read, decompressed or parsed.
    UnreadableDigest,
    /// A signature that does not verify.
    BadSignature,
    /// A digest signed by a key that is not among the supplied public keys.
    UnknownKey,
    /// The newest digest's signature is not available (only in S3 metadata).
    Unsigned,
    /// A period no digest covers (a chain restarts).
    Gap,
    /// Log files of an account × region that has no digest at all.
    NoDigests,
}

impl Problem {
    /// The kebab-case name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Problem::MissingLog => "missing-log",
            Problem::AlteredLog => "altered-log",
            Problem::MovedLog => "moved-log",
            Problem::UnlistedLog => "unlisted-log",
            Problem::UnreadableLog => "unreadable-log",
            Problem::MissingDigest => "missing-digest",
            Problem::AlteredDigest => "altered-digest",
            Problem::MovedDigest => "moved-digest",
            Problem::UnreadableDigest => "unreadable-digest",
            Problem::BadSignature => "bad-signature",
            Problem::UnknownKey => "unknown-key",
            Problem::Unsigned => "unsigned",
            Problem::Gap => "gap",
            Problem::NoDigests => "no-digests",
        }
    }
}

/// One problem, naming the object at fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub problem: Problem,
    pub account: String,
    pub region: String,
    pub trail: Option<String>,
    /// The key of the object at fault (as the source or the digest names it).
    pub object: String,
    pub detail: String,
}

/// One trail's chain, summarised.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChainSummary {
    pub account: String,
    pub region: String,
    pub trail: String,
    pub home_region: String,
    pub digests: u64,
    pub backfill_digests: u64,
    pub first_start: Option<String>,
    pub last_end: Option<String>,
    pub signatures_verified: u64,
    pub log_files_listed: u64,
    pub log_files_ok: u64,
    pub failures: u64,
}

/// The outcome of `verify`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub source: String,
    pub verdict: String,
    pub digests: u64,
    pub signatures_checked: bool,
    pub signatures_verified: u64,
    pub log_files_listed: u64,
    pub log_files_ok: u64,
    pub failures: u64,
    pub warnings: u64,
    pub chains: Vec<ChainSummary>,
    pub findings: Vec<Finding>,
}

impl VerifyReport {
    /// Whether every check passed (warnings allowed).
    pub fn passed(&self) -> bool {
        self.failures == 0
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// Parses hex (either case); `None` on odd length or a non-hex digit.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|p| {
            let d = |c: u8| char::from(c).to_digit(16);
            Some((d(p[0])? * 16 + d(p[1])?) as u8)
        })
        .collect()
}

/// Reads an object and returns its uncompressed bytes (gzip or plain).
fn uncompressed(source: &dyn Source, object: &Object, gz: &mut Gunzip) -> Result<Vec<u8>, String> {
    let bytes = source.read(object)?;
    if is_gzip(&bytes) {
        let mut out = Vec::new();
        gz.decompress(&bytes, &mut out, DEFAULT_MAX_DECOMPRESSED)
            .map_err(|e| e.to_string())?;
        Ok(out)
    } else {
        Ok(bytes)
    }
}

/// One loaded digest.
struct Loaded<'a> {
    key: DigestKey,
    object: &'a Object,
    sha256: String,
    file: Result<DigestFile, String>,
}

/// A trail's identity: (account, region, trail, home region).
type TrailId = (String, String, String, String);

/// A trail's digests in range, and whether the range reaches its first and last digest.
type Chosen<'a> = (TrailId, Vec<(DigestKey, &'a Object)>, bool, bool);

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn basename(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

fn pool(threads: usize) -> Result<rayon::ThreadPool, VerifyError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| VerifyError::Source(format!("starting worker threads: {e}")))
}

/// Verifies the trail in `source`.
pub fn verify(source: &dyn Source, options: &VerifyOptions) -> Result<VerifyReport, VerifyError> {
    let objects = source
        .list()
        .map_err(|e| VerifyError::Source(e.to_string()))?;
    let pool = pool(options.threads)?;
    let wanted = |account: &str, region: &str| {
        (options.accounts.is_empty() || options.accounts.iter().any(|a| a == account))
            && (options.regions.is_empty() || options.regions.iter().any(|r| r == region))
    };

    // Sort the listing into digests per trail and log files per account × region.
    let mut trails: BTreeMap<TrailId, Vec<(DigestKey, &Object)>> = BTreeMap::new();
    let mut logs: BTreeMap<(String, String), Vec<&Object>> = BTreeMap::new();
    let mut by_tail: HashMap<&str, &Object> = HashMap::new();
    let mut by_name: HashMap<&str, Vec<&Object>> = HashMap::new();
    let mut sidecar: Option<&Object> = None;
    let mut digest_tails: HashSet<&str> = HashSet::new();
    for o in &objects {
        if let Some(k) = digest::parse_key(&o.key) {
            digest_tails.insert(tail(&o.key));
            if wanted(&k.account, &k.region) {
                let id = (
                    k.account.clone(),
                    k.region.clone(),
                    k.trail.clone(),
                    k.home_region.clone(),
                );
                trails.entry(id).or_default().push((k, o));
            }
            continue;
        }
        if basename(&o.key) == SIGNATURES_FILE && !o.key.contains("AWSLogs/") {
            sidecar = Some(o);
            continue;
        }
        if let KeyClass::Log(k) = classify_key(&o.key) {
            by_tail.insert(tail(&o.key), o);
            by_name.entry(basename(&o.key)).or_default().push(o);
            if wanted(&k.account, &k.region) {
                logs.entry((k.account, k.region)).or_default().push(o);
            }
        }
    }
    let mut signatures = options.signatures.clone();
    if signatures.is_empty()
        && let Some(o) = sidecar
    {
        let bytes = source.read(o).map_err(VerifyError::Source)?;
        let map: HashMap<String, String> =
            serde_json::from_slice(&bytes).map_err(|e| VerifyError::Keys {
                path: o.key.clone().into(),
                message: format!("not a JSON object of digest key → signature: {e}"),
            })?;
        signatures = map
            .into_iter()
            .map(|(k, v)| (tail(&k).to_string(), v))
            .collect();
    }

    // Choose each trail's digests in range, plus one on each side for the links.
    let mut chosen: Vec<Chosen> = Vec::new();
    for (id, mut list) in trails {
        list.sort_by(|a, b| {
            (a.0.backfill, a.0.end, &a.1.key).cmp(&(b.0.backfill, b.0.end, &b.1.key))
        });
        let main_len = list.iter().filter(|d| !d.0.backfill).count();
        let (main, backfill) = list.split_at(main_len);
        let ends: Vec<DateTime<Utc>> = main.iter().map(|d| d.0.end).collect();
        let lo = options.from.map_or(0, |f| {
            ends.iter().position(|e| *e > f).unwrap_or(ends.len())
        });
        let hi = options.to.map_or(ends.len(), |t| {
            (1..ends.len())
                .find(|&i| ends[i - 1] >= t)
                .unwrap_or(ends.len())
        });
        if lo >= hi && backfill.is_empty() {
            continue;
        }
        let lo2 = lo.saturating_sub(1);
        let hi2 = (hi + 1).min(ends.len()).max(lo2);
        let mut picked: Vec<(DigestKey, &Object)> = main[lo2..hi2].to_vec();
        picked.extend(
            backfill
                .iter()
                .filter(|d| {
                    options.from.is_none_or(|f| d.0.end > f)
                        && options.to.is_none_or(|t| d.0.end - Duration::hours(1) < t)
                })
                .cloned(),
        );
        let at_start = lo2 == 0;
        let at_end = hi2 == ends.len();
        chosen.push((id, picked, at_start, at_end));
    }

    // Load every chosen digest (parallel).
    let loaded: Vec<Vec<Loaded>> = pool.install(|| {
        chosen
            .iter()
            .map(|(_, picked, _, _)| {
                picked
                    .par_iter()
                    .map_init(Gunzip::new, |gz, (key, object)| {
                        let bytes = match gz.as_mut() {
                            Some(g) => uncompressed(source, object, g),
                            None => Err("cannot allocate a decompressor".into()),
                        };
                        match bytes {
                            Ok(b) => Loaded {
                                key: key.clone(),
                                object,
                                sha256: hex(&Sha256::digest(&b)),
                                file: DigestFile::parse(&b),
                            },
                            Err(e) => Loaded {
                                key: key.clone(),
                                object,
                                sha256: String::new(),
                                file: Err(e),
                            },
                        }
                    })
                    .collect()
            })
            .collect()
    });

    let mut report = VerifyReport {
        source: source.describe(),
        signatures_checked: !options.keys.is_empty(),
        ..VerifyReport::default()
    };
    let mut findings: Vec<Finding> = Vec::new();
    // Listed log files: tail → (expected hash, digest key, chain index).
    let mut listed: BTreeMap<String, (String, String, usize)> = BTreeMap::new();
    // Covered period per account × region.
    let mut covered: HashMap<(String, String), (DateTime<Utc>, DateTime<Utc>)> = HashMap::new();

    for (ci, ((id, _, at_start, at_end), digests)) in chosen.iter().zip(&loaded).enumerate() {
        let (account, region, trail, home_region) = id;
        let mut chain = ChainSummary {
            account: account.clone(),
            region: region.clone(),
            trail: trail.clone(),
            home_region: home_region.clone(),
            ..ChainSummary::default()
        };
        let finding = |severity, problem, object: &str, detail: String| Finding {
            severity,
            problem,
            account: account.clone(),
            region: region.clone(),
            trail: Some(trail.clone()),
            object: object.to_string(),
            detail,
        };
        let main: Vec<&Loaded> = digests.iter().filter(|d| !d.key.backfill).collect();
        for d in digests.iter() {
            let key = &d.object.key;
            let file = match &d.file {
                Ok(f) => f,
                Err(e) => {
                    findings.push(finding(
                        Severity::Fail,
                        Problem::UnreadableDigest,
                        key,
                        e.clone(),
                    ));
                    continue;
                }
            };
            if d.key.backfill {
                chain.backfill_digests += 1;
            } else {
                chain.digests += 1;
            }
            if tail(&file.digest_s3_object) != tail(key) || file.aws_account_id != *account {
                findings.push(finding(
                    Severity::Fail,
                    Problem::MovedDigest,
                    key,
                    format!(
                        "the digest says it is {} of account {}",
                        file.digest_s3_object, file.aws_account_id
                    ),
                ));
            }
            if let Some((start, end)) = file.period() {
                let (s, e) = (rfc3339(start), rfc3339(end));
                chain.first_start = Some(match chain.first_start.take() {
                    Some(x) if x <= s => x,
                    _ => s,
                });
                chain.last_end = Some(match chain.last_end.take() {
                    Some(x) if x >= e => x,
                    _ => e,
                });
                let c = covered
                    .entry((account.clone(), region.clone()))
                    .or_insert((start, end));
                c.0 = c.0.min(start);
                c.1 = c.1.max(end);
            }
            for l in &file.log_files {
                listed
                    .entry(tail(&l.s3_object).to_string())
                    .or_insert_with(|| (l.hash_value.to_ascii_lowercase(), key.clone(), ci));
                chain.log_files_listed += 1;
            }

            // Signatures of this digest: from the successor that chains to it, from
            // object metadata, from the sidecar.
            let mut sigs: Vec<(String, &str)> = Vec::new();
            let successor = if d.key.backfill {
                None
            } else {
                main.iter()
                    .position(|m| std::ptr::eq(*m, d))
                    .and_then(|p| main.get(p + 1))
            };
            if let Some(next) = successor
                && let Ok(nf) = &next.file
                && nf.previous_digest_s3_object.as_deref().map(tail) == Some(tail(key))
                && let Some(s) = &nf.previous_digest_signature
            {
                sigs.push((s.clone(), "the next digest"));
            }
            if sigs.is_empty() {
                match source.metadata(d.object, "signature") {
                    Ok(Some(s)) => sigs.push((s, "object metadata")),
                    Ok(None) => {}
                    Err(e) => findings.push(finding(
                        Severity::Warn,
                        Problem::Unsigned,
                        key,
                        format!("cannot read the object metadata: {e}"),
                    )),
                }
            }
            if let Some(s) = signatures.get(tail(key)) {
                sigs.push((s.clone(), SIGNATURES_FILE));
            }
            let newest = successor.is_none() && (*at_end || d.key.backfill);
            if sigs.is_empty() && newest {
                findings.push(finding(
                    Severity::Warn,
                    Problem::Unsigned,
                    key,
                    "the signature of the newest digest lives only in S3 object metadata \
                     (x-amz-meta-signature); verify the S3 source, or supply the signatures"
                        .into(),
                ));
            }
            if !options.keys.is_empty() && !sigs.is_empty() {
                let algorithm = file.digest_signature_algorithm.as_deref().unwrap_or("");
                let fp = file.digest_public_key_fingerprint.as_deref().unwrap_or("");
                match options.keys.get(fp) {
                    _ if algorithm != "SHA256withRSA" => findings.push(finding(
                        Severity::Fail,
                        Problem::BadSignature,
                        key,
                        format!("unsupported signature algorithm `{algorithm}`"),
                    )),
                    None => findings.push(finding(
                        Severity::Fail,
                        Problem::UnknownKey,
                        key,
                        format!("no public key with fingerprint `{fp}` was supplied"),
                    )),
                    Some(pk) => {
                        let message = string_to_sign(file, &d.sha256);
                        let failing: Vec<&str> = sigs
                            .iter()
                            .filter(|(sig, _)| !keys::verify(pk, message.as_bytes(), sig))
                            .map(|(_, from)| *from)
                            .collect();
                        let all_ok = failing.is_empty();
                        if !all_ok {
                            findings.push(finding(
                                Severity::Fail,
                                Problem::BadSignature,
                                key,
                                format!(
                                    "the signature from {} does not verify",
                                    failing.join(" and from ")
                                ),
                            ));
                        }
                        if all_ok {
                            chain.signatures_verified += 1;
                        }
                    }
                }
            }

            // The link to the previous digest.
            if d.key.backfill {
                continue;
            }
            let pos = main.iter().position(|m| std::ptr::eq(*m, d)).unwrap_or(0);
            let prev = pos.checked_sub(1).and_then(|p| main.get(p));
            match (&file.previous_digest_s3_object, prev) {
                (None, Some(p)) => {
                    let prev_end = p
                        .file
                        .as_ref()
                        .ok()
                        .and_then(DigestFile::period)
                        .map(|x| rfc3339(x.1))
                        .unwrap_or_else(|| "?".into());
                    findings.push(finding(
                        Severity::Warn,
                        Problem::Gap,
                        key,
                        format!(
                            "a new chain starts here: no digest covers {prev_end} to {} \
                             (logging or log file validation was off)",
                            file.digest_start_time
                        ),
                    ));
                }
                (None, None) => {}
                (Some(prev_key), Some(p)) if tail(prev_key) == tail(&p.object.key) => {
                    if !p.sha256.is_empty()
                        && file
                            .previous_digest_hash_value
                            .as_deref()
                            .map(str::to_ascii_lowercase)
                            != Some(p.sha256.clone())
                    {
                        findings.push(finding(
                            Severity::Fail,
                            Problem::AlteredDigest,
                            &p.object.key,
                            format!(
                                "its SHA-256 is {}, but the next digest {} recorded {}",
                                p.sha256,
                                basename(key),
                                file.previous_digest_hash_value.as_deref().unwrap_or("null")
                            ),
                        ));
                    }
                }
                (Some(prev_key), _) => {
                    if pos == 0 && !*at_start {
                        // The previous digest is outside the range: not checked.
                    } else if let Some(p) = prev
                        && digest_tails.contains(tail(prev_key))
                    {
                        findings.push(finding(
                            Severity::Fail,
                            Problem::MovedDigest,
                            &p.object.key,
                            format!(
                                "lies between {} and {}, but the chain skips it",
                                basename(prev_key),
                                basename(key)
                            ),
                        ));
                    } else {
                        findings.push(finding(
                            Severity::Fail,
                            Problem::MissingDigest,
                            prev_key,
                            format!("named as previous digest by {}, not found", basename(key)),
                        ));
                    }
                }
            }
        }
        report.chains.push(chain);
    }

    // Log files: hash what is listed and present (parallel), name what is not.
    let mut present: Vec<(&Object, &String, usize)> = Vec::new();
    for (t, (_, digest_key, ci)) in &listed {
        match by_tail.get(t.as_str()) {
            Some(o) => present.push((o, t, *ci)),
            None => {
                let (account, region, trail, _) = &chosen[*ci].0;
                let elsewhere = by_name.get(basename(t)).and_then(|v| v.first());
                findings.push(Finding {
                    severity: Severity::Fail,
                    problem: if elsewhere.is_some() {
                        Problem::MovedLog
                    } else {
                        Problem::MissingLog
                    },
                    account: account.clone(),
                    region: region.clone(),
                    trail: Some(trail.clone()),
                    object: t.clone(),
                    detail: match elsewhere {
                        Some(o) => {
                            format!("listed by {}, found at {}", basename(digest_key), o.key)
                        }
                        None => format!("listed by {}, not found", basename(digest_key)),
                    },
                });
            }
        }
    }
    source.prefetch(&mut present.iter().map(|p| p.0));
    let hashed: Vec<Result<String, String>> = pool.install(|| {
        present
            .par_iter()
            .map_init(Gunzip::new, |gz, (o, _, _)| match gz.as_mut() {
                Some(g) => uncompressed(source, o, g).map(|b| hex(&Sha256::digest(&b))),
                None => Err("cannot allocate a decompressor".into()),
            })
            .collect()
    });
    let mut ok_per_chain = vec![0u64; chosen.len()];
    for ((o, t, ci), h) in present.iter().zip(hashed) {
        let (expected, digest_key, _) = &listed[*t];
        let (account, region, trail, _) = &chosen[*ci].0;
        let problem = match h {
            Ok(h) if h == *expected => {
                ok_per_chain[*ci] += 1;
                continue;
            }
            Ok(h) => (
                Problem::AlteredLog,
                format!("SHA-256 {h}, but {} lists {expected}", basename(digest_key)),
            ),
            Err(e) => (Problem::UnreadableLog, e),
        };
        findings.push(Finding {
            severity: Severity::Fail,
            problem: problem.0,
            account: account.clone(),
            region: region.clone(),
            trail: Some(trail.clone()),
            object: o.key.clone(),
            detail: problem.1,
        });
    }
    for (chain, ok) in report.chains.iter_mut().zip(&ok_per_chain) {
        chain.log_files_ok = *ok;
    }

    // Unlisted log files inside the covered period; log files with no digest at all.
    let listed_tails: HashSet<&str> = listed.keys().map(String::as_str).collect();
    for ((account, region), files) in &logs {
        let Some((start, end)) = covered.get(&(account.clone(), region.clone())) else {
            findings.push(Finding {
                severity: Severity::Warn,
                problem: Problem::NoDigests,
                account: account.clone(),
                region: region.clone(),
                trail: None,
                object: files.first().map(|o| o.key.clone()).unwrap_or_default(),
                detail: format!(
                    "{} log file(s) and no digest file: log file validation is off here, \
                     or the digests are gone",
                    files.len()
                ),
            });
            continue;
        };
        for o in files {
            let Some(stamp) = delivery_stamp(&o.key) else {
                continue;
            };
            // A file stamped in the period's last minute may be delivered after it.
            let inside = stamp >= *start
                && stamp + Duration::minutes(1) < *end
                && options.from.is_none_or(|f| stamp >= f)
                && options.to.is_none_or(|t| stamp < t);
            if inside && !listed_tails.contains(tail(&o.key)) {
                findings.push(Finding {
                    severity: Severity::Fail,
                    problem: Problem::UnlistedLog,
                    account: account.clone(),
                    region: region.clone(),
                    trail: None,
                    object: o.key.clone(),
                    detail: "delivered inside the period the digests cover, listed by none".into(),
                });
            }
        }
    }

    findings.sort_by(|a, b| {
        (a.severity, &a.account, &a.region, a.problem, &a.object)
            .cmp(&(b.severity, &b.account, &b.region, b.problem, &b.object))
    });
    for f in &findings {
        if let Some(c) = report.chains.iter_mut().find(|c| {
            Some(&c.trail) == f.trail.as_ref() && c.account == f.account && c.region == f.region
        }) && f.severity == Severity::Fail
        {
            c.failures += 1;
        }
    }
    report.digests = report
        .chains
        .iter()
        .map(|c| c.digests + c.backfill_digests)
        .sum();
    report.signatures_verified = report.chains.iter().map(|c| c.signatures_verified).sum();
    report.log_files_listed = listed.len() as u64;
    report.log_files_ok = ok_per_chain.iter().sum();
    report.failures = findings
        .iter()
        .filter(|f| f.severity == Severity::Fail)
        .count() as u64;
    report.warnings = findings.len() as u64 - report.failures;
    report.verdict = if report.failures == 0 { "pass" } else { "fail" }.into();
    report.findings = findings;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        assert_eq!(hex(&[0, 1, 0xab, 0xff]), "0001abff");
        assert_eq!(unhex("0001ABff"), Some(vec![0, 1, 0xab, 0xff]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }
}
