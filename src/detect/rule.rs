//! A Sigma rule read from YAML: its metadata, its searches and its condition. What the
//! engine does not run makes the rule [`Loaded::Skipped`] with a one-line reason;
//! what is not Sigma is an error naming the file and the line.

use std::path::Path;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

use super::condition::{self, Condition, ConditionError};
use super::matcher::{Cmp, FieldTest, Pattern, Test, parse_cidr};

/// A rule ready to run.
#[derive(Debug, Clone)]
pub struct Rule {
    pub title: String,
    pub id: String,
    pub level: String,
    pub tags: Vec<String>,
    /// Where it was read (file, and the line of its first key).
    pub file: String,
    pub line: usize,
    /// The searches, by name, in the rule's order.
    pub searches: Vec<(String, Search)>,
    /// The conditions (several: any of them).
    pub conditions: Vec<Condition>,
}

/// A named search: maps ORed, the field tests of one map ANDed.
#[derive(Debug, Clone)]
pub struct Search(pub Vec<Vec<FieldTest>>);

/// What reading one rule document gave.
#[derive(Debug)]
pub enum Loaded {
    Rule(Box<Rule>),
    /// Valid Sigma this engine does not run, with why.
    Skipped {
        title: String,
        reason: String,
    },
}

/// A rule that is not Sigma, where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct RuleError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

type Node<'a> = MarkedYaml<'a>;

fn line(n: &Node<'_>) -> usize {
    n.span.start.line()
}

fn get<'a, 'b>(n: &'b Node<'a>, key: &str) -> Option<&'b Node<'a>> {
    match &n.data {
        YamlData::Mapping(m) => m.iter().find_map(|(k, v)| (scalar(k)? == key).then_some(v)),
        _ => None,
    }
}

/// A scalar node as text (numbers and booleans as written).
fn scalar(n: &Node<'_>) -> Option<String> {
    match &n.data {
        YamlData::Value(Scalar::String(s)) => Some(s.to_string()),
        YamlData::Value(Scalar::Integer(i)) => Some(i.to_string()),
        YamlData::Value(Scalar::FloatingPoint(f)) => Some(f.to_string()),
        YamlData::Value(Scalar::Boolean(b)) => Some(b.to_string()),
        YamlData::Representation(s, _, _) => Some(s.to_string()),
        _ => None,
    }
}

fn is_null(n: &Node<'_>) -> bool {
    matches!(n.data, YamlData::Value(Scalar::Null))
}

/// Reads every rule document of `text` (the content of `file`).
pub fn load(file: &Path, text: &str) -> Result<Vec<Loaded>, RuleError> {
    let name = file.display().to_string();
    let docs = MarkedYaml::load_from_str(text).map_err(|e| RuleError {
        file: name.clone(),
        line: e.marker().line(),
        message: format!("not YAML: {}", e.info()),
    })?;
    docs.iter()
        .filter(|d| !is_null(d))
        .map(|d| one(&name, d))
        .collect()
}

