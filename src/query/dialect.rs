//! The widgets' SQL for other engines: DuckDB, Apache Spark and Amazon Athena (Trino).
//!
//! `queries/*.sql` are written once, in the dialect polars and DuckDB share. Each engine
//! gets its own definition of the `events` view (`queries/views/<engine>.sql`, the same
//! columns as [`super::view`]) and a translation of the few constructs its SQL spells
//! differently:
//!
//! | construct | Spark | Athena / Trino |
//! |---|---|---|
//! | `"name"` (quoted identifier) | `` `name` `` | kept |
//! | `TIMESTAMPTZ 'YYYY-MM-DD hh:mm:ss+00'` | `TIMESTAMP '…'` (session zone UTC) | `TIMESTAMP '…'` (UTC) |
//! | `VARCHAR` | `STRING` | kept |
//! | `INTERVAL 'n days'` | kept | `INTERVAL 'n' DAY` |
//! | `STRING_AGG(DISTINCT x, s ORDER BY x)` | `array_join(array_sort(collect_set(x)), s)` | `array_join(array_sort(array_agg(DISTINCT x) FILTER (…)), s)` |
//! | `MEDIAN(x)` | kept | `approx_percentile(x, 0.5)` (approximate: Trino has no exact median) |
//!
//! `STRING_AGG` of no value is NULL in every engine (`CASE WHEN COUNT(x) = 0`).
//! The scanner skips string literals and comments, so values are never rewritten.

use std::collections::BTreeMap;

use super::widgets::render_template;

/// An engine the widgets run on besides polars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    DuckDb,
    Spark,
    Athena,
}

impl std::str::FromStr for Engine {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "duckdb" => Ok(Engine::DuckDb),
            "spark" => Ok(Engine::Spark),
            "athena" | "trino" => Ok(Engine::Athena),
            _ => Err(format!("unknown engine `{s}` (duckdb, spark, athena)")),
        }
    }
}

impl Engine {
    pub const ALL: [Engine; 3] = [Engine::DuckDb, Engine::Spark, Engine::Athena];

    pub fn name(self) -> &'static str {
        match self {
            Engine::DuckDb => "duckdb",
            Engine::Spark => "spark",
            Engine::Athena => "athena",
        }
    }

    /// The engine's definition of the `events` view, with `{{placeholders}}`
    /// (`{{lake}}`: the lake's root, a folder or `s3://…` URL; Athena reads the table
    /// `athena-ddl` creates instead).
    pub fn view_sql(self) -> &'static str {
        match self {
            Engine::DuckDb => include_str!("../../queries/views/duckdb.sql"),
            Engine::Spark => include_str!("../../queries/views/spark.sql"),
            Engine::Athena => include_str!("../../queries/views/athena.sql"),
        }
    }

    /// The statement (no `;`) creating the `session_facts` view over `events` in this
    /// engine (`queries/views/session_facts.sql`, translated).
    pub fn session_facts_sql(self) -> String {
        let create = match self {
            Engine::Spark => "CREATE OR REPLACE TEMPORARY VIEW",
            Engine::DuckDb | Engine::Athena => "CREATE OR REPLACE VIEW",
        };
        let body = self.translate(super::widgets::SESSION_FACTS_SQL);
        format!("{create} session_facts AS\n{}", body.trim_end())
    }

    /// Placeholder values in this engine's literal syntax (timestamps without the
    /// `+00` offset where the engine reads them in its UTC session zone).
    pub fn params(self, params: &BTreeMap<&'static str, String>) -> BTreeMap<&'static str, String> {
        params
            .iter()
            .map(|(k, v)| {
                let v = match (self, v.strip_suffix("+00")) {
                    (Engine::Spark | Engine::Athena, Some(t)) => t.to_string(),
                    _ => v.clone(),
                };
                (*k, v)
            })
            .collect()
    }

    /// A widget's SQL (placeholders kept) in this engine's dialect.
    pub fn translate(self, sql: &str) -> String {
        if self == Engine::DuckDb {
            return sql.to_string();
        }
        let mut out = String::with_capacity(sql.len() + 64);
        let b = sql.as_bytes();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'\'' => {
                    let end = skip_string(b, i);
                    out.push_str(&sql[i..end]);
                    i = end;
                }
                b'-' if b.get(i + 1) == Some(&b'-') => {
                    let end = sql[i..].find('\n').map_or(b.len(), |n| i + n);
                    out.push_str(&sql[i..end]);
                    i = end;
                }
                b'"' => {
                    let end = sql[i + 1..].find('"').map_or(b.len(), |n| i + 1 + n);
                    let name = &sql[i + 1..end.min(b.len())];
                    if self == Engine::Spark {
                        out.push('`');
                        out.push_str(name);
                        out.push('`');
                    } else {
                        out.push('"');
                        out.push_str(name);
                        out.push('"');
                    }
                    i = (end + 1).min(b.len());
                }
                c if c.is_ascii_alphabetic() || c == b'_' => {
                    let end = i + sql[i..]
                        .bytes()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
                        .count();
                    let word = &sql[i..end];
                    let (text, next) = self.word(sql, word, end);
                    out.push_str(&text);
                    i = next;
                }
                _ => {
                    let ch = sql[i..].chars().next().unwrap_or(' ');
                    out.push(ch);
                    i += ch.len_utf8();
                }
            }
        }
        out
    }

    /// Rewrites one word (and, for function calls, its arguments); returns the text and
    /// where scanning continues.
    fn word(self, sql: &str, word: &str, end: usize) -> (String, usize) {
        let upper = word.to_ascii_uppercase();
        let call = || call_args(sql, end);
        match (upper.as_str(), self) {
            ("TIMESTAMPTZ", _) => ("TIMESTAMP".into(), end),
            ("VARCHAR", Engine::Spark) => ("STRING".into(), end),
            ("INTERVAL", Engine::Athena) => {
                let rest = &sql[end..];
                let lit_start = end + (rest.len() - rest.trim_start().len());
                if sql[lit_start..].starts_with('\'') {
                    let lit_end = skip_string(sql.as_bytes(), lit_start);
                    let body = &sql[lit_start + 1..lit_end.saturating_sub(1).max(lit_start + 1)];
                    if let Some(n) = body.trim().strip_suffix("days") {
                        return (format!("INTERVAL '{}' DAY", n.trim()), lit_end);
                    }
                }
                (word.into(), end)
            }
            ("STRING_AGG", _) => match call() {
                Some((args, next)) => match string_agg(&self.translate(&args)) {
                    Some((x, sep)) => {
                        let set = if self == Engine::Spark {
                            format!("collect_set({x})")
                        } else {
                            format!("array_agg(DISTINCT {x}) FILTER (WHERE {x} IS NOT NULL)")
                        };
                        (
                            format!(
                                "CASE WHEN COUNT({x}) = 0 THEN NULL ELSE array_join(array_sort({set}), {sep}) END"
                            ),
                            next,
                        )
                    }
                    None => (format!("{word}({args})"), next),
                },
                None => (word.into(), end),
            },
            ("MEDIAN", Engine::Athena) => match call() {
                Some((args, next)) => (
                    format!("approx_percentile({}, 0.5)", self.translate(&args)),
                    next,
                ),
                None => (word.into(), end),
            },
            _ => (word.into(), end),
        }
    }
}

