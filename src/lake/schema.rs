//! The one lake schema (SPEC §4), versioned, and the column builder.
//!
//! Invariants every writer keeps: plain `Utf8` strings (no dictionary type),
//! `Timestamp(Microsecond, "UTC")` times, file metadata `cetrail.schema_version`.

use std::sync::{Arc, LazyLock};

use arrow::array::{
    ArrayRef, BooleanBuilder, Int64Builder, ListBuilder, RecordBatch, StringBuilder, StructBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

use crate::error::LakeError;
use crate::record::EventRow;
use crate::source::SourceKind;

/// Version of the lake schema, written to every file's metadata.
pub const SCHEMA_VERSION: &str = "2";
/// Metadata key of the schema version.
pub const SCHEMA_VERSION_KEY: &str = "cetrail.schema_version";

/// One column: name, type and its documentation (`cetrail lake schema`).
pub struct ColumnDoc {
    pub name: &'static str,
    pub kind: ColumnKind,
    pub doc: &'static str,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ColumnKind {
    Time,
    Text,
    Bool,
    Int,
    Resources,
}

impl ColumnKind {
    fn data_type(self) -> DataType {
        match self {
            ColumnKind::Time => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            ColumnKind::Text => DataType::Utf8,
            ColumnKind::Bool => DataType::Boolean,
            ColumnKind::Int => DataType::Int64,
            ColumnKind::Resources => DataType::List(Arc::new(Field::new(
                "item",
                DataType::Struct(resource_fields()),
                true,
            ))),
        }
    }
    /// The column type in Hive DDL (Athena's `CREATE EXTERNAL TABLE`).
    pub fn hive_type(self) -> &'static str {
        match self {
            ColumnKind::Time => "timestamp",
            ColumnKind::Text => "string",
            ColumnKind::Bool => "boolean",
            ColumnKind::Int => "bigint",
            ColumnKind::Resources => "array<struct<arn:string,type:string,account:string>>",
        }
    }

    pub fn type_name(self) -> &'static str {
        match self {
            ColumnKind::Time => "timestamp[us, UTC]",
            ColumnKind::Text => "string",
            ColumnKind::Bool => "bool",
            ColumnKind::Int => "int64",
            ColumnKind::Resources => "list<struct<arn: string, type: string, account: string>>",
        }
    }
}

fn resource_fields() -> Fields {
    Fields::from(vec![
        Field::new("arn", DataType::Utf8, true),
        Field::new("type", DataType::Utf8, true),
        Field::new("account", DataType::Utf8, true),
    ])
}

macro_rules! columns {
    ($($name:literal $kind:ident $doc:literal,)*) => {
        /// The columns, in file order.
        pub const COLUMNS: &[ColumnDoc] = &[
            $(ColumnDoc { name: $name, kind: ColumnKind::$kind, doc: $doc },)*
        ];
    };
}

columns! {
    "event_time" Time "eventTime (UTC); the rows of a file are sorted by it",
    "event_id" Text "eventID; duplicates are removed at ingest and by the query view",
    "event_name" Text "eventName",
    "event_source" Text "eventSource, e.g. ssm.amazonaws.com",
    "aws_region" Text "awsRegion",
    "account" Text "recipientAccountId: the account whose trail logged the event",
    "source_ip" Text "sourceIPAddress",
    "user_agent" Text "userAgent",
    "error_code" Text "errorCode",
    "error_message" Text "errorMessage",
    "read_only" Bool "readOnly",
    "event_type" Text "eventType",
    "event_category" Text "eventCategory",
    "event_version" Text "eventVersion",
    "management_event" Bool "managementEvent",
    "request_id" Text "requestID",
    "shared_event_id" Text "sharedEventID: joins both sides of a cross-account call",
    "vpc_endpoint_id" Text "vpcEndpointId",
    "identity_type" Text "userIdentity.type",
    "principal_id" Text "userIdentity.principalId",
    "identity_arn" Text "userIdentity.arn",
    "identity_account" Text "userIdentity.accountId (the vendor account for cross-account AssumeRole)",
    "access_key_id" Text "userIdentity.accessKeyId",
    "kind" Text "assume | activity | infra | other (SPEC §3)",
    "role" Text "the CE role (target role of an AssumeRole, caller role of activity)",
    "engineer" Text "roleSessionName of an AssumeRole, else the assumed-role ARN's session segment",
    "session_key" Text "temporary key id, else role/engineer/sessionCreated; null: no session",
    "session_created" Time "userIdentity.sessionContext.attributes.creationDate",
    "mfa_authenticated" Bool "sessionContext.attributes.mfaAuthenticated",
    "source_identity" Text "sessionContext.sourceIdentity (or requestParameters.sourceIdentity)",
    "invoked_by" Text "userIdentity.invokedBy",
    "external_id" Text "requestParameters.externalId of an AssumeRole",
    "duration_seconds" Int "requestParameters.durationSeconds of an AssumeRole",
    "assumed_key_id" Text "responseElements.credentials.accessKeyId of an AssumeRole",
    "target_instance" Text "requestParameters.target of ssm:StartSession",
    "ssm_session_id" Text "SSM session id (StartSession response, Terminate/ResumeSession request)",
    "bucket" Text "requestParameters.bucketName (s3)",
    "object_key" Text "requestParameters.key, else Key (s3)",
    "db" Text "RDS instance/cluster identifier or resourceArn, ARNs reduced to the last segment",
    "resources" Resources "resources[] as (arn, type, account)",
    "request_parameters" Text "requestParameters, raw JSON text",
    "response_elements" Text "responseElements, raw JSON text",
    "additional_event_data" Text "additionalEventData, raw JSON text",
    "tls_version" Text "tlsDetails.tlsVersion",
    "is_denied" Bool "errorCode starts with AccessDenied or ends with UnauthorizedOperation",
    "is_error" Bool "errorCode is not null",
    "is_write" Bool "readOnly is false (a missing readOnly is neither read nor write)",
    "source_object" Text "where the event came from (chain of custody): the file key, logs:<group>/<stream> or event-history:<region>",
    "source_kind" Text "trail | log-export | eventbridge | log-group | event-history (SPEC §10); null in files written before it: trail",
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let fields: Vec<Field> = COLUMNS
        .iter()
        .map(|c| {
            Field::new(
                c.name,
                c.kind.data_type(),
                c.name != "event_time" && c.name != "event_id",
            )
        })
        .collect();
    let meta: std::collections::HashMap<String, String> =
        [(SCHEMA_VERSION_KEY.to_string(), SCHEMA_VERSION.to_string())]
            .into_iter()
            .collect();
    Arc::new(Schema::new_with_metadata(fields, meta))
});

