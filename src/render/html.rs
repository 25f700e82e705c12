//! The monthly report as one self-contained HTML file: inline CSS and SVG, no script,
//! no external resource (a Content-Security-Policy forbids both), every string from the
//! trail escaped, print-friendly.

use std::fmt::Write as _;

use super::charts;
use super::{Cell, Table, TimeStyle};
use crate::query::audit::{Audit, Status};
use crate::query::report::{MAX_ROWS, Report};

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {
                let _ = write!(out, "&#{};", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;max-width:1100px;margin:24px auto;padding:0 16px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:28px 0 8px;border-bottom:2px solid #4477aa;padding-bottom:3px}
h3{font-size:15px;margin:18px 0 6px}.muted{color:#666}
table{border-collapse:collapse;width:100%;margin:6px 0 10px;font-size:12px}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top;word-break:break-word}
th{background:#f2f5f9}td.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#1b7a2e;font-weight:600}.fail{color:#c0392b;font-weight:700}.unknown{color:#b7950b;font-weight:600}
.alarm{background:#fdecea}.ok{background:#eaf6ec}
.cards{display:flex;gap:10px;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:120px}
.card b{display:block;font-size:20px}
svg{width:100%;height:auto;margin:4px 0 12px}
@media print{body{margin:0;max-width:none}h2{break-after:avoid}table,svg,.card{break-inside:avoid}}
"#;

fn cell_html(c: &Cell, style: TimeStyle) -> String {
    match c {
        Cell::Null => r#"<td class="muted">—</td>"#.to_string(),
        Cell::Int(_) | Cell::Float(_) => format!(r#"<td class="num">{}</td>"#, esc(&c.text(style))),
        other => format!("<td>{}</td>", esc(&other.text(style))),
    }
}

/// A table; `total` > rows shown adds a note.
pub fn table_html(t: &Table, total: usize, style: TimeStyle) -> String {
    let mut out = String::from("<table><thead><tr>");
    for c in &t.columns {
        let _ = write!(out, "<th>{}</th>", esc(c));
    }
    out.push_str("</tr></thead><tbody>");
    if t.rows.is_empty() {
        let _ = write!(
            out,
            r#"<tr><td class="muted" colspan="{}">no rows</td></tr>"#,
            t.columns.len().max(1)
        );
    }
    for r in &t.rows {
        out.push_str("<tr>");
        for c in r {
            out.push_str(&cell_html(c, style));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    if total > t.rows.len() {
        let _ = write!(
            out,
            r#"<p class="muted">{} of {total} rows shown; <code>cetrail query</code> prints them all.</p>"#,
            t.rows.len()
        );
    }
    out
}

fn status_class(s: Status) -> &'static str {
    match s {
        Status::Pass => "pass",
        Status::Fail => "fail",
        Status::Unknown => "unknown",
    }
}

/// The verdict line: what a compliance officer reads first.
pub fn verdict(r: &Report) -> (Status, String) {
    let failed: Vec<&str> = r
        .audit
        .results
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| c.control)
        .collect();
    let unknown = r
        .audit
        .results
        .iter()
        .filter(|c| c.status == Status::Unknown)
        .count();
    if !failed.is_empty() {
        (
            Status::Fail,
            format!(
                "NOT CONFORMING: {} control(s) failed ({})",
                failed.len(),
                failed.join(", ")
            ),
        )
    } else if unknown > 0 {
        (
            Status::Unknown,
            format!("conforming where the trail can tell; {unknown} control(s) undecidable"),
        )
    } else {
        (Status::Pass, "CONFORMING: every control passed".into())
    }
}

/// Counts for the summary cards.
pub fn summary_counts(r: &Report) -> Vec<(&'static str, String)> {
    let rows = |name: &str| r.widget(name).map_or(0, |w| w.total);
    let sum = |name: &str, col: &str| -> i64 {
        r.widget(name).map_or(0, |w| {
            let i = w.table.columns.iter().position(|c| c == col);
            w.table
                .rows
                .iter()
                .filter_map(|row| match i.map(|i| &row[i]) {
                    Some(Cell::Int(n)) => Some(*n),
                    _ => None,
                })
                .sum()
        })
    };
    vec![
        ("CE events", r.events.to_string()),
        ("sessions", sum("sessions-by-role", "sessions").to_string()),
        ("engineers", rows("engineers").to_string()),
        ("admin alarm episodes", rows("admin-alarm").to_string()),
        (
            "access-denied episodes",
            rows("access-denied-alarm").to_string(),
        ),
        ("anomalies", rows("anomalies").to_string()),
        ("write actions", sum("write-actions", "events").to_string()),
    ]
}

/// The whole report.
pub fn report_html(r: &Report) -> String {
    let style = TimeStyle { local: None };
    let mut o = String::with_capacity(256 * 1024);
    let scope = r
        .account
        .as_deref()
        .map_or("all accounts".to_string(), |a| format!("account {a}"));
    let _ = write!(
        o,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>CE access report {} · {}</title><style>{CSS}</style></head><body>"#,
        esc(&r.month),
        esc(&scope)
    );
    let _ = write!(
        o,
        r#"<h1>CE access — monthly compliance report</h1><p class="muted">{} · {} · {} to {} ({}) · cetrail {}</p>"#,
        esc(&r.month),
        esc(&scope),
        esc(&super::format_time(r.from.timestamp_micros(), style)),
        esc(&super::format_time(r.to.timestamp_micros(), style)),
        esc(&r.config.time.zone),
        env!("CARGO_PKG_VERSION")
    );

    // Summary and verdict.
    let (status, line) = verdict(r);
    let _ = write!(
        o,
        r#"<h2 id="summary">Summary and verdict</h2><p class="{}">{}</p><div class="cards">"#,
        status_class(status),
        esc(&line)
    );
    for (label, value) in summary_counts(r) {
        let _ = write!(
            o,
            r#"<div class="card"><b>{}</b>{}</div>"#,
            esc(&value),
            esc(label)
        );
    }
    o.push_str("</div>");

    // Alarm states.
    o.push_str(r#"<h2 id="alarms">Alarm states</h2>"#);
    for name in ["admin-alarm", "access-denied-alarm"] {
        if let Some(w) = r.widget(name) {
            let state = if w.total > 0 { "ALARM" } else { "OK" };
            let _ = write!(
                o,
                r#"<h3 class="{}">{} — {state} ({} episode(s))</h3>"#,
                if w.total > 0 { "alarm" } else { "ok" },
                esc(w.widget.title),
                w.total
            );
            o.push_str(&table_html(&w.table, w.total, style));
        }
    }

    // Charts.
    o.push_str(r#"<h2 id="charts">Activity</h2>"#);
    if let Some(w) = r.widget("session-trend") {
        o.push_str(&charts::session_trend(&w.table, style));
    }
    o.push_str(&charts::heat(&r.activity.heat));
    if let Some(w) = r.widget("week-over-week") {
        o.push_str(&charts::week_over_week(&w.table, style));
    }
    o.push_str(&charts::hourly(&r.activity, r.from, r.to, style));

    // Audit.
    o.push_str(r#"<h2 id="audit">Conformance audit</h2><table><thead><tr><th>control</th><th>status</th><th>findings</th><th>reason</th></tr></thead><tbody>"#);
    for c in &r.audit.results {
        let _ = write!(
            o,
            r#"<tr><td>{}</td><td class="{}">{}</td><td class="num">{}</td><td>{}</td></tr>"#,
            esc(c.control),
            status_class(c.status),
            esc(c.status.as_str()),
            c.findings,
            esc(&c.reason)
        );
    }
    o.push_str("</tbody></table>");
    if !r.audit.findings.is_empty() {
        o.push_str("<h3>Findings (evidence events)</h3>");
        let t = audit_findings_table(&r.audit, Some(MAX_ROWS));
        o.push_str(&table_html(&t, r.audit.findings_total() as usize, style));
    }

    // Detections.
    let det = &r.detections;
    let _ = write!(
        o,
        r#"<h2 id="detections">Detections</h2><h3 class="{}">Sigma rules of queries/rules — {} ({} hits, {} of {} rules)</h3>"#,
        if det.alarm { "alarm" } else { "ok" },
        if det.alarm { "ALARM" } else { "OK" },
        det.total,
        det.rules.rows.len(),
        det.ran
    );
    o.push_str(&table_html(&det.rules, det.rules.rows.len(), style));
    if det.total > 0 {
        o.push_str("<h3>The events</h3>");
        o.push_str(&table_html(&det.hits, det.total, style));
    }

    // Anomalies and the widgets.
    if let Some(w) = r.widget("anomalies") {
        o.push_str(r#"<h2 id="anomalies">Anomalies</h2>"#);
        o.push_str(&table_html(&w.table, w.total, style));
    }
    o.push_str(r#"<h2 id="widgets">The 17 widgets</h2>"#);
    for w in &r.widgets {
        let _ = write!(
            o,
            r#"<h3>{}. {} <span class="muted">({})</span></h3>"#,
            w.widget.number,
            esc(w.widget.title),
            esc(w.widget.name)
        );
        o.push_str(&table_html(&w.table, w.total, style));
    }

    // Method notes.
    o.push_str(r#"<h2 id="method">Method and data coverage</h2><ul>"#);
    for line in method_notes(r) {
        let _ = write!(o, "<li>{}</li>", esc(&line));
    }
    o.push_str("</ul>");
    let cov = coverage_table(r);
    o.push_str(&table_html(&cov, cov.rows.len(), style));
    o.push_str("</body></html>\n");
    o
}

/// The audit's result table (`control, status, findings, reason`).
pub fn audit_results_table(a: &Audit) -> Table {
    Table {
        columns: ["control", "status", "findings", "reason"]
            .map(String::from)
            .to_vec(),
        rows: a
            .results
            .iter()
            .map(|r| {
                vec![
                    Cell::Text(r.control.to_string()),
                    Cell::Text(r.status.as_str().to_string()),
                    Cell::Int(r.findings as i64),
                    Cell::Text(r.reason.clone()),
                ]
            })
            .collect(),
    }
}

/// The audit's evidence, at most `limit` rows.
pub fn audit_findings_table(a: &Audit, limit: Option<usize>) -> Table {
    let opt = |s: &Option<String>| s.clone().map_or(Cell::Null, Cell::Text);
    Table {
        columns: [
            "control",
            "event_time",
            "account",
            "region",
            "role",
            "engineer",
            "event_source",
            "event_name",
            "source_ip",
            "error_code",
            "event_id",
            "detail",
        ]
        .map(String::from)
        .to_vec(),
        rows: a
            .findings
            .iter()
            .take(limit.unwrap_or(usize::MAX))
            .map(|f| {
                vec![
                    Cell::Text(f.control.to_string()),
                    Cell::Time(f.event_time),
                    opt(&f.account),
                    opt(&f.region),
                    opt(&f.role),
                    opt(&f.engineer),
                    opt(&f.event_source),
                    opt(&f.event_name),
                    opt(&f.source_ip),
                    opt(&f.error_code),
                    Cell::Text(f.event_id.clone()),
                    Cell::Text(f.detail.clone()),
                ]
            })
            .collect(),
    }
}

/// Coverage per account × region over the month.
pub fn coverage_table(r: &Report) -> Table {
    use std::collections::BTreeMap;
    /// days, log files, CE events, rejected, gap hours
    type Sums = (i64, i64, i64, i64, i64);
    let mut per: BTreeMap<(String, String), Sums> = BTreeMap::new();
    for d in &r.coverage.days {
        let k = (
            d.account
                .clone()
                .unwrap_or_else(|| "(outside the layout)".into()),
            d.region.clone().unwrap_or_default(),
        );
        let e = per.entry(k).or_default();
        e.0 += 1;
        e.1 += d.log_files as i64;
        e.2 += d.events_kept as i64;
        e.3 += d.rejected as i64;
        e.4 += d.gap_hours as i64;
    }
    Table {
        columns: [
            "account",
            "region",
            "days",
            "log_files",
            "ce_events",
            "rejected",
            "gap_hours",
        ]
        .map(String::from)
        .to_vec(),
        rows: per
            .into_iter()
            .map(|((a, reg), (days, files, ev, rej, gaps))| {
                vec![
                    Cell::Text(a),
                    Cell::Text(reg),
                    Cell::Int(days),
                    Cell::Int(files),
                    Cell::Int(ev),
                    Cell::Int(rej),
                    Cell::Int(gaps),
                ]
            })
            .collect(),
    }
}

/// Thresholds, zone and coverage, as sentences.
pub fn method_notes(r: &Report) -> Vec<String> {
    let mut notes = source_warnings(r);
    notes.extend(settings_notes(r));
    notes
}

/// A sentence per source that makes the widgets undercount (SPEC §10).
pub fn source_warnings(r: &Report) -> Vec<String> {
    r.coverage
        .warnings
        .iter()
        .map(|w| format!("Warning: {w}."))
        .collect()
}

fn settings_notes(r: &Report) -> Vec<String> {
    let c = &r.config;
    let roles: Vec<String> = c
        .roles
        .iter()
        .map(|x| format!("{} (MFA ≤ {} h)", x.name, x.mfa_max_age_hours))
        .collect();
    vec![
        format!(
            "Range: the local month {} in {}, [{}, {}); days and weeks are local, 5-minute periods and hours UTC.",
            r.month,
            c.time.zone,
            super::format_time(r.from.timestamp_micros(), TimeStyle { local: None }),
            super::format_time(r.to.timestamp_micros(), TimeStyle { local: None })
        ),
        format!(
            "Business hours: {}–{} on {}.",
            c.time.business_start,
            c.time.business_end,
            c.time.business_days.join(", ")
        ),
        format!("CE roles: {}.", roles.join(", ")),
        format!(
            "Alarms: admin alarm at ≥ {} {} event(s) per 5-minute period; access-denied alarm at ≥ {} denied event(s).",
            c.alarms.admin_threshold, c.access.admin_role, c.alarms.denied_threshold
        ),
        format!(
            "Anomalies: volume = robust z-score (median/MAD) over the role's non-zero hours of the previous {} days, at least {} hours of history, score ≥ {} and excess ≥ {}; first-seen values against the {} days before the range.",
            c.anomalies.volume_window_days,
            c.anomalies.volume_min_hours,
            c.anomalies.volume_score,
            c.anomalies.volume_min_excess,
            c.anomalies.first_seen_lookback_days
        ),
        format!(
            "Access model: ExternalId `{}`, sessions ≤ {} s, vendor accounts [{}], onboarded accounts [{}].",
            c.access.external_id,
            c.access.max_session_seconds,
            c.access.vendor_accounts.join(", "),
            c.access.onboarded_accounts.join(", ")
        ),
        format!(
            "Data coverage (from the lake's ledger, delivery days of the month): {} log file(s), {} CE event(s), {} rejected object(s), {} gap(s) (hours with no log file between deliveries), {} object(s) skipped as not logs.",
            r.coverage.log_files,
            r.coverage.events_kept,
            r.coverage.rejected.len(),
            r.coverage.gaps.len(),
            r.coverage.skipped_not_a_log
        ),
    ]
}