/// End (exclusive) of the single-quoted literal starting at `start` (`''` escapes).
fn skip_string(b: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        if b[i] == b'\'' {
            if b.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

/// The argument text of the call whose name ends at `end` (`(…)` right after it,
/// nested parentheses and strings skipped), and the index after `)`.
fn call_args(sql: &str, end: usize) -> Option<(String, usize)> {
    let b = sql.as_bytes();
    let open = end + sql[end..].len() - sql[end..].trim_start().len();
    if b.get(open) != Some(&b'(') {
        return None;
    }
    let mut depth = 0usize;
    let mut i = open;
    while i < b.len() {
        match b[i] {
            b'\'' => {
                i = skip_string(b, i);
                continue;
            }
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some((sql[open + 1..i].to_string(), i + 1));
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// `DISTINCT x, 'sep' ORDER BY x` → (`x`, `'sep'`) when both expressions agree.
fn string_agg(args: &str) -> Option<(String, String)> {
    let rest = args.trim();
    let rest = rest
        .get(..8)
        .filter(|p| p.eq_ignore_ascii_case("DISTINCT"))
        .map(|_| rest[8..].trim_start())?;
    let (x, tail) = rest.split_once(',')?;
    let upper = tail.to_ascii_uppercase();
    let at = upper.find("ORDER BY")?;
    let sep = tail[..at].trim();
    let order = tail[at + 8..].trim();
    (order == x.trim()).then(|| (x.trim().to_string(), sep.to_string()))
}

/// Splits a script into statements at `;` ending a line (outside strings).
pub fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in sql.lines() {
        let t = line.trim_end();
        if let Some(stmt) = t.strip_suffix(';') {
            cur.push_str(stmt);
            if !cur.trim().is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            cur.clear();
        } else {
            cur.push_str(line);
            cur.push('\n');
        }
    }
    if cur.lines().any(|l| {
        let l = l.trim();
        !l.is_empty() && !l.starts_with("--")
    }) {
        out.push(cur);
    }
    out
}

/// The lake's columns, quoted and comma-separated (the `{{columns}}` placeholder).
pub fn lake_columns() -> String {
    crate::lake::schema::COLUMNS
        .iter()
        .map(|c| format!("\"{}\"", c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A whole script for `engine`: the view's statements then each widget's query, every
/// placeholder filled (`params` as [`super::widgets::template_params`] gives them, plus
/// `lake`, and for Athena `table`).
pub fn script(
    engine: Engine,
    params: &BTreeMap<&'static str, String>,
    widgets: &[&super::widgets::Widget],
) -> (Vec<String>, Vec<(&'static str, String)>) {
    let mut p = engine.params(params);
    p.entry("columns").or_insert_with(lake_columns);
    let mut view = statements(&render_template(engine.view_sql(), &p));
    view.push(render_template(&engine.session_facts_sql(), &p));
    let queries = widgets
        .iter()
        .map(|w| (w.name, render_template(&engine.translate(w.sql), &p)))
        .collect();
    (view, queries)
}

/// `CREATE EXTERNAL TABLE` for Athena over the lake at `location` (`s3://bucket/prefix`):
/// Parquet, partitioned by `month` with partition projection (no `MSCK REPAIR`, new
/// months visible at once).
pub fn athena_table_ddl(location: &str, table: &str, first_month: &str) -> String {
    let location = location.trim_end_matches('/');
    let width = crate::lake::schema::COLUMNS
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0);
    let cols = crate::lake::schema::COLUMNS
        .iter()
        .map(|c| {
            let name = format!("`{}`", c.name);
            format!("    {name:w$} {}", c.kind.hive_type(), w = width + 2)
        })
        .collect::<Vec<_>>()
        .join(",\n");
    format!(
        "CREATE EXTERNAL TABLE IF NOT EXISTS {table} (\n{cols}\n)\n\
         PARTITIONED BY (`month` string)\n\
         STORED AS PARQUET\n\
         LOCATION '{location}/events/'\n\
         TBLPROPERTIES (\n\
         \x20   'projection.enabled' = 'true',\n\
         \x20   'projection.month.type' = 'date',\n\
         \x20   'projection.month.format' = 'yyyy-MM',\n\
         \x20   'projection.month.range' = '{first_month},NOW',\n\
         \x20   'projection.month.interval' = '1',\n\
         \x20   'projection.month.interval.unit' = 'MONTHS',\n\
         \x20   'storage.location.template' = '{location}/events/month=${{month}}/',\n\
         \x20   'parquet.compression' = 'ZSTD'\n\
         )"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spark_translation() {
        let sql = "SELECT STRING_AGG(DISTINCT e.role, ',' ORDER BY e.role) AS \"start\", \
                   CAST(NULL AS VARCHAR) AS v, 'it''s \"x\" STRING_AGG' AS s -- \"c\"\n\
                   FROM t WHERE t >= TIMESTAMPTZ '{{from}}' - INTERVAL '{{lookback_days}} days'";
        let s = Engine::Spark.translate(sql);
        assert_eq!(
            s,
            "SELECT CASE WHEN COUNT(e.role) = 0 THEN NULL ELSE array_join(array_sort(collect_set(e.role)), ',') END AS `start`, \
             CAST(NULL AS STRING) AS v, 'it''s \"x\" STRING_AGG' AS s -- \"c\"\n\
             FROM t WHERE t >= TIMESTAMP '{{from}}' - INTERVAL '{{lookback_days}} days'"
        );
        let a = Engine::Athena.translate(sql);
        assert!(
            a.contains("array_agg(DISTINCT e.role) FILTER (WHERE e.role IS NOT NULL)"),
            "{a}"
        );
        assert!(a.contains("AS \"start\""), "{a}");
        assert!(a.contains("INTERVAL '{{lookback_days}}' DAY"), "{a}");
        assert!(a.contains("CAST(NULL AS VARCHAR)"), "{a}");
        assert_eq!(
            Engine::Athena.translate("SELECT MEDIAN(ABS(b.x - s.e)) FROM t"),
            "SELECT approx_percentile(ABS(b.x - s.e), 0.5) FROM t"
        );
        // A shape the translator does not know is left for the engine to reject.
        assert_eq!(
            Engine::Spark.translate("STRING_AGG(x, ',')"),
            "STRING_AGG(x, ',')"
        );
    }

    #[test]
    fn athena_table_has_every_column_and_projection() {
        let ddl = athena_table_ddl("s3://b/lake/", "ce_events", "2024-01");
        for c in crate::lake::schema::COLUMNS {
            assert!(ddl.contains(&format!("`{}`", c.name)), "{}", c.name);
        }
        assert!(ddl.contains("LOCATION 's3://b/lake/events/'"), "{ddl}");
        assert!(ddl.contains("'storage.location.template' = 's3://b/lake/events/month=${month}/'"));
        assert!(ddl.contains("'projection.month.range' = '2024-01,NOW'"));
        let squeezed = ddl.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            squeezed.contains("`resources` array<struct<arn:string,type:string,account:string>>")
        );
        assert!(squeezed.contains("`event_time` timestamp,"));
    }

    #[test]
    fn statements_split_at_line_ends() {
        let s = statements("-- a\nCREATE x AS\nSELECT ';';\nCREATE y;\n-- end\n");
        assert_eq!(s, vec!["-- a\nCREATE x AS\nSELECT ';'", "CREATE y"]);
    }

    #[test]
    fn timestamps_lose_the_offset_where_the_session_is_utc() {
        let p = BTreeMap::from([("from", "2026-10-01 00:00:00+00".to_string())]);
        assert_eq!(Engine::Spark.params(&p)["from"], "2026-10-01 00:00:00");
        assert_eq!(Engine::DuckDb.params(&p)["from"], "2026-10-01 00:00:00+00");
    }
}
