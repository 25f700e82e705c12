//! A rule compiled to one polars expression over the lake's columns.
//!
//! Each field test becomes a boolean column computed from the lake column that holds
//! its field ([`super::fields`]), with the reference semantics of
//! [`Test::over`](super::matcher::Test::over) applied to the value as CloudTrail wrote
//! it: text as it is, booleans as `true`/`false`, times as `YYYY-MM-DDTHH:MM:SSZ`, JSON
//! paths through the parsed text, `resources` leaf by leaf. A test is evaluated once per
//! distinct value of its column (a categorical's category, a string), not once per row.
//! The searches and the condition become `and`/`or`/`not` of those columns.

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
        Some((_, s)) => any_of(
            s.0.iter()
                .map(|map| all_of(map.iter().map(leaf).collect()))
                .collect(),
        ),
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

/// One field test as a boolean column of the lake column holding its field.
fn leaf(t: &FieldTest) -> Expr {
    // `compile` checked every field has a source; an unknown one never matches.
    let Some(source) = fields::source(&t.field) else {
        return lit(false);
    };
    let test = Arc::new(t.test.clone());
    let boolean = |_: &Schema, f: &Field| Ok(Field::new(f.name().clone(), DataType::Boolean));
    col(source.column()).map(
        move |c| Ok(evaluate(&c, &source, &test)?.into_column()),
        boolean,
    )
}

/// `test` over each row of `c` (the column of `source`).
pub fn evaluate(c: &Column, source: &Source, test: &Test) -> PolarsResult<BooleanChunked> {
    let name = c.name().clone();
    let s = c.as_materialized_series();
    let over_text = |v: Option<&str>| match v {
        Some(v) => test.over(&[&Value::String(v.to_string())]),
        None => test.over(&[]),
    };
    let bits: Vec<bool> = match source {
        Source::Column {
            render: Render::Text,
            ..
        } => texts(s, &over_text)?,
        Source::IssuerName => texts(s, &|arn| over_text(arn.and_then(fields::issuer_name)))?,
        Source::Column {
            render: Render::Bool,
            ..
        } => s
            .bool()?
            .iter()
            .map(|v| match v {
                Some(b) => test.over(&[&Value::Bool(b)]),
                None => test.over(&[]),
            })
            .collect(),
        Source::Column {
            render: Render::Time,
            ..
        } => {
            let micros = s.to_physical_repr();
            micros
                .i64()?
                .iter()
                .map(|v| {
                    let text = v
                        .and_then(chrono::DateTime::from_timestamp_micros)
                        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
                    over_text(text.as_deref())
                })
                .collect()
        }
        Source::Json { path, .. } => {
            let mut memo: Memo<&str> = Memo::default();
            s.str()?
                .iter()
                .map(|v| match v {
                    None => test.over(&[]),
                    Some(text) => *memo
                        .entry(text)
                        .or_insert_with(|| over_json(text, path, test)),
                })
                .collect()
        }
        Source::Resources(leaf) => {
            let lists = s.list()?;
            let mut bits = Vec::with_capacity(lists.len());
            for row in lists.amortized_iter() {
                let mut found: Vec<Value> = Vec::new();
                if let Some(row) = row {
                    let items = row.as_ref().struct_()?;
                    let field = items.field_by_name(leaf)?;
                    found.extend(
                        field
                            .str()?
                            .iter()
                            .flatten()
                            .map(|v| Value::String(v.to_string())),
                    );
                }
                bits.push(test.over(&found.iter().collect::<Vec<_>>()));
            }
            bits
        }
    };
    Ok(BooleanChunked::from_iter_values(name, bits.into_iter()))
}

/// `f` of each row of a text column (a categorical or a string), computed once per
/// distinct value.
fn texts(s: &Series, f: &dyn Fn(Option<&str>) -> bool) -> PolarsResult<Vec<bool>> {
    let null = f(None);
    if let Ok(cats) = s.cat32() {
        let mapping = cats.get_mapping();
        // 0: not decided yet, 1: false, 2: true; indexed by category code.
        let mut memo = vec![0u8; mapping.num_cats_upper_bound()];
        let mut decide = |code: u32| -> bool {
            match memo.get(code as usize) {
                Some(1) => false,
                Some(2) => true,
                Some(_) => {
                    let v = f(mapping.cat_to_str(code));
                    if let Some(m) = memo.get_mut(code as usize) {
                        *m = 1 + u8::from(v);
                    }
                    v
                }
                None => f(mapping.cat_to_str(code)),
            }
        };
        return Ok(cats
            .physical()
            .iter()
            .map(|code| code.map_or(null, &mut decide))
            .collect());
    }
    let mut memo: Memo<&str> = Memo::default();
    Ok(s.str()?
        .iter()
        .map(|v| match v {
            None => null,
            Some(v) => *memo.entry(v).or_insert_with(|| f(Some(v))),
        })
        .collect())
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

/// Whether `rule` can hit an event named `name`, whatever its other fields (Kleene's
/// logic with only the `eventName` tests known).
pub fn may_hit(rule: &Rule, name: &str) -> bool {
    let value = Value::String(name.to_string());
    rule.eval(&|t: &FieldTest| (t.field == "eventName").then(|| t.test.over(&[&value])))
        != Some(false)
}
