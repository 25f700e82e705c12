//! The view's local-calendar columns in one pass over `event_time`.
//!
//! polars computes a zone-aware date, hour or weekday by converting every row through
//! the zone's rules, once per expression. Here a row costs a few integer operations: the
//! zone's offset is looked up once per UTC quarter hour (every offset change since
//! 1970 happens on a quarter-hour boundary; a memo of the last quarter makes time-sorted
//! files nearly free), and the UTC instant of each week's local Monday 00:00 is
//! computed once per week. The rows are cut into tasks of 128 k filled in parallel,
//! each with its own memos, straight into the output columns. The results equal the
//! polars expressions they replace: tests compare them row by row across DST changes,
//! in one task and in many.
//!
//! Invariant: `week`, `next_week`, `week_in_range` and `next_week_in_range` depend on
//! `day` alone (and the view's parameters); `session_facts` relies on it to group by
//! `day` without them (`widgets::session_facts_grouped`).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Offset, TimeZone as _};
use chrono_tz::Tz;
use polars::prelude::*;

use super::view::ViewParams;
use super::widgets::local_midnight;

const QUARTER_SECS: i64 = 900;
const DAY_SECS: i64 = 86_400;

/// The zone's UTC offset (seconds) per UTC quarter hour, memoised.
struct Offsets {
    zone: Tz,
    last: Option<(i64, i64)>,
    seen: HashMap<i64, i64>,
}

impl Offsets {
    fn new(zone: Tz) -> Self {
        Self {
            zone,
            last: None,
            seen: HashMap::new(),
        }
    }

    fn at(&mut self, utc_secs: i64) -> i64 {
        let q = utc_secs.div_euclid(QUARTER_SECS);
        if let Some((lq, off)) = self.last
            && lq == q
        {
            return off;
        }
        let zone = self.zone;
        let off = *self.seen.entry(q).or_insert_with(|| {
            DateTime::from_timestamp(q * QUARTER_SECS, 0)
                .map(|t| {
                    i64::from(
                        zone.offset_from_utc_datetime(&t.naive_utc())
                            .fix()
                            .local_minus_utc(),
                    )
                })
                .unwrap_or(0)
        });
        self.last = Some((q, off));
        off
    }
}

/// Days since 1970-01-01 → ISO weekday (1 = Monday).
fn iso_weekday(days: i64) -> i64 {
    (days + 3).rem_euclid(7) + 1
}

/// Adds `is_ce` (true: the view holds CE events only) and the view's time columns (see
/// its table): `day`, `week`, `next_week`,
/// `week_in_range`, `next_week_in_range`, `local_hour`, `weekday`, `business`,
/// `in_range`, `hour_idx`, `period_idx`, computed from `event_time` (which the lake
/// never leaves null; a null time gives nulls).
pub fn add_calendar_columns(df: &mut DataFrame, p: &ViewParams) -> PolarsResult<()> {
    add_calendar_columns_in(df, p, ROWS_PER_TASK)
}

