//! One Sigma field test (`field|modifier…: value(s)`), and its meaning over a
//! CloudTrail record (the reference semantics the compiled rules are held to).
//!
//! - A plain string value matches the whole field, case-insensitively; `*` stands for
//!   any text and `?` for one character; `\*`, `\?` and `\\` are the characters
//!   themselves (a `\` before anything else is itself).
//! - `contains`, `startswith`, `endswith` put a `*` around the value.
//! - Several values: any of them matches; with `all`, every one.
//! - `re`: a regular expression as written (case-sensitive unless it says `(?i)`).
//! - `cidr`: the field is an IP address inside the network.
//! - `gt`, `gte`, `lt`, `lte`: the field is a number that compares so.
//! - `exists`: `true` or `false`, whether the field is there.
//! - `null`: the field is absent or null.
//!
//! A field path is dotted (`userIdentity.sessionContext.sessionIssuer.userName`); a path
//! through a list (`resources.ARN`) matches when any element matches.

use std::net::IpAddr;

/// A compiled field test.
#[derive(Debug, Clone)]
pub struct FieldTest {
    pub field: String,
    pub test: Test,
}

/// What a field must satisfy.
#[derive(Debug, Clone)]
pub enum Test {
    /// Wildcard patterns (lower-cased), any or all of them.
    Patterns {
        patterns: Vec<Pattern>,
        all: bool,
    },
    Regex {
        regexes: Vec<regex::Regex>,
        all: bool,
    },
    Cidr(Vec<(IpAddr, u8)>),
    Compare {
        op: Cmp,
        values: Vec<f64>,
    },
    Exists(bool),
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Gt,
    Gte,
    Lt,
    Lte,
}

/// A value with wildcards, as pieces: literal text (lower-cased), `*` or `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(pub Vec<Piece>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Any,
    One,
}

impl Pattern {
    /// Parses Sigma's wildcards and escapes in `value`.
    pub fn parse(value: &str) -> Self {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = value.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.peek() {
                    Some(&n @ ('*' | '?' | '\\')) => {
                        text.push(n);
                        chars.next();
                    }
                    _ => text.push('\\'),
                },
                '*' | '?' => {
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text).to_lowercase()));
                    }
                    pieces.push(if c == '*' { Piece::Any } else { Piece::One });
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text.to_lowercase()));
        }
        Pattern(pieces)
    }

    /// `*` + this + `*` (`contains`), this + `*` (`startswith`), `*` + this
    /// (`endswith`).
    pub fn wrap(mut self, before: bool, after: bool) -> Self {
        if before && self.0.first() != Some(&Piece::Any) {
            self.0.insert(0, Piece::Any);
        }
        if after && self.0.last() != Some(&Piece::Any) {
            self.0.push(Piece::Any);
        }
        self
    }

    /// Whether `text` (compared lower-cased) matches.
    pub fn matches(&self, text: &str) -> bool {
        let lower = text.to_lowercase();
        let chars: Vec<char> = lower.chars().collect();
        Self::match_from(&self.0, &chars)
    }

    fn match_from(pieces: &[Piece], text: &[char]) -> bool {
        match pieces.split_first() {
            None => text.is_empty(),
            Some((Piece::Text(t), rest)) => {
                let t: Vec<char> = t.chars().collect();
                text.starts_with(&t) && Self::match_from(rest, &text[t.len()..])
            }
            Some((Piece::One, rest)) => !text.is_empty() && Self::match_from(rest, &text[1..]),
            Some((Piece::Any, rest)) => {
                (0..=text.len()).any(|i| Self::match_from(rest, &text[i..]))
            }
        }
    }
}

/// The values at `path` in `record`: none when absent, several through lists.
pub fn lookup<'a>(record: &'a serde_json::Value, path: &str) -> Vec<&'a serde_json::Value> {
    let mut here = vec![record];
    for part in path.split('.') {
        let mut next = Vec::new();
        for v in here {
            collect(v, part, &mut next);
        }
        here = next;
    }
    here
}

