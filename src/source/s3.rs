//! An S3 bucket (or any S3-compatible store) in CloudTrail's layout.
//!
//! Listing walks the key hierarchy with `/` delimiters, pruning before it lists objects:
//! `[prefix/]AWSLogs/` → `[o-org/]` → account (`--accounts`) → `CloudTrail/` → region
//! (`--regions`) → year → month → day (`--from/--to`, one day of slack). A one-week
//! query over a five-year bucket lists a handful of day prefixes, not the bucket.
//! Only the `CloudTrail/` service is walked: digest and insight siblings are not inputs
//! of `ingest`. Objects carry their ETag as version, so the ledger skips unchanged ones
//! without a GET.
//!
//! I/O runs on a private tokio runtime; callers stay synchronous (tokio for I/O only,
//! parsing on rayon). Reads retry with the SDK's standard backoff and jitter on 5xx,
//! throttling (`SlowDown`) and dropped connections; an object that still fails is that
//! object's rejection, never the run's end.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use aws_sdk_s3::Client;
use chrono::{Datelike, NaiveDate};

use crate::error::SourceError;
use crate::source::{Object, Prune, Source};

/// Counters of the requests made, for tests and the summary.
#[derive(Debug, Default)]
pub struct S3Stats {
    pub list_calls: AtomicU64,
    pub get_calls: AtomicU64,
}

/// A bucket and a prefix above `AWSLogs/`.
pub struct S3Source {
    client: Client,
    bucket: String,
    prefix: String,
    prune: Prune,
    /// The siblings listed under each account: `CloudTrail` (logs), and for `verify`
    /// also `CloudTrail-Digest`.
    services: Vec<&'static str>,
    runtime: tokio::runtime::Runtime,
    concurrency: usize,
    attempts: u32,
    prefetched: Arc<Prefetched>,
    pub stats: Arc<S3Stats>,
}

/// Splits `s3://bucket/prefix` into bucket and prefix (no leading slash).
pub fn parse_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_string(), prefix.trim_matches('/').to_string()))
}

fn err(what: &str, e: impl std::fmt::Display) -> SourceError {
    SourceError::Remote(format!("{what}: {e}"))
}

/// How to reach S3 (the standard credential chain otherwise).
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    pub profile: Option<String>,
    pub region: Option<String>,
    /// An S3-compatible endpoint (path-style addressing is then used).
    pub endpoint_url: Option<String>,
    /// Anonymous requests (public buckets).
    pub no_sign_request: bool,
    /// Attempts per request (retries with exponential backoff and jitter).
    pub max_attempts: u32,
    /// Downloads in flight.
    pub concurrency: usize,
}

/// Objects downloaded ahead of the parser: bounded by a window of objects not yet
/// consumed, so memory does not grow with the archive.
#[derive(Default)]
struct Prefetched {
    ready: Mutex<HashMap<String, Result<Vec<u8>, String>>>,
    changed: Condvar,
    consumed: AtomicUsize,
    planned: Mutex<std::collections::HashSet<String>>,
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, SourceError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("cetrail-s3")
        .enable_all()
        .build()
        .map_err(|e| err("starting the S3 I/O runtime", e))
}

/// A client for `options` (standard credential chain, retries, timeouts; path-style
/// addressing for custom endpoints) and the runtime that drives it.
pub fn connect_client(
    options: &S3Options,
) -> Result<(Client, tokio::runtime::Runtime), SourceError> {
    let rt = runtime()?;
    let client = rt.block_on(async {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(p) = &options.profile {
            loader = loader.profile_name(p);
        }
        if let Some(r) = &options.region {
            loader = loader.region(aws_config::Region::new(r.clone()));
        }
        if options.no_sign_request {
            loader = loader.no_credentials();
        }
        let shared = loader.load().await;
        let mut b = aws_sdk_s3::config::Builder::from(&shared)
            .retry_config(
                aws_sdk_s3::config::retry::RetryConfig::standard()
                    .with_max_attempts(options.max_attempts.max(1)),
            )
            .timeout_config(
                aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(std::time::Duration::from_secs(10))
                    .operation_attempt_timeout(std::time::Duration::from_secs(120))
                    .build(),
            );
        if shared.region().is_none() {
            b = b.region(aws_config::Region::new("us-east-1"));
        }
        if let Some(e) = &options.endpoint_url {
            b = b.endpoint_url(e).force_path_style(true);
        }
        Client::from_conf(b.build())
    });
    Ok((client, rt))
}

