//! An S3 bucket (or any S3-compatible store) in CloudTrail's layout, read at the object
//! rate of an organization trail: mostly tiny objects, where the cost is per request.
//!
//! - [`walk`]: the listing prunes before it lists objects (accounts, regions, days) and
//!   lists each level's prefixes concurrently; objects stream out in key order while
//!   the rest is listed. Only the `CloudTrail/` service is walked: digest and insight
//!   siblings are not inputs of `ingest`. Objects carry their ETag as version, so the
//!   ledger skips unchanged ones without a GET.
//! - [`fetch`]: GETs run ahead of the parser, in reading order, with the bytes
//!   downloaded but not yet read capped.
//! - [`control`]: how many requests are in flight (listing and GETs together) is
//!   measured, not fixed: it grows while more in flight does not queue, and shrinks on
//!   throttling. `--concurrency` is its upper bound.
//! - [`client`]: the SDK client, tuned for many small GETs; requests are retried here,
//!   with exponential backoff and jitter, on 5xx, throttling (`SlowDown`) and dropped
//!   connections. An object that still fails is that object's rejection, never the
//!   run's end.
//!
//! I/O runs on a private tokio runtime, on a thread of its own ([`client`]); callers
//! stay synchronous (tokio for I/O only, parsing on rayon).

mod client;
pub mod control;
mod fetch;
mod walk;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_s3::Client;
use futures_util::StreamExt;

pub use client::connect_client;
pub(crate) use client::runtime;
use client::{Failure, Fault, IoThread, backoff};
use control::{Control, Limiter, Outcome, Permit};
use fetch::Prefetch;
use walk::Leaf;

use crate::error::SourceError;
use crate::source::{Object, Prune, Requests, Source};

/// Counters of the requests made, for tests and the summary.
#[derive(Debug, Default)]
pub struct S3Stats {
    pub list_calls: AtomicU64,
    pub get_calls: AtomicU64,
    /// Attempts answered with throttling (503 SlowDown and kin).
    pub throttled: AtomicU64,
    /// Attempts that failed otherwise (a lost connection, a timeout, a server error).
    pub failed: AtomicU64,
    /// The most bytes downloaded ahead and not yet read at any time.
    pub peak_held: AtomicU64,
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
    /// The most requests in flight (the controller's upper bound).
    pub concurrency: usize,
}

/// Default upper bound of requests in flight.
pub const DEFAULT_CONCURRENCY: usize = 512;
/// Requests in flight at the start (the controller grows it from there).
const INITIAL_CONCURRENCY: usize = 16;
/// The least requests in flight the controller may cut to.
const MIN_CONCURRENCY: usize = 2;
/// Default attempts of one request.
const ATTEMPTS: u32 = 10;
/// Default cap on the bytes downloaded and not yet read.
pub const DEFAULT_BUFFER: u64 = 64 << 20;

/// A bucket and a prefix above `AWSLogs/`.
pub struct S3Source {
    inner: Arc<Inner>,
    io: IoThread,
    /// The runtime the client was made on (credential providers may hold tasks there).
    _setup: Option<tokio::runtime::Runtime>,
    prefetch: Arc<Prefetch>,
    pub stats: Arc<S3Stats>,
}

/// What the source's tasks share.
#[derive(Clone)]
pub(crate) struct Inner {
    client: Client,
    bucket: String,
    prefix: String,
    prune: Prune,
    /// The siblings listed under each account: `CloudTrail` (logs), and for `verify`
    /// also `CloudTrail-Digest`.
    services: Vec<&'static str>,
    attempts: u32,
    limiter: Arc<Limiter>,
    stats: Arc<S3Stats>,
}

/// Splits `s3://bucket/prefix` into bucket and prefix (no leading slash).
pub fn parse_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_string(), prefix.trim_matches('/').to_string()))
}

impl S3Source {
    /// Connects to `s3://bucket/prefix` with the standard AWS credential chain (env,
    /// profiles, SSO, IMDS) and `options`.
    pub fn connect(url: &str, options: &S3Options, prune: Prune) -> Result<Self, SourceError> {
        let (bucket, prefix) =
            parse_url(url).ok_or_else(|| SourceError::Unsupported(url.to_string()))?;
        let (client, rt) = connect_client(options)?;
        Ok(
            Self::with_runtime(client, &bucket, &prefix, prune, Some(rt))?
                .with_concurrency(options.concurrency)
                .with_attempts(options.max_attempts),
        )
    }

