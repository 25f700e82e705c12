//! Where a CloudTrail field path lives in the lake (SPEC §4, §12).
//!
//! Top-level fields and `userIdentity.*` are lake columns; paths inside
//! `requestParameters`, `responseElements` and `additionalEventData` are read from the
//! raw JSON text the lake keeps; `resources.ARN|type|accountId` from the `resources`
//! list; `…sessionIssuer.userName` from the assumed-role ARN (the role's name is its
//! second segment, exactly as CloudTrail writes the issuer's `userName`). A path the
//! lake does not keep has no source: a rule naming it is skipped, never half-applied.

/// How a lake column's value reads as the CloudTrail field's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Render {
    /// Text as it is.
    Text,
    /// `true` / `false`.
    Bool,
    /// `YYYY-MM-DDTHH:MM:SSZ`, as CloudTrail writes its times.
    Time,
}

/// The lake source of a CloudTrail field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A lake column.
    Column {
        column: &'static str,
        render: Render,
    },
    /// `userIdentity.sessionContext.sessionIssuer.userName`: the role of an
    /// `assumed-role` ARN in `identity_arn`.
    IssuerName,
    /// A path (dotted, through lists; empty: the whole value) in a raw JSON column.
    Json { column: &'static str, path: String },
    /// A leaf (`arn`, `type`, `account`) of each element of `resources`.
    Resources(&'static str),
}

impl Source {
    /// The lake column it reads.
    pub fn column(&self) -> &'static str {
        match self {
            Source::Column { column, .. } | Source::Json { column, .. } => column,
            Source::IssuerName => "identity_arn",
            Source::Resources(_) => "resources",
        }
    }
}

const COLUMNS: &[(&str, &str, Render)] = &[
    ("eventTime", "event_time", Render::Time),
    ("eventID", "event_id", Render::Text),
    ("eventName", "event_name", Render::Text),
    ("eventSource", "event_source", Render::Text),
    ("awsRegion", "aws_region", Render::Text),
    ("recipientAccountId", "account", Render::Text),
    ("sourceIPAddress", "source_ip", Render::Text),
    ("userAgent", "user_agent", Render::Text),
    ("errorCode", "error_code", Render::Text),
    ("errorMessage", "error_message", Render::Text),
    ("readOnly", "read_only", Render::Bool),
    ("eventType", "event_type", Render::Text),
    ("eventCategory", "event_category", Render::Text),
    ("eventVersion", "event_version", Render::Text),
    ("managementEvent", "management_event", Render::Bool),
    ("requestID", "request_id", Render::Text),
    ("sharedEventID", "shared_event_id", Render::Text),
    ("vpcEndpointId", "vpc_endpoint_id", Render::Text),
    ("tlsDetails.tlsVersion", "tls_version", Render::Text),
    ("userIdentity.type", "identity_type", Render::Text),
    ("userIdentity.principalId", "principal_id", Render::Text),
    ("userIdentity.arn", "identity_arn", Render::Text),
    ("userIdentity.accountId", "identity_account", Render::Text),
    ("userIdentity.accessKeyId", "access_key_id", Render::Text),
    ("userIdentity.invokedBy", "invoked_by", Render::Text),
    (
        "userIdentity.sessionContext.attributes.mfaAuthenticated",
        "mfa_authenticated",
        Render::Bool,
    ),
    (
        "userIdentity.sessionContext.attributes.creationDate",
        "session_created",
        Render::Time,
    ),
];

const JSON_COLUMNS: &[(&str, &str)] = &[
    ("requestParameters", "request_parameters"),
    ("responseElements", "response_elements"),
    ("additionalEventData", "additional_event_data"),
];

/// The lake source of the CloudTrail field `path`, `None` when the lake does not keep it.
pub fn source(path: &str) -> Option<Source> {
    if let Some((_, column, render)) = COLUMNS.iter().find(|(p, _, _)| *p == path) {
        return Some(Source::Column {
            column,
            render: *render,
        });
    }
    if path == "userIdentity.sessionContext.sessionIssuer.userName" {
        return Some(Source::IssuerName);
    }
    for (top, column) in JSON_COLUMNS {
        if path == *top {
            return Some(Source::Json {
                column,
                path: String::new(),
            });
        }
        if let Some(rest) = path.strip_prefix(top).and_then(|r| r.strip_prefix('.'))
            && !rest.is_empty()
        {
            return Some(Source::Json {
                column,
                path: rest.to_string(),
            });
        }
    }
    match path {
        "resources.ARN" => Some(Source::Resources("arn")),
        "resources.type" => Some(Source::Resources("type")),
        "resources.accountId" => Some(Source::Resources("account")),
        _ => None,
    }
}

/// The role name in an `assumed-role` ARN (`arn:aws:sts::1:assumed-role/Name/session`).
pub fn issuer_name(arn: &str) -> Option<&str> {
    let (_, rest) = arn.split_once(":assumed-role/")?;
    let (name, _) = rest.split_once('/')?;
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_columns_json_and_resources() {
        assert_eq!(
            source("eventName"),
            Some(Source::Column {
                column: "event_name",
                render: Render::Text
            })
        );
        assert_eq!(
            source("requestParameters.ipPermissions.items.fromPort"),
            Some(Source::Json {
                column: "request_parameters",
                path: "ipPermissions.items.fromPort".into()
            })
        );
        assert_eq!(
            source("requestParameters"),
            Some(Source::Json {
                column: "request_parameters",
                path: String::new()
            })
        );
        assert_eq!(source("resources.ARN"), Some(Source::Resources("arn")));
        assert_eq!(source("requestParametersX.a"), None);
        assert_eq!(
            source("userIdentity.sessionContext.webIdFederationData"),
            None
        );
        assert_eq!(
            issuer_name("arn:aws:sts::123456789012:assumed-role/CE-Admin/alice.martin"),
            Some("CE-Admin")
        );
        assert_eq!(issuer_name("arn:aws:iam::123456789012:user/bob"), None);
    }
}