/// [`add_calendar_columns`], the rows split into tasks of at most `rows_per_task`.
fn add_calendar_columns_in(
    df: &mut DataFrame,
    p: &ViewParams,
    rows_per_task: usize,
) -> PolarsResult<()> {
    let times = df.column("event_time")?.as_materialized_series().clone();
    let micros = times.to_physical_repr();
    let micros = micros.i64()?;
    let n = micros.len();
    let flat = micros.rechunk();
    let values = flat.downcast_as_array();
    let mut c = Columns::zeroed(n);
    let rules = Rules::new(p);
    c.parts()
        .fill(values.values(), &rules, rows_per_task.max(1));
    // Which rows have a time (`None`: all of them).
    let nulls = (flat.null_count() > 0).then(|| flat.is_not_null());
    // Rows without a time get nulls: zip with a null series where the mask is false.
    // The new columns are cut like `event_time`, so the frame's columns stay aligned
    // (a query over misaligned chunks realigns them every time).
    let lengths: Vec<usize> = micros.chunk_lengths().collect();
    let finish = |s: Series| -> PolarsResult<Column> {
        let s = match &nulls {
            Some(mask) => s.zip_with(mask, &Series::full_null(s.name().clone(), n, s.dtype()))?,
            None => s,
        };
        Ok(cut_like(s, &lengths)?.into_column())
    };
    let date = |name: &str, v: Vec<i32>| -> PolarsResult<Series> {
        Int32Chunked::from_vec(name.into(), v)
            .into_series()
            .cast(&DataType::Date)
    };
    let int = |name: &str, v: Vec<i32>| Int32Chunked::from_vec(name.into(), v).into_series();
    let long = |name: &str, v: Vec<i64>| Int64Chunked::from_vec(name.into(), v).into_series();
    let boolean = |name: &str, v: Vec<bool>| packed(name, &v);
    let columns = [
        // The view holds CE events only (its scan filters them).
        BooleanChunked::full("is_ce".into(), true, n).into_series(),
        boolean("in_range", c.in_range),
        date("day", c.day)?,
        date("week", c.week)?,
        date("next_week", c.next_week)?,
        boolean("week_in_range", c.week_in),
        boolean("next_week_in_range", c.next_week_in),
        int("local_hour", c.local_hour),
        int("weekday", c.weekday),
        boolean("business", c.business),
        long("hour_idx", c.hour_idx),
        long("period_idx", c.period_idx),
    ];
    for s in columns {
        df.with_column(finish(s)?)?;
    }
    Ok(())
}

/// Sets the three columns of [`add_calendar_columns`] that depend on the range,
/// `in_range`, `week_in_range` and `next_week_in_range`, for `p`'s range on a frame
/// that holds every calendar column already (for another range or none; same zone).
/// The other columns depend on the zone and business hours alone, so `serve` computes
/// them once per zone and a range change costs this pass. Each column keeps its place
/// and is cut like `event_time`; rows without a time keep nulls. The result equals
/// [`add_calendar_columns`] for `p` (a test compares them).
pub fn set_range_columns(df: &mut DataFrame, p: &ViewParams) -> PolarsResult<()> {
    let rules = Rules::new(p);
    let times = df.column("event_time")?.as_materialized_series().clone();
    let micros = times.to_physical_repr();
    let micros = micros.i64()?;
    let lengths: Vec<usize> = micros.chunk_lengths().collect();
    let nulls = (micros.null_count() > 0).then(|| micros.is_not_null());
    // A null row's value is ignored here (the mask nulls it below).
    let in_range: Vec<bool> = micros
        .downcast_iter()
        .flat_map(|a| a.values().iter())
        .map(|t| rules.in_range(*t))
        .collect();
    let mondays_in = |name: &str| -> PolarsResult<Vec<bool>> {
        let days = df.column(name)?.as_materialized_series().to_physical_repr();
        let mut memo: Option<(i32, bool)> = None;
        Ok(days
            .i32()?
            .downcast_iter()
            .flat_map(|a| a.values().iter())
            .map(|&d| match memo {
                Some((m, v)) if m == d => v,
                _ => {
                    let v = rules.monday_in(i64::from(d));
                    memo = Some((d, v));
                    v
                }
            })
            .collect())
    };
    let week_in = mondays_in("week")?;
    let next_week_in = mondays_in("next_week")?;
    let n = micros.len();
    for (name, v) in [
        ("in_range", in_range),
        ("week_in_range", week_in),
        ("next_week_in_range", next_week_in),
    ] {
        let s = packed(name, &v);
        let s = match &nulls {
            Some(mask) => s.zip_with(mask, &Series::full_null(s.name().clone(), n, s.dtype()))?,
            None => s,
        };
        df.with_column(cut_like(s, &lengths)?.into_column())?;
    }
    Ok(())
}