fn collect<'a>(v: &'a serde_json::Value, key: &str, out: &mut Vec<&'a serde_json::Value>) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(x) = m.get(key) {
                out.push(x);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                collect(item, key, out);
            }
        }
        _ => {}
    }
}

/// A JSON leaf as the text Sigma compares (`None`: null, an object or a list).
fn text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The leaves at `path`, lists flattened: what a field test sees.
pub fn leaves<'a>(record: &'a serde_json::Value, path: &str) -> Vec<&'a serde_json::Value> {
    let mut out = Vec::new();
    for v in lookup(record, path) {
        match v {
            serde_json::Value::Array(items) => out.extend(items.iter()),
            v => out.push(v),
        }
    }
    out
}

impl FieldTest {
    /// Whether `record` passes this test.
    pub fn matches(&self, record: &serde_json::Value) -> bool {
        self.test.over(&leaves(record, &self.field))
    }
}

impl Test {
    /// Whether the values found at a field's path (none: the field is absent; a list
    /// found at the path stands for its elements) satisfy this test.
    pub fn over(&self, found: &[&serde_json::Value]) -> bool {
        let texts: Vec<String> = found.iter().filter_map(|v| text(v)).collect();
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        self.judge(
            found.iter().any(|v| !v.is_null()),
            found.iter().all(|v| v.is_null()),
            &texts,
        )
    }

    /// [`Test::over`] for a field holding one text (`None`: absent or null).
    pub fn on_text(&self, value: Option<&str>) -> bool {
        match value {
            Some(v) => self.judge(true, false, &[v]),
            None => self.judge(false, true, &[]),
        }
    }

    /// The test, given whether a non-null value was found, whether every value found
    /// (none included) is null, and the texts of the scalar values found.
    fn judge(&self, non_null: bool, all_null: bool, found: &[&str]) -> bool {
        let texts = || found.iter().copied();
        match self {
            Test::Exists(want) => non_null == *want,
            Test::Null => all_null,
            Test::Patterns { patterns, all } => {
                let hit = |p: &Pattern| texts().any(|t| p.matches(t));
                if *all {
                    patterns.iter().all(hit)
                } else {
                    patterns.iter().any(hit)
                }
            }
            Test::Regex { regexes, all } => {
                let hit = |r: &regex::Regex| texts().any(|t| r.is_match(t));
                if *all {
                    regexes.iter().all(hit)
                } else {
                    regexes.iter().any(hit)
                }
            }
            Test::Cidr(nets) => texts().any(|t| {
                t.trim()
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| nets.iter().any(|(net, bits)| in_network(ip, *net, *bits)))
            }),
            Test::Compare { op, values } => texts().any(|t| {
                t.trim().parse::<f64>().is_ok_and(|x| {
                    values.iter().any(|v| match op {
                        Cmp::Gt => x > *v,
                        Cmp::Gte => x >= *v,
                        Cmp::Lt => x < *v,
                        Cmp::Lte => x <= *v,
                    })
                })
            }),
        }
    }
}

