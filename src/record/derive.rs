//! From a typed record to one lake row: the derived fields of SPEC §3.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate};
use serde_json::value::RawValue;

use crate::config::Config;
use crate::record::filter::{Kind, assumed_role_parts, classify};
use crate::record::model::{Params, Record, Response, Str};

/// One entry of `resources`: `(arn, type, account)`.
pub type ResourceRef<'a> = (Option<Str<'a>>, Option<Str<'a>>, Option<Str<'a>>);

/// One lake row, borrowing from the decompressed file where it can.
#[derive(Debug, Clone, Default)]
pub struct EventRow<'a> {
    /// Microseconds since the Unix epoch, UTC.
    pub event_time: i64,
    pub event_id: Str<'a>,
    pub event_name: Str<'a>,
    pub event_source: Str<'a>,
    pub aws_region: Option<Str<'a>>,
    pub account: Option<Str<'a>>,
    pub source_ip: Option<Str<'a>>,
    pub user_agent: Option<Str<'a>>,
    pub error_code: Option<Str<'a>>,
    pub error_message: Option<Str<'a>>,
    pub read_only: Option<bool>,
    pub event_type: Option<Str<'a>>,
    pub event_category: Option<Str<'a>>,
    pub event_version: Option<Str<'a>>,
    pub management_event: Option<bool>,
    pub request_id: Option<Str<'a>>,
    pub shared_event_id: Option<Str<'a>>,
    pub vpc_endpoint_id: Option<Str<'a>>,
    pub identity_type: Option<Str<'a>>,
    pub principal_id: Option<Str<'a>>,
    pub identity_arn: Option<Str<'a>>,
    pub identity_account: Option<Str<'a>>,
    pub access_key_id: Option<Str<'a>>,
    pub kind: Option<Kind>,
    pub role: Option<Str<'a>>,
    pub engineer: Option<Str<'a>>,
    pub session_key: Option<Str<'a>>,
    pub session_created: Option<i64>,
    pub mfa_authenticated: Option<bool>,
    pub source_identity: Option<Str<'a>>,
    pub invoked_by: Option<Str<'a>>,
    pub external_id: Option<Str<'a>>,
    pub duration_seconds: Option<i64>,
    pub assumed_key_id: Option<Str<'a>>,
    pub target_instance: Option<Str<'a>>,
    pub ssm_session_id: Option<Str<'a>>,
    pub bucket: Option<Str<'a>>,
    pub object_key: Option<Str<'a>>,
    pub db: Option<Str<'a>>,
    /// `(arn, type, account)` of each entry of `resources`.
    pub resources: Option<Vec<ResourceRef<'a>>>,
    pub request_parameters: Option<Str<'a>>,
    pub response_elements: Option<Str<'a>>,
    pub additional_event_data: Option<Str<'a>>,
    pub tls_version: Option<Str<'a>>,
    pub is_denied: bool,
    pub is_error: bool,
    pub is_write: bool,
    /// Where inside its object the record came from, when that is a provenance of its
    /// own (`logs:<group>/<stream>` of a log event): the lake's `source_object` is then
    /// this, not the object's key.
    pub origin: Option<Str<'a>>,
}

/// Parses `YYYY-MM-DDTHH:MM:SSZ` quickly, else any RFC 3339 instant; µs since epoch.
pub fn parse_event_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() == 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z'
    {
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            let mut v = 0u32;
            for &c in &b[r] {
                if !c.is_ascii_digit() {
                    return None;
                }
                v = v * 10 + u32::from(c - b'0');
            }
            Some(v)
        };
        let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
        let t = date.and_hms_opt(num(11..13)?, num(14..16)?, num(17..19)?)?;
        return Some(t.and_utc().timestamp_micros());
    }
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.timestamp_micros())
}

/// Parses a `creationDate` in either CloudTrail format (`2021-02-21T23:46:28Z` or
/// `20131102T010628Z`), µs since epoch.
pub fn parse_creation_date(s: &str) -> Option<i64> {
    if s.len() == 16 && s.as_bytes()[8] == b'T' && s.ends_with('Z') {
        let t = chrono::NaiveDateTime::parse_from_str(&s[..15], "%Y%m%dT%H%M%S").ok()?;
        return Some(t.and_utc().timestamp_micros());
    }
    parse_event_time(s)
}

/// Formats µs since epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_utc_seconds(micros: i64) -> String {
    DateTime::from_timestamp_micros(micros)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn raw_text(raw: Option<&RawValue>) -> Option<Str<'_>> {
    raw.map(RawValue::get)
        .filter(|t| *t != "null")
        .map(Cow::Borrowed)
}