/// Whether the local midnight of the Monday `monday` (days since 1970-01-01, as the
/// `week` and `next_week` columns hold) is in `p`'s range: those columns'
/// `week_in_range` and `next_week_in_range`.
pub fn monday_in_range(p: &ViewParams, monday: i32) -> bool {
    Rules::new(p).monday_in(i64::from(monday))
}

/// A boolean column of `v`, its bits packed eight rows at a time (polars' collect
/// from a slice pushes them one by one).
fn packed(name: &str, v: &[bool]) -> Series {
    let bytes: Vec<u8> = v
        .chunks(8)
        .map(|eight| {
            eight
                .iter()
                .enumerate()
                .fold(0u8, |byte, (i, b)| byte | (u8::from(*b) << i))
        })
        .collect();
    let bits = polars_arrow::bitmap::Bitmap::from_u8_vec(bytes, v.len());
    let array = polars_arrow::array::BooleanArray::new(
        polars_arrow::datatypes::ArrowDataType::Boolean,
        bits,
        None,
    );
    BooleanChunked::with_chunk(name.into(), array).into_series()
}

/// `s` as chunks of `lengths` (zero-copy slices).
fn cut_like(s: Series, lengths: &[usize]) -> PolarsResult<Series> {
    if lengths.len() < 2 {
        return Ok(s);
    }
    let mut offset = 0i64;
    let mut out: Option<Series> = None;
    for len in lengths {
        let part = s.slice(offset, *len);
        offset += *len as i64;
        match &mut out {
            None => out = Some(part),
            Some(o) => {
                o.append(&part)?;
            }
        }
    }
    Ok(out.unwrap_or(s))
}

/// The output columns, built row by row.
#[derive(Default)]
struct Columns {
    day: Vec<i32>,
    week: Vec<i32>,
    next_week: Vec<i32>,
    week_in: Vec<bool>,
    next_week_in: Vec<bool>,
    local_hour: Vec<i32>,
    weekday: Vec<i32>,
    business: Vec<bool>,
    in_range: Vec<bool>,
    hour_idx: Vec<i64>,
    period_idx: Vec<i64>,
}

impl Columns {
    fn zeroed(n: usize) -> Self {
        Self {
            day: vec![0; n],
            week: vec![0; n],
            next_week: vec![0; n],
            week_in: vec![false; n],
            next_week_in: vec![false; n],
            local_hour: vec![0; n],
            weekday: vec![0; n],
            business: vec![false; n],
            in_range: vec![false; n],
            hour_idx: vec![0; n],
            period_idx: vec![0; n],
        }
    }

    fn parts(&mut self) -> Part<'_> {
        Part {
            day: &mut self.day,
            week: &mut self.week,
            next_week: &mut self.next_week,
            week_in: &mut self.week_in,
            next_week_in: &mut self.next_week_in,
            local_hour: &mut self.local_hour,
            weekday: &mut self.weekday,
            business: &mut self.business,
            in_range: &mut self.in_range,
            hour_idx: &mut self.hour_idx,
            period_idx: &mut self.period_idx,
        }
    }
}

/// Rows per task when the columns are filled in parallel.
const ROWS_PER_TASK: usize = 1 << 17;

/// The range, zone and business hours the columns are computed for.
struct Rules<'a> {
    p: &'a ViewParams,
    from: Option<i64>,
    to: Option<i64>,
    business_day: [bool; 8],
}

impl<'a> Rules<'a> {
    fn new(p: &'a ViewParams) -> Self {
        let mut business_day = [false; 8];
        for d in &p.business_days {
            if let Some(slot) = business_day.get_mut(*d as usize) {
                *slot = true;
            }
        }
        Self {
            p,
            from: p.from.map(|t| t.timestamp_micros()),
            to: p.to.map(|t| t.timestamp_micros()),
            business_day,
        }
    }

