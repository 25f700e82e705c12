//! Anomaly detection of SPEC §6: hourly volume against a robust baseline (median and
//! MAD of the role's non-zero hours in the window before), and values first seen in the
//! range (source IP, action, engineer) that the role's history does not have.

use std::collections::{BTreeMap, HashMap, HashSet};

use polars::prelude::*;

use crate::query::widgets::Dashboard;

const HOUR_US: i64 = 3_600_000_000;
const DAY_US: i64 = 86_400_000_000;

/// One anomaly row.
#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    pub kind: &'static str,
    pub role: String,
    /// µs since the epoch.
    pub time: i64,
    pub value: Option<String>,
    pub observed: i64,
    pub expected: f64,
    pub score: Option<f64>,
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Parameters of the detectors.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub from: i64,
    pub to: i64,
    pub lake_start: i64,
    pub window_hours: i64,
    pub min_hours: usize,
    pub score: f64,
    pub min_excess: f64,
    pub lookback_days: i64,
}

/// The `volume` family over hourly counts per role (`(role, hour_idx) → count`).
pub fn volume(hourly: &BTreeMap<(String, i64), i64>, p: &Params) -> Vec<Anomaly> {
    let mut by_role: BTreeMap<&str, Vec<(i64, i64)>> = BTreeMap::new();
    for ((role, hour), n) in hourly {
        by_role.entry(role).or_default().push((*hour, *n));
    }
    let first_hour = p.lake_start.div_euclid(HOUR_US);
    let mut out = Vec::new();
    for (role, hours) in by_role {
        // `hours` is sorted by hour (BTreeMap order).
        for (i, &(h, x)) in hours.iter().enumerate() {
            let start = h * HOUR_US;
            if start < p.from || start >= p.to || x <= 0 {
                continue;
            }
            let lo = (h - p.window_hours).max(first_hour);
            let mut base: Vec<f64> = hours[..i]
                .iter()
                .rev()
                .take_while(|(hh, _)| *hh >= lo)
                .filter(|(_, n)| *n > 0)
                .map(|(_, n)| *n as f64)
                .collect();
            if base.len() < p.min_hours {
                continue;
            }
            base.sort_by(f64::total_cmp);
            let expected = median(&base);
            let mut dev: Vec<f64> = base.iter().map(|v| (v - expected).abs()).collect();
            dev.sort_by(f64::total_cmp);
            let scale = (1.4826 * median(&dev)).max(1.0);
            let score = (x as f64 - expected) / scale;
            if score >= p.score && x as f64 - expected >= p.min_excess {
                out.push(Anomaly {
                    kind: "volume",
                    role: role.to_string(),
                    time: start,
                    value: None,
                    observed: x,
                    expected,
                    score: Some(round2(score)),
                });
            }
        }
    }
    out
}

/// One event as the first-seen detectors see it.
pub struct Seen<'a> {
    pub role: &'a str,
    pub time: i64,
    pub values: [Option<&'a str>; 3],
}

/// The first-seen families (`new_source_ip`, `new_action`, `new_engineer`).
pub fn first_seen<'a>(events: impl Iterator<Item = Seen<'a>>, p: &Params) -> Vec<Anomaly> {
    const KINDS: [&str; 3] = ["new_source_ip", "new_action", "new_engineer"];
    let hist_from = (p.from - p.lookback_days * DAY_US).max(p.lake_start);
    let mut history: HashMap<&str, [HashSet<&str>; 3]> = HashMap::new();
    let mut has_history: HashSet<&str> = HashSet::new();
    // (role, kind, value) → (first time, count)
    let mut in_range: BTreeMap<(&str, usize, &str), (i64, i64)> = BTreeMap::new();
    for e in events {
        if e.time >= hist_from && e.time < p.from {
            has_history.insert(e.role);
            let h = history.entry(e.role).or_default();
            for (k, v) in e.values.iter().enumerate() {
                if let Some(v) = v {
                    h[k].insert(v);
                }
            }
        } else if e.time >= p.from && e.time < p.to {
            for (k, v) in e.values.iter().enumerate() {
                if let Some(v) = v {
                    let slot = in_range.entry((e.role, k, v)).or_insert((e.time, 0));
                    slot.0 = slot.0.min(e.time);
                    slot.1 += 1;
                }
            }
        }
    }
    let mut out = Vec::new();
    for ((role, k, value), (time, n)) in in_range {
        if !has_history.contains(role) {
            continue;
        }
        if history.get(role).is_some_and(|h| h[k].contains(value)) {
            continue;
        }
        out.push(Anomaly {
            kind: KINDS[k],
            role: role.to_string(),
            time,
            value: Some(value.to_string()),
            observed: n,
            expected: 0.0,
            score: None,
        });
    }
    out
}