fn own(s: Option<Str<'_>>) -> Option<Str<'static>> {
    s.map(|v| Cow::Owned(v.into_owned()))
}

impl EventRow<'_> {
    /// The same row with every text copied out of the log file's buffer (which a
    /// worker reuses for its next file).
    pub fn into_owned(self) -> EventRow<'static> {
        EventRow {
            event_time: self.event_time,
            event_id: Cow::Owned(self.event_id.into_owned()),
            event_name: Cow::Owned(self.event_name.into_owned()),
            event_source: Cow::Owned(self.event_source.into_owned()),
            aws_region: own(self.aws_region),
            account: own(self.account),
            source_ip: own(self.source_ip),
            user_agent: own(self.user_agent),
            error_code: own(self.error_code),
            error_message: own(self.error_message),
            read_only: self.read_only,
            event_type: own(self.event_type),
            event_category: own(self.event_category),
            event_version: own(self.event_version),
            management_event: self.management_event,
            request_id: own(self.request_id),
            shared_event_id: own(self.shared_event_id),
            vpc_endpoint_id: own(self.vpc_endpoint_id),
            identity_type: own(self.identity_type),
            principal_id: own(self.principal_id),
            identity_arn: own(self.identity_arn),
            identity_account: own(self.identity_account),
            access_key_id: own(self.access_key_id),
            kind: self.kind,
            role: own(self.role),
            engineer: own(self.engineer),
            session_key: own(self.session_key),
            session_created: self.session_created,
            mfa_authenticated: self.mfa_authenticated,
            source_identity: own(self.source_identity),
            invoked_by: own(self.invoked_by),
            external_id: own(self.external_id),
            duration_seconds: self.duration_seconds,
            assumed_key_id: own(self.assumed_key_id),
            target_instance: own(self.target_instance),
            ssm_session_id: own(self.ssm_session_id),
            bucket: own(self.bucket),
            object_key: own(self.object_key),
            db: own(self.db),
            resources: self.resources.map(|list| {
                list.into_iter()
                    .map(|(a, t, c)| (own(a), own(t), own(c)))
                    .collect()
            }),
            request_parameters: own(self.request_parameters),
            response_elements: own(self.response_elements),
            additional_event_data: own(self.additional_event_data),
            tls_version: own(self.tls_version),
            is_denied: self.is_denied,
            is_error: self.is_error,
            is_write: self.is_write,
            origin: own(self.origin),
        }
    }
}

