//! A rule compiled to one polars expression over the lake's columns.
//!
//! Each map of field tests (all must hold) becomes one boolean column computed from
//! the lake columns that hold its fields ([`super::fields`]), with the reference
//! semantics of [`Test::over`](super::matcher::Test::over) applied to the values as
//! CloudTrail wrote them: text as it is, booleans as `true`/`false`, times as
//! `YYYY-MM-DDTHH:MM:SSZ`, JSON paths through the parsed text, `resources` leaf by leaf.
//! The cheapest test runs first and each next one only on the rows still standing; a
//! text test is decided once per distinct value (a categorical's category, a string),
//! not once per row. The searches and the condition become `and`/`or`/`not` of those
//! columns.

use std::sync::Arc;

use polars::prelude::*;
use serde_json::Value;

use super::Rule;
use super::condition::Condition;
use super::fields::{self, Render, Source};
use super::matcher::{FieldTest, Test, leaves};

/// A test's outcome per distinct value (foldhash: the keys are short strings).
type Memo<K> = std::collections::HashMap<K, bool, foldhash::fast::FixedState>;

/// A rule ready to run over the lake.
pub struct Compiled {
    pub rule: Rule,
    /// Its boolean expression (true: the event hits).
    pub expr: Expr,
    /// The lake columns the expression reads.
    pub columns: Vec<&'static str>,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled")
            .field("rule", &self.rule.title)
            .field("columns", &self.columns)
            .finish()
    }
}

/// Compiles `rule`; `Err` is why it cannot run over the lake (a field the lake does not
/// keep), and the rule is then skipped whole.
pub fn compile(rule: Rule) -> Result<Compiled, String> {
    let mut columns: Vec<&'static str> = Vec::new();
    for t in rule.tests() {
        let source = fields::source(&t.field)
            .ok_or_else(|| format!("field {} is not kept in the lake", t.field))?;
        if !columns.contains(&source.column()) {
            columns.push(source.column());
        }
    }
    let expr = any_of(
        rule.conditions
            .iter()
            .map(|c| condition(&rule, c))
            .collect(),
    );
    Ok(Compiled {
        rule,
        expr,
        columns,
    })
}

fn any_of(exprs: Vec<Expr>) -> Expr {
    exprs.into_iter().reduce(Expr::or).unwrap_or(lit(false))
}

fn all_of(exprs: Vec<Expr>) -> Expr {
    exprs.into_iter().reduce(Expr::and).unwrap_or(lit(true))
}

fn search(rule: &Rule, name: &str) -> Expr {
    match rule.searches.iter().find(|(n, _)| n == name) {
        Some((_, s)) => any_of(s.0.iter().map(|map| map_expr(map)).collect()),
        None => lit(false),
    }
}

fn condition(rule: &Rule, c: &Condition) -> Expr {
    match c {
        Condition::Search(n) => search(rule, n),
        Condition::Not(c) => condition(rule, c).not(),
        Condition::And(cs) => all_of(cs.iter().map(|c| condition(rule, c)).collect()),
        Condition::Or(cs) => any_of(cs.iter().map(|c| condition(rule, c)).collect()),
        Condition::Of { all, what } => {
            let each: Vec<Expr> = rule
                .searches
                .iter()
                .filter(|(n, _)| what.covers(n))
                .map(|(n, _)| search(rule, n))
                .collect();
            if each.is_empty() {
                lit(false)
            } else if *all {
                all_of(each)
            } else {
                any_of(each)
            }
        }
    }
}

/// How much a test costs per row on its source: the cheap ones narrow the rows first.
fn cost(source: &Source) -> u8 {
    match source {
        Source::Column {
            render: Render::Text,
            ..
        } => 0,
        Source::Column {
            render: Render::Bool,
            ..
        } => 1,
        Source::IssuerName => 2,
        Source::Column {
            render: Render::Time,
            ..
        } => 3,
        Source::Resources(_) => 4,
        Source::Json { .. } => 5,
    }
}