/// Parses `a.b.c.d/n` or `x::y/n` (a bare address is its own /32 or /128).
pub fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = match text.split_once('/') {
        Some((a, b)) => (a, Some(b.parse::<u8>().ok()?)),
        None => (text, None),
    };
    let ip: IpAddr = addr.trim().parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    (bits <= max).then_some((ip, bits))
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patterns(field: &str, values: &[&str], all: bool) -> FieldTest {
        FieldTest {
            field: field.into(),
            test: Test::Patterns {
                patterns: values.iter().map(|v| Pattern::parse(v)).collect(),
                all,
            },
        }
    }

    #[test]
    fn wildcards_escapes_and_case() {
        let p = Pattern::parse("Create*Key?");
        assert!(p.matches("createaccesskeyS") && p.matches("CREATEKEYX"));
        assert!(
            !p.matches("CreateAccessKey"),
            "`?` is exactly one character"
        );
        // Escaped wildcards are the characters themselves.
        let lit = Pattern::parse(r"a\*b\?c\\d");
        assert!(lit.matches(r"A*B?C\D"));
        assert!(!lit.matches(r"axxb?c\d"));
        // A backslash before anything else is itself.
        assert!(Pattern::parse(r"C:\Windows").matches(r"c:\windows"));
        let c = Pattern::parse("Trail").wrap(true, true);
        assert!(c.matches("StopLogging of trail main") && !c.matches("Trai"));
        assert!(
            Pattern::parse("Delete")
                .wrap(false, true)
                .matches("DeleteTrail")
        );
        assert!(
            Pattern::parse("Trail")
                .wrap(true, false)
                .matches("DeleteTrail")
        );
    }

    #[test]
    fn value_lists_are_any_unless_all() {
        let r = json!({"eventName": "CreateAccessKey", "userAgent": "aws-cli/2 Python/3"});
        assert!(patterns("eventName", &["CreateUser", "CreateAccessKey"], false).matches(&r));
        let all_of = |vals: &[&str]| {
            FieldTest {
                field: "userAgent".into(),
                test: Test::Patterns {
                    patterns: vals
                        .iter()
                        .map(|v| Pattern::parse(v).wrap(true, true))
                        .collect(),
                    all: true,
                },
            }
            .matches(&r)
        };
        assert!(all_of(&["aws-cli", "python"]));
        assert!(!all_of(&["aws-cli", "boto3"]));
    }

    #[test]
    fn paths_through_objects_and_lists() {
        let r = json!({
            "userIdentity": {"sessionContext": {"sessionIssuer": {"userName": "CE-Admin"}}},
            "resources": [{"ARN": "arn:aws:iam::1:role/x"}, {"ARN": "arn:aws:s3:::b"}],
            "requestParameters": null
        });
        assert!(
            patterns(
                "userIdentity.sessionContext.sessionIssuer.userName",
                &["ce-admin"],
                false
            )
            .matches(&r)
        );
        assert!(patterns("resources.ARN", &["arn:aws:s3:::*"], false).matches(&r));
        let null = |f: &str| {
            FieldTest {
                field: f.into(),
                test: Test::Null,
            }
            .matches(&r)
        };
        assert!(null("requestParameters") && null("errorCode"));
        assert!(!null("resources.ARN"));
        let exists = |f: &str, want: bool| {
            FieldTest {
                field: f.into(),
                test: Test::Exists(want),
            }
            .matches(&r)
        };
        assert!(exists("resources", true) && exists("errorCode", false));
        assert!(!exists("requestParameters", true), "null is not there");
    }

    #[test]
    fn cidr_numbers_and_regexes() {
        let r = json!({"sourceIPAddress": "10.20.30.40", "port": 22, "ua": "Boto3/1.2"});
        let cidr = |nets: &[&str]| {
            FieldTest {
                field: "sourceIPAddress".into(),
                test: Test::Cidr(nets.iter().filter_map(|n| parse_cidr(n)).collect()),
            }
            .matches(&r)
        };
        assert!(cidr(&["10.0.0.0/8"]) && cidr(&["192.168.0.0/16", "10.20.30.0/24"]));
        assert!(!cidr(&["10.20.31.0/24"]) && !cidr(&["::/0"]));
        assert!(parse_cidr("10.0.0.0/33").is_none() && parse_cidr("x/8").is_none());
        let cmp = |op: Cmp, v: f64| {
            FieldTest {
                field: "port".into(),
                test: Test::Compare {
                    op,
                    values: vec![v],
                },
            }
            .matches(&r)
        };
        assert!(cmp(Cmp::Gte, 22.0) && cmp(Cmp::Lt, 23.0) && !cmp(Cmp::Gt, 22.0));
        assert!(cmp(Cmp::Lte, 22.0) && !cmp(Cmp::Lt, 22.0));
        let re = |r: &str| {
            FieldTest {
                field: "ua".into(),
                test: Test::Regex {
                    regexes: regex::Regex::new(r).into_iter().collect(),
                    all: false,
                },
            }
            .matches(&json!({"ua": "Boto3/1.2"}))
        };
        assert!(re(r"^Boto3/\d") && !re("^boto3") && re("(?i)^boto3"));
    }
}
