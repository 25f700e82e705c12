//! Hand-made inline SVG charts for the HTML report: no script, no external resource,
//! every label escaped. Each function returns one `<svg>` element sized by its data.

use std::fmt::Write as _;

use super::html::esc;

/// Series colours (colour-blind friendly, print well in grey).
pub const PALETTE: [&str; 8] = [
    "#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb", "#000000",
];

fn fmt(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn legend(out: &mut String, names: &[&str], x: f64, y: f64) {
    for (i, n) in names.iter().enumerate() {
        let yy = y + i as f64 * 16.0;
        let _ = write!(
            out,
            r#"<rect x="{x}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}" font-size="11">{}</text>"#,
            yy - 9.0,
            PALETTE[i % PALETTE.len()],
            x + 14.0,
            yy,
            esc(n)
        );
    }
}

/// Stacked bars: one bar per x label, one colour per series.
pub fn stacked_bars(title: &str, labels: &[String], series: &[(String, Vec<f64>)]) -> String {
    let (w, h, left, top, bottom, right) = (860.0, 260.0, 40.0, 24.0, 46.0, 150.0);
    let plot_w = w - left - right;
    let plot_h = h - top - bottom;
    let totals: Vec<f64> = (0..labels.len())
        .map(|i| {
            series
                .iter()
                .map(|s| s.1.get(i).copied().unwrap_or(0.0))
                .sum()
        })
        .collect();
    let max = totals.iter().copied().fold(0.0_f64, f64::max).max(1.0);
    let bw = plot_w / labels.len().max(1) as f64;
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img" aria-label="{}"><title>{}</title>"#,
        esc(title),
        esc(title)
    );
    axis(&mut out, left, top, plot_w, plot_h, max);
    for (i, label) in labels.iter().enumerate() {
        let mut y = top + plot_h;
        for (si, (name, values)) in series.iter().enumerate() {
            let v = values.get(i).copied().unwrap_or(0.0);
            if v <= 0.0 {
                continue;
            }
            let bh = v / max * plot_h;
            y -= bh;
            let _ = write!(
                out,
                r#"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{bh:.1}" fill="{}"><title>{} · {} · {}</title></rect>"#,
                left + i as f64 * bw + 1.0,
                (bw - 2.0).max(1.0),
                PALETTE[si % PALETTE.len()],
                esc(label),
                esc(name),
                fmt(v)
            );
        }
        // Every n-th label, so they do not overlap.
        let every = (labels.len() / 12).max(1);
        if i % every == 0 {
            let _ = write!(
                out,
                r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end" transform="rotate(-45 {:.1} {:.1})">{}</text>"#,
                left + (i as f64 + 0.5) * bw,
                top + plot_h + 12.0,
                left + (i as f64 + 0.5) * bw,
                top + plot_h + 12.0,
                esc(label)
            );
        }
    }
    let names: Vec<&str> = series.iter().map(|s| s.0.as_str()).collect();
    legend(&mut out, &names, w - right + 10.0, top + 10.0);
    out.push_str("</svg>");
    out
}

fn axis(out: &mut String, left: f64, top: f64, plot_w: f64, plot_h: f64, max: f64) {
    let _ = write!(
        out,
        r##"<line x1="{left}" y1="{top}" x2="{left}" y2="{}" stroke="#444"/><line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="#444"/>"##,
        top + plot_h,
        top + plot_h,
        left + plot_w,
        top + plot_h
    );
    for k in 0..=4 {
        let v = max * f64::from(k) / 4.0;
        let y = top + plot_h - plot_h * f64::from(k) / 4.0;
        let _ = write!(
            out,
            r##"<line x1="{left}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" font-size="10" text-anchor="end">{}</text>"##,
            left + plot_w,
            left - 4.0,
            y + 3.0,
            fmt(v.round())
        );
    }
}

/// A heat map: rows × 24 columns (hours), darker = more.
pub fn heatmap(title: &str, rows: &[&str], values: &[Vec<f64>]) -> String {
    let (cell, left, top) = (28.0, 44.0, 24.0);
    let w = left + 24.0 * cell + 10.0;
    let h = top + rows.len() as f64 * cell + 24.0;
    let max = values
        .iter()
        .flatten()
        .copied()
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img" aria-label="{}"><title>{}</title>"#,
        esc(title),
        esc(title)
    );
    for (r, name) in rows.iter().enumerate() {
        let y = top + r as f64 * cell;
        let _ = write!(
            out,
            r#"<text x="{}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"#,
            left - 6.0,
            y + cell * 0.65,
            esc(name)
        );
        for c in 0..24 {
            let v = values
                .get(r)
                .and_then(|row| row.get(c))
                .copied()
                .unwrap_or(0.0);
            let shade = if v <= 0.0 { 0.0 } else { 0.15 + 0.85 * v / max };
            let _ = write!(
                out,
                r##"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="#4477aa" fill-opacity="{shade:.3}" stroke="#eee"><title>{} {c:02}:00 · {}</title></rect>"##,
                left + c as f64 * cell,
                cell - 1.0,
                cell - 1.0,
                esc(name),
                fmt(v)
            );
        }
    }
    for c in (0..24).step_by(3) {
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="10">{c:02}</text>"#,
            left + c as f64 * cell + 4.0,
            top + rows.len() as f64 * cell + 14.0
        );
    }
    out.push_str("</svg>");
    out
}