fn one(file: &str, doc: &Node<'_>) -> Result<Loaded, RuleError> {
    let err = |n: &Node<'_>, message: String| RuleError {
        file: file.to_string(),
        line: line(n),
        message,
    };
    if !matches!(doc.data, YamlData::Mapping(_)) {
        return Err(err(doc, "a rule is a YAML mapping".into()));
    }
    let text = |key: &str| get(doc, key).and_then(scalar);
    let title = text("title").ok_or_else(|| err(doc, "the rule has no `title`".into()))?;
    let skip = |reason: String| {
        Ok(Loaded::Skipped {
            title: title.clone(),
            reason,
        })
    };
    if get(doc, "correlation").is_some() {
        return skip("correlation rules are not supported".into());
    }
    let Some(logsource) = get(doc, "logsource") else {
        return Err(err(doc, "the rule has no `logsource`".into()));
    };
    let product = get(logsource, "product").and_then(scalar);
    let service = get(logsource, "service").and_then(scalar);
    if product.as_deref().map(str::to_lowercase).as_deref() != Some("aws")
        || service.as_deref().map(str::to_lowercase).as_deref() != Some("cloudtrail")
    {
        return skip(format!(
            "logsource is not aws/cloudtrail ({}/{})",
            product.unwrap_or_default(),
            service.unwrap_or_default()
        ));
    }
    let Some(detection) = get(doc, "detection") else {
        return Err(err(doc, "the rule has no `detection`".into()));
    };
    let YamlData::Mapping(map) = &detection.data else {
        return Err(err(detection, "`detection` is a mapping".into()));
    };
    let mut searches = Vec::new();
    let mut conditions = Vec::new();
    for (k, v) in map {
        let Some(name) = scalar(k) else {
            return Err(err(k, "a search name is text".into()));
        };
        match name.as_str() {
            "condition" => {
                let texts: Vec<&Node<'_>> = match &v.data {
                    YamlData::Sequence(items) => items.iter().collect(),
                    _ => vec![v],
                };
                for t in texts {
                    let Some(c) = scalar(t) else {
                        return Err(err(t, "a condition is text".into()));
                    };
                    match condition::parse(&c) {
                        Ok(c) => conditions.push(c),
                        Err(ConditionError::Unsupported(why)) => return skip(why),
                        Err(ConditionError::Malformed(why)) => return Err(err(t, why)),
                    }
                }
            }
            "timeframe" => return skip("`timeframe` (aggregations) is not supported".into()),
            _ => match search(v) {
                Ok(s) => searches.push((name, s)),
                Err(Problem::Unsupported(why)) => return skip(format!("search `{name}`: {why}")),
                Err(Problem::Malformed(n, why)) => {
                    return Err(err(n, format!("search `{name}`: {why}")));
                }
            },
        }
    }
    if conditions.is_empty() {
        return Err(err(detection, "`detection` has no `condition`".into()));
    }
    for c in &conditions {
        for n in c.names() {
            if !searches.iter().any(|(s, _)| s == n) {
                return Err(err(
                    detection,
                    format!("the condition names `{n}`, which is not a search"),
                ));
            }
        }
    }
    let tags = match get(doc, "tags").map(|t| &t.data) {
        Some(YamlData::Sequence(items)) => items.iter().filter_map(scalar).collect(),
        _ => Vec::new(),
    };
    Ok(Loaded::Rule(Box::new(Rule {
        id: text("id").unwrap_or_default(),
        level: text("level").unwrap_or_else(|| "medium".into()),
        title,
        tags,
        file: file.to_string(),
        line: line(doc),
        searches,
        conditions,
    })))
}

enum Problem<'a, 'b> {
    Unsupported(String),
    Malformed(&'b Node<'a>, String),
}

fn search<'a, 'b>(n: &'b Node<'a>) -> Result<Search, Problem<'a, 'b>> {
    match &n.data {
        YamlData::Mapping(_) => Ok(Search(vec![field_map(n)?])),
        YamlData::Sequence(items) => {
            let mut maps = Vec::new();
            for item in items {
                match &item.data {
                    YamlData::Mapping(_) => maps.push(field_map(item)?),
                    _ => {
                        return Err(Problem::Unsupported(
                            "keyword searches (a list of values without fields) are not supported"
                                .into(),
                        ));
                    }
                }
            }
            Ok(Search(maps))
        }
        _ => Err(Problem::Malformed(
            n,
            "a search is a mapping or a list".into(),
        )),
    }
}

fn field_map<'a, 'b>(n: &'b Node<'a>) -> Result<Vec<FieldTest>, Problem<'a, 'b>> {
    let YamlData::Mapping(m) = &n.data else {
        return Err(Problem::Malformed(n, "expected a mapping".into()));
    };
    let mut tests = Vec::new();
    for (k, v) in m {
        let Some(key) = scalar(k) else {
            return Err(Problem::Malformed(k, "a field name is text".into()));
        };
        tests.push(field_test(&key, v)?);
    }
    Ok(tests)
}

