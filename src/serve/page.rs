//! The HTML `serve` sends: the dashboard page and the timeline page. Every value from
//! the trail goes through [`esc`] (the HTML report's rule); every link carries the
//! page's state (range, zone, filters) in its URL; nothing refers to another origin.

use std::fmt::Write as _;

use chrono::{DateTime, Datelike as _, Utc};

use super::worker::Params;
use crate::query::report::Activity;
use crate::query::timeline::{Selector, Timeline};
use crate::query::view::ViewParams;
use crate::query::widgets::Widget;
use crate::render::charts;
use crate::render::html::esc;
use crate::render::timeline::{sessions_table, shells_table, steps_table};
use crate::render::{Table, TimeStyle, format_time};

/// The stylesheet, served as `/assets/app.css`.
pub const CSS: &str = include_str!("assets/app.css");

/// Rows of the activity feed on one page (`feed_page` chooses which).
pub const FEED_PAGE_ROWS: usize = 100;

/// The parameters that make the dashboard's view (kept in every link).
const STATE: &[&str] = &["from", "to", "tz", "account", "role", "engineer"];

/// The name the dashboard's engineer filter goes by in a timeline's URL, whose own
/// `engineer` is the engineer it tells.
const FILTER_ENGINEER: &str = "filter_engineer";

/// The dashboard's state of a timeline page's parameters.
pub fn dashboard_state(timeline: &Params) -> Params {
    let mut state: Params = STATE
        .iter()
        .filter(|k| **k != "engineer")
        .filter_map(|k| timeline.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();
    if let Some(e) = timeline.get(FILTER_ENGINEER) {
        state.insert("engineer".into(), e.clone());
    }
    state
}

/// The query string of the timeline of `key` = `value`, carrying the dashboard's
/// `state` (its engineer filter as [`FILTER_ENGINEER`]).
fn timeline_query(state: &Params, key: &str, value: &str) -> String {
    let mut parts: Vec<String> = STATE
        .iter()
        .filter_map(|k| {
            let v = state.get(*k).filter(|v| !v.is_empty())?;
            let name = if *k == "engineer" { FILTER_ENGINEER } else { k };
            Some(format!("{name}={}", encode(v)))
        })
        .collect();
    parts.push(format!("{key}={}", encode(value)));
    parts.join("&")
}

/// `s` percent-encoded for a URL's query.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// A query string of the page's state plus `extra` (later keys win).
fn query(params: &Params, extra: &[(&str, &str)]) -> String {
    let mut parts: Vec<String> = STATE
        .iter()
        .filter(|k| !extra.iter().any(|(e, _)| e == *k))
        .filter_map(|k| {
            params
                .get(*k)
                .filter(|v| !v.is_empty())
                .map(|v| format!("{k}={}", encode(v)))
        })
        .collect();
    parts.extend(
        extra
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", encode(v))),
    );
    parts.join("&")
}

/// Which timeline a column's value opens.
fn drill(column: &str) -> Option<&'static str> {
    match column {
        "engineer" => Some("engineer"),
        "session_key" => Some("session"),
        "source_ip" => Some("ip"),
        "resource" | "target" | "target_instance" => Some("resource"),
        _ => None,
    }
}

