//! Human formats: terminal tables (comfy-table) and Markdown.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table as Comfy};

use super::{Cell, Table, TimeStyle};

/// Longest cell shown in a terminal table (longer values are cut with `…`).
const MAX_CELL: usize = 60;

fn cut(s: String) -> String {
    if s.chars().count() > MAX_CELL {
        let mut t: String = s.chars().take(MAX_CELL - 1).collect();
        t.push('…');
        t
    } else {
        s
    }
}

/// A terminal table; control characters from the trail are shown escaped.
pub fn table(t: &Table, style: TimeStyle) -> String {
    let mut c = Comfy::new();
    c.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(t.columns.clone());
    for r in &t.rows {
        c.add_row(
            r.iter()
                .map(|cell| match cell {
                    Cell::Text(s) => cut(s.escape_debug().to_string()),
                    other => other.text(style),
                })
                .collect::<Vec<_>>(),
        );
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