    /// A source over `bucket/prefix` with a ready client (tests, custom transports).
    pub fn new(
        client: Client,
        bucket: &str,
        prefix: &str,
        prune: Prune,
    ) -> Result<Self, SourceError> {
        Self::with_runtime(client, bucket, prefix, prune, None)
    }

    fn with_runtime(
        client: Client,
        bucket: &str,
        prefix: &str,
        prune: Prune,
        setup: Option<tokio::runtime::Runtime>,
    ) -> Result<Self, SourceError> {
        let stats = Arc::new(S3Stats::default());
        Ok(Self {
            inner: Arc::new(Inner {
                client: client::for_reading(&client),
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
                prune,
                services: vec!["CloudTrail"],
                attempts: ATTEMPTS,
                limiter: Limiter::new(Control::new(
                    INITIAL_CONCURRENCY,
                    MIN_CONCURRENCY,
                    DEFAULT_CONCURRENCY,
                )),
                stats: stats.clone(),
            }),
            io: IoThread::start()?,
            _setup: setup,
            prefetch: Arc::new(Prefetch::new(DEFAULT_BUFFER)),
            stats,
        })
    }

    /// The shared state, to be changed before any request (builders).
    fn inner_mut(&mut self) -> &mut Inner {
        Arc::make_mut(&mut self.inner)
    }

    /// Attempts per request.
    pub fn with_attempts(mut self, n: u32) -> Self {
        self.inner_mut().attempts = n.max(1);
        self
    }

    /// Lists the digest files (`CloudTrail-Digest/`) too, for `verify`.
    pub fn with_digests(mut self) -> Self {
        let inner = self.inner_mut();
        if !inner.services.contains(&"CloudTrail-Digest") {
            inner.services.push("CloudTrail-Digest");
        }
        self
    }

    /// The most requests in flight (listing and downloads together); the controller
    /// finds the number below it.
    pub fn with_concurrency(self, n: usize) -> Self {
        self.with_limits(INITIAL_CONCURRENCY, n)
    }

    /// Requests in flight at the start and at most.
    pub fn with_limits(mut self, initial: usize, max: usize) -> Self {
        let max = max.max(1);
        self.inner_mut().limiter = Limiter::new(Control::new(
            initial.min(max),
            MIN_CONCURRENCY.min(max),
            max,
        ));
        self
    }

    /// The cap on bytes downloaded ahead and not yet read (one object at a time when it
    /// alone is larger).
    pub fn with_buffer(mut self, bytes: u64) -> Self {
        self.prefetch = Arc::new(Prefetch::new(bytes));
        self
    }

    /// The concurrency controller's state (its limit, peak and cuts).
    pub fn control(&self) -> Control {
        self.inner.limiter.snapshot()
    }
}

