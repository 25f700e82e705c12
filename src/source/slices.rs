//! Incremental reading of an API source (a log group, an Event History region) in time
//! slices, planned from the ledger.
//!
//! Each slice read is one input object of the ledger, keyed
//! `<source>@<from>/<to>` (RFC 3339, UTC, seconds) with the version
//! `settled:<instant>`: events up to that instant were final when the slice was read
//! (the read time less the source's delivery delay). A later run reads what no slice
//! has settled: the uncovered part of the range it is asked for, including the
//! unsettled tail of the last run (the overlap), cut at UTC days. The ids of the events
//! a slice read in its unsettled tail are kept in its ledger entry, so that reading the
//! tail again adds only events that arrived late (they seed the run's dedup).
//!
//! A slice's events and its ledger entry are one object of one commit: a run killed
//! at any point leaves each slice wholly read or not at all, and the next run reads
//! again exactly what is missing.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};

use crate::lake::ledger::LedgerIndex;

/// A half-open time range, milliseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span {
    pub from: i64,
    pub to: i64,
}

const DAY_MS: i64 = 86_400_000;

fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn parse_instant(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc).timestamp_millis())
}

/// The ledger key of a slice of `source` (`logs:<group>`, `event-history:<region>`).
pub fn slice_key(source: &str, span: Span) -> String {
    format!("{source}@{}/{}", rfc3339(span.from), rfc3339(span.to))
}

/// The version of a slice read with events final up to `settled`.
pub fn settled_version(settled: i64) -> String {
    format!("settled:{}", rfc3339(settled))
}

/// The source and span of a slice key (`None`: not a slice key).
pub fn parse_slice_key(key: &str) -> Option<(&str, Span)> {
    let (source, range) = key.rsplit_once('@')?;
    let (from, to) = range.split_once('/')?;
    Some((
        source,
        Span {
            from: parse_instant(from)?,
            to: parse_instant(to)?,
        },
    ))
}

/// The provenance of an object's rows when the object is a slice (`source_object`:
/// the source without the range); `None` for any other key.
pub fn slice_source(key: &str) -> Option<&str> {
    if !(key.starts_with("logs:") || key.starts_with("event-history:")) {
        return None;
    }
    parse_slice_key(key).map(|(s, _)| s)
}

/// What a source has settled, from the ledger, and the ids kept at its edges.
#[derive(Debug, Default, Clone)]
pub struct Settled {
    /// Settled spans, sorted, merged.
    pub spans: Vec<Span>,
    /// Per unsettled tail (its span): the ids of the events read in it.
    pub tails: Vec<(Span, Vec<String>)>,
}

impl Settled {
    /// Reads the ledger's slices of `source`.
    pub fn of(source: &str, ledger: &LedgerIndex) -> Self {
        let mut spans = Vec::new();
        let mut tails = Vec::new();
        for (key, version, ids) in ledger.slices(source) {
            let Some((_, span)) = parse_slice_key(key) else {
                continue;
            };
            let settled = version
                .strip_prefix("settled:")
                .and_then(parse_instant)
                .unwrap_or(span.from)
                .clamp(span.from, span.to);
            if settled > span.from {
                spans.push(Span {
                    from: span.from,
                    to: settled,
                });
            }
            if settled < span.to {
                tails.push((
                    Span {
                        from: settled,
                        to: span.to,
                    },
                    ids.to_vec(),
                ));
            }
        }
        Self {
            spans: merge(spans),
            tails,
        }
    }

    /// The parts of `want` not settled, cut at UTC days (each part one slice).
    pub fn plan(&self, want: Span) -> Vec<Span> {
        let mut gaps = Vec::new();
        let mut at = want.from;
        for s in &self.spans {
            if s.to <= at || s.from >= want.to {
                continue;
            }
            if s.from > at {
                gaps.push(Span {
                    from: at,
                    to: s.from,
                });
            }
            at = at.max(s.to);
        }
        if at < want.to {
            gaps.push(Span {
                from: at,
                to: want.to,
            });
        }
        let mut out = Vec::new();
        for g in gaps {
            let mut from = g.from;
            while from < g.to {
                let day_end = (from.div_euclid(DAY_MS) + 1) * DAY_MS;
                let to = day_end.min(g.to);
                out.push(Span { from, to });
                from = to;
            }
        }
        out
    }

