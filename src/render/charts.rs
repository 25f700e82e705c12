//! The dashboard's charts, drawn from the rows of its widgets (SPEC §13) and from the
//! [`Activity`] series of the same view: each is a heading and one inline SVG
//! ([`super::svg`]: no script, no style attribute, every label escaped). The HTML
//! report and `serve` draw the same charts.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{Cell, Table, TimeStyle, svg};
use crate::query::report::Activity;

/// The position of column `name` in `t`.
fn index(t: &Table, name: &str) -> Option<usize> {
    t.columns.iter().position(|c| c == name)
}

fn number(c: &Cell) -> f64 {
    match c {
        Cell::Int(n) => *n as f64,
        Cell::Float(f) => *f,
        _ => 0.0,
    }
}

/// One series per role: its value at each label (0 where `values` has none).
fn per_role(
    labels: &[String],
    roles: &[String],
    values: &HashMap<(String, String), f64>,
) -> Vec<(String, Vec<f64>)> {
    roles
        .iter()
        .map(|role| {
            let row = labels
                .iter()
                .map(|l| {
                    values
                        .get(&(l.clone(), role.clone()))
                        .copied()
                        .unwrap_or(0.0)
                })
                .collect();
            (role.clone(), row)
        })
        .collect()
}

/// `session-trend` (date, role, sessions): sessions per role per day, stacked.
pub fn session_trend(t: &Table, style: TimeStyle) -> String {
    let (Some(di), Some(ri), si) = (index(t, "date"), index(t, "role"), index(t, "sessions"))
    else {
        return String::new();
    };
    let mut days: Vec<String> = Vec::new();
    let mut roles: Vec<String> = Vec::new();
    // The first row of each (day, role) counts, as a table lookup would find it.
    let mut sessions: HashMap<(String, String), f64> = HashMap::new();
    for row in &t.rows {
        let day = row[di].text(style);
        let role = row[ri].text(style);
        if !days.contains(&day) {
            days.push(day.clone());
        }
        if !roles.contains(&role) {
            roles.push(role.clone());
        }
        let n = match si.map(|s| &row[s]) {
            Some(Cell::Int(n)) => *n as f64,
            _ => 0.0,
        };
        sessions.entry((day, role)).or_insert(n);
    }
    roles.sort();
    let series = per_role(&days, &roles, &sessions);
    let mut o = String::from("<h3>Sessions per role per day</h3>");
    o.push_str(&svg::stacked_bars(
        "Sessions per role per day",
        &days,
        &series,
    ));
    o
}

/// `week-over-week` (week, events, prev_events per role): all roles' events of each
/// week beside the week before.
pub fn week_over_week(t: &Table, style: TimeStyle) -> String {
    let (Some(wi), Some(ei), Some(pi)) = (
        index(t, "week"),
        index(t, "events"),
        index(t, "prev_events"),
    ) else {
        return String::new();
    };
    let mut weeks: Vec<String> = Vec::new();
    let mut now: Vec<f64> = Vec::new();
    let mut prev: Vec<f64> = Vec::new();
    for row in &t.rows {
        let week = row[wi].text(style);
        match weeks.iter().position(|x| *x == week) {
            Some(k) => {
                now[k] += number(&row[ei]);
                prev[k] += number(&row[pi]);
            }
            None => {
                weeks.push(week);
                now.push(number(&row[ei]));
                prev.push(number(&row[pi]));
            }
        }
    }
    let mut o = String::from("<h3>Week over week (CE events, all roles)</h3>");
    o.push_str(&svg::grouped_bars(
        "Week over week",
        &weeks,
        &[("this week".into(), now), ("week before".into(), prev)],
    ));
    o
}

/// Engineers shown in the after-hours chart (most events first).
const AFTER_HOURS_ENGINEERS: usize = 20;

/// `after-hours` (role, engineer, events): the engineers with most events outside
/// business hours, stacked per role.
pub fn after_hours(t: &Table, style: TimeStyle) -> String {
    let (Some(ri), Some(en), Some(ei)) =
        (index(t, "role"), index(t, "engineer"), index(t, "events"))
    else {
        return String::new();
    };
    let mut engineers: Vec<(String, f64)> = Vec::new();
    let mut roles: Vec<String> = Vec::new();
    let mut events: HashMap<(String, String), f64> = HashMap::new();
    for row in &t.rows {
        let engineer = row[en].text(style);
        let role = row[ri].text(style);
        let n = number(&row[ei]);
        match engineers.iter_mut().find(|(e, _)| *e == engineer) {
            Some((_, total)) => *total += n,
            None => engineers.push((engineer.clone(), n)),
        }
        if !roles.contains(&role) {
            roles.push(role.clone());
        }
        *events.entry((engineer, role)).or_insert(0.0) += n;
    }
    if engineers.is_empty() {
        return String::new();
    }
    engineers.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    engineers.truncate(AFTER_HOURS_ENGINEERS);
    roles.sort();
    let labels: Vec<String> = engineers.iter().map(|(e, _)| e.clone()).collect();
    let series = per_role(&labels, &roles, &events);
    let mut o = String::from("<h3>Events outside business hours, per engineer and role</h3>");
    o.push_str(&svg::stacked_bars(
        "Events outside business hours",
        &labels,
        &series,
    ));
    o
}

/// CE events by local weekday and hour.
pub fn heat(heat: &[Vec<f64>]) -> String {
    let mut o = String::from("<h3>Activity by weekday and hour (local time)</h3>");
    o.push_str(&svg::heatmap(
        "CE events by weekday and hour",
        &["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
        heat,
    ));
    o
}

/// CE events per hour of the range `from`..`to`, anomalies circled.
pub fn hourly(a: &Activity, from: DateTime<Utc>, to: DateTime<Utc>, style: TimeStyle) -> String {
    let mut o = String::from("<h3>CE events per hour, anomalies circled</h3>");
    o.push_str(&svg::line_with_marks(
        "CE events per hour",
        &a.hourly,
        &super::format_time(from.timestamp_micros(), style),
        &super::format_time(to.timestamp_micros(), style),
        &a.marks,
    ));
    o
}