    fn in_range(&self, t: i64) -> bool {
        self.from.is_none_or(|f| t >= f) && self.to.is_none_or(|e| t < e)
    }

    /// Whether the local midnight of a Monday (days since epoch) is in range.
    fn monday_in(&self, monday: i64) -> bool {
        NaiveDate::from_ymd_opt(1970, 1, 1)
            .and_then(|epoch| epoch.checked_add_signed(chrono::Duration::days(monday)))
            .map(|d| self.in_range(local_midnight(d, self.p.zone).timestamp_micros()))
            .unwrap_or(false)
    }
}

/// The output rows of one task: equal-length slices of every column.
struct Part<'a> {
    day: &'a mut [i32],
    week: &'a mut [i32],
    next_week: &'a mut [i32],
    week_in: &'a mut [bool],
    next_week_in: &'a mut [bool],
    local_hour: &'a mut [i32],
    weekday: &'a mut [i32],
    business: &'a mut [bool],
    in_range: &'a mut [bool],
    hour_idx: &'a mut [i64],
    period_idx: &'a mut [i64],
}

impl<'a> Part<'a> {
    fn split_at(self, mid: usize) -> (Part<'a>, Part<'a>) {
        let (day, day2) = self.day.split_at_mut(mid);
        let (week, week2) = self.week.split_at_mut(mid);
        let (next_week, next_week2) = self.next_week.split_at_mut(mid);
        let (week_in, week_in2) = self.week_in.split_at_mut(mid);
        let (next_week_in, next_week_in2) = self.next_week_in.split_at_mut(mid);
        let (local_hour, local_hour2) = self.local_hour.split_at_mut(mid);
        let (weekday, weekday2) = self.weekday.split_at_mut(mid);
        let (business, business2) = self.business.split_at_mut(mid);
        let (in_range, in_range2) = self.in_range.split_at_mut(mid);
        let (hour_idx, hour_idx2) = self.hour_idx.split_at_mut(mid);
        let (period_idx, period_idx2) = self.period_idx.split_at_mut(mid);
        (
            Part {
                day,
                week,
                next_week,
                week_in,
                next_week_in,
                local_hour,
                weekday,
                business,
                in_range,
                hour_idx,
                period_idx,
            },
            Part {
                day: day2,
                week: week2,
                next_week: next_week2,
                week_in: week_in2,
                next_week_in: next_week_in2,
                local_hour: local_hour2,
                weekday: weekday2,
                business: business2,
                in_range: in_range2,
                hour_idx: hour_idx2,
                period_idx: period_idx2,
            },
        )
    }