/// `t` as an HTML table; the cells of drill-down columns link to their timeline
/// (carrying the dashboard's `state`).
fn table(t: &Table, state: &Params) -> String {
    let style = TimeStyle { local: None };
    let mut out = String::from(r#"<div class="rows"><table><thead><tr>"#);
    for c in &t.columns {
        let _ = write!(out, "<th>{}</th>", esc(c));
    }
    out.push_str("</tr></thead><tbody>");
    let links: Vec<Option<&str>> = t.columns.iter().map(|c| drill(c)).collect();
    for row in &t.rows {
        out.push_str("<tr>");
        for (cell, link) in row.iter().zip(&links) {
            let text = cell.text(style);
            match link {
                Some(key) if !text.is_empty() => {
                    let _ = write!(
                        out,
                        r#"<td><a href="/timeline?{}">{}</a></td>"#,
                        esc(&timeline_query(state, key, &text)),
                        esc(&text)
                    );
                }
                _ => {
                    let _ = write!(out, "<td>{}</td>", esc(&text));
                }
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

fn head(title: &str) -> String {
    format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{}</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/assets/app.css"></head><body>"#,
        esc(title)
    )
}

/// The dashboard page of one range, zone and filters.
pub struct Page<'a> {
    pub params: &'a Params,
    pub view: &'a ViewParams,
    pub zone: &'a str,
    /// Every widget and its rows, in the widgets' order.
    /// (The activity feed's table holds only the rows of this page.)
    pub tables: &'a [(&'static Widget, &'a Table)],
    /// The activity feed's rows in all, and the first one this page shows.
    pub feed_total: usize,
    pub feed_start: usize,
    /// Our rules that hit, whether one of them is high or critical, and all hits.
    pub detections: &'a (Table, bool, usize),
    /// The series the charts draw besides the widgets' rows.
    pub activity: &'a Activity,
    /// The end of the lake's last local day: what the range presets count back from.
    pub lake_end: Option<DateTime<Utc>>,
    /// When the lake last changed (its newest ledger segment).
    pub updated: Option<DateTime<Utc>>,
}

impl Page<'_> {
    pub fn html(&self) -> String {
        let style = TimeStyle { local: None };
        let p = self.params;
        let mut o = head("cetrail · CE access");
        let bound = |t: Option<DateTime<Utc>>| {
            t.map(|t| format_time(t.timestamp_micros(), style))
                .unwrap_or_default()
        };
        let _ = write!(
            o,
            r#"<header><h1>CE access</h1><p class="muted">{} → {} ({})</p>"#,
            esc(&bound(self.view.from)),
            esc(&bound(self.view.to)),
            esc(self.zone)
        );
        // Controls: a GET form, so the state is the URL.
        let value = |k: &str| esc(p.get(k).map(String::as_str).unwrap_or(""));
        let _ = write!(
            o,
            r#"<form method="get" action="/" id="controls"><label>from <input name="from" value="{}"></label> <label>to <input name="to" value="{}"></label> <label>zone <input name="tz" value="{}"></label> <label>account <input name="account" value="{}"></label> <label>role <input name="role" value="{}"></label> <label>engineer <input name="engineer" value="{}"></label> <button type="submit">apply</button></form>"#,
            value("from"),
            value("to"),
            value("tz"),
            value("account"),
            value("role"),
            value("engineer")
        );
        self.presets(&mut o);
        let _ = write!(
            o,
            r#"<p class="muted" id="updated">updated {} · <a class="button" href="/?{}" id="refresh">refresh</a></p></header><main>"#,
            esc(&self
                .updated
                .map(|t| t
                    .with_timezone(&self.view.zone)
                    .format("%Y-%m-%d %H:%M %Z")
                    .to_string())
                .unwrap_or_else(|| "never (an empty lake)".into())),
            esc(&query(p, &[]))
        );
        // Alarm states first, then detections, then the other widgets in order.
        let mut order: Vec<&(&Widget, &Table)> = self.tables.iter().collect();
        order.sort_by_key(|(w, _)| (!w.alarm, w.number));
        let mut detections_done = false;
        for (w, t) in order {
            if !w.alarm && !detections_done {
                self.detections_section(&mut o);
                detections_done = true;
            }
            let (total, start) = if w.name == "activity-feed" {
                (self.feed_total, self.feed_start)
            } else {
                (t.rows.len(), 0)
            };
            let state = if w.alarm {
                if total > 0 { " — ALARM" } else { " — OK" }
            } else {
                ""
            };
            let _ = write!(
                o,
                r#"<section data-widget="{}" id="w-{}" class="{}"><h2>{}. {}{state} <span class="muted">({total} rows)</span></h2>"#,
                esc(w.name),
                esc(w.name),
                if w.alarm && total > 0 { "alarm" } else { "" },
                w.number,
                esc(w.title)
            );
            if w.name == "activity-feed" && total > FEED_PAGE_ROWS {
                let page = start / FEED_PAGE_ROWS;
                let pages = total.div_ceil(FEED_PAGE_ROWS);
                let _ = write!(o, r#"<nav class="pages">page {} of {pages}"#, page + 1);
                if page > 0 {
                    let prev = (page - 1).to_string();
                    let _ = write!(
                        o,
                        r#" · <a href="/?{}#w-activity-feed">previous</a>"#,
                        esc(&query(p, &[("feed_page", &prev)]))
                    );
                }
                if page + 1 < pages {
                    let next = (page + 1).to_string();
                    let _ = write!(
                        o,
                        r#" · <a href="/?{}#w-activity-feed">next</a>"#,
                        esc(&query(p, &[("feed_page", &next)]))
                    );
                }
                o.push_str("</nav>");
            }
            self.chart(&mut o, w.name, t);
            o.push_str(&table(t, p));
            o.push_str("</section>");
        }
        if !detections_done {
            self.detections_section(&mut o);
        }
        o.push_str("</main></body></html>");
        o
    }

    /// Links to the last 24 h, 7 d and 30 d of the lake, its last calendar month and
    /// the month before (local), each keeping the zone and filters.
    fn presets(&self, o: &mut String) {
        let Some(end) = self.lake_end else {
            return;
        };
        let instant = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let day = chrono::Duration::days(1);
        let mut presets: Vec<(&str, String, String)> = [
            ("last 24 h", end - day),
            ("last 7 d", end - day * 7),
            ("last 30 d", end - day * 30),
        ]
        .into_iter()
        .map(|(label, from)| (label, instant(from), instant(end)))
        .collect();
        let zone = self.view.zone;
        let last_day = (end - chrono::Duration::microseconds(1))
            .with_timezone(&zone)
            .date_naive();
        let month = last_day.with_day(1).unwrap_or(last_day);
        let before = month
            .checked_sub_months(chrono::Months::new(1))
            .unwrap_or(month);
        let next = month
            .checked_add_months(chrono::Months::new(1))
            .unwrap_or(month);
        let date = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
        presets.push(("this month", date(month), date(next)));
        presets.push(("last month", date(before), date(month)));
        o.push_str(r#"<nav class="presets">"#);
        for (label, from, to) in presets {
            let _ = write!(
                o,
                r#"<a href="/?{}">{label}</a> "#,
                esc(&query(self.params, &[("from", &from), ("to", &to)]))
            );
        }
        o.push_str("</nav>");
    }

    /// The charts on top of a widget's table, drawn from its rows.
    fn chart(&self, o: &mut String, widget: &str, t: &Table) {
        let style = TimeStyle { local: None };
        let chart = match widget {
            "session-trend" => charts::session_trend(t, style),
            "after-hours" => charts::heat(&self.activity.heat) + &charts::after_hours(t, style),
            "week-over-week" => charts::week_over_week(t, style),
            "anomalies" => match (self.view.from, self.view.to) {
                (Some(from), Some(to)) => charts::hourly(self.activity, from, to, style),
                _ => String::new(),
            },
            _ => String::new(),
        };
        if !chart.is_empty() {
            // Inline in HTML, an SVG needs no namespace (and the page names no URL).
            let chart = chart.replace(r#" xmlns="http://www.w3.org/2000/svg""#, "");
            let _ = write!(o, r#"<figure class="chart">{chart}</figure>"#);
        }
    }

    fn detections_section(&self, o: &mut String) {
        let (t, alarm, total) = self.detections;
        let _ = write!(
            o,
            r#"<section data-widget="detections" id="w-detections" class="{}"><h2>Detections — {} <span class="muted">({total} hits of our Sigma rules)</span></h2>"#,
            if *alarm { "alarm" } else { "" },
            if *alarm { "ALARM" } else { "OK" }
        );
        o.push_str(&table(t, self.params));
        o.push_str("</section>");
    }
}

/// The timeline page of `selector`; `params` are the page's (the dashboard's state
/// among them, see [`dashboard_state`]).
pub fn timeline_html(params: &Params, selector: &Selector, t: &Timeline) -> String {
    let state = dashboard_state(params);
    let what = match selector {
        Selector::Session(s) => format!("session {s}"),
        Selector::Engineer(e) => format!("engineer {e}"),
        Selector::Ip(i) => format!("source IP {i}"),
        Selector::Resource(r) => format!("resource {r}"),
    };
    let mut o = head(&format!("cetrail · {what}"));
    let _ = write!(
        o,
        r#"<header><h1>Timeline of {}</h1><p><a href="/?{}" id="back">← the dashboard</a></p></header><main>"#,
        esc(&what),
        esc(&query(&state, &[]))
    );
    for (name, title, table_) in [
        ("sessions", "Sessions", sessions_table(t)),
        ("shell-sessions", "SSM shell sessions", shells_table(t)),
        (
            "events",
            "Events (* named, W write, D denied, A after hours, ! hit a detection rule)",
            steps_table(t),
        ),
    ] {
        let _ = write!(
            o,
            r#"<section data-timeline="{name}"><h2>{} <span class="muted">({} rows)</span></h2>"#,
            esc(title),
            table_.rows.len()
        );
        o.push_str(&table(&table_, &state));
        o.push_str("</section>");
    }
    o.push_str("</main></body></html>");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_carry_the_state_encoded() {
        let mut p = Params::new();
        p.insert("from".into(), "2026-10-01".into());
        p.insert("tz".into(), "Europe/Paris".into());
        p.insert("token".into(), "secret".into());
        assert_eq!(
            query(&p, &[("engineer", "a b&c")]),
            "from=2026-10-01&tz=Europe%2FParis&engineer=a%20b%26c"
        );
        // To a timeline and back: the engineer filter keeps apart from the engineer
        // told.
        p.insert("engineer".into(), "ann".into());
        let t = timeline_query(&p, "engineer", "bob");
        assert_eq!(
            t,
            "from=2026-10-01&tz=Europe%2FParis&filter_engineer=ann&engineer=bob"
        );
        let mut timeline = Params::new();
        for kv in t.split('&') {
            let (k, v) = kv.split_once('=').unwrap_or_default();
            timeline.insert(k.into(), v.replace("%2F", "/"));
        }
        let back = dashboard_state(&timeline);
        assert_eq!(
            query(&back, &[]),
            "from=2026-10-01&tz=Europe%2FParis&engineer=ann"
        );
        assert_eq!(encode("<x>\""), "%3Cx%3E%22");
    }
}