impl S3Source {
    /// Connects to `s3://bucket/prefix` with the standard AWS credential chain (env,
    /// profiles, SSO, IMDS) and `options`.
    pub fn connect(url: &str, options: &S3Options, prune: Prune) -> Result<Self, SourceError> {
        let (bucket, prefix) =
            parse_url(url).ok_or_else(|| SourceError::Unsupported(url.to_string()))?;
        let (client, rt) = connect_client(options)?;
        let mut s = Self::with_runtime(client, &bucket, &prefix, prune, rt)?;
        s.concurrency = options.concurrency.max(1);
        s.attempts = options.max_attempts.max(1);
        Ok(s)
    }

    /// Attempts per request of this source's own retry loop.
    pub fn with_attempts(mut self, n: u32) -> Self {
        self.attempts = n.max(1);
        self
    }

    /// Lists the digest files (`CloudTrail-Digest/`) too, for `verify`.
    pub fn with_digests(mut self) -> Self {
        if !self.services.contains(&"CloudTrail-Digest") {
            self.services.push("CloudTrail-Digest");
        }
        self
    }

    /// Downloads in flight while prefetching.
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// A source over `bucket/prefix` with a ready client (tests, custom transports).
    pub fn new(
        client: Client,
        bucket: &str,
        prefix: &str,
        prune: Prune,
    ) -> Result<Self, SourceError> {
        Self::with_runtime(client, bucket, prefix, prune, runtime()?)
    }

    fn with_runtime(
        client: Client,
        bucket: &str,
        prefix: &str,
        prune: Prune,
        runtime: tokio::runtime::Runtime,
    ) -> Result<Self, SourceError> {
        Ok(Self {
            client,
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            prune,
            services: vec!["CloudTrail"],
            runtime,
            concurrency: 16,
            attempts: GET_ATTEMPTS,
            prefetched: Arc::default(),
            stats: Arc::default(),
        })
    }