    /// Fills the rows of `micros` (same length; a null row's value is ignored, the
    /// caller nulls it), splitting the work across rayon's threads.
    fn fill(self, micros: &[i64], rules: &Rules, rows_per_task: usize) {
        if micros.len() > rows_per_task {
            let mid = micros.len() / 2;
            let (a, b) = self.split_at(mid);
            let (ma, mb) = micros.split_at(mid);
            rayon::join(
                || a.fill(ma, rules, rows_per_task),
                || b.fill(mb, rules, rows_per_task),
            );
            return;
        }
        let mut offsets = Offsets::new(rules.p.zone);
        let mut last_week: Option<(i64, bool, bool)> = None;
        let (b_start, b_end) = (
            i64::from(rules.p.business_start),
            i64::from(rules.p.business_end),
        );
        for (i, &t) in micros.iter().enumerate() {
            let secs = t.div_euclid(1_000_000);
            let local = secs + offsets.at(secs);
            let d = local.div_euclid(DAY_SECS);
            let minute_of_day = local.rem_euclid(DAY_SECS) / 60;
            let wd = iso_weekday(d);
            let monday = d - (wd - 1);
            let (w_in, nw_in) = match last_week {
                Some((m, a, b)) if m == monday => (a, b),
                _ => {
                    let v = (rules.monday_in(monday), rules.monday_in(monday + 7));
                    last_week = Some((monday, v.0, v.1));
                    v
                }
            };
            self.day[i] = d as i32;
            self.week[i] = monday as i32;
            self.next_week[i] = (monday + 7) as i32;
            self.week_in[i] = w_in;
            self.next_week_in[i] = nw_in;
            self.local_hour[i] = (minute_of_day / 60) as i32;
            self.weekday[i] = wd as i32;
            self.business[i] = rules.business_day[wd as usize]
                && minute_of_day >= b_start
                && minute_of_day < b_end;
            self.in_range[i] = rules.in_range(t);
            self.hour_idx[i] = t.div_euclid(3_600_000_000);
            self.period_idx[i] = t.div_euclid(300_000_000);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Timelike, Utc};

    /// An `event_time` column (UTC, µs) of `micros`.
    fn event_times(micros: &[i64]) -> Series {
        Int64Chunked::from_vec("event_time".into(), micros.to_vec())
            .into_series()
            .cast(&DataType::Datetime(
                TimeUnit::Microseconds,
                Some(polars::prelude::TimeZone::UTC),
            ))
            .unwrap_or_default()
    }

    fn params(zone: Tz, from: &str, to: &str) -> ViewParams {
        let t = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .ok()
        };
        ViewParams {
            from: t(from),
            to: t(to),
            zone,
            business_start: 8 * 60 + 30,
            business_end: 17 * 60 + 45,
            business_days: vec![1, 2, 3, 4, 5],
            account: None,
            role: None,
            engineer: None,
        }
    }

    /// Setting a range's columns on a frame computed for another range (or none)
    /// gives the frame computed for that range, column for column and in place.
    #[test]
    fn range_columns_set_again_equal_those_computed_for_the_range() {
        let mut micros: Vec<i64> = (0..4000)
            .map(|i| (1_774_000_000 + i * 3_517) * 1_000_000)
            .collect();
        micros.insert(1234, micros[1233]);
        let series = event_times(&micros);
        let frame =
            || DataFrame::new(micros.len(), vec![series.clone().into_column()]).unwrap_or_default();
        let zone = chrono_tz::Europe::Berlin;
        let none = ViewParams {
            from: None,
            to: None,
            ..params(zone, "2026-03-30T00:00:00Z", "2026-03-30T00:00:00Z")
        };
        let ranges = [
            params(
                zone,
                "2026-03-23T00:00:00+01:00",
                "2026-03-30T00:00:00+02:00",
            ),
            params(zone, "2026-03-25T13:20:00Z", "2026-04-01T00:00:00Z"),
            none.clone(),
        ];
        let mut kept = frame();
        assert!(add_calendar_columns(&mut kept, &none).is_ok());
        let mut differs = 0;
        for p in &ranges {
            let mut direct = frame();
            assert!(add_calendar_columns(&mut direct, p).is_ok());
            let mut set = kept.clone();
            assert!(set_range_columns(&mut set, p).is_ok());
            assert_eq!(set.get_column_names(), direct.get_column_names());
            assert!(set.equals_missing(&direct), "{:?} → {:?}", p.from, p.to);
            differs += usize::from(!set.equals_missing(&kept));
            kept = set;
        }
        // The first two ranges change the columns; the last sets them back.
        assert_eq!(differs, 3);
    }

