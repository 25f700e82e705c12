//! CloudTrail digest files: their key names, their JSON, and the string CloudTrail signs.
//!
//! A digest is delivered to
//! `[prefix/]AWSLogs/[o-id/]<account>/CloudTrail-Digest/<region>/YYYY/MM/DD/<account>_CloudTrail-Digest_<region>_<trail>_<home-region>_<YYYYMMDDTHHMMSSZ>[_backfill].json.gz`
//! and lists the log files delivered during `[digestStartTime, digestEndTime)` with the
//! SHA-256 of their uncompressed bytes. Each digest holds the SHA-256 and the signature
//! of the previous digest of its trail; a *starting* digest (logging or validation just
//! turned on) has null `previous…` fields. *Backfill* digests (`_backfill` suffix) list
//! log files a regular digest missed and stand outside the chain. The signature of a
//! digest is in its S3 object metadata (`x-amz-meta-signature`) and, once the next
//! digest exists, in that digest's `previousDigestSignature`.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;

/// What a digest's key says: which trail's chain it belongs to and when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestKey {
    pub org: Option<String>,
    pub account: String,
    pub region: String,
    pub trail: String,
    pub home_region: String,
    pub end: DateTime<Utc>,
    pub backfill: bool,
}

/// Parses a digest key; `None` when the key is not a CloudTrail digest.
pub fn parse_key(key: &str) -> Option<DigestKey> {
    let (org, rest) = crate::source::awslogs_parts(key)?;
    let org = org.map(str::to_string);
    // account / CloudTrail-Digest / region / YYYY / MM / DD / file
    if rest.len() != 7 || rest[1] != "CloudTrail-Digest" {
        return None;
    }
    let (account, region, file) = (rest[0], rest[2], rest[6]);
    let stem = file.strip_suffix(".json.gz")?;
    let (stem, backfill) = match stem.strip_suffix("_backfill") {
        Some(s) => (s, true),
        None => (stem, false),
    };
    let head = format!("{account}_CloudTrail-Digest_{region}_");
    let middle = stem.strip_prefix(&head)?;
    // <trail>_<home-region>_<stamp>; trail names may hold underscores, regions do not.
    let (middle, stamp) = middle.rsplit_once('_')?;
    let (trail, home_region) = middle.rsplit_once('_')?;
    let end = NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ")
        .ok()?
        .and_utc();
    if trail.is_empty() || home_region.is_empty() {
        return None;
    }
    Some(DigestKey {
        org,
        account: account.to_string(),
        region: region.to_string(),
        trail: trail.to_string(),
        home_region: home_region.to_string(),
        end,
        backfill,
    })
}

/// The part of a key from `AWSLogs/` on: how a digest's `s3Object` fields and a
/// source's keys are compared, whatever prefix the bucket or folder adds above it.
pub fn tail(key: &str) -> &str {
    match key.find("AWSLogs/") {
        Some(i) => &key[i..],
        None => key,
    }
}

/// One listed log file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedLog {
    #[serde(default)]
    pub s3_bucket: Option<String>,
    pub s3_object: String,
    pub hash_value: String,
    #[serde(default)]
    pub hash_algorithm: Option<String>,
    #[serde(default)]
    pub oldest_event_time: Option<String>,
    #[serde(default)]
    pub newest_event_time: Option<String>,
}

/// The fields of a digest file that validation reads (unknown fields are ignored).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestFile {
    pub aws_account_id: String,
    pub digest_start_time: String,
    pub digest_end_time: String,
    pub digest_s3_bucket: String,
    pub digest_s3_object: String,
    #[serde(default)]
    pub digest_public_key_fingerprint: Option<String>,
    #[serde(default)]
    pub digest_signature_algorithm: Option<String>,
    #[serde(default)]
    pub newest_event_time: Option<String>,
    #[serde(default)]
    pub oldest_event_time: Option<String>,
    #[serde(default)]
    pub previous_digest_s3_bucket: Option<String>,
    #[serde(default)]
    pub previous_digest_s3_object: Option<String>,
    #[serde(default)]
    pub previous_digest_hash_value: Option<String>,
    #[serde(default)]
    pub previous_digest_hash_algorithm: Option<String>,
    #[serde(default)]
    pub previous_digest_signature: Option<String>,
    #[serde(default)]
    pub log_files: Vec<ListedLog>,
}

impl DigestFile {
    /// Parses the uncompressed JSON of a digest.
    pub fn parse(json: &[u8]) -> Result<Self, String> {
        let mut de = serde_json::Deserializer::from_slice(json);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            format!(
                "not a CloudTrail digest file (field `{path}`): {}",
                e.inner()
            )
        })
    }

    /// The digest's period start and end.
    pub fn period(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let p = |s: &str| DateTime::parse_from_rfc3339(s).ok().map(|t| t.to_utc());
        Some((p(&self.digest_start_time)?, p(&self.digest_end_time)?))
    }

    /// Whether this digest starts a chain (no previous digest).
    pub fn is_start(&self) -> bool {
        self.previous_digest_s3_object.is_none()
    }
}

/// The string CloudTrail signs for a digest:
/// `digestEndTime \n digestS3Bucket/digestS3Object \n hex(SHA-256(uncompressed digest)) \n previousDigestSignature`
/// (the literal `null` for a starting digest).
pub fn string_to_sign(digest: &DigestFile, digest_sha256_hex: &str) -> String {
    signing_string(
        &digest.digest_end_time,
        &digest.digest_s3_bucket,
        &digest.digest_s3_object,
        digest_sha256_hex,
        digest.previous_digest_signature.as_deref(),
    )
}

/// [`string_to_sign`] from its parts (what `generate` signs).
pub fn signing_string(
    end_time: &str,
    bucket: &str,
    object: &str,
    digest_sha256_hex: &str,
    previous_signature: Option<&str>,
) -> String {
    format!(
        "{end_time}\n{bucket}/{object}\n{digest_sha256_hex}\n{}",
        previous_signature.unwrap_or("null")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_keys() {
        let k = "pre/AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_my_trail_us-east-2_20150817T150131Z.json.gz";
        let d = parse_key(k);
        assert_eq!(
            d,
            Some(DigestKey {
                org: None,
                account: "111122223333".into(),
                region: "us-east-2".into(),
                trail: "my_trail".into(),
                home_region: "us-east-2".into(),
                end: DateTime::parse_from_rfc3339("2015-08-17T15:01:31Z")
                    .map(|t| t.to_utc())
                    .unwrap_or_default(),
                backfill: false,
            })
        );
        let b = "AWSLogs/o-abc/111122223333/CloudTrail-Digest/eu-west-1/2015/08/17/111122223333_CloudTrail-Digest_eu-west-1_org-trail_us-east-1_20150817T150131Z_backfill.json.gz";
        let d = parse_key(b);
        assert_eq!(d.as_ref().map(|d| d.backfill), Some(true));
        assert_eq!(
            d.as_ref().map(|d| d.home_region.as_str()),
            Some("us-east-1")
        );
        assert_eq!(d.and_then(|d| d.org), Some("o-abc".to_string()));
        assert_eq!(
            parse_key("AWSLogs/111122223333/CloudTrail/us-east-1/2015/08/17/x.json.gz"),
            None
        );
        assert_eq!(tail("a/b/AWSLogs/1/x"), "AWSLogs/1/x");
    }
}