    /// One page of ListObjectsV2, retried like GETs.
    async fn list_page(
        &self,
        prefix: &str,
        delimited: bool,
        token: Option<String>,
    ) -> Result<aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output, SourceError> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            self.stats.list_calls.fetch_add(1, Ordering::Relaxed);
            let mut req = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.clone());
            if delimited {
                req = req.delimiter("/");
            }
            match req.send().await {
                Ok(r) => return Ok(r),
                Err(e) if retryable(&e) && attempt < self.attempts => {
                    backoff(attempt, prefix).await
                }
                Err(e) => {
                    return Err(err(
                        &format!(
                            "listing s3://{}/{prefix} ({attempt} attempt(s))",
                            self.bucket
                        ),
                        describe(&e),
                    ));
                }
            }
        }
    }

    /// The child prefixes of `prefix` (which ends with `/` or is empty).
    async fn children(&self, prefix: &str) -> Result<Vec<String>, SourceError> {
        self.level(prefix, None).await
    }

    /// The child prefixes of `prefix`, and into `objects` (when given) the objects
    /// right at that level.
    async fn level(
        &self,
        prefix: &str,
        mut objects: Option<&mut Vec<Object>>,
    ) -> Result<Vec<String>, SourceError> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let resp = self.list_page(prefix, true, token).await?;
            for p in resp.common_prefixes() {
                if let Some(p) = p.prefix() {
                    out.push(p.to_string());
                }
            }
            if let Some(objects) = objects.as_deref_mut() {
                for o in resp.contents() {
                    if let Some(object) = self.object(o) {
                        objects.push(object);
                    }
                }
            }
            token = resp.next_continuation_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// Every object below `prefix`.
    async fn objects(&self, prefix: &str, out: &mut Vec<Object>) -> Result<(), SourceError> {
        let mut token = None;
        loop {
            let resp = self.list_page(prefix, false, token).await?;
            for o in resp.contents() {
                if let Some(object) = self.object(o) {
                    out.push(object);
                }
            }
            token = resp.next_continuation_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        Ok(())
    }

    /// A listed object, its key relative to the source's prefix.
    fn object(&self, o: &aws_sdk_s3::types::Object) -> Option<Object> {
        let key = o.key()?;
        let rel = key
            .strip_prefix(&self.prefix)
            .map(|k| k.trim_start_matches('/'))
            .unwrap_or(key);
        Some(Object {
            key: rel.to_string(),
            size: o.size().unwrap_or(0).max(0) as u64,
            version: format!("etag:{}", o.e_tag().unwrap_or("").trim_matches('"')),
            unreadable_name: None,
            stat_deferred: false,
        })
    }

    fn last_segment(p: &str) -> &str {
        p.trim_end_matches('/').rsplit('/').next().unwrap_or("")
    }

    /// Walks the hierarchy, pruning, and lists the objects of the kept day prefixes.
    async fn walk(&self) -> Result<Vec<Object>, SourceError> {
        let base = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let logs = if base.ends_with("AWSLogs/") {
            base.clone()
        } else {
            format!("{base}AWSLogs/")
        };
        let mut out = Vec::new();
        if !base.ends_with("AWSLogs/") && self.services == ["CloudTrail"] {
            // Beside `AWSLogs/`: the other sources' files (log-group exports,
            // EventBridge deliveries, Event History files), told by content, listed
            // whole (their keys cannot be pruned).
            for child in self.level(&base, Some(&mut out)).await? {
                if child != logs {
                    self.objects(&child, &mut out).await?;
                }
            }
        }
        let mut accounts = Vec::new();
        for child in self.children(&logs).await? {
            let name = Self::last_segment(&child);
            if name.starts_with("o-") {
                accounts.extend(self.children(&child).await?);
            } else {
                accounts.push(child);
            }
        }
        for acct in accounts {
            let id = Self::last_segment(&acct);
            if !self.prune.accounts.is_empty() && !self.prune.accounts.iter().any(|a| a == id) {
                continue;
            }
            for service in &self.services {
                for region in self.children(&format!("{acct}{service}/")).await? {
                    let r = Self::last_segment(&region);
                    if !self.prune.regions.is_empty() && !self.prune.regions.iter().any(|x| x == r)
                    {
                        continue;
                    }
                    if self.prune.from.is_none() && self.prune.to.is_none() {
                        self.objects(&region, &mut out).await?;
                        continue;
                    }
                    for day in self.days(&region).await? {
                        self.objects(&day, &mut out).await?;
                    }
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// The `YYYY/MM/DD/` prefixes of a region that may hold wanted events.
    async fn days(&self, region: &str) -> Result<Vec<String>, SourceError> {
        let lo = self.prune.from.unwrap_or(NaiveDate::MIN);
        let hi = self.prune.to.unwrap_or(NaiveDate::MAX);
        let mut out = Vec::new();
        for y in self.children(region).await? {
            let Ok(year) = Self::last_segment(&y).parse::<i32>() else {
                continue;
            };
            if year < lo.year() || year > hi.year() {
                continue;
            }
            for m in self.children(&y).await? {
                let Ok(month) = Self::last_segment(&m).parse::<u32>() else {
                    continue;
                };
                let first = NaiveDate::from_ymd_opt(year, month, 1);
                let next = if month == 12 {
                    NaiveDate::from_ymd_opt(year + 1, 1, 1)
                } else {
                    NaiveDate::from_ymd_opt(year, month + 1, 1)
                };
                match (first, next) {
                    (Some(f), Some(n)) if n > lo && f <= hi => {}
                    _ => continue,
                }
                for d in self.children(&m).await? {
                    let Ok(day) = Self::last_segment(&d).parse::<u32>() else {
                        continue;
                    };
                    if let Some(date) = NaiveDate::from_ymd_opt(year, month, day)
                        && date >= lo
                        && date <= hi
                    {
                        out.push(d);
                    }
                }
            }
        }
        Ok(out)
    }

    fn full_key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }
}

/// A short description of an SDK error (code and message, or the transport failure).
fn describe<E, R>(e: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_s3::error::SdkError;
    match e {
        SdkError::ServiceError(se) => format!(
            "{} {}",
            se.err().code().unwrap_or("service error"),
            se.err().message().unwrap_or("")
        )
        .trim()
        .to_string(),
        SdkError::TimeoutError(_) => "timed out".into(),
        SdkError::DispatchFailure(d) => match d.as_connector_error() {
            Some(c) => format!("connection failed: {c}"),
            None => "connection failed".into(),
        },
        other => {
            let mut msg = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            msg
        }
    }
}

/// Whether a failed request is worth another attempt (throttling, 5xx, transport).
fn retryable<E, R>(e: &aws_sdk_s3::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_s3::error::ProvideErrorMetadata,
{
    use aws_sdk_s3::error::SdkError;
    match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(se) => matches!(
            se.err().code(),
            Some(
                "SlowDown"
                    | "Throttling"
                    | "ThrottlingException"
                    | "RequestTimeout"
                    | "InternalError"
                    | "ServiceUnavailable"
                    | "RequestTimeTooSkewed"
            )
        ),
        _ => false,
    }
}

/// Sleeps a full-jitter backoff before attempt `attempt + 1` of the request named `what`.
async fn backoff(attempt: u32, what: &str) {
    // A random delay up to min(50 ms · 2^attempt, 5 s).
    let cap = (50u64 << attempt.min(7)).min(5_000);
    let seed = what.bytes().fold(u64::from(attempt), |h, b| {
        h.wrapping_mul(31).wrapping_add(u64::from(b))
    });
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos()))
        .unwrap_or(0);
    tokio::time::sleep(std::time::Duration::from_millis((seed ^ nanos) % (cap + 1))).await;
}

/// Default attempts of one request on top of the SDK's own retries: the SDK stops
/// retrying when its retry quota is spent (a long throttling episode), this loop does not.
const GET_ATTEMPTS: u32 = 10;

/// One GET, whole body, retried with exponential backoff and jitter.
async fn get(
    client: Client,
    bucket: String,
    key: String,
    stats: Arc<S3Stats>,
    attempts: u32,
) -> Result<Vec<u8>, String> {
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        stats.get_calls.fetch_add(1, Ordering::Relaxed);
        let result = client.get_object().bucket(&bucket).key(&key).send().await;
        let failure = match result {
            Ok(resp) => match resp.body.collect().await {
                Ok(body) => return Ok(body.into_bytes().to_vec()),
                Err(e) => (format!("reading the body: {e}"), true),
            },
            Err(e) => (describe(&e), retryable(&e)),
        };
        if !failure.1 || attempt >= attempts {
            return Err(format!(
                "GET s3://{bucket}/{key} failed after {attempt} attempt(s): {}",
                failure.0
            ));
        }
        backoff(attempt, &key).await;
    }
}