/// The Arrow schema of the lake.
pub fn schema() -> SchemaRef {
    SCHEMA.clone()
}

/// Columns added since schema version 1, at the end, in order: a file of an earlier
/// version lacks a tail of them (read as nulls).
const ADDED: &[&str] = &["source_kind"];

/// Whether a file's schema is this version's or an earlier one's (the same columns but
/// a tail of [`ADDED`]).
pub fn readable(file: &Schema) -> bool {
    let want = schema();
    let (have, all) = (file.fields(), want.fields());
    have.len() <= all.len()
        && have.len() + ADDED.len() >= all.len()
        && have.iter().zip(all.iter()).all(|(a, b)| a == b)
}

/// A batch of an earlier version's file with the columns added since filled with nulls
/// (a batch of this version as it is).
pub fn conform(batch: RecordBatch) -> Result<RecordBatch, LakeError> {
    let want = schema();
    if batch.num_columns() == want.fields().len() {
        return Ok(batch);
    }
    let rows = batch.num_rows();
    let mut cols = batch.columns().to_vec();
    for field in want.fields().iter().skip(cols.len()) {
        cols.push(arrow::array::new_null_array(field.data_type(), rows));
    }
    RecordBatch::try_new(want, cols).map_err(|e| LakeError::Arrow(e.to_string()))
}

