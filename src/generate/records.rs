//! CloudTrail record shapes for the generator, modelled on real records
//! (`tests/fixtures/stratus-red-team/`): field names, types and nesting as AWS writes
//! them, including the awkward parts (null parameters on denied calls, `readOnly` as a
//! boolean, `mfaAuthenticated` as a string, both `creationDate` formats).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::rng::Rng;

/// One generated event: its time (ms), region and JSON text.
#[derive(Debug, Clone)]
pub struct Ev {
    pub t_ms: i64,
    pub region: String,
    pub json: String,
}

pub fn iso(t_ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(t_ms)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn compact(t_ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(t_ms)
        .map(|d| d.format("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_default()
}

fn expiration(t_ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(t_ms)
        .map(|d| d.format("%b %-d, %Y, %-I:%M:%S %p").to_string())
        .unwrap_or_default()
}

/// Who makes a call.
#[derive(Debug, Clone)]
pub enum Actor {
    /// A session of an assumed role in `account`.
    Session {
        account: String,
        role: String,
        role_path: String,
        role_id: String,
        session: String,
        key: String,
        created_ms: i64,
        compact_created: bool,
        mfa: bool,
        invoked_by: Option<String>,
    },
    /// An IAM user with a long-lived key.
    User {
        account: String,
        name: String,
        id: String,
        key: String,
    },
    /// Another AWS account (the vendor calling AssumeRole cross-account).
    Account {
        account: String,
        principal: String,
        key: String,
    },
    /// An AWS service.
    Service { service: String },
}

impl Actor {
    pub fn identity(&self) -> Value {
        match self {
            Actor::Session {
                account,
                role,
                role_path,
                role_id,
                session,
                key,
                created_ms,
                compact_created,
                mfa,
                invoked_by,
            } => {
                let created = if *compact_created {
                    compact(*created_ms)
                } else {
                    iso(*created_ms)
                };
                let mut v = json!({
                    "type": "AssumedRole",
                    "principalId": format!("{role_id}:{session}"),
                    "arn": format!("arn:aws:sts::{account}:assumed-role/{role}/{session}"),
                    "accountId": account,
                    "accessKeyId": key,
                    "sessionContext": {
                        "sessionIssuer": {
                            "type": "Role",
                            "principalId": role_id,
                            "arn": format!("arn:aws:iam::{account}:role{role_path}{role}"),
                            "accountId": account,
                            "userName": role
                        },
                        "webIdFederationData": {},
                        "attributes": {
                            "creationDate": created,
                            "mfaAuthenticated": if *mfa { "true" } else { "false" }
                        }
                    }
                });
                if let (Some(by), Some(obj)) = (invoked_by, v.as_object_mut()) {
                    obj.insert("invokedBy".into(), json!(by));
                }
                v
            }
            Actor::User {
                account,
                name,
                id,
                key,
            } => json!({
                "type": "IAMUser",
                "principalId": id,
                "arn": format!("arn:aws:iam::{account}:user/{name}"),
                "accountId": account,
                "accessKeyId": key,
                "userName": name
            }),
            Actor::Account {
                account,
                principal,
                key,
            } => json!({
                "type": "AWSAccount",
                "principalId": principal,
                "accountId": account,
                "accessKeyId": key
            }),
            Actor::Service { service } => json!({
                "type": "AWSService",
                "invokedBy": service
            }),
        }
    }

    /// The ARN used in error messages.
    pub fn arn(&self) -> String {
        match self {
            Actor::Session {
                account,
                role,
                session,
                ..
            } => format!("arn:aws:sts::{account}:assumed-role/{role}/{session}"),
            Actor::User { account, name, .. } => format!("arn:aws:iam::{account}:user/{name}"),
            Actor::Account { principal, .. } => principal.clone(),
            Actor::Service { service } => service.clone(),
        }
    }
}

/// Everything one call needs.
pub struct Call<'a> {
    pub t_ms: i64,
    pub account: &'a str,
    pub region: &'a str,
    pub source: &'a str,
    pub name: &'a str,
    pub actor: &'a Actor,
    pub ip: &'a str,
    pub agent: &'a str,
    pub read_only: bool,
    pub params: Value,
    pub response: Value,
    pub error: Option<(&'a str, String)>,
    pub data_event: bool,
    pub resources: Option<Value>,
    pub additional: Option<Value>,
    pub shared_event_id: Option<String>,
    pub event_type: &'a str,
}

impl<'a> Call<'a> {
    /// A read-only management call with no parameters; adjust fields after.
    #[allow(clippy::too_many_arguments)] // the eight facts every CloudTrail call has
    pub fn new(
        t_ms: i64,
        account: &'a str,
        region: &'a str,
        source: &'a str,
        name: &'a str,
        actor: &'a Actor,
        ip: &'a str,
        agent: &'a str,
    ) -> Self {
        Call {
            t_ms,
            account,
            region,
            source,
            name,
            actor,
            ip,
            agent,
            read_only: true,
            params: Value::Null,
            response: Value::Null,
            error: None,
            data_event: false,
            resources: None,
            additional: None,
            shared_event_id: None,
            event_type: "AwsApiCall",
        }
    }

    pub fn render(self, rng: &mut Rng) -> Ev {
        let host = self.source.replace(".amazonaws.com", "");
        let mut m = serde_json::Map::new();
        let version = if rng.chance(0.5) { "1.09" } else { "1.08" };
        m.insert("eventVersion".into(), json!(version));
        m.insert("userIdentity".into(), self.actor.identity());
        m.insert("eventTime".into(), json!(iso(self.t_ms)));
        m.insert("eventSource".into(), json!(self.source));
        m.insert("eventName".into(), json!(self.name));
        m.insert("awsRegion".into(), json!(self.region));
        m.insert("sourceIPAddress".into(), json!(self.ip));
        m.insert("userAgent".into(), json!(self.agent));
        let (params, response) = match &self.error {
            Some((code, message)) => {
                m.insert("errorCode".into(), json!(code));
                m.insert("errorMessage".into(), json!(message));
                // Denied calls often lose their parameters; keep them half the time.
                let p = if rng.chance(0.5) {
                    Value::Null
                } else {
                    self.params
                };
                (p, Value::Null)
            }
            None => (self.params, self.response),
        };
        m.insert("requestParameters".into(), params);
        m.insert("responseElements".into(), response);
        if let Some(a) = self.additional {
            m.insert("additionalEventData".into(), a);
        }
        m.insert("requestID".into(), json!(rng.uuid()));
        m.insert("eventID".into(), json!(rng.uuid()));
        m.insert("readOnly".into(), json!(self.read_only));
        if let Some(r) = self.resources {
            m.insert("resources".into(), r);
        }
        m.insert("eventType".into(), json!(self.event_type));
        m.insert("managementEvent".into(), json!(!self.data_event));
        m.insert("recipientAccountId".into(), json!(self.account));
        if let Some(s) = self.shared_event_id {
            m.insert("sharedEventID".into(), json!(s));
        }
        m.insert(
            "eventCategory".into(),
            json!(if self.data_event {
                "Data"
            } else {
                "Management"
            }),
        );
        m.insert(
            "tlsDetails".into(),
            json!({
                "tlsVersion": if rng.chance(0.8) { "TLSv1.3" } else { "TLSv1.2" },
                "cipherSuite": "TLS_AES_128_GCM_SHA256",
                "clientProvidedHostHeader": format!("{host}.{}.amazonaws.com", self.region)
            }),
        );
        Ev {
            t_ms: self.t_ms,
            region: self.region.to_string(),
            json: Value::Object(m).to_string(),
        }
    }
}

/// Parameters of a successful cross-account AssumeRole.
pub struct Assume<'a> {
    pub role_arn: &'a str,
    pub session: &'a str,
    pub duration: i64,
    pub external_id: Option<&'a str>,
    pub new_key: &'a str,
    pub role_id: &'a str,
    pub assumed_arn: String,
}

pub fn assume_params(a: &Assume<'_>, t_ms: i64, rng: &mut Rng) -> (Value, Value) {
    let mut p = json!({
        "roleArn": a.role_arn,
        "roleSessionName": a.session,
        "durationSeconds": a.duration
    });
    if let (Some(x), Some(obj)) = (a.external_id, p.as_object_mut()) {
        obj.insert("externalId".into(), json!(x));
    }
    let r = json!({
        "credentials": {
            "accessKeyId": a.new_key,
            "sessionToken": format!("IQoJb3JpZ2luX2Vj{}", rng.upper_alnum(48)),
            "expiration": expiration(t_ms + a.duration * 1000)
        },
        "assumedRoleUser": {
            "assumedRoleId": format!("{}:{}", a.role_id, a.session),
            "arn": a.assumed_arn
        }
    });
    (p, r)
}

/// The `AccessDenied` message CloudTrail writes.
pub fn denied_message(actor: &Actor, action: &str, resource: &str) -> String {
    format!(
        "User: {} is not authorized to perform: {action} on resource: {resource} because no identity-based policy allows the {action} action",
        actor.arn()
    )
}