    /// Every column equals chrono-tz's answer, row by row, over DST changes of zones
    /// with whole-hour, half-hour and 45-minute offsets, at minute steps around them.
    #[test]
    fn calendar_columns_equal_chrono_tz_across_dst() {
        let zones = [
            chrono_tz::Europe::Berlin,
            chrono_tz::America::St_Johns,
            chrono_tz::Australia::Lord_Howe,
            chrono_tz::Asia::Kathmandu,
            chrono_tz::America::Sao_Paulo,
            chrono_tz::UTC,
        ];
        // Around Berlin's and Lord Howe's changes in 2026, plus an ordinary week.
        let starts = [
            "2026-03-29T00:00:00Z",
            "2026-10-25T00:00:00Z",
            "2026-04-04T14:00:00Z",
            "2026-10-03T14:00:00Z",
            "2026-01-05T00:00:00Z",
        ];
        let mut micros = Vec::new();
        for s in starts {
            let t0 = DateTime::parse_from_rfc3339(s)
                .map(|t| t.timestamp())
                .unwrap_or(0);
            for m in (0..(6 * 60)).step_by(7) {
                micros.push((t0 + m * 60 + 13) * 1_000_000);
            }
        }
        // Unsorted input exercises the memo's misses.
        micros.reverse();
        let series = event_times(&micros);
        for zone in zones {
            let p = params(zone, "2026-03-30T00:00:00Z", "2026-10-26T00:00:00Z");
            let mut df = DataFrame::new(micros.len(), vec![series.clone().into_column()])
                .unwrap_or_default();
            assert!(add_calendar_columns(&mut df, &p).is_ok());
            // Many small tasks give the same frame as one.
            let mut split = DataFrame::new(micros.len(), vec![series.clone().into_column()])
                .unwrap_or_default();
            assert!(add_calendar_columns_in(&mut split, &p, 7).is_ok());
            assert_eq!(split.width(), 13, "{zone}");
            assert!(split.equals_missing(&df), "{zone}: split tasks differ");
            let col_i32 = |name: &str| -> Vec<Option<i32>> {
                let c = df
                    .column(name)
                    .map(|c| c.as_materialized_series().to_physical_repr().into_owned());
                c.ok()
                    .and_then(|s| s.i32().ok().map(|a| a.iter().collect()))
                    .unwrap_or_default()
            };
            let col_bool = |name: &str| -> Vec<Option<bool>> {
                df.column(name)
                    .ok()
                    .and_then(|c| c.bool().ok().map(|a| a.iter().collect()))
                    .unwrap_or_default()
            };
            let (day, week, next, hour, wd) = (
                col_i32("day"),
                col_i32("week"),
                col_i32("next_week"),
                col_i32("local_hour"),
                col_i32("weekday"),
            );
            let (wir, nwir, bus) = (
                col_bool("week_in_range"),
                col_bool("next_week_in_range"),
                col_bool("business"),
            );
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
            let days = |d: NaiveDate| (d - epoch).num_days() as i32;
            let in_range = |t: DateTime<Utc>| Some(t) >= p.from && Some(t) < p.to;
            for (i, us) in micros.iter().enumerate() {
                let utc = DateTime::from_timestamp_micros(*us).unwrap_or_default();
                let local = utc.with_timezone(&zone);
                let d = local.date_naive();
                let monday =
                    d - chrono::Duration::days(i64::from(d.weekday().num_days_from_monday()));
                let minute = local.hour() * 60 + local.minute();
                let ctx = format!("{zone} {utc}");
                assert_eq!(day[i], Some(days(d)), "day {ctx}");
                assert_eq!(week[i], Some(days(monday)), "week {ctx}");
                assert_eq!(next[i], Some(days(monday) + 7), "next_week {ctx}");
                assert_eq!(hour[i], Some(local.hour() as i32), "hour {ctx}");
                assert_eq!(
                    wd[i],
                    Some(d.weekday().number_from_monday() as i32),
                    "weekday {ctx}"
                );
                assert_eq!(
                    wir[i],
                    Some(in_range(local_midnight(monday, zone))),
                    "week_in_range {ctx}"
                );
                let next_monday = monday + chrono::Duration::days(7);
                assert_eq!(
                    nwir[i],
                    Some(in_range(local_midnight(next_monday, zone))),
                    "next_week_in_range {ctx}"
                );
                let business =
                    d.weekday().number_from_monday() <= 5 && (510..1065).contains(&minute);
                assert_eq!(bus[i], Some(business), "business {ctx}");
            }
        }
    }
}
