//! Human formats: terminal tables (comfy-table) and Markdown.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table as Comfy};

use super::{Cell, Table, TimeStyle};

/// Columns at most this wide never wrap on a terminal.
const SHORT_COLUMN: usize = 32;

/// A terminal table; control characters from the trail are shown escaped. No value is
/// ever cut (SPEC §11): on a terminal, columns wrap to its width (keys, ARNs and ids are
/// shown whole, on several lines if need be); elsewhere (a pipe, a file) rows are as
/// wide as their values.
pub fn table(t: &Table, style: TimeStyle) -> String {
    let mut c = Comfy::new();
    c.load_preset(UTF8_FULL_CONDENSED)
        // Dynamic wraps to the terminal's width when stdout is one, and does nothing
        // otherwise.
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(t.columns.clone());
    let mut widths: Vec<usize> = t.columns.iter().map(|h| h.chars().count()).collect();
    for r in &t.rows {
        let cells: Vec<String> = r
            .iter()
            .map(|cell| match cell {
                Cell::Text(s) => s.escape_debug().to_string(),
                other => other.text(style),
            })
            .collect();
        for (w, cell) in widths.iter_mut().zip(&cells) {
            *w = (*w).max(cell.chars().count());
        }
        c.add_row(cells);
    }
    // Short columns (ids, times, counts) keep their width; only the long ones (keys,
    // ARNs, messages) wrap when the terminal is narrow.
    for (i, w) in widths.into_iter().enumerate() {
        if w <= SHORT_COLUMN
            && let Some(col) = c.column_mut(i)
        {
            col.set_constraint(comfy_table::ColumnConstraint::ContentWidth);
        }
    }
    if t.rows.is_empty() {
        format!("{c}\n(no rows)")
    } else {
        c.to_string()
    }
}

fn md_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A GitHub-flavoured Markdown table.
pub fn markdown(t: &Table, style: TimeStyle) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "| {} |\n",
        t.columns
            .iter()
            .map(|c| md_escape(c))
            .collect::<Vec<_>>()
            .join(" | ")
    ));
    out.push_str(&format!("|{}\n", "---|".repeat(t.columns.len())));
    for r in &t.rows {
        let cells: Vec<String> = r.iter().map(|c| md_escape(&c.text(style))).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    if t.rows.is_empty() {
        out.push_str("\n_(no rows)_\n");
    }
    out
}

/// The monthly report as Markdown: the HTML report's sections, tables instead of charts.
pub fn report_markdown(r: &crate::query::report::Report) -> String {
    use super::html::{
        audit_findings_table, audit_results_table, coverage_table, method_notes, summary_counts,
        verdict,
    };
    let style = TimeStyle { local: None };
    let scope = r
        .account
        .as_deref()
        .map_or("all accounts".to_string(), |a| format!("account {a}"));
    let mut o = format!(
        "# CE access — monthly compliance report\n\n{} · {} · zone {}\n\n## Summary and verdict\n\n**{}**\n\n",
        md_escape(&r.month),
        md_escape(&scope),
        md_escape(&r.config.time.zone),
        md_escape(&verdict(r).1)
    );
    for (label, value) in summary_counts(r) {
        o.push_str(&format!("- {label}: {value}\n"));
    }
    o.push_str("\n## Alarm states\n\n");
    for name in ["admin-alarm", "access-denied-alarm"] {
        if let Some(w) = r.widget(name) {
            let state = if w.total > 0 { "ALARM" } else { "OK" };
            o.push_str(&format!(
                "### {} — {state}\n\n{}\n\n",
                w.widget.title,
                markdown(&w.table, style)
            ));
        }
    }
    o.push_str("## Conformance audit\n\n");
    let results = audit_results_table(&r.audit);
    o.push_str(&markdown(&results, style));
    if !r.audit.findings.is_empty() {
        o.push_str("\n\n### Findings\n\n");
        o.push_str(&markdown(
            &audit_findings_table(&r.audit, Some(crate::query::report::MAX_ROWS)),
            style,
        ));
    }
    let det = &r.detections;
    o.push_str(&format!(
        "\n\n## Detections\n\nSigma rules of queries/rules — {} ({} hits, {} of {} rules)\n\n{}",
        if det.alarm { "ALARM" } else { "OK" },
        det.total,
        det.rules.rows.len(),
        det.ran,
        markdown(&det.rules, style)
    ));
    if det.total > 0 {
        o.push_str("\n\n### The events\n\n");
        o.push_str(&markdown(&det.hits, style));
    }
    o.push_str("\n\n## The 17 widgets\n\n");
    for w in &r.widgets {
        o.push_str(&format!(
            "### {}. {} (`{}`)\n\n{}\n",
            w.widget.number,
            w.widget.title,
            w.widget.name,
            markdown(&w.table, style)
        ));
        if w.total > w.table.rows.len() {
            o.push_str(&format!(
                "\n{} of {} rows shown.\n",
                w.table.rows.len(),
                w.total
            ));
        }
        o.push('\n');
    }
    o.push_str("## Method and data coverage\n\n");
    for line in method_notes(r) {
        o.push_str(&format!("- {}\n", md_escape(&line)));
    }
    o.push('\n');
    o.push_str(&markdown(&coverage_table(r), style));
    o.push('\n');
    o
}