/// Grouped bars: per label, one bar per series side by side.
pub fn grouped_bars(title: &str, labels: &[String], series: &[(String, Vec<f64>)]) -> String {
    let (w, h, left, top, bottom, right) = (860.0, 240.0, 40.0, 24.0, 40.0, 150.0);
    let plot_w = w - left - right;
    let plot_h = h - top - bottom;
    let max = series
        .iter()
        .flat_map(|s| s.1.iter().copied())
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let group = plot_w / labels.len().max(1) as f64;
    let bw = (group - 6.0) / series.len().max(1) as f64;
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img" aria-label="{}"><title>{}</title>"#,
        esc(title),
        esc(title)
    );
    axis(&mut out, left, top, plot_w, plot_h, max);
    for (i, label) in labels.iter().enumerate() {
        for (si, (name, values)) in series.iter().enumerate() {
            let v = values.get(i).copied().unwrap_or(0.0);
            let bh = v / max * plot_h;
            let _ = write!(
                out,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="{}"><title>{} · {} · {}</title></rect>"#,
                left + i as f64 * group + 3.0 + si as f64 * bw,
                top + plot_h - bh,
                bw.max(1.0),
                PALETTE[si % PALETTE.len()],
                esc(label),
                esc(name),
                fmt(v)
            );
        }
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{}</text>"#,
            left + (i as f64 + 0.5) * group,
            top + plot_h + 14.0,
            esc(label)
        );
    }
    let names: Vec<&str> = series.iter().map(|s| s.0.as_str()).collect();
    legend(&mut out, &names, w - right + 10.0, top + 10.0);
    out.push_str("</svg>");
    out
}

/// A series over equally spaced points with marked points (anomalies).
pub fn line_with_marks(
    title: &str,
    values: &[f64],
    first_label: &str,
    last_label: &str,
    marks: &[(usize, String)],
) -> String {
    let (w, h, left, top, bottom, right) = (860.0, 220.0, 40.0, 24.0, 30.0, 20.0);
    let plot_w = w - left - right;
    let plot_h = h - top - bottom;
    let max = values.iter().copied().fold(0.0_f64, f64::max).max(1.0);
    let step = plot_w / (values.len().max(2) - 1) as f64;
    let pt = |i: usize, v: f64| (left + i as f64 * step, top + plot_h - v / max * plot_h);
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img" aria-label="{}"><title>{}</title>"#,
        esc(title),
        esc(title)
    );
    axis(&mut out, left, top, plot_w, plot_h, max);
    let mut path = String::new();
    for (i, v) in values.iter().enumerate() {
        let (x, y) = pt(i, *v);
        let _ = write!(path, "{}{x:.1},{y:.1} ", if i == 0 { "M" } else { "L" });
    }
    let _ = write!(
        out,
        r##"<path d="{}" fill="none" stroke="#4477aa" stroke-width="1"/>"##,
        path.trim_end()
    );
    for (i, label) in marks {
        let (x, y) = pt(*i, values.get(*i).copied().unwrap_or(0.0));
        let _ = write!(
            out,
            r##"<circle cx="{x:.1}" cy="{y:.1}" r="5" fill="none" stroke="#cc3311" stroke-width="2"><title>{}</title></circle>"##,
            esc(label)
        );
    }
    let _ = write!(
        out,
        r#"<text x="{left}" y="{}" font-size="10">{}</text><text x="{}" y="{}" font-size="10" text-anchor="end">{}</text>"#,
        h - 8.0,
        esc(first_label),
        left + plot_w,
        h - 8.0,
        esc(last_label)
    );
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_bars_scale() {
        let s = stacked_bars(
            "t<script>",
            &["<img src=x onerror=alert(1)>".to_string(), "b".to_string()],
            &[("CE-SRE".into(), vec![2.0, 4.0])],
        );
        assert!(!s.contains("<script>") && !s.contains("<img"));
        assert!(s.contains("&lt;img src=x onerror=alert(1)&gt;"));
        // The tallest bar fills the plot height (190 px).
        assert!(s.contains(r#"height="190.0""#), "{s}");
        assert!(s.contains(r#"height="95.0""#));
        let h = heatmap("h", &["Mon"], &[vec![0.0; 24]]);
        assert_eq!(h.matches("<rect").count(), 24);
        let l = line_with_marks("l", &[1.0, 5.0, 2.0], "a", "b", &[(1, "spike".into())]);
        assert!(l.contains("<circle") && l.contains("spike"));
    }
}