    /// The ids read in the unsettled tails that `slices` read again.
    pub fn edge_ids(&self, slices: &[Span]) -> Vec<String> {
        self.tails
            .iter()
            .filter(|(t, _)| slices.iter().any(|s| s.from < t.to && t.from < s.to))
            .flat_map(|(_, ids)| ids.iter().cloned())
            .collect()
    }
}

fn merge(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort();
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    for s in spans {
        match out.last_mut() {
            Some(last) if s.from <= last.to => last.to = last.to.max(s.to),
            _ => out.push(s),
        }
    }
    out
}

/// What reading a slice gave: its pages, a JSON line each; the instant up to which its
/// events were final; the ids read after it (the unsettled tail).
pub struct SliceRead {
    pub body: Vec<u8>,
    pub settled: i64,
    pub ids: Vec<String>,
}

/// Reads the pages of a slice one after another: `page(token, n)` makes request `n`
/// (1-based; its slot is taken from `limit` first) and returns the page as JSON and the
/// next token. Ends at the last page, or when the API hands back the token it was
/// given (a loop that would never end).
pub fn read_pages(
    limit: &RateLimit,
    mut page: impl FnMut(Option<String>, u64) -> Result<(serde_json::Value, Option<String>), String>,
) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    let mut token: Option<String> = None;
    let mut n = 0u64;
    loop {
        std::thread::sleep(limit.slot());
        n += 1;
        let (json, next) = page(token.clone(), n)?;
        serde_json::to_writer(&mut body, &json).map_err(|e| e.to_string())?;
        body.push(b'\n');
        if next.is_none() || next == token {
            return Ok(body);
        }
        token = next;
    }
}

/// What [`super::Source::fetch`] hands over for the slice at `key`: `read(source,
/// span)` reads it.
pub fn fetch_slice(
    key: &str,
    read: impl FnOnce(&str, Span) -> Result<SliceRead, String>,
) -> Result<super::Fetched, String> {
    let (source, span) = parse_slice_key(key)
        .ok_or_else(|| format!("{key} is not a time slice of an API source"))?;
    let r = read(source, span)?;
    Ok(super::Fetched {
        stat: Some((r.body.len() as u64, settled_version(r.settled))),
        body: super::Body::Bytes(r.body),
        ids: r.ids,
    })
}

/// The bytes of a fetched slice ([`super::Source::read`] of an API source).
pub fn fetched_bytes(fetched: Result<super::Fetched, String>) -> Result<Vec<u8>, String> {
    match fetched?.body {
        super::Body::Bytes(b) => Ok(b),
        _ => Err("an API source's slice is read whole".into()),
    }
}

/// The ledger objects of planned slices, in key order.
pub fn slice_objects(slices: impl IntoIterator<Item = (String, Span)>) -> Vec<super::Object> {
    let mut objects: Vec<super::Object> = slices
        .into_iter()
        .map(|(source, span)| super::Object {
            key: slice_key(&source, span),
            size: 0,
            version: String::new(),
            unreadable_name: None,
            stat_deferred: false,
        })
        .collect();
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    objects
}

/// At most `per_second` requests a second, shared by the threads of one source (the
/// API's documented rate: throttling is still retried, this keeps it rare).
#[derive(Debug)]
pub struct RateLimit {
    gap: Duration,
    next: Mutex<Instant>,
}

impl RateLimit {
    pub fn new(per_second: f64) -> Self {
        let gap = if per_second > 0.0 {
            Duration::from_secs_f64(1.0 / per_second)
        } else {
            Duration::ZERO
        };
        Self {
            gap,
            next: Mutex::new(Instant::now()),
        }
    }

