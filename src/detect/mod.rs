//! Detections: Sigma rules over CloudTrail events (SPEC §12).
//!
//! - [`rule`]: a rule read from YAML (searches, conditions, metadata); what the engine
//!   does not run is skipped with a reason, what is not Sigma names its file and line.
//! - [`condition`]: the condition language.
//! - [`matcher`]: one field test, and its meaning over a CloudTrail record.
//!
//! [`Rule::matches`] is the reference semantics over one record (JSON). Running rules
//! over the lake compiles them to expressions over the events view (next step, issue
//! 36), held to these semantics.

pub mod condition;
pub mod matcher;
pub mod rule;

use condition::Condition;
pub use rule::{Loaded, Rule, RuleError, load};

impl Rule {
    /// Whether `record` (a CloudTrail record) hits this rule.
    pub fn matches(&self, record: &serde_json::Value) -> bool {
        self.conditions.iter().any(|c| self.holds(c, record))
    }

    fn search(&self, name: &str, record: &serde_json::Value) -> bool {
        self.searches
            .iter()
            .find(|(n, _)| n == name)
            .is_some_and(|(_, s)| {
                s.0.iter()
                    .any(|map| map.iter().all(|test| test.matches(record)))
            })
    }

    fn holds(&self, c: &Condition, record: &serde_json::Value) -> bool {
        match c {
            Condition::Search(n) => self.search(n, record),
            Condition::Not(c) => !self.holds(c, record),
            Condition::And(cs) => cs.iter().all(|c| self.holds(c, record)),
            Condition::Or(cs) => cs.iter().any(|c| self.holds(c, record)),
            Condition::Of { all, what } => {
                let mut names = self
                    .searches
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .filter(|n| what.covers(n))
                    .peekable();
                if names.peek().is_none() {
                    return false;
                }
                if *all {
                    names.all(|n| self.search(n, record))
                } else {
                    names.any(|n| self.search(n, record))
                }
            }
        }
    }
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