/// The field tests of one map (all must hold) as one boolean column: over a struct
/// of the columns they read, each test (cheapest first) decides only the rows every
/// test before it passed.
fn map_expr(tests: &[FieldTest]) -> Expr {
    let mut parts: Vec<(Source, Test)> = Vec::with_capacity(tests.len());
    for t in tests {
        // `compile` checked every field has a source; an unknown one never matches.
        let Some(source) = fields::source(&t.field) else {
            return lit(false);
        };
        parts.push((source, t.test.clone()));
    }
    if parts.is_empty() {
        return lit(true);
    }
    parts.sort_by_key(|(source, _)| cost(source));
    let mut columns: Vec<&'static str> = Vec::new();
    for (source, _) in &parts {
        if !columns.contains(&source.column()) {
            columns.push(source.column());
        }
    }
    let parts = Arc::new(parts);
    let boolean = |_: &Schema, f: &Field| Ok(Field::new(f.name().clone(), DataType::Boolean));
    as_struct(columns.iter().map(|c| col(*c)).collect()).map(
        move |c| {
            let fields = c.struct_()?;
            let mut rows = vec![true; c.len()];
            for (source, test) in parts.iter() {
                let field = fields.field_by_name(source.column())?;
                narrow(&field, source, test, &mut rows)?;
                if !rows.contains(&true) {
                    break;
                }
            }
            Ok(BooleanChunked::from_iter_values(c.name().clone(), rows.into_iter()).into_column())
        },
        boolean,
    )
}

/// Keeps in `rows` (true: still possible) the rows of `s` (the column of `source`)
/// that pass `test`; rows already false are not looked at.
pub fn narrow(s: &Series, source: &Source, test: &Test, rows: &mut [bool]) -> PolarsResult<()> {
    match source {
        Source::Column {
            render: Render::Text,
            ..
        } => texts(s, &|v| test.on_text(v), rows),
        Source::IssuerName => texts(
            s,
            &|arn| test.on_text(arn.and_then(fields::issuer_name)),
            rows,
        ),
        Source::Column {
            render: Render::Bool,
            ..
        } => {
            let (yes, no, null) = (
                test.on_text(Some("true")),
                test.on_text(Some("false")),
                test.on_text(None),
            );
            for (row, v) in rows.iter_mut().zip(s.bool()?.iter()) {
                if *row {
                    *row = match v {
                        Some(true) => yes,
                        Some(false) => no,
                        None => null,
                    };
                }
            }
            Ok(())
        }
        Source::Column {
            render: Render::Time,
            ..
        } => {
            let micros = s.to_physical_repr();
            let mut buf = [0u8; 20];
            for (row, v) in rows.iter_mut().zip(micros.i64()?.iter()) {
                if *row {
                    *row = test.on_text(v.and_then(|v| cloudtrail_time(v, &mut buf)));
                }
            }
            Ok(())
        }
        Source::Json { path, .. } => {
            let mut memo: Memo<&str> = Memo::default();
            for (row, v) in rows.iter_mut().zip(s.str()?.iter()) {
                if *row {
                    *row = match v {
                        None => test.over(&[]),
                        Some(text) => *memo
                            .entry(text)
                            .or_insert_with(|| over_json(text, path, test)),
                    };
                }
            }
            Ok(())
        }
        Source::Resources(leaf) => {
            let lists = s.list()?;
            for (row, list) in rows.iter_mut().zip(lists.amortized_iter()) {
                if !*row {
                    continue;
                }
                let mut found: Vec<Value> = Vec::new();
                if let Some(list) = list {
                    let items = list.as_ref().struct_()?;
                    let field = items.field_by_name(leaf)?;
                    found.extend(
                        field
                            .str()?
                            .iter()
                            .flatten()
                            .map(|v| Value::String(v.to_string())),
                    );
                }
                *row = test.over(&found.iter().collect::<Vec<_>>());
            }
            Ok(())
        }
    }
}