impl Inner {
    /// The full key of a key relative to the source's prefix.
    fn full_key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        }
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

    /// Runs `op` until it succeeds, fails for good, or `attempts` are spent. Each
    /// attempt holds a permit of the limiter (the first may be given) and reports to
    /// it; backoff sleeps hold none.
    async fn retried<T, F, Fut>(
        &self,
        what: impl Fn() -> String,
        mut permit: Option<Permit>,
        mut op: F,
    ) -> Result<T, String>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let p = match permit.take() {
                Some(p) => p,
                None => self.limiter.acquire().await,
            };
            match op().await {
                Ok(v) => {
                    p.done(Outcome::Answered);
                    return Ok(v);
                }
                Err(f) => {
                    p.done(f.fault.outcome());
                    if f.fault == Fault::Throttled {
                        self.stats.throttled.fetch_add(1, Ordering::Relaxed);
                    } else {
                        self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    }
                    if !f.fault.retryable() || attempt >= self.attempts {
                        return Err(format!(
                            "{} failed after {attempt} attempt(s): {}",
                            what(),
                            f.message
                        ));
                    }
                    backoff(attempt, &what()).await;
                }
            }
        }
    }

    /// One page of ListObjectsV2.
    async fn list_page(
        &self,
        prefix: &str,
        delimited: bool,
        token: Option<String>,
    ) -> Result<aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output, SourceError> {
        let what = || format!("listing s3://{}/{prefix}", self.bucket);
        self.retried(what, None, || {
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
            async move { req.send().await.map_err(Failure::from) }
        })
        .await
        .map_err(SourceError::Remote)
    }

    /// One object's bytes (`key` relative to the source's prefix).
    async fn get(&self, key: &str, permit: Option<Permit>) -> Result<Vec<u8>, String> {
        let full = self.full_key(key);
        let what = || format!("GET s3://{}/{full}", self.bucket);
        self.retried(what, permit, || {
            self.stats.get_calls.fetch_add(1, Ordering::Relaxed);
            let req = self.client.get_object().bucket(&self.bucket).key(&full);
            async move {
                let resp = req.send().await?;
                let len = resp.content_length().unwrap_or(0).max(0) as usize;
                let mut body = resp.body;
                let mut bytes = Vec::with_capacity(len);
                loop {
                    match body.try_next().await {
                        Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
                        Ok(None) => return Ok(bytes),
                        Err(e) => {
                            return Err(Failure {
                                message: format!("reading the body: {e}"),
                                fault: Fault::Transient,
                            });
                        }
                    }
                }
            }
        })
        .await
    }

    /// Every object of the walk's leaves, in key order, in batches handed to `send`
    /// (which returns `false` to stop).
    async fn list_into(
        self: Arc<Self>,
        send: tokio::sync::mpsc::Sender<Vec<Object>>,
    ) -> Result<(), SourceError> {
        let leaves = self.leaves().await?;
        // Each leaf is listed by a task of its own: a request holds a permit of the
        // limiter until its future is polled again, and this task waits on the
        // consumer, who waits on downloads that need permits.
        let mut batches = futures_util::stream::iter(leaves)
            .map(|leaf| {
                let this = self.clone();
                tokio::spawn(async move {
                    match leaf {
                        Leaf::Prefix(p) => this.objects(&p).await,
                        Leaf::Object(o, _) => Ok(vec![o]),
                    }
                })
            })
            .buffered(walk::LEAVES_AHEAD);
        while let Some(batch) = batches.next().await {
            let batch = batch.map_err(|e| client::err("an S3 listing task", e))??;
            if !batch.is_empty() && send.send(batch).await.is_err() {
                // The consumer stopped.
                break;
            }
        }
        Ok(())
    }
}

impl Source for S3Source {
    fn describe(&self) -> String {
        if self.inner.prefix.is_empty() {
            format!("s3://{}", self.inner.bucket)
        } else {
            format!("s3://{}/{}", self.inner.bucket, self.inner.prefix)
        }
    }

    fn list(&self) -> Result<Vec<Object>, SourceError> {
        crate::source::collect_listing(self)
    }

    fn list_each(&self, sink: &mut dyn FnMut(Vec<Object>) -> bool) -> Result<(), SourceError> {
        // The walk runs as a task of its own, so that a sink that blocks (the ingest's
        // bounded queue) never holds requests in flight unpolled.
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        let task = self.io.spawn(self.inner.clone().list_into(tx));
        while let Some(batch) = rx.blocking_recv() {
            if !sink(batch) {
                break;
            }
        }
        drop(rx);
        self.io.wait(task)?
    }

    fn read(&self, object: &Object) -> Result<Vec<u8>, String> {
        match self.prefetch.take(&object.key) {
            Some(r) => r,
            None => {
                let (inner, key) = (self.inner.clone(), object.key.clone());
                self.io
                    .run(async move { inner.get(&key, None).await })
                    .map_err(|e| e.to_string())?
            }
        }
    }

    fn metadata(&self, object: &Object, name: &str) -> Result<Option<String>, String> {
        let inner = self.inner.clone();
        let key = inner.full_key(&object.key);
        let name = name.to_string();
        self.io
            .run(async move {
                let what = || format!("HEAD s3://{}/{key}", inner.bucket);
                inner
                    .retried(what, None, || {
                        let req = inner.client.head_object().bucket(&inner.bucket).key(&key);
                        let name = &name;
                        async move {
                            let r = req.send().await?;
                            Ok(r.metadata().and_then(|m| m.get(name)).cloned())
                        }
                    })
                    .await
            })
            .map_err(|e| e.to_string())?
    }

    fn requests(&self) -> Option<Requests> {
        let control = self.inner.limiter.snapshot();
        Some(Requests {
            lists: self.stats.list_calls.load(Ordering::Relaxed),
            gets: self.stats.get_calls.load(Ordering::Relaxed),
            throttled: self.stats.throttled.load(Ordering::Relaxed),
            peak_in_flight: self.inner.limiter.peak_in_flight() as u64,
            final_limit: control.limit() as u64,
            limit_cuts: control.cuts,
        })
    }

    fn prefetch(&self, objects: &mut dyn Iterator<Item = &Object>) {
        self.prefetch.plan(
            &self.inner,
            self.io.handle(),
            objects.map(|o| (o.key.clone(), o.size)),
        );
    }
}
