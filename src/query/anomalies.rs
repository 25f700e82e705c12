//! Anomaly detection of SPEC §6: hourly volume against a robust baseline (median and
//! MAD of the role's non-zero hours in the window before), and values first seen in the
//! range (source IP, action, engineer) that the role's history does not have.

use std::collections::{BTreeMap, HashSet};

use polars::prelude::*;

use crate::query::CollectOn as _;
use crate::query::widgets::Dashboard;

const HOUR_US: i64 = 3_600_000_000;
const DAY_US: i64 = 86_400_000_000;

/// The first-seen families: new source IP, action, engineer.
pub const FIRST_SEEN_KINDS: [&str; 3] = ["new_source_ip", "new_action", "new_engineer"];

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
///
/// Each role's baseline window (the non-zero hourly counts of the `window_hours`
/// before the hour, not before the lake's start) slides forward hour by hour, kept as a
/// sorted vector: one insertion and a few removals per hour instead of a sort, and the
/// median absolute deviation read by merging the two sides of the median.
pub fn volume(hourly: &BTreeMap<(String, i64), i64>, p: &Params) -> Vec<Anomaly> {
    let mut by_role: BTreeMap<&str, Vec<(i64, i64)>> = BTreeMap::new();
    for ((role, hour), n) in hourly {
        by_role.entry(role).or_default().push((*hour, *n));
    }
    let first_hour = p.lake_start.div_euclid(HOUR_US);
    let mut out = Vec::new();
    for (role, hours) in by_role {
        // `hours` is sorted by hour (BTreeMap order); `window` holds the positive counts
        // of hours[oldest..i] that are not older than the window's start, sorted.
        let mut window: Vec<i64> = Vec::new();
        let mut oldest = 0;
        for (i, &(h, x)) in hours.iter().enumerate() {
            if i > 0 && hours[i - 1].1 > 0 {
                let v = hours[i - 1].1;
                let at = window.partition_point(|w| *w < v);
                window.insert(at, v);
            }
            let lo = (h - p.window_hours).max(first_hour);
            while oldest < i && hours[oldest].0 < lo {
                let v = hours[oldest].1;
                if v > 0 {
                    let at = window.partition_point(|w| *w < v);
                    window.remove(at);
                }
                oldest += 1;
            }
            let start = h * HOUR_US;
            if start < p.from || start >= p.to || x <= 0 || window.len() < p.min_hours {
                continue;
            }
            let expected = median_of_sorted(&window);
            let scale = (1.4826 * mad_of_sorted(&window, expected)).max(1.0);
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

/// The median of sorted counts.
fn median_of_sorted(sorted: &[i64]) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        sorted[n / 2] as f64
    } else {
        (sorted[n / 2 - 1] as f64 + sorted[n / 2] as f64) / 2.0
    }
}

/// The median of `|v − m|` over sorted counts: the deviations of the values below `m`
/// (walking down) and of the others (walking up) are two ascending runs, merged only as
/// far as the middle.
fn mad_of_sorted(sorted: &[i64], m: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return 0.0;
    }
    let dev = |v: i64| (v as f64 - m).abs();
    let split = sorted.partition_point(|v| (*v as f64) < m);
    let (mut down, mut up) = (split, split);
    let mut merged = Vec::with_capacity(n / 2 + 1);
    while merged.len() <= n / 2 {
        let take_down = match (down.checked_sub(1), up < n) {
            (Some(d), true) => dev(sorted[d]) <= dev(sorted[up]),
            (Some(_), false) => true,
            (None, _) => false,
        };
        if take_down {
            down -= 1;
            merged.push(dev(sorted[down]));
        } else {
            merged.push(dev(sorted[up]));
            up += 1;
        }
    }
    if n % 2 == 1 {
        merged[n / 2]
    } else {
        (merged[n / 2 - 1] + merged[n / 2]) / 2.0
    }
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
pub fn anomalies(d: &Dashboard, engine: Engine) -> PolarsResult<DataFrame> {
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
    let ev = d.view_frame();
    // Hourly counts per role: a group-by in polars (on the role's categorical codes;
    // the few result rows are cast to text), then a small loop in Rust.
    let hourly_df = ev
        .clone()
        .filter(col("role").is_not_null())
        .group_by([col("role"), col("hour_idx")])
        .agg([len().cast(DataType::Int64).alias("n")])
        .with_column(col("role").cast(DataType::String))
        .collect_on(engine)?;
    let mut hourly: BTreeMap<(String, i64), i64> = BTreeMap::new();
    {
        let role = hourly_df.column("role")?.str()?;
        let hour = hourly_df.column("hour_idx")?.i64()?;
        let n = hourly_df.column("n")?.i64()?;
        for i in 0..hourly_df.height() {
            if let (Some(r), Some(h), Some(c)) = (role.get(i), hour.get(i), n.get(i)) {
                hourly.insert((r.to_string(), h), c);
            }
        }
    }
    // First-seen candidates: per role and value, the history flag, the first time in
    // range and the count in range, aggregated by polars.
    let hist_from = (p.from.saturating_sub(p.lookback_days * DAY_US)).max(p.lake_start);
    let t = col("event_time").dt().timestamp(TimeUnit::Microseconds);
    let in_hist = t
        .clone()
        .gt_eq(lit(hist_from))
        .and(t.clone().lt(lit(p.from)));
    let in_rng = t.clone().gt_eq(lit(p.from)).and(t.clone().lt(lit(p.to)));
    let roles_with_history: HashSet<String> = {
        let h = ev
            .clone()
            .filter(col("role").is_not_null().and(in_hist.clone()))
            .select([col("role").unique().cast(DataType::String)])
            .collect_on(engine)?;
        h.column("role")?
            .str()?
            .iter()
            .flatten()
            .map(str::to_string)
            .collect()
    };
    let mut seen_rows = Vec::new();
    // Without history no value can be first seen (e.g. a range starting at the lake's start).
    let families: &[&str] = if roles_with_history.is_empty() {
        &[]
    } else {
        &["source_ip", "action", "engineer"]
    };
    let frame = if families.is_empty() {
        DataFrame::empty()
    } else {
        ev.filter(col("role").is_not_null())
            .select([
                col("role"),
                col("source_ip"),
                col("event_source"),
                col("event_name"),
                col("engineer"),
                t.alias("t_us"),
                in_hist.alias("in_hist"),
                in_rng.alias("in_rng"),
            ])
            .collect_on(engine)?
    };
    for (k, family) in families.iter().enumerate() {
        // Grouped on the stored columns (categorical codes, or source and name for
        // actions); only the result rows are turned into text.
        let (keys, value) = match *family {
            "action" => (
                vec![col("event_source"), col("event_name")],
                concat_str([col("event_source"), col("event_name")], ":", false),
            ),
            other => (vec![col(other)], col(other).cast(DataType::String)),
        };
        let not_null = keys
            .iter()
            .fold(lit(true), |acc, k| acc.and(k.clone().is_not_null()));
        let mut group_keys = vec![col("role")];
        group_keys.extend(keys);
        let g = frame
            .clone()
            .lazy()
            .filter(not_null)
            .group_by(group_keys)
            .agg([
                col("in_hist").any(true).alias("hist"),
                col("t_us").filter(col("in_rng")).min().alias("first"),
                col("in_rng").cast(DataType::Int64).sum().alias("n"),
            ])
            .filter(col("hist").not().and(col("n").gt(lit(0))))
            .select([
                col("role").cast(DataType::String),
                value.alias("value"),
                col("first"),
                col("n"),
            ])
            .collect_on(engine)?;
        let role = g.column("role")?.str()?;
        let value = g.column("value")?.str()?;
        let first = g.column("first")?.i64()?;
        let n = g.column("n")?.i64()?;
        for i in 0..g.height() {
            let (Some(r), Some(v), Some(f), Some(c)) =
                (role.get(i), value.get(i), first.get(i), n.get(i))
            else {
                continue;
            };
            if !roles_with_history.contains(r) {
                continue;
            }
            seen_rows.push(Anomaly {
                kind: FIRST_SEEN_KINDS[k],
                role: r.to_string(),
                time: f,
                value: Some(v.to_string()),
                observed: c,
                expected: 0.0,
                score: None,
            });
        }
    }
    let mut rows = volume(&hourly, &p);
    rows.extend(seen_rows);
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

    /// The detector written plainly: the window collected and sorted for every hour.
    fn volume_by_sorting(hourly: &BTreeMap<(String, i64), i64>, p: &Params) -> Vec<Anomaly> {
        let mut out = Vec::new();
        let first_hour = p.lake_start.div_euclid(HOUR_US);
        for ((role, h), &x) in hourly {
            let start = h * HOUR_US;
            if start < p.from || start >= p.to || x <= 0 {
                continue;
            }
            let lo = (h - p.window_hours).max(first_hour);
            let mut base: Vec<f64> = hourly
                .iter()
                .filter(|((r, hh), n)| r == role && *hh >= lo && hh < h && **n > 0)
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
                    role: role.clone(),
                    time: start,
                    value: None,
                    observed: x,
                    expected,
                    score: Some(round2(score)),
                });
            }
        }
        out
    }

    #[test]
    fn sliding_window_equals_sorting_every_window() {
        // Bursty counts with gaps, zeros and repeats over two roles, small and odd
        // windows, a lake start and a range inside the data.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |m: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % m
        };
        for window_hours in [6, 7, 48, 100] {
            let mut h = BTreeMap::new();
            for role in ["CE-Admin", "CE-SRE"] {
                let mut hour = 0;
                for _ in 0..400 {
                    hour += 1 + next(3) as i64;
                    let n = match next(10) {
                        0 => 0,
                        1 => 40 + next(60) as i64,
                        _ => 3 + next(6) as i64,
                    };
                    h.insert((role.to_string(), hour), n);
                }
            }
            let p = Params {
                from: 100 * HOUR_US,
                to: 700 * HOUR_US,
                lake_start: 20 * HOUR_US,
                window_hours,
                min_hours: 3,
                score: 2.0,
                min_excess: 3.0,
                lookback_days: 30,
            };
            let mut got = volume(&h, &p);
            let mut want = volume_by_sorting(&h, &p);
            sort(&mut got);
            sort(&mut want);
            assert!(
                !want.is_empty(),
                "window {window_hours}: no anomaly to compare"
            );
            assert_eq!(
                format!("{got:?}"),
                format!("{want:?}"),
                "window {window_hours}"
            );
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
}
