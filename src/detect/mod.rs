//! Detections: Sigma rules over CloudTrail events (SPEC §12).
//!
//! - [`rule`]: a rule read from YAML (searches, conditions, metadata); what the engine
//!   does not run is skipped with a reason, what is not Sigma names its file and line.
//! - [`condition`]: the condition language.
//! - [`matcher`]: one field test, and its meaning over a CloudTrail record.
//!
//! - [`fields`]: where a CloudTrail field lives in the lake.
//! - [`compile`]: a rule as one polars expression over the lake's columns.
//! - [`run`]: every rule in one pass over the lake.
//! - [`results`]: hits, per-rule summaries and the overview other outputs show.
//!
//! [`Rule::matches`] is the reference semantics over one record (JSON); the compiled
//! rules are held to it (the same [`matcher::Test::over`] decides each value).

pub mod compile;
pub mod condition;
pub mod fields;
pub mod library;
pub mod matcher;
pub mod results;
pub mod rule;
pub mod run;

use condition::Condition;
use matcher::FieldTest;
pub use rule::{Loaded, Rule, RuleError, load};

impl Rule {
    /// Whether `record` (a CloudTrail record) hits this rule.
    pub fn matches(&self, record: &serde_json::Value) -> bool {
        self.eval(&|t: &FieldTest| Some(t.matches(record))) == Some(true)
    }

    /// The rule's value when `known` gives the outcome of some field tests (`None`:
    /// unknown), in Kleene's three-valued logic: `Some(false)` means no value of the
    /// unknown tests can make the rule hit. The lake uses it to skip the events a rule
    /// cannot hit from their `eventName` alone.
    pub fn eval(&self, known: &dyn Fn(&FieldTest) -> Option<bool>) -> Option<bool> {
        any3(self.conditions.iter().map(|c| self.holds(c, known)))
    }

    fn search(&self, name: &str, known: &dyn Fn(&FieldTest) -> Option<bool>) -> Option<bool> {
        let Some((_, s)) = self.searches.iter().find(|(n, _)| n == name) else {
            return Some(false);
        };
        any3(s.0.iter().map(|map| all3(map.iter().map(known))))
    }

    fn holds(&self, c: &Condition, known: &dyn Fn(&FieldTest) -> Option<bool>) -> Option<bool> {
        match c {
            Condition::Search(n) => self.search(n, known),
            Condition::Not(c) => self.holds(c, known).map(|b| !b),
            Condition::And(cs) => all3(cs.iter().map(|c| self.holds(c, known))),
            Condition::Or(cs) => any3(cs.iter().map(|c| self.holds(c, known))),
            Condition::Of { all, what } => {
                let names: Vec<&str> = self
                    .searches
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .filter(|n| what.covers(n))
                    .collect();
                if names.is_empty() {
                    return Some(false);
                }
                let each = names.into_iter().map(|n| self.search(n, known));
                if *all { all3(each) } else { any3(each) }
            }
        }
    }

    /// Every field test of the rule.
    pub fn tests(&self) -> impl Iterator<Item = &FieldTest> {
        self.searches.iter().flat_map(|(_, s)| s.0.iter().flatten())
    }
}

/// Kleene's `or`: true if any is, false if all are, else unknown.
fn any3(values: impl Iterator<Item = Option<bool>>) -> Option<bool> {
    kleene(values, true)
}

/// Kleene's `and`: false if any is, true if all are, else unknown.
fn all3(values: impl Iterator<Item = Option<bool>>) -> Option<bool> {
    kleene(values, false)
}