    /// How long the caller must wait before its request (its slot is taken).
    pub fn slot(&self) -> Duration {
        let Ok(mut next) = self.next.lock() else {
            return self.gap;
        };
        let now = Instant::now();
        let at = (*next).max(now);
        *next = at + self.gap;
        at - now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn index(entries: &[(&str, &str, &[&str])]) -> LedgerIndex {
        let mut idx = LedgerIndex::default();
        for (key, version, ids) in entries {
            idx.note_slice(key, version, ids.iter().map(|s| s.to_string()).collect());
        }
        idx
    }

    #[test]
    fn keys_round_trip() {
        let span = Span {
            from: 20_000 * DAY_MS,
            to: 20_000 * DAY_MS + 5 * H,
        };
        let key = slice_key("logs:/aws/ce/access", span);
        assert_eq!(
            key,
            "logs:/aws/ce/access@2024-10-04T00:00:00Z/2024-10-04T05:00:00Z"
        );
        assert_eq!(parse_slice_key(&key), Some(("logs:/aws/ce/access", span)));
        assert_eq!(slice_source(&key), Some("logs:/aws/ce/access"));
        assert_eq!(slice_source("exports/a@b/c.gz"), None);
    }

    #[test]
    fn a_rerun_reads_what_is_not_settled_and_knows_the_tail() {
        let d = 20_000 * DAY_MS;
        let first = slice_key(
            "logs:g",
            Span {
                from: d,
                to: d + 10 * H,
            },
        );
        // Read at d + 10 h, settled up to 15 minutes before.
        let settled = settled_version(d + 10 * H - H / 4);
        let idx = index(&[(&first, &settled, &["a", "b"])]);
        let s = Settled::of("logs:g", &idx);
        assert_eq!(
            s.spans,
            vec![Span {
                from: d,
                to: d + 10 * H - H / 4
            }]
        );
        // The next run, asked for two days: the tail of the first read, then on.
        let plan = s.plan(Span {
            from: d,
            to: d + 2 * DAY_MS,
        });
        assert_eq!(
            plan,
            vec![
                Span {
                    from: d + 10 * H - H / 4,
                    to: d + DAY_MS
                },
                Span {
                    from: d + DAY_MS,
                    to: d + 2 * DAY_MS
                },
            ]
        );
        assert_eq!(s.edge_ids(&plan), vec!["a".to_string(), "b".to_string()]);
        // Another source's slices are not this one's.
        assert!(Settled::of("logs:other", &idx).spans.is_empty());
        // A range inside what is settled plans nothing.
        assert!(
            s.plan(Span {
                from: d + H,
                to: d + 2 * H
            })
            .is_empty()
        );
    }

    #[test]
    fn settled_spans_merge_and_gaps_between_them_are_read() {
        let d = 20_000 * DAY_MS;
        let a = slice_key("event-history:eu-west-1", Span { from: d, to: d + H });
        let b = slice_key(
            "event-history:eu-west-1",
            Span {
                from: d + 3 * H,
                to: d + 4 * H,
            },
        );
        let idx = index(&[
            (&a, &settled_version(d + H), &[]),
            (&b, &settled_version(d + 4 * H), &[]),
        ]);
        let s = Settled::of("event-history:eu-west-1", &idx);
        assert_eq!(
            s.plan(Span {
                from: d,
                to: d + 5 * H
            }),
            vec![
                Span {
                    from: d + H,
                    to: d + 3 * H
                },
                Span {
                    from: d + 4 * H,
                    to: d + 5 * H
                },
            ]
        );
    }

    #[test]
    fn the_rate_limit_spaces_slots() {
        let r = RateLimit::new(10.0);
        let waits: Vec<Duration> = (0..3).map(|_| r.slot()).collect();
        assert!(waits[0] < Duration::from_millis(20));
        assert!(waits[2] >= Duration::from_millis(150), "{waits:?}");
    }
}
