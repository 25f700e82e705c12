//! The CE rule of SPEC §3: which records are CE events, and of which kind.
//!
//! Two stages. [`Prefilter`] is a multi-pattern byte search (Aho-Corasick) over the
//! raw record text for every name a CE event must contain: the role names, the CE
//! setup's names and the CloudTrail tampering calls. A record with none of them cannot
//! be a CE event and is never deserialised; most records of a real trail stop here.
//! [`classify`] then applies the exact rule to the typed record. The pre-filter only
//! has to be a superset: `CE-Admins-Legacy` passes it (it contains `CE-Admin`) and is
//! then rejected by the exact, case-sensitive comparison.

use aho_corasick::{AhoCorasick, MatchKind};

use crate::config::Config;
use crate::record::model::{Params, Record};

/// CloudTrail calls that change logging itself: always `infra` (tampering evidence).
pub const TRAIL_TAMPERING: [&str; 4] = [
    "StopLogging",
    "DeleteTrail",
    "UpdateTrail",
    "PutEventSelectors",
];

/// The kind of a kept event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Assume,
    Activity,
    Infra,
    Other,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Assume => "assume",
            Kind::Activity => "activity",
            Kind::Infra => "infra",
            Kind::Other => "other",
        }
    }
    pub const ALL: [Kind; 4] = [Kind::Assume, Kind::Activity, Kind::Infra, Kind::Other];
}

/// Byte-level pre-filter: `true` when the raw record may be a CE event.
pub struct Prefilter {
    automaton: Option<AhoCorasick>,
}

impl Prefilter {
    pub fn new(config: &Config) -> Self {
        let mut patterns: Vec<&str> = config.role_names().collect();
        let s = &config.setup;
        patterns.extend([
            s.deny_prod_policy.as_str(),
            s.stack_name.as_str(),
            s.log_group.as_str(),
            s.event_rule.as_str(),
            s.dashboard.as_str(),
        ]);
        patterns.extend(TRAIL_TAMPERING);
        patterns.retain(|p| !p.is_empty());
        // Leftmost semantics let the automaton use its SIMD (Teddy) prefilter; for a
        // yes/no answer the match semantics do not matter.
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .build(patterns)
            .ok();
        Self { automaton }
    }

    /// Where the first CE name in `data` at or after `from` starts. Without an
    /// automaton every position may hold one: `from` itself (while inside `data`).
    pub fn find(&self, data: &[u8], from: usize) -> Option<usize> {
        match &self.automaton {
            Some(a) => a
                .find(aho_corasick::Input::new(data).range(from.min(data.len())..))
                .map(|m| m.start()),
            None => (from < data.len()).then_some(from),
        }
    }

    /// Whether `raw` contains any CE name. Without an automaton (it failed to build,
    /// which only absurd configurations could cause) every record passes.
    pub fn may_match(&self, raw: &[u8]) -> bool {
        match &self.automaton {
            Some(a) => a.is_match(raw),
            None => true,
        }
    }
}

/// The last `/`-separated segment of an ARN-like string (`role/path/Name` → `Name`).
pub fn last_segment(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// The role named by an `… on resource: arn:aws:iam::<acct>:role/<path>/<name>` error.
pub fn role_from_error_message(msg: &str) -> Option<&str> {
    let at = msg.find("on resource: ")?;
    let arn = msg[at + "on resource: ".len()..]
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .next()?;
    let role_part = arn.split_once(":role/")?.1;
    let name = last_segment(role_part.trim_end_matches('.'));
    (!name.is_empty()).then_some(name)
}

/// The role and session segments of `arn:aws:sts::<acct>:assumed-role/<role>/<session>`.
pub fn assumed_role_parts(arn: &str) -> Option<(&str, &str)> {
    let rest = arn.split_once(":assumed-role/")?.1;
    let (role, session) = rest.split_once('/')?;
    Some((role, session))
}

/// The AssumeRole target role name (roleArn, else the error message).
pub fn assume_target<'r>(record: &'r Record<'_>, params: &'r Params<'_>) -> Option<&'r str> {
    if let Some(arn) = params.role_arn.get() {
        return Some(last_segment(arn));
    }
    record
        .error_message
        .as_deref()
        .and_then(role_from_error_message)
}

/// The role of the calling session (sessionIssuer.userName, else the ARN's role segment).
pub fn caller_role<'r>(record: &'r Record<'_>) -> Option<&'r str> {
    let id = record.user_identity.as_ref()?;
    if id.kind.as_deref() != Some("AssumedRole") {
        return None;
    }
    id.session_context
        .as_ref()
        .and_then(|c| c.session_issuer.as_ref())
        .and_then(|i| i.user_name.as_deref())
        .or_else(|| {
            id.arn
                .as_deref()
                .and_then(assumed_role_parts)
                .map(|(role, _)| role)
        })
}

/// Classifies a typed record: `Some((kind, role))` for a CE event, `None` otherwise.
/// `role` is the CE role (the target role for `assume`, the caller's for `activity`,
/// the CE role an `infra` call names, if any).
pub fn classify<'r>(
    record: &'r Record<'_>,
    params: &'r Params<'_>,
    config: &Config,
) -> Option<(Kind, Option<&'r str>)> {
    if record.event_name == "AssumeRole"
        && let Some(target) = assume_target(record, params)
        && config.is_ce_role(target)
    {
        return Some((Kind::Assume, Some(target)));
    }
    if let Some(role) = caller_role(record)
        && config.is_ce_role(role)
    {
        return Some((Kind::Activity, Some(role)));
    }
    infra_role(
        &record.event_source,
        &record.event_name,
        record.read_only,
        params,
        config,
    )
    .map(|role| (Kind::Infra, role))
}

