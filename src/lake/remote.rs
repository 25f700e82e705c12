//! A lake on S3 (`--lake s3://bucket/prefix`): the same layout and commit protocol as
//! a folder, with S3 operations in place of file-system ones.
//!
//! | folder | S3 |
//! |---|---|
//! | write + fsync a staged file | upload to `_cetrail/staging/<run>/…` (multipart above [`part_bytes`]) |
//! | write + rename the segment (commit point) | one `PutObject` of `_cetrail/ledger/<run>-<seq>.jsonl` |
//! | rename staged → `events/…` | `CopyObject` staged → `events/…`, then delete the staged object |
//!
//! A reader never sees a partial file: an upload, single or multipart, becomes visible
//! only whole, and only under `_cetrail/staging/`, which no reader lists; a file appears
//! under `events/` by a server-side copy of a complete object. Killing a writer leaves
//! at most an incomplete multipart upload (invisible; aborted by the next writer of the
//! same shard) and staged objects (copied forward if a segment names them, else deleted).
//!
//! Readers work on a local mirror ([`mirror`]): lake files are immutable and uniquely
//! named, so a key already mirrored with the same size is never downloaded again.
//!
//! I/O runs on a private tokio runtime; every call here is synchronous.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use crate::error::LakeError;

/// Default size of one multipart part (and the single-upload limit): 16 MiB.
pub const DEFAULT_PART_BYTES: usize = 16 << 20;

/// Part size: `CETRAIL_S3_PART_BYTES` (tests use small parts to exercise multipart on
/// small files), else [`DEFAULT_PART_BYTES`].
pub fn part_bytes() -> usize {
    std::env::var("CETRAIL_S3_PART_BYTES")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_PART_BYTES)
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteObject {
    /// Key relative to the lake's prefix.
    pub rel: String,
    pub size: u64,
    /// What changes when the object's bytes change (its ETag, quotes removed).
    pub etag: String,
}

/// A lake's root on S3.
pub struct RemoteLake {
    client: Client,
    bucket: String,
    prefix: String,
    runtime: tokio::runtime::Runtime,
    part_bytes: usize,
}

fn remote_err(key: &str, e: impl std::fmt::Display) -> LakeError {
    // The SDK's Display is terse ("service error"); its Debug names the S3 error code.
    LakeError::Remote {
        key: key.to_string(),
        message: e.to_string(),
    }
}

