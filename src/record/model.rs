//! Typed, borrowed views of a CloudTrail record (SPEC §2).
//!
//! Strings are `Cow<str>`: borrowed from the decompressed buffer unless JSON escapes
//! force a copy. The nested JSON documents that the lake keeps verbatim
//! (`requestParameters`, `responseElements`, `additionalEventData`) are `RawValue`s.
//! Unknown fields are ignored (CloudTrail adds fields without notice); a field of the
//! wrong type rejects the record.
//!
//! The handful of request/response fields the CE rule needs are read leniently from
//! the raw documents ([`Params`], [`Response`]): their types vary between services, so
//! a number where a string was expected is used as its text, and anything else is
//! treated as absent rather than rejecting the record.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

pub type Str<'a> = Cow<'a, str>;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record<'a> {
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub event_version: Option<Str<'a>>,
    #[serde(borrow, deserialize_with = "cow_str")]
    pub event_time: Str<'a>,
    #[serde(rename = "eventID", borrow, deserialize_with = "cow_str")]
    pub event_id: Str<'a>,
    #[serde(borrow, deserialize_with = "cow_str")]
    pub event_name: Str<'a>,
    #[serde(borrow, deserialize_with = "cow_str")]
    pub event_source: Str<'a>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub aws_region: Option<Str<'a>>,
    #[serde(
        rename = "sourceIPAddress",
        borrow,
        default,
        deserialize_with = "opt_str"
    )]
    pub source_ip_address: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub user_agent: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub error_code: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub error_message: Option<Str<'a>>,
    #[serde(default)]
    pub read_only: Option<bool>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub event_type: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub event_category: Option<Str<'a>>,
    #[serde(default)]
    pub management_event: Option<bool>,
    #[serde(rename = "requestID", borrow, default, deserialize_with = "opt_str")]
    pub request_id: Option<Str<'a>>,
    #[serde(
        rename = "sharedEventID",
        borrow,
        default,
        deserialize_with = "opt_str"
    )]
    pub shared_event_id: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub vpc_endpoint_id: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub recipient_account_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub user_identity: Option<UserIdentity<'a>>,
    #[serde(borrow, default)]
    pub request_parameters: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub response_elements: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub additional_event_data: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub resources: Option<Vec<Resource<'a>>>,
    #[serde(borrow, default)]
    pub tls_details: Option<TlsDetails<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity<'a> {
    #[serde(rename = "type", borrow, default, deserialize_with = "opt_str")]
    pub kind: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub principal_id: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub arn: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub account_id: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub access_key_id: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub user_name: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub invoked_by: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub session_context: Option<SessionContext<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionContext<'a> {
    #[serde(borrow, default)]
    pub session_issuer: Option<SessionIssuer<'a>>,
    #[serde(borrow, default)]
    pub attributes: Option<SessionAttributes<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub source_identity: Option<Str<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionIssuer<'a> {
    #[serde(rename = "type", borrow, default, deserialize_with = "opt_str")]
    pub kind: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub arn: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub account_id: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub user_name: Option<Str<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionAttributes<'a> {
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub creation_date: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub mfa_authenticated: Option<Str<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct Resource<'a> {
    #[serde(rename = "ARN", borrow, default, deserialize_with = "opt_str")]
    pub arn: Option<Str<'a>>,
    #[serde(rename = "type", borrow, default, deserialize_with = "opt_str")]
    pub kind: Option<Str<'a>>,
    #[serde(rename = "accountId", borrow, default, deserialize_with = "opt_str")]
    pub account: Option<Str<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsDetails<'a> {
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub tls_version: Option<Str<'a>>,
}

/// Serde's derive borrows a `Cow<str>` only where the field's type is spelled
/// `Cow<str>` (not through the `Str` alias, never inside an `Option`); elsewhere every
/// string became an owned copy. Fields use these instead: a string without escapes is
/// borrowed from the buffer, one with escapes is unescaped into an owned copy.
pub fn cow_str<'de: 'a, 'a, D: serde::Deserializer<'de>>(d: D) -> Result<Str<'a>, D::Error> {
    d.deserialize_str(CowStr)
}

/// [`cow_str`] for an optional field (`null` is `None`).
pub fn opt_str<'de: 'a, 'a, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Str<'a>>, D::Error> {
    d.deserialize_option(OptCowStr)
}

struct CowStr;

impl<'de> serde::de::Visitor<'de> for CowStr {
    type Value = Str<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

struct OptCowStr;

impl<'de> serde::de::Visitor<'de> for OptCowStr {
    type Value = Option<Str<'de>>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string or null")
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        cow_str(d).map(Some)
    }
}

/// A lenient scalar: a JSON string (its value) or number (its text); anything else is
/// absent.
#[derive(Debug, Default, Clone)]
pub struct Scalar<'a>(pub Option<Str<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: &'de RawValue = Deserialize::deserialize(d)?;
        Ok(Scalar(scalar_text(raw)))
    }
}

/// The value of a raw JSON scalar as text (strings unescaped, numbers verbatim).
pub fn scalar_text(raw: &RawValue) -> Option<Str<'_>> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => {
            let mut d = serde_json::Deserializer::from_str(text);
            cow_str(&mut d).ok()
        }
        Some(b'-' | b'0'..=b'9') => Some(Cow::Borrowed(text)),
        _ => None,
    }
}