/// A time as CloudTrail writes it (`YYYY-MM-DDTHH:MM:SSZ`), into `buf`.
fn cloudtrail_time(micros: i64, buf: &mut [u8; 20]) -> Option<&str> {
    use chrono::{Datelike, Timelike};
    let t = chrono::DateTime::from_timestamp_micros(micros)?;
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    let mut put = |at: usize, v: u32, width: usize| {
        let mut v = v;
        for i in (0..width).rev() {
            if let Some(b) = buf.get_mut(at + i) {
                *b = b'0' + (v % 10) as u8;
            }
            v /= 10;
        }
    };
    put(0, year, 4);
    put(5, t.month(), 2);
    put(8, t.day(), 2);
    put(11, t.hour(), 2);
    put(14, t.minute(), 2);
    put(17, t.second(), 2);
    for (at, c) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'Z'),
    ] {
        buf[at] = c;
    }
    std::str::from_utf8(buf).ok()
}

/// Narrows `rows` by `f` of each row of a text column (a categorical or a string),
/// decided once per distinct value.
fn texts(s: &Series, f: &dyn Fn(Option<&str>) -> bool, rows: &mut [bool]) -> PolarsResult<()> {
    let null = f(None);
    if let Ok(cats) = s.cat32() {
        let mapping = cats.get_mapping();
        // 0: not decided yet, 1: false, 2: true; indexed by category code.
        let mut memo = vec![0u8; mapping.num_cats_upper_bound()];
        for (row, code) in rows.iter_mut().zip(cats.physical().iter()) {
            if !*row {
                continue;
            }
            *row = match code {
                None => null,
                Some(code) => match memo.get(code as usize) {
                    Some(1) => false,
                    Some(2) => true,
                    _ => {
                        let v = f(mapping.cat_to_str(code));
                        if let Some(m) = memo.get_mut(code as usize) {
                            *m = 1 + u8::from(v);
                        }
                        v
                    }
                },
            };
        }
        return Ok(());
    }
    let mut memo: Memo<&str> = Memo::default();
    for (row, v) in rows.iter_mut().zip(s.str()?.iter()) {
        if *row {
            *row = match v {
                None => null,
                Some(v) => *memo.entry(v).or_insert_with(|| f(Some(v))),
            };
        }
    }
    Ok(())
}

/// `test` over the values at `path` of the JSON `text` (empty path: the whole value).
/// Text that is not JSON has no field.
fn over_json(text: &str, path: &str, test: &Test) -> bool {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return test.over(&[]);
    };
    if path.is_empty() {
        return match &value {
            Value::Array(items) => test.over(&items.iter().collect::<Vec<_>>()),
            v => test.over(&[v]),
        };
    }
    test.over(&leaves(&value, path))
}

/// The fields whose tests decide, before any other column is read, which events a
/// rule can hit, and the lake column each is read from.
pub const PLAN_FIELDS: &[(&str, &str)] = &[
    ("eventName", "event_name"),
    ("eventSource", "event_source"),
    ("userIdentity.arn", "identity_arn"),
    (
        "userIdentity.sessionContext.sessionIssuer.userName",
        "identity_arn",
    ),
];

/// The lake columns of [`PLAN_FIELDS`] that some rule tests, in a fixed order.
pub fn plan_columns<'a>(rules: impl Iterator<Item = &'a Rule> + Clone) -> Vec<&'static str> {
    let mut columns = Vec::new();
    for (field, column) in PLAN_FIELDS {
        if !columns.contains(column) && rules.clone().any(|r| r.tests().any(|t| t.field == *field))
        {
            columns.push(*column);
        }
    }
    columns
}

/// Whether `rule` can hit an event whose `columns` (of [`plan_columns`]) hold `values`,
/// whatever its other fields: Kleene's logic with only the tests of those columns'
/// fields known.
pub fn may_hit(rule: &Rule, columns: &[&str], values: &[Option<&str>]) -> bool {
    rule.eval(&|t: &FieldTest| {
        let (_, column) = PLAN_FIELDS.iter().find(|(f, _)| *f == t.field)?;
        let i = columns.iter().position(|c| c == column)?;
        let v = values.get(i).copied().flatten();
        let v = if matches!(fields::source(&t.field), Some(Source::IssuerName)) {
            v.and_then(fields::issuer_name)
        } else {
            v
        };
        Some(t.test.on_text(v))
    }) != Some(false)
}