/// `arn:…:cluster:analytics` → `analytics`; other values unchanged.
fn reduce_arn(v: Str<'_>) -> Str<'_> {
    if v.starts_with("arn:") {
        match v {
            Cow::Borrowed(b) => Cow::Borrowed(b.rsplit(':').next().unwrap_or(b)),
            Cow::Owned(o) => Cow::Owned(o.rsplit(':').next().unwrap_or(&o).to_string()),
        }
    } else {
        v
    }
}

/// Derives the lake row of `record`, or `None` when it is not kept (not a CE event and
/// `all_events` is off). Errors name the field at fault.
pub fn derive<'a>(
    record: Record<'a>,
    config: &Config,
    all_events: bool,
) -> Result<Option<EventRow<'a>>, String> {
    let params = Params::from_raw(record.request_parameters);
    let classified = classify(&record, &params, config).map(|(k, r)| (k, r.map(str::to_string)));
    let (kind, role) = match classified {
        Some((k, r)) => (k, r),
        None if all_events => (Kind::Other, None),
        None => return Ok(None),
    };
    let event_time = parse_event_time(&record.event_time).ok_or_else(|| {
        format!(
            "field eventTime: `{}` is not a timestamp",
            record.event_time
        )
    })?;

    let is_assume_call = record.event_name == "AssumeRole";
    let response = if is_assume_call || record.event_source == "ssm.amazonaws.com" {
        Response::from_raw(record.response_elements)
    } else {
        Response::default()
    };
    let id = record.user_identity.unwrap_or_default();
    let ctx = id.session_context.unwrap_or_default();
    let attrs = ctx.attributes.unwrap_or_default();
    let session_created = match attrs.creation_date.as_deref() {
        Some(s) => Some(
            parse_creation_date(s)
                .ok_or_else(|| format!("field userIdentity.sessionContext.attributes.creationDate: `{s}` is not a timestamp"))?,
        ),
        None => None,
    };
    let mfa_authenticated = match attrs.mfa_authenticated.as_deref() {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => None,
    };
    let arn_session = id
        .arn
        .as_deref()
        .and_then(assumed_role_parts)
        .map(|(_, s)| s.to_string());
    let engineer: Option<Str> = if kind == Kind::Assume {
        params.role_session_name.clone().take()
    } else {
        arn_session.map(Cow::Owned)
    };
    let assumed_key_id = if is_assume_call {
        response.credentials.and_then(|c| c.access_key_id.take())
    } else {
        None
    };
    let role: Option<Str> = role.map(Cow::Owned);
    let session_key: Option<Str> = if kind == Kind::Assume {
        assumed_key_id.clone()
    } else if let Some(k) = id
        .access_key_id
        .as_deref()
        .filter(|k| k.starts_with("ASIA"))
    {
        Some(Cow::Owned(k.to_string()))
    } else {
        match (&role, &engineer, session_created) {
            (Some(r), Some(e), Some(c)) if kind == Kind::Activity => {
                Some(Cow::Owned(format!("{r}/{e}/{}", format_utc_seconds(c))))
            }
            _ => None,
        }
    };

    let source = record.event_source.as_ref();
    let name = record.event_name.as_ref();
    let (target_instance, ssm_session_id) = if source == "ssm.amazonaws.com" {
        match name {
            "StartSession" => (
                params.target.clone().take(),
                response.session_id.clone().take(),
            ),
            "TerminateSession" | "ResumeSession" => (None, params.session_id.clone().take()),
            _ => (None, None),
        }
    } else {
        (None, None)
    };
    let (bucket, object_key) = if source == "s3.amazonaws.com" {
        let key = params
            .key
            .clone()
            .take()
            .or_else(|| params.key_upper.clone().take());
        (params.bucket_name.clone().take(), key)
    } else {
        (None, None)
    };
    let db = if matches!(
        source,
        "rds.amazonaws.com" | "rdsdataapi.amazonaws.com" | "rdsdata.amazonaws.com"
    ) {
        params
            .db_instance_identifier
            .clone()
            .take()
            .or_else(|| params.db_cluster_identifier.clone().take())
            .or_else(|| params.resource_arn.clone().take())
            .map(reduce_arn)
    } else {
        None
    };
    let (external_id, duration_seconds) = if is_assume_call {
        (
            params.external_id.clone().take(),
            params
                .duration_seconds
                .get()
                .and_then(|d| d.parse::<i64>().ok()),
        )
    } else {
        (None, None)
    };
    let source_identity = ctx.source_identity.or_else(|| {
        if is_assume_call {
            params.source_identity.clone().take()
        } else {
            None
        }
    });
    let error_code = record.error_code;
    let is_denied = error_code
        .as_deref()
        .is_some_and(|c| c.starts_with("AccessDenied") || c.ends_with("UnauthorizedOperation"));
    let resources = record.resources.map(|rs| {
        rs.into_iter()
            .map(|r| (r.arn, r.kind, r.account))
            .collect::<Vec<_>>()
    });
    Ok(Some(EventRow {
        event_time,
        event_id: record.event_id,
        event_name: record.event_name,
        event_source: record.event_source,
        aws_region: record.aws_region,
        account: record.recipient_account_id,
        source_ip: record.source_ip_address,
        user_agent: record.user_agent,
        is_error: error_code.is_some(),
        is_denied,
        error_code,
        error_message: record.error_message,
        is_write: record.read_only == Some(false),
        origin: None,
        read_only: record.read_only,
        event_type: record.event_type,
        event_category: record.event_category,
        event_version: record.event_version,
        management_event: record.management_event,
        request_id: record.request_id,
        shared_event_id: record.shared_event_id,
        vpc_endpoint_id: record.vpc_endpoint_id,
        identity_type: id.kind,
        principal_id: id.principal_id,
        identity_arn: id.arn,
        identity_account: id.account_id,
        access_key_id: id.access_key_id,
        kind: Some(kind),
        role,
        engineer,
        session_key,
        session_created,
        mfa_authenticated,
        source_identity,
        invoked_by: id.invoked_by,
        external_id,
        duration_seconds,
        assumed_key_id,
        target_instance,
        ssm_session_id,
        bucket,
        object_key,
        db,
        resources,
        request_parameters: raw_text(record.request_parameters),
        response_elements: raw_text(record.response_elements),
        additional_event_data: raw_text(record.additional_event_data),
        tls_version: record.tls_details.and_then(|t| t.tls_version),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_event_time("1970-01-01T00:00:01Z"), Some(1_000_000));
        assert_eq!(
            parse_event_time("2024-07-30T21:31:15.5Z"),
            parse_event_time("2024-07-30T21:31:15Z").map(|t| t + 500_000)
        );
        assert_eq!(parse_event_time("2024-13-30T21:31:15Z"), None);
        assert_eq!(parse_event_time("yesterday"), None);
        assert_eq!(
            parse_creation_date("20131102T010628Z"),
            parse_event_time("2013-11-02T01:06:28Z")
        );
        assert_eq!(format_utc_seconds(1_000_000), "1970-01-01T00:00:01Z");
    }

    #[test]
    fn arn_reduction() {
        assert_eq!(
            reduce_arn(Cow::Borrowed("arn:aws:rds:eu-west-1:1:cluster:analytics")),
            "analytics"
        );
        assert_eq!(reduce_arn(Cow::Borrowed("orders-db")), "orders-db");
    }

    #[test]
    fn last_segment_of_role_path() {
        assert_eq!(
            crate::record::filter::last_segment("arn:aws:iam::1:role/ce/CE-Admin"),
            "CE-Admin"
        );
    }
}