impl<'a> Scalar<'a> {
    pub fn get(&self) -> Option<&str> {
        self.0.as_deref()
    }
    pub fn take(self) -> Option<Str<'a>> {
        self.0
    }
}

/// The request parameters the CE rule and derived fields read.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Params<'a> {
    #[serde(borrow, default)]
    pub role_arn: Scalar<'a>,
    #[serde(borrow, default)]
    pub role_session_name: Scalar<'a>,
    #[serde(borrow, default)]
    pub duration_seconds: Scalar<'a>,
    #[serde(borrow, default)]
    pub external_id: Scalar<'a>,
    #[serde(borrow, default)]
    pub source_identity: Scalar<'a>,
    #[serde(borrow, default)]
    pub target: Scalar<'a>,
    #[serde(borrow, default)]
    pub session_id: Scalar<'a>,
    #[serde(borrow, default)]
    pub bucket_name: Scalar<'a>,
    #[serde(borrow, default)]
    pub key: Scalar<'a>,
    #[serde(rename = "Key", borrow, default)]
    pub key_upper: Scalar<'a>,
    #[serde(rename = "dBInstanceIdentifier", borrow, default)]
    pub db_instance_identifier: Scalar<'a>,
    #[serde(rename = "dBClusterIdentifier", borrow, default)]
    pub db_cluster_identifier: Scalar<'a>,
    #[serde(borrow, default)]
    pub resource_arn: Scalar<'a>,
    #[serde(borrow, default)]
    pub role_name: Scalar<'a>,
    #[serde(borrow, default)]
    pub policy_arn: Scalar<'a>,
    #[serde(borrow, default)]
    pub stack_name: Scalar<'a>,
    #[serde(borrow, default)]
    pub log_group_name: Scalar<'a>,
    #[serde(borrow, default)]
    pub name: Scalar<'a>,
    #[serde(borrow, default)]
    pub rule: Scalar<'a>,
    #[serde(borrow, default)]
    pub dashboard_name: Scalar<'a>,
    #[serde(borrow, default)]
    pub dashboard_names: Option<Vec<Scalar<'a>>>,
}

impl<'a> Params<'a> {
    /// Reads the parameters from a raw document; a non-object or odd document gives
    /// the empty set (the raw text is still kept in the lake).
    pub fn from_raw(raw: Option<&'a RawValue>) -> Self {
        raw.and_then(|r| serde_json::from_str(r.get()).ok())
            .unwrap_or_default()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials<'a> {
    #[serde(borrow, default)]
    pub access_key_id: Scalar<'a>,
}

/// The response elements the derived fields read.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Response<'a> {
    #[serde(borrow, default)]
    pub credentials: Option<Credentials<'a>>,
    #[serde(borrow, default)]
    pub session_id: Scalar<'a>,
}

impl<'a> Response<'a> {
    pub fn from_raw(raw: Option<&'a RawValue>) -> Self {
        raw.and_then(|r| serde_json::from_str(r.get()).ok())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strings without escapes are borrowed from the buffer, optional ones included;
    /// escaped ones are unescaped copies; `null` and absent optional fields are `None`.
    #[test]
    fn strings_are_borrowed_unless_escaped() -> Result<(), serde_json::Error> {
        let text = r#"{"eventTime":"2026-01-02T03:04:05Z","eventID":"id-1",
            "eventName":"Get\"Object","eventSource":"s3.amazonaws.com",
            "awsRegion":"eu-west-1","errorCode":null,
            "userIdentity":{"arn":"arn:aws:sts::1:assumed-role/CE-SRE/alice",
              "sessionContext":{"attributes":{"mfaAuthenticated":"true"}}},
            "requestParameters":{"roleArn":"arn:aws:iam::1:role/CE\/x","durationSeconds":3600}}"#;
        let r: Record = serde_json::from_str(text)?;
        assert!(matches!(
            r.event_time,
            Cow::Borrowed("2026-01-02T03:04:05Z")
        ));
        assert!(matches!(r.event_id, Cow::Borrowed("id-1")));
        assert!(matches!(&r.event_name, Cow::Owned(s) if s == "Get\"Object"));
        assert!(matches!(r.aws_region, Some(Cow::Borrowed("eu-west-1"))));
        assert!(r.error_code.is_none() && r.error_message.is_none());
        let identity = r.user_identity.as_ref();
        assert!(matches!(
            identity.and_then(|u| u.arn.as_ref()),
            Some(Cow::Borrowed("arn:aws:sts::1:assumed-role/CE-SRE/alice"))
        ));
        let mfa = identity
            .and_then(|u| u.session_context.as_ref())
            .and_then(|c| c.attributes.as_ref())
            .and_then(|a| a.mfa_authenticated.as_ref());
        assert!(matches!(mfa, Some(Cow::Borrowed("true"))));
        let params = Params::from_raw(r.request_parameters);
        assert!(
            matches!(&params.role_arn.0, Some(Cow::Owned(s)) if s == "arn:aws:iam::1:role/CE/x")
        );
        assert!(matches!(
            params.duration_seconds.0,
            Some(Cow::Borrowed("3600"))
        ));
        // A number where a string is required rejects the record.
        assert!(serde_json::from_str::<Record>(&text.replace("\"id-1\"", "7")).is_err());
        Ok(())
    }
}