fn field_test<'a, 'b>(key: &str, v: &'b Node<'a>) -> Result<FieldTest, Problem<'a, 'b>> {
    let mut parts = key.split('|');
    let field = parts.next().unwrap_or_default().trim().to_string();
    if field.is_empty() {
        return Err(Problem::Unsupported(
            "keyword searches (a modifier without a field) are not supported".into(),
        ));
    }
    let modifiers: Vec<String> = parts.map(|m| m.trim().to_ascii_lowercase()).collect();
    let values: Vec<&Node<'_>> = match &v.data {
        YamlData::Sequence(items) => items.iter().collect(),
        _ => vec![v],
    };
    let mut all = false;
    let mut kind: Option<&str> = None;
    for m in &modifiers {
        match m.as_str() {
            "all" => all = true,
            "contains" | "startswith" | "endswith" | "re" | "cidr" | "exists" | "gt" | "gte"
            | "lt" | "lte" => {
                if kind.is_some() {
                    return Err(Problem::Unsupported(format!(
                        "modifiers `{}` together are not supported",
                        modifiers.join("|")
                    )));
                }
                kind = Some(m.as_str());
            }
            other => {
                return Err(Problem::Unsupported(format!(
                    "the modifier `{other}` is not supported"
                )));
            }
        }
    }
    let texts = || -> Result<Vec<String>, Problem<'a, 'b>> {
        values
            .iter()
            .map(|n| scalar(n).ok_or_else(|| Problem::Malformed(n, "a value is a scalar".into())))
            .collect()
    };
    let test = match kind {
        None if values.len() == 1 && is_null(values[0]) => Test::Null,
        None | Some("contains" | "startswith" | "endswith") => {
            let (before, after) = match kind {
                Some("contains") => (true, true),
                Some("startswith") => (false, true),
                Some("endswith") => (true, false),
                _ => (false, false),
            };
            if values.iter().any(|n| is_null(n)) {
                return Err(Problem::Unsupported(
                    "`null` among other values is not supported".into(),
                ));
            }
            Test::Patterns {
                patterns: texts()?
                    .iter()
                    .map(|t| Pattern::parse(t).wrap(before, after))
                    .collect(),
                all,
            }
        }
        Some("re") => {
            let mut regexes = Vec::new();
            for (t, n) in texts()?.iter().zip(&values) {
                regexes.push(
                    regex::Regex::new(t)
                        .map_err(|e| Problem::Malformed(n, format!("bad regex: {e}")))?,
                );
            }
            Test::Regex { regexes, all }
        }
        Some("cidr") => {
            let mut nets = Vec::new();
            for (t, n) in texts()?.iter().zip(&values) {
                nets.push(
                    parse_cidr(t)
                        .ok_or_else(|| Problem::Malformed(n, format!("bad network `{t}`")))?,
                );
            }
            Test::Cidr(nets)
        }
        Some("exists") => match texts()?.as_slice() {
            [b] if b == "true" => Test::Exists(true),
            [b] if b == "false" => Test::Exists(false),
            _ => return Err(Problem::Malformed(v, "`exists` takes true or false".into())),
        },
        Some(op) => {
            let op = match op {
                "gt" => Cmp::Gt,
                "gte" => Cmp::Gte,
                "lt" => Cmp::Lt,
                _ => Cmp::Lte,
            };
            let mut numbers = Vec::new();
            for (t, n) in texts()?.iter().zip(&values) {
                numbers.push(
                    t.parse::<f64>()
                        .map_err(|_| Problem::Malformed(n, format!("`{t}` is not a number")))?,
                );
            }
            Test::Compare {
                op,
                values: numbers,
            }
        }
    };
    Ok(FieldTest { field, test })
}