/// Sorts anomalies by time, kind, role, value (nulls last).
pub fn sort(rows: &mut [Anomaly]) {
    rows.sort_by(|a, b| {
        a.time
            .cmp(&b.time)
            .then(a.kind.cmp(b.kind))
            .then(a.role.cmp(&b.role))
            .then(match (&a.value, &b.value) {
                (Some(x), Some(y)) => x.cmp(y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            })
    });
}

/// The anomalies widget over a dashboard's view.
pub fn anomalies(d: &Dashboard) -> PolarsResult<DataFrame> {
    let a = &d.config.anomalies;
    let p = Params {
        from: d.view.from.map_or(i64::MIN, |t| t.timestamp_micros()),
        to: d.view.to.map_or(i64::MAX, |t| t.timestamp_micros()),
        lake_start: d.lake_start.unwrap_or(i64::MIN),
        window_hours: i64::from(a.volume_window_days) * 24,
        min_hours: a.volume_min_hours as usize,
        score: a.volume_score,
        min_excess: a.volume_min_excess,
        lookback_days: i64::from(a.first_seen_lookback_days),
    };
    let ev = d.events();
    let role = ev.column("role")?.str()?;
    let time = ev.column("event_time")?.cast(&DataType::Int64)?;
    let time = time.i64()?;
    let hour = ev.column("hour_idx")?.i64()?;
    let ip = ev.column("source_ip")?.str()?;
    let action = ev.column("action")?.str()?;
    let engineer = ev.column("engineer")?.str()?;
    let mut hourly: BTreeMap<(String, i64), i64> = BTreeMap::new();
    let mut seen = Vec::with_capacity(ev.height());
    for i in 0..ev.height() {
        let (Some(r), Some(t), Some(h)) = (role.get(i), time.get(i), hour.get(i)) else {
            continue;
        };
        *hourly.entry((r.to_string(), h)).or_default() += 1;
        seen.push(Seen {
            role: r,
            time: t,
            values: [ip.get(i), action.get(i), engineer.get(i)],
        });
    }
    let mut rows = volume(&hourly, &p);
    rows.extend(first_seen(seen.into_iter(), &p));
    sort(&mut rows);
    to_frame(&rows)
}

/// The widget's columns: `kind, role, time, value, observed, expected, score`.
pub fn to_frame(rows: &[Anomaly]) -> PolarsResult<DataFrame> {
    let time = Series::new(
        "time".into(),
        rows.iter().map(|r| r.time).collect::<Vec<_>>(),
    )
    .cast(&DataType::Datetime(
        TimeUnit::Microseconds,
        Some(TimeZone::UTC),
    ))?;
    DataFrame::new(
        rows.len(),
        vec![
            Column::new(
                "kind".into(),
                rows.iter().map(|r| r.kind).collect::<Vec<_>>(),
            ),
            Column::new(
                "role".into(),
                rows.iter().map(|r| r.role.as_str()).collect::<Vec<_>>(),
            ),
            time.into(),
            Column::new(
                "value".into(),
                rows.iter().map(|r| r.value.as_deref()).collect::<Vec<_>>(),
            ),
            Column::new(
                "observed".into(),
                rows.iter().map(|r| r.observed).collect::<Vec<_>>(),
            ),
            Column::new(
                "expected".into(),
                rows.iter().map(|r| r.expected).collect::<Vec<_>>(),
            ),
            Column::new(
                "score".into(),
                rows.iter().map(|r| r.score).collect::<Vec<_>>(),
            ),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        Params {
            from: 0,
            to: i64::MAX,
            lake_start: 0,
            window_hours: 672,
            min_hours: 5,
            score: 3.5,
            min_excess: 5.0,
            lookback_days: 30,
        }
    }

    #[test]
    fn volume_spike_against_median_and_mad() {
        // Hours 0..10 with 4,5,6,5,4,5,6,5,4,5 then 30 at hour 10.
        let mut h = BTreeMap::new();
        for (i, n) in [4, 5, 6, 5, 4, 5, 6, 5, 4, 5, 30].iter().enumerate() {
            h.insert(("CE-SRE".to_string(), i as i64), *n);
        }
        let rows = volume(&h, &params());
        assert_eq!(rows.len(), 1, "{rows:?}");
        let r = &rows[0];
        assert_eq!((r.observed, r.expected, r.time), (30, 5.0, 10 * HOUR_US));
        // MAD of the 10 baseline hours = 0.5 → scale max(0.7413, 1) = 1 → score 25.
        assert_eq!(r.score, Some(25.0));
    }

    #[test]
    fn too_little_history_gives_no_verdict() {
        let mut h = BTreeMap::new();
        for (i, n) in [4, 5, 6, 5, 40].iter().enumerate() {
            h.insert(("CE-SRE".to_string(), i as i64), *n);
        }
        assert!(volume(&h, &params()).is_empty());
    }

    #[test]
    fn first_seen_needs_history() {
        let p = Params {
            from: 100 * DAY_US,
            ..params()
        };
        let ev = |role, day: i64, ip| Seen {
            role,
            time: day * DAY_US,
            values: [Some(ip), None, None],
        };
        let rows = first_seen(
            vec![
                ev("CE-SRE", 90, "1.1.1.1"),
                ev("CE-SRE", 101, "1.1.1.1"),
                ev("CE-SRE", 102, "2.2.2.2"),
                ev("CE-SRE", 103, "2.2.2.2"),
                ev("CE-Data", 101, "3.3.3.3"),
                ev("CE-Admin", 60, "4.4.4.4"),
                ev("CE-Admin", 101, "5.5.5.5"),
            ]
            .into_iter(),
            &p,
        );
        // CE-Data has no history; CE-Admin's history is older than 30 days.
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(
            (rows[0].value.as_deref(), rows[0].observed, rows[0].time),
            (Some("2.2.2.2"), 2, 102 * DAY_US)
        );
    }
}