fn text<'r, F>(rows: &'r [EventRow<'_>], f: F) -> ArrayRef
where
    F: Fn(&'r EventRow<'_>) -> Option<&'r str>,
{
    let bytes: usize = rows.iter().map(|r| f(r).map_or(0, str::len)).sum();
    let mut b = StringBuilder::with_capacity(rows.len(), bytes);
    for r in rows {
        b.append_option(f(r));
    }
    Arc::new(b.finish())
}

fn boolean(rows: &[EventRow<'_>], f: impl Fn(&EventRow<'_>) -> Option<bool>) -> ArrayRef {
    let mut b = BooleanBuilder::with_capacity(rows.len());
    for r in rows {
        b.append_option(f(r));
    }
    Arc::new(b.finish())
}

fn time(rows: &[EventRow<'_>], f: impl Fn(&EventRow<'_>) -> Option<i64>) -> ArrayRef {
    let mut b = TimestampMicrosecondBuilder::with_capacity(rows.len()).with_timezone("UTC");
    for r in rows {
        b.append_option(f(r));
    }
    Arc::new(b.finish())
}

fn resources(rows: &[EventRow<'_>]) -> ArrayRef {
    let values = StructBuilder::from_fields(resource_fields(), 0);
    let item = Field::new("item", DataType::Struct(resource_fields()), true);
    let mut b = ListBuilder::new(values).with_field(Arc::new(item));
    for r in rows {
        match &r.resources {
            None => b.append_null(),
            Some(list) => {
                let s = b.values();
                for (arn, kind, account) in list {
                    for (i, v) in [arn, kind, account].into_iter().enumerate() {
                        if let Some(f) = s.field_builder::<StringBuilder>(i) {
                            f.append_option(v.as_deref());
                        }
                    }
                    s.append(true);
                }
                b.append(true);
            }
        }
    }
    Arc::new(b.finish())
}

/// Builds a record batch of `rows`; `provenance(i)` is the object row `i` came from and
/// the kind of its source (a row's own `origin`, a log stream, stands for the object).
pub fn build_batch<'s>(
    rows: &[EventRow<'_>],
    provenance: impl Fn(usize) -> (&'s str, SourceKind),
) -> Result<RecordBatch, LakeError> {
    let source_object = |i: usize| match rows.get(i).and_then(|r| r.origin.as_deref()) {
        Some(origin) => origin,
        None => provenance(i).0,
    };
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(COLUMNS.len());
    for c in COLUMNS {
        let col = match c.name {
            "event_time" => time(rows, |r| Some(r.event_time)),
            "event_id" => text(rows, |r| Some(&r.event_id)),
            "event_name" => text(rows, |r| Some(&r.event_name)),
            "event_source" => text(rows, |r| Some(&r.event_source)),
            "aws_region" => text(rows, |r| r.aws_region.as_deref()),
            "account" => text(rows, |r| r.account.as_deref()),
            "source_ip" => text(rows, |r| r.source_ip.as_deref()),
            "user_agent" => text(rows, |r| r.user_agent.as_deref()),
            "error_code" => text(rows, |r| r.error_code.as_deref()),
            "error_message" => text(rows, |r| r.error_message.as_deref()),
            "read_only" => boolean(rows, |r| r.read_only),
            "event_type" => text(rows, |r| r.event_type.as_deref()),
            "event_category" => text(rows, |r| r.event_category.as_deref()),
            "event_version" => text(rows, |r| r.event_version.as_deref()),
            "management_event" => boolean(rows, |r| r.management_event),
            "request_id" => text(rows, |r| r.request_id.as_deref()),
            "shared_event_id" => text(rows, |r| r.shared_event_id.as_deref()),
            "vpc_endpoint_id" => text(rows, |r| r.vpc_endpoint_id.as_deref()),
            "identity_type" => text(rows, |r| r.identity_type.as_deref()),
            "principal_id" => text(rows, |r| r.principal_id.as_deref()),
            "identity_arn" => text(rows, |r| r.identity_arn.as_deref()),
            "identity_account" => text(rows, |r| r.identity_account.as_deref()),
            "access_key_id" => text(rows, |r| r.access_key_id.as_deref()),
            "kind" => text(rows, |r| r.kind.map(|k| k.as_str())),
            "role" => text(rows, |r| r.role.as_deref()),
            "engineer" => text(rows, |r| r.engineer.as_deref()),
            "session_key" => text(rows, |r| r.session_key.as_deref()),
            "session_created" => time(rows, |r| r.session_created),
            "mfa_authenticated" => boolean(rows, |r| r.mfa_authenticated),
            "source_identity" => text(rows, |r| r.source_identity.as_deref()),
            "invoked_by" => text(rows, |r| r.invoked_by.as_deref()),
            "external_id" => text(rows, |r| r.external_id.as_deref()),
            "duration_seconds" => {
                let mut b = Int64Builder::with_capacity(rows.len());
                for r in rows {
                    b.append_option(r.duration_seconds);
                }
                Arc::new(b.finish())
            }
            "assumed_key_id" => text(rows, |r| r.assumed_key_id.as_deref()),
            "target_instance" => text(rows, |r| r.target_instance.as_deref()),
            "ssm_session_id" => text(rows, |r| r.ssm_session_id.as_deref()),
            "bucket" => text(rows, |r| r.bucket.as_deref()),
            "object_key" => text(rows, |r| r.object_key.as_deref()),
            "db" => text(rows, |r| r.db.as_deref()),
            "resources" => resources(rows),
            "request_parameters" => text(rows, |r| r.request_parameters.as_deref()),
            "response_elements" => text(rows, |r| r.response_elements.as_deref()),
            "additional_event_data" => text(rows, |r| r.additional_event_data.as_deref()),
            "tls_version" => text(rows, |r| r.tls_version.as_deref()),
            "is_denied" => boolean(rows, |r| Some(r.is_denied)),
            "is_error" => boolean(rows, |r| Some(r.is_error)),
            "is_write" => boolean(rows, |r| Some(r.is_write)),
            "source_object" => {
                let bytes: usize = (0..rows.len()).map(|i| source_object(i).len()).sum();
                let mut b = StringBuilder::with_capacity(rows.len(), bytes);
                for i in 0..rows.len() {
                    b.append_value(source_object(i));
                }
                Arc::new(b.finish())
            }
            "source_kind" => {
                let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 5);
                for i in 0..rows.len() {
                    b.append_value(provenance(i).1.as_str());
                }
                Arc::new(b.finish())
            }
            other => return Err(LakeError::Arrow(format!("no builder for column {other}"))),
        };
        cols.push(col);
    }
    RecordBatch::try_new(schema(), cols).map_err(|e| LakeError::Arrow(e.to_string()))
}