/// `decisive` if any value is; else unknown if any is; else `!decisive`.
fn kleene(values: impl Iterator<Item = Option<bool>>, decisive: bool) -> Option<bool> {
    let mut unknown = false;
    for v in values {
        match v {
            Some(b) if b == decisive => return Some(decisive),
            None => unknown = true,
            Some(_) => {}
        }
    }
    (!unknown).then_some(!decisive)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(yaml: &str) -> Vec<Loaded> {
        load(std::path::Path::new("test.yml"), yaml).expect("loads")
    }

    fn rule(yaml: &str) -> Rule {
        match rules(yaml).pop() {
            Some(Loaded::Rule(r)) => *r,
            other => panic!("not a rule: {other:?}"),
        }
    }

    const HEAD: &str = "title: t\nid: 1\nlevel: high\ntags: [attack.persistence]\nlogsource:\n  product: aws\n  service: cloudtrail\n";

    #[test]
    fn a_rule_with_a_filter_hits_and_near_misses() {
        let r = rule(&format!(
            "{HEAD}detection:\n  selection:\n    eventSource: iam.amazonaws.com\n    eventName:\n      - CreateAccessKey\n      - CreateLoginProfile\n  filter:\n    userIdentity.sessionContext.sessionIssuer.userName|startswith: CE-Break\n  condition: selection and not filter\n"
        ));
        assert_eq!((r.level.as_str(), r.tags.len()), ("high", 1));
        let event = |name: &str, role: &str| {
            json!({"eventSource": "iam.amazonaws.com", "eventName": name,
                   "userIdentity": {"sessionContext": {"sessionIssuer": {"userName": role}}}})
        };
        assert!(r.matches(&event("CreateAccessKey", "CE-Admin")));
        assert!(
            r.matches(&event("createloginprofile", "CE-SRE")),
            "case-insensitive"
        );
        assert!(
            !r.matches(&event("CreateAccessKey", "CE-BreakGlass")),
            "filtered"
        );
        assert!(
            !r.matches(&event("DeleteAccessKey", "CE-Admin")),
            "near miss"
        );
    }

    #[test]
    fn lists_of_maps_are_any_and_quantifiers_cover_names() {
        let r = rule(&format!(
            "{HEAD}detection:\n  sel_trail:\n    - eventName: StopLogging\n    - eventName: DeleteTrail\n  sel_source:\n    eventSource: cloudtrail.amazonaws.com\n  _helper:\n    eventName: Nothing\n  condition: all of sel_*\n"
        ));
        let e = |name: &str, src: &str| json!({"eventName": name, "eventSource": src});
        assert!(r.matches(&e("DeleteTrail", "cloudtrail.amazonaws.com")));
        assert!(!r.matches(&e("DeleteTrail", "s3.amazonaws.com")));
        let any = rule(&format!(
            "{HEAD}detection:\n  a:\n    eventName: X\n  _b:\n    eventName: Y\n  condition: 1 of them\n"
        ));
        assert!(any.matches(&json!({"eventName": "x"})));
        assert!(
            !any.matches(&json!({"eventName": "y"})),
            "`them` leaves out _names"
        );
        let several = rule(&format!(
            "{HEAD}detection:\n  a:\n    eventName: X\n  b:\n    eventName: Y\n  condition:\n    - a\n    - b\n"
        ));
        assert!(
            several.matches(&json!({"eventName": "Y"})),
            "conditions are ORed"
        );
    }

    #[test]
    fn unsupported_rules_are_skipped_with_a_reason() {
        let cases = [
            (
                "title: t\nlogsource:\n  product: windows\ndetection:\n  a:\n    x: 1\n  condition: a\n",
                "logsource",
            ),
            (
                &format!("{HEAD}detection:\n  a:\n    - word\n  condition: a\n") as &str,
                "keyword",
            ),
            (
                &format!("{HEAD}detection:\n  a:\n    x|base64: v\n  condition: a\n"),
                "base64",
            ),
            (
                &format!("{HEAD}detection:\n  a:\n    x: v\n  condition: a | count() > 5\n"),
                "aggregation",
            ),
            (
                "title: c\ncorrelation:\n  type: event_count\n",
                "correlation",
            ),
        ];
        for (yaml, why) in cases {
            match rules(yaml).pop() {
                Some(Loaded::Skipped { reason, .. }) => {
                    assert!(reason.contains(why), "{reason} (wanted {why})")
                }
                other => panic!("{why}: {other:?}"),
            }
        }
    }

    #[test]
    fn malformed_rules_name_the_file_and_line() {
        let e = load(
            std::path::Path::new("rules/bad.yml"),
            &format!("{HEAD}detection:\n  a:\n    x: v\n  condition: a and b\n"),
        )
        .expect_err("b is not a search");
        assert_eq!(e.file, "rules/bad.yml");
        assert!(e.message.contains("`b`"), "{e}");
        assert_eq!(e.line, 9, "{e}");
        let e = load(
            std::path::Path::new("x.yml"),
            &format!("{HEAD}detection:\n  a:\n    x|cidr: 10.0.0.0/99\n  condition: a\n"),
        )
        .expect_err("bad network");
        assert_eq!(e.line, 10, "{e}");
        let e = load(std::path::Path::new("x.yml"), "title: [unclosed\n").expect_err("not YAML");
        assert!(e.to_string().starts_with("x.yml:"), "{e}");
    }

    #[test]
    fn null_and_exists_in_rules() {
        let r = rule(&format!(
            "{HEAD}detection:\n  a:\n    errorCode: null\n    eventName|exists: true\n  condition: a\n"
        ));
        assert!(r.matches(&json!({"eventName": "X"})));
        assert!(!r.matches(&json!({"eventName": "X", "errorCode": "AccessDenied"})));
        assert!(!r.matches(&json!({"errorCode": null})));
    }
}