fn sdk_err<E: std::fmt::Debug>(key: &str, e: E) -> LakeError {
    let text = format!("{e:?}");
    let code = text
        .split("code: Some(\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or("request failed");
    remote_err(key, code)
}

/// Percent-encodes a key for `x-amz-copy-source` (slashes kept).
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl RemoteLake {
    /// The lake at `bucket/prefix` reached with `client`.
    pub fn new(client: Client, bucket: &str, prefix: &str) -> Result<Self, LakeError> {
        let runtime = crate::source::s3::runtime().map_err(|e| remote_err(bucket, e))?;
        Ok(Self::with_runtime(client, bucket, prefix, runtime))
    }

    pub fn with_runtime(
        client: Client,
        bucket: &str,
        prefix: &str,
        runtime: tokio::runtime::Runtime,
    ) -> Self {
        Self {
            client,
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            runtime,
            part_bytes: part_bytes(),
        }
    }

    /// Uploads larger than `n` bytes go in parts of `n` bytes.
    pub fn with_part_bytes(mut self, n: usize) -> Self {
        self.part_bytes = n.max(1);
        self
    }

    /// `s3://bucket/prefix`.
    pub fn url(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    fn key(&self, rel: &str) -> String {
        if self.prefix.is_empty() {
            rel.to_string()
        } else {
            format!("{}/{rel}", self.prefix)
        }
    }

    fn rel<'a>(&self, key: &'a str) -> &'a str {
        if self.prefix.is_empty() {
            key
        } else {
            key.strip_prefix(&self.prefix)
                .map_or(key, |k| k.trim_start_matches('/'))
        }
    }

    /// Every object under `rel_prefix` (relative keys, sorted).
    pub fn list(&self, rel_prefix: &str) -> Result<Vec<RemoteObject>, LakeError> {
        let prefix = self.key(rel_prefix);
        let mut out = Vec::new();
        self.runtime.block_on(async {
            let mut token: Option<String> = None;
            loop {
                let resp = self
                    .client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(&prefix)
                    .set_continuation_token(token.clone())
                    .send()
                    .await
                    .map_err(|e| sdk_err(&prefix, e))?;
                for o in resp.contents() {
                    if let Some(k) = o.key() {
                        out.push(RemoteObject {
                            rel: self.rel(k).to_string(),
                            size: o.size().unwrap_or(0).max(0) as u64,
                            etag: o.e_tag().unwrap_or("").trim_matches('"').to_string(),
                        });
                    }
                }
                token = resp.next_continuation_token().map(str::to_string);
                if !resp.is_truncated().unwrap_or(false) || token.is_none() {
                    break;
                }
            }
            Ok::<(), LakeError>(())
        })?;
        out.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(out)
    }

    /// Whether `rel` exists.
    pub fn exists(&self, rel: &str) -> Result<bool, LakeError> {
        let key = self.key(rel);
        self.runtime.block_on(async {
            match self
                .client
                .head_object()
                .bucket(&self.bucket)
                .key(&key)
                .send()
                .await
            {
                Ok(_) => Ok(true),
                Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
                Err(e) => Err(sdk_err(&key, e)),
            }
        })
    }

    /// Streams the object's body, chunk by chunk, into `sink`.
    fn read_into(
        &self,
        rel: &str,
        mut sink: impl FnMut(&[u8]) -> Result<(), LakeError>,
    ) -> Result<(), LakeError> {
        let key = self.key(rel);
        self.runtime.block_on(async {
            let resp = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(&key)
                .send()
                .await
                .map_err(|e| sdk_err(&key, e))?;
            let mut body = resp.body;
            while let Some(chunk) = body.next().await {
                sink(&chunk.map_err(|e| remote_err(&key, e))?)?;
            }
            Ok(())
        })
    }

    /// The object's bytes.
    pub fn get(&self, rel: &str) -> Result<Vec<u8>, LakeError> {
        let mut out = Vec::new();
        self.read_into(rel, |chunk| {
            out.extend_from_slice(chunk);
            Ok(())
        })?;
        Ok(out)
    }

    /// Downloads `rel` to `dst` (through a temporary name: `dst` appears whole).
    pub fn download(&self, rel: &str, dst: &Path) -> Result<(), LakeError> {
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent).map_err(LakeError::io(parent))?;
        }
        let tmp = dst.with_extension("part-download");
        let mut f = std::fs::File::create(&tmp).map_err(LakeError::io(&tmp))?;
        self.read_into(rel, |chunk| f.write_all(chunk).map_err(LakeError::io(&tmp)))?;
        drop(f);
        std::fs::rename(&tmp, dst).map_err(LakeError::io(dst))
    }

    /// Uploads bytes in one request (atomic: the object exists whole or not at all).
    pub fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<(), LakeError> {
        let key = self.key(rel);
        self.runtime.block_on(async {
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&key)
                .body(ByteStream::from(bytes))
                .send()
                .await
                .map_err(|e| sdk_err(&key, e))?;
            Ok(())
        })
    }

    /// Uploads a local file: one request up to [`part_bytes`], else a multipart upload
    /// (aborted on error; an interrupted one stays invisible).
    pub fn upload(&self, src: &Path, rel: &str) -> Result<(), LakeError> {
        let part = self.part_bytes;
        let size = std::fs::metadata(src).map_err(LakeError::io(src))?.len();
        if size <= part as u64 {
            let bytes = std::fs::read(src).map_err(LakeError::io(src))?;
            return self.put(rel, bytes);
        }
        let key = self.key(rel);
        self.runtime.block_on(async {
            let created = self
                .client
                .create_multipart_upload()
                .bucket(&self.bucket)
                .key(&key)
                .send()
                .await
                .map_err(|e| sdk_err(&key, e))?;
            let Some(id) = created.upload_id().map(str::to_string) else {
                return Err(remote_err(&key, "no upload id in the response"));
            };
            let result = self.upload_parts(src, &key, &id, part).await;
            if result.is_err() {
                let _ = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&key)
                    .upload_id(&id)
                    .send()
                    .await;
            }
            result
        })
    }

    async fn upload_parts(
        &self,
        src: &Path,
        key: &str,
        id: &str,
        part: usize,
    ) -> Result<(), LakeError> {
        let mut f = std::fs::File::open(src).map_err(LakeError::io(src))?;
        let mut parts = Vec::new();
        let mut number = 1;
        loop {
            let mut buf = Vec::with_capacity(part);
            (&mut f)
                .take(part as u64)
                .read_to_end(&mut buf)
                .map_err(LakeError::io(src))?;
            if buf.is_empty() {
                break;
            }
            let resp = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(id)
                .part_number(number)
                .body(ByteStream::from(buf))
                .send()
                .await
                .map_err(|e| sdk_err(key, e))?;
            parts.push(
                CompletedPart::builder()
                    .set_e_tag(resp.e_tag().map(str::to_string))
                    .part_number(number)
                    .build(),
            );
            super::crash_point("mid-upload");
            number += 1;
        }
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| sdk_err(key, e))?;
        Ok(())
    }

    /// Server-side copy `from` → `to` (the destination appears whole).
    pub fn copy(&self, from: &str, to: &str) -> Result<(), LakeError> {
        let (src, dst) = (self.key(from), self.key(to));
        self.runtime.block_on(async {
            self.client
                .copy_object()
                .bucket(&self.bucket)
                .key(&dst)
                .copy_source(format!("{}/{}", self.bucket, encode_key(&src)))
                .send()
                .await
                .map_err(|e| sdk_err(&dst, e))?;
            Ok(())
        })
    }

    /// Deletes `rel` (absent objects are fine: S3 deletes are idempotent).
    pub fn delete(&self, rel: &str) -> Result<(), LakeError> {
        let key = self.key(rel);
        self.runtime.block_on(async {
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(&key)
                .send()
                .await
                .map_err(|e| sdk_err(&key, e))?;
            Ok(())
        })
    }

    /// Aborts the incomplete multipart uploads under `rel_prefix` whose relative key
    /// `doomed` accepts; returns how many.
    pub fn abort_uploads(
        &self,
        rel_prefix: &str,
        doomed: impl Fn(&str) -> bool,
    ) -> Result<u64, LakeError> {
        let prefix = self.key(rel_prefix);
        self.runtime.block_on(async {
            let resp = match self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(&prefix)
                .send()
                .await
            {
                Ok(r) => r,
                // Stores without the API (some S3-compatible servers): incomplete
                // uploads there are invisible all the same; nothing to abort.
                Err(e) if format!("{e:?}").contains("NotImplemented") => return Ok(0),
                Err(e) => return Err(sdk_err(&prefix, e)),
            };
            let mut n = 0;
            for u in resp.uploads() {
                let (Some(k), Some(id)) = (u.key(), u.upload_id()) else {
                    continue;
                };
                if !doomed(self.rel(k)) {
                    continue;
                }
                self.client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(k)
                    .upload_id(id)
                    .send()
                    .await
                    .map_err(|e| sdk_err(k, e))?;
                n += 1;
            }
            Ok(n)
        })
    }
}

