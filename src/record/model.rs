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
    #[serde(borrow, default)]
    pub event_version: Option<Str<'a>>,
    #[serde(borrow)]
    pub event_time: Str<'a>,
    #[serde(rename = "eventID", borrow)]
    pub event_id: Str<'a>,
    #[serde(borrow)]
    pub event_name: Str<'a>,
    #[serde(borrow)]
    pub event_source: Str<'a>,
    #[serde(borrow, default)]
    pub aws_region: Option<Str<'a>>,
    #[serde(rename = "sourceIPAddress", borrow, default)]
    pub source_ip_address: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub user_agent: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub error_code: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub error_message: Option<Str<'a>>,
    #[serde(default)]
    pub read_only: Option<bool>,
    #[serde(borrow, default)]
    pub event_type: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub event_category: Option<Str<'a>>,
    #[serde(default)]
    pub management_event: Option<bool>,
    #[serde(rename = "requestID", borrow, default)]
    pub request_id: Option<Str<'a>>,
    #[serde(rename = "sharedEventID", borrow, default)]
    pub shared_event_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub vpc_endpoint_id: Option<Str<'a>>,
    #[serde(borrow, default)]
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
    #[serde(rename = "type", borrow, default)]
    pub kind: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub principal_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub arn: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub account_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub access_key_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub user_name: Option<Str<'a>>,
    #[serde(borrow, default)]
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
    #[serde(borrow, default)]
    pub source_identity: Option<Str<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionIssuer<'a> {
    #[serde(rename = "type", borrow, default)]
    pub kind: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub arn: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub account_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub user_name: Option<Str<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionAttributes<'a> {
    #[serde(borrow, default)]
    pub creation_date: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub mfa_authenticated: Option<Str<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct Resource<'a> {
    #[serde(rename = "ARN", borrow, default)]
    pub arn: Option<Str<'a>>,
    #[serde(rename = "type", borrow, default)]
    pub kind: Option<Str<'a>>,
    #[serde(rename = "accountId", borrow, default)]
    pub account: Option<Str<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsDetails<'a> {
    #[serde(borrow, default)]
    pub tls_version: Option<Str<'a>>,
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
        Some(b'"') => serde_json::from_str::<Str>(text).ok(),
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