/// `Some(role)` when a call acts on the CE setup (SPEC §3 `infra`; role: the CE role
/// named, if any). The audit asks the same of CE sessions' own calls (tampering).
pub fn infra_role<'r>(
    event_source: &str,
    event_name: &str,
    read_only: Option<bool>,
    params: &'r Params<'_>,
    config: &Config,
) -> Option<Option<&'r str>> {
    let setup = &config.setup;
    let names_ce = |v: Option<&'r str>| -> Option<&'r str> {
        let name = last_segment(v?);
        (config.is_ce_role(name) || name == setup.deny_prod_policy).then_some(name)
    };
    let is_change = read_only != Some(true);
    match event_source {
        "iam.amazonaws.com" => {
            let hit =
                names_ce(params.role_name.get()).or_else(|| names_ce(params.policy_arn.get()))?;
            Some(config.is_ce_role(hit).then_some(hit))
        }
        "cloudformation.amazonaws.com" => {
            let stack = params.stack_name.get()?;
            let named = stack == setup.stack_name
                || stack
                    .split_once(":stack/")
                    .and_then(|(_, rest)| rest.split('/').next())
                    == Some(setup.stack_name.as_str());
            named.then_some(None)
        }
        "cloudtrail.amazonaws.com" => TRAIL_TAMPERING.contains(&event_name).then_some(None),
        "logs.amazonaws.com" => (is_change
            && params.log_group_name.get() == Some(setup.log_group.as_str()))
        .then_some(None),
        "events.amazonaws.com" => {
            let rule = Some(setup.event_rule.as_str());
            (is_change && (params.name.get() == rule || params.rule.get() == rule)).then_some(None)
        }
        "monitoring.amazonaws.com" => {
            let dash = setup.dashboard.as_str();
            let named = params.dashboard_name.get() == Some(dash)
                || params
                    .dashboard_names
                    .as_ref()
                    .is_some_and(|names| names.iter().any(|n| n.get() == Some(dash)));
            (is_change && named).then_some(None)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_message_role() {
        let m = "User: arn:aws:iam::1:user/x is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::457448411975:role/ce/CE-Admin";
        assert_eq!(role_from_error_message(m), Some("CE-Admin"));
        let m2 =
            "… on resource: arn:aws:iam::4:role/CE-SRE because no identity-based policy allows it";
        assert_eq!(role_from_error_message(m2), Some("CE-SRE"));
        assert_eq!(
            role_from_error_message("on resource: arn:aws:s3:::bucket"),
            None
        );
        assert_eq!(role_from_error_message("nothing"), None);
    }

    #[test]
    fn assumed_role_arn() {
        assert_eq!(
            assumed_role_parts("arn:aws:sts::1:assumed-role/CE-SRE/alice"),
            Some(("CE-SRE", "alice"))
        );
        assert_eq!(assumed_role_parts("arn:aws:iam::1:user/bob"), None);
    }

    #[test]
    fn prefilter_is_superset() {
        let p = Prefilter::new(&Config::default());
        assert!(p.may_match(br#"{"x":"arn:aws:iam::1:role/CE-Admins-Legacy"}"#));
        assert!(p.may_match(br#"{"eventName":"StopLogging"}"#));
        assert!(!p.may_match(br#"{"x":"arn:aws:iam::1:role/ce-admin"}"#));
    }
}
