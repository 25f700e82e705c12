//! `event-history:<region>[,<region>…]`: the 90 days of management events every
//! account keeps, read through CloudTrail's `LookupEvents`, incrementally.
//!
//! Each region is read in day slices ([`super::slices`]), its pages one after another
//! (`NextToken`, 50 events a page), at most 2 requests a second per region (the API's
//! documented limit; throttling is retried by the SDK with backoff and jitter). A
//! slice's body is its pages as `LookupEvents` returns them (`{"Events":[…]}` a line),
//! which the parser reads like `aws cloudtrail lookup-events` output; its rows' source
//! is `event-history:<region>`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use aws_sdk_cloudtrail::Client;
use aws_sdk_cloudtrail::primitives::DateTime;

use super::log_group::{ApiOptions, ClientOptions, sdk_config};
use super::slices::{
    RateLimit, Settled, SliceRead, Span, fetch_slice, fetched_bytes, read_pages, slice_objects,
};
use super::{Fetched, Object, Source};
use crate::error::SourceError;
use crate::lake::ledger::LedgerIndex;

/// How far back Event History goes.
pub const RETENTION_MS: i64 = 90 * 86_400_000;

/// `LookupEvents`' rate: 2 requests a second per region and account.
pub const RATE: f64 = 2.0;

/// Events per page (the API's maximum).
const PAGE_EVENTS: i32 = 50;

/// One region's client and rate.
struct Region {
    client: Client,
    limit: RateLimit,
}

/// Event History of one or more regions.
pub struct EventHistorySource {
    regions: BTreeMap<String, Region>,
    runtime: tokio::runtime::Runtime,
    options: ApiOptions,
    plan: Mutex<Option<Vec<(String, Span)>>>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl EventHistorySource {
    /// Connects to each of `regions` with the standard credential chain.
    pub fn connect(
        regions: &[String],
        client_options: &ClientOptions,
        options: ApiOptions,
    ) -> Result<Self, SourceError> {
        if regions.is_empty() {
            return Err(SourceError::Unsupported(
                "event-history: name at least one region (event-history:eu-west-1)".into(),
            ));
        }
        let runtime = super::s3::runtime()?;
        let mut clients = Vec::new();
        for r in regions {
            let client = runtime.block_on(async {
                let mut o = client_options.clone();
                o.region = Some(r.clone());
                let shared = sdk_config(&o).await;
                let b = aws_sdk_cloudtrail::config::Builder::from(&shared).retry_config(
                    aws_sdk_cloudtrail::config::retry::RetryConfig::standard()
                        .with_max_attempts(client_options.max_attempts.max(1)),
                );
                Client::from_conf(b.build())
            });
            clients.push((r.clone(), client));
        }
        Ok(Self::with_clients(clients, runtime, options))
    }

    /// A source with ready clients, one per region (tests, custom transports).
    pub fn with_clients(
        clients: Vec<(String, Client)>,
        runtime: tokio::runtime::Runtime,
        options: ApiOptions,
    ) -> Self {
        let regions = clients
            .into_iter()
            .map(|(r, client)| {
                (
                    r,
                    Region {
                        client,
                        limit: RateLimit::new(options.rate),
                    },
                )
            })
            .collect();
        Self {
            regions,
            runtime,
            options,
            plan: Mutex::new(None),
        }
    }

    fn name(region: &str) -> String {
        format!("event-history:{region}")
    }

    /// Reads one slice of `region`: every page, in order.
    fn read_slice(&self, region: &str, span: Span) -> Result<SliceRead, String> {
        let r = self
            .regions
            .get(region)
            .ok_or_else(|| format!("event-history: no client for region {region}"))?;
        let settled = (now_ms() - self.options.overlap_ms).clamp(span.from, span.to);
        let mut ids = Vec::new();
        let body = read_pages(&r.limit, |token, n| {
            let resp = self
                .runtime
                .block_on(
                    r.client
                        .lookup_events()
                        .start_time(DateTime::from_millis(span.from))
                        // The API's end is inclusive.
                        .end_time(DateTime::from_millis(span.to - 1))
                        .max_results(self.options.page_size.unwrap_or(PAGE_EVENTS))
                        .set_next_token(token)
                        .send(),
                )
                .map_err(|e| {
                    format!(
                        "LookupEvents in {region} (page {n}): {}",
                        aws_sdk_cloudtrail::error::DisplayErrorContext(&e)
                    )
                })?;
            let events: Vec<serde_json::Value> = resp
                .events()
                .iter()
                .map(|e| {
                    let late = e
                        .event_time()
                        .is_some_and(|t| t.to_millis().is_ok_and(|ms| ms >= settled));
                    if late && let Some(id) = e.event_id() {
                        ids.push(id.to_string());
                    }
                    serde_json::json!({
                        "EventId": e.event_id(),
                        "EventName": e.event_name(),
                        "CloudTrailEvent": e.cloud_trail_event(),
                    })
                })
                .collect();
            let page = serde_json::json!({ "Events": events });
            Ok((page, resp.next_token().map(str::to_string)))
        })?;
        Ok(SliceRead { body, settled, ids })
    }
}

impl Source for EventHistorySource {
    fn describe(&self) -> String {
        format!(
            "event-history:{}",
            self.regions.keys().cloned().collect::<Vec<_>>().join(",")
        )
    }

    fn resume(&self, ledger: &LedgerIndex) -> Result<Vec<String>, SourceError> {
        let now = now_ms();
        let from = self.options.from.unwrap_or(now - RETENTION_MS);
        let to = self.options.to.unwrap_or(now).min(now);
        let mut plan = Vec::new();
        let mut ids = Vec::new();
        for region in self.regions.keys() {
            let settled = Settled::of(&Self::name(region), ledger);
            let spans = if from < to {
                settled.plan(Span { from, to })
            } else {
                Vec::new()
            };
            ids.extend(settled.edge_ids(&spans));
            plan.extend(spans.into_iter().map(|s| (region.clone(), s)));
        }
        if let Ok(mut p) = self.plan.lock() {
            *p = Some(plan);
        }
        Ok(ids)
    }

    fn list(&self) -> Result<Vec<Object>, SourceError> {
        let plan = self
            .plan
            .lock()
            .ok()
            .and_then(|p| p.clone())
            .unwrap_or_default();
        Ok(slice_objects(
            plan.into_iter()
                .map(|(region, span)| (Self::name(&region), span)),
        ))
    }

    fn read(&self, object: &Object) -> Result<Vec<u8>, String> {
        fetched_bytes(self.fetch(object, u64::MAX))
    }

    fn fetch(&self, object: &Object, _max_bytes: u64) -> Result<Fetched, String> {
        fetch_slice(&object.key, |source, span| {
            let region = source.strip_prefix("event-history:").unwrap_or(source);
            self.read_slice(region, span)
        })
    }
}