impl Source for S3Source {
    fn describe(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    fn list(&self) -> Result<Vec<Object>, SourceError> {
        self.runtime.block_on(self.walk())
    }

    fn read(&self, object: &Object) -> Result<Vec<u8>, String> {
        let planned = self
            .prefetched
            .planned
            .lock()
            .map(|p| p.contains(&object.key))
            .unwrap_or(false);
        if !planned {
            return self.runtime.block_on(get(
                self.client.clone(),
                self.bucket.clone(),
                self.full_key(&object.key),
                self.stats.clone(),
                self.attempts,
            ));
        }
        let p = &self.prefetched;
        let mut ready = p
            .ready
            .lock()
            .map_err(|_| "prefetch state poisoned".to_string())?;
        loop {
            if let Some(r) = ready.remove(&object.key) {
                p.consumed.fetch_add(1, Ordering::SeqCst);
                p.changed.notify_all();
                return r;
            }
            ready = p
                .changed
                .wait(ready)
                .map_err(|_| "prefetch state poisoned".to_string())?;
        }
    }

    fn metadata(&self, object: &Object, name: &str) -> Result<Option<String>, String> {
        let key = self.full_key(&object.key);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let result = self.runtime.block_on(
                self.client
                    .head_object()
                    .bucket(&self.bucket)
                    .key(&key)
                    .send(),
            );
            match result {
                Ok(r) => return Ok(r.metadata().and_then(|m| m.get(name)).cloned()),
                Err(e) if retryable(&e) && attempt < self.attempts => {
                    self.runtime.block_on(backoff(attempt, &key))
                }
                Err(e) => {
                    return Err(format!(
                        "HEAD s3://{}/{key} failed after {attempt} attempt(s): {}",
                        self.bucket,
                        describe(&e)
                    ));
                }
            }
        }
    }

    fn prefetch(&self, objects: &mut dyn Iterator<Item = &Object>) {
        let keys: Vec<String> = objects.map(|o| o.key.clone()).collect();
        if let Ok(mut planned) = self.prefetched.planned.lock() {
            planned.extend(keys.iter().cloned());
        }
        // Larger than the parser's chunk of objects, so that its threads never wait on
        // an object the window does not reach yet.
        let window = (self.concurrency * 4).max(256);
        let n = self.concurrency;
        let p = self.prefetched.clone();
        let client = self.client.clone();
        let bucket = self.bucket.clone();
        let prefix = self.prefix.clone();
        let stats = self.stats.clone();
        let attempts = self.attempts;
        self.runtime.spawn(async move {
            let sem = Arc::new(tokio::sync::Semaphore::new(n));
            for (i, key) in keys.into_iter().enumerate() {
                // Stay at most `window` objects ahead of the consumer.
                while i >= p.consumed.load(Ordering::SeqCst) + window {
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                }
                let Ok(permit) = sem.clone().acquire_owned().await else {
                    return;
                };
                let full = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}/{key}")
                };
                let (p, client, bucket, stats) =
                    (p.clone(), client.clone(), bucket.clone(), stats.clone());
                tokio::spawn(async move {
                    let r = get(client, bucket, full, stats, attempts).await;
                    drop(permit);
                    if let Ok(mut ready) = p.ready.lock() {
                        ready.insert(key, r);
                    }
                    p.changed.notify_all();
                });
            }
        });
    }
}