/// Brings `events/` and the ledger of the lake at `remote` into the folder `local`
/// (created if needed): downloads keys not yet there (or of another size), deletes
/// local files the lake no longer has (compacted away). Returns files downloaded.
pub fn mirror(remote: &RemoteLake, local: &Path) -> Result<u64, LakeError> {
    mirror_with(remote, local, false, true)
}

/// The mirror's record of the ETags its copies were downloaded at.
const MIRROR_ETAGS: &str = "_cetrail/mirror-etags.tsv";

/// [`mirror`]; `fresh`: every lake file is downloaded again, whatever its size (`lake
/// check --deep` and `lake repair --deep` on S3: an object damaged in place keeps its
/// size and ETag history, and the local copy would hide it). `verify`: a downloaded
/// file that is not what its segment committed (its xxh3) stops the mirror with
/// [`LakeError::Damaged`] (read commands); `lake check` and `lake repair` take the
/// copy as it is and judge it themselves.
pub fn mirror_with(
    remote: &RemoteLake,
    local: &Path,
    fresh: bool,
    verify: bool,
) -> Result<u64, LakeError> {
    let mut downloaded = 0;
    // The ETags the local copies were downloaded at: an object rewritten in place (same
    // size) is downloaded again.
    let etags_path = local.join(MIRROR_ETAGS);
    let mut etags: std::collections::BTreeMap<String, String> =
        std::fs::read_to_string(&etags_path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    // The ledger first: the files it commits are checked as they arrive.
    let mut committed: std::collections::HashMap<String, super::check::Committed> =
        Default::default();
    for area in ["_cetrail/ledger/", "events/"] {
        if area == "events/" {
            committed = super::check::committed(local)?
                .into_iter()
                .map(|c| (c.file.path.clone(), c))
                .collect();
        }
        let objects = remote.list(area)?;
        let wanted: std::collections::HashSet<&str> =
            objects.iter().map(|o| o.rel.as_str()).collect();
        for o in &objects {
            if o.rel.ends_with('/') || o.rel.split('/').any(|p| p == ".." || p.is_empty()) {
                continue;
            }
            let dst = local.join(&o.rel);
            let have = std::fs::metadata(&dst).map(|m| m.len()).ok();
            let changed = etags.get(&o.rel).is_some_and(|e| *e != o.etag);
            if have != Some(o.size) || changed || (fresh && area == "events/") {
                remote.download(&o.rel, &dst)?;
                downloaded += 1;
                etags.insert(o.rel.clone(), o.etag.clone());
                // A committed file that is not what its segment committed.
                if verify
                    && let Some(c) = committed.get(&o.rel)
                    && let Some(want) = &c.file.xxh3
                {
                    let (_, got) = super::writer::xxh3_of(&dst)?;
                    if format!("{got:016x}") != *want {
                        // Not kept: the next read downloads and judges it again.
                        std::fs::remove_file(&dst).map_err(LakeError::io(&dst))?;
                        return Err(LakeError::Damaged {
                            root: PathBuf::from(remote.url()),
                            file: o.rel.clone(),
                            segment: c.segment.clone(),
                            problem: format!(
                                "differs from what was committed (xxh3 {got:016x}, committed {want})"
                            ),
                        });
                    }
                }
            }
        }
        let root = local.join(area);
        for f in local_files(&root) {
            let rel = f
                .strip_prefix(local)
                .map(|p| p.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            if !wanted.contains(rel.as_str()) {
                std::fs::remove_file(&f).map_err(LakeError::io(&f))?;
                etags.remove(&rel);
            }
        }
    }
    std::fs::create_dir_all(local.join("events")).map_err(LakeError::io(local))?;
    let text: String = etags.iter().map(|(k, v)| format!("{k}\t{v}\n")).collect();
    if let Some(parent) = etags_path.parent() {
        std::fs::create_dir_all(parent).map_err(LakeError::io(parent))?;
    }
    std::fs::write(&etags_path, text).map_err(LakeError::io(&etags_path))?;
    Ok(downloaded)
}

fn local_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn copy_source_keys_are_percent_encoded() {
        assert_eq!(
            super::encode_key("lake/events/month=2026-10/part a+b.parquet"),
            "lake/events/month%3D2026-10/part%20a%2Bb.parquet"
        );
    }
}
