//! `cetrail generate`: a seeded, byte-for-byte reproducible synthetic archive in the S3
//! layout of CloudTrail, with realistic CE activity inside background noise.
//!
//! The first client account delivers to `AWSLogs/<account>/…`, the others through an
//! organization trail, `AWSLogs/o-<org>/<account>/…`. Events are grouped into files
//! per account × region × 5-minute window, shuffled inside each file, some delivered
//! late (up to an hour, sometimes into the next day's folder); a few are delivered
//! twice. Hourly digest files and a few insight files sit beside the logs.
//!
//! Planted facts, so that every widget and anomaly family has something to show:
//! CE-Admin sessions (admin alarm), a burst of denied calls (access-denied alarm), an
//! hour of unusual SRE volume near the end (volume anomaly), an engineer, a source IP
//! and an action first seen in the last week (first-seen anomalies), SSM shell sessions,
//! CE-Data S3 and RDS use, after-hours and weekend work, denied same-account AssumeRole
//! attempts on CE roles (null `requestParameters`), a CE session assuming a second CE
//! role without external id, CE setup changes by the client (`infra`), and look-alike
//! roles (`CE-Admins-Legacy`, `ce-admin`) that must not match.

mod records;
pub mod rng;
pub mod shapes;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc, Weekday};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::error::GenerateError;
use crate::record::gunzip::gzip;
use crate::verify::digest::signing_string;
use crate::verify::keys::DigestSigner;
use crate::verify::{PUBLIC_KEYS_FILE, SIGNATURES_FILE};
use records::{Actor, Assume, Call, Ev, assume_params, denied_message, iso};
use rng::Rng;

/// Parameters of `cetrail generate`.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub out: PathBuf,
    pub seed: u64,
    pub days: u32,
    pub accounts: u32,
    pub regions: u32,
    /// Records per account × region × day (background and CE together).
    pub events_per_day: u32,
    /// Share of the records that are CE events.
    pub ce_share: f64,
    /// First day of the archive.
    pub start: NaiveDate,
    /// Write `CloudTrail-Digest/` files.
    pub digests: bool,
    /// Minutes of events per delivered log file (CloudTrail: about 5).
    pub file_minutes: u32,
    /// Hours covered by one digest file (CloudTrail: 1).
    pub digest_hours: u32,
    /// Write the trail (log, digest and insight files) under `out`.
    pub trail: bool,
    /// The same CE activity in the shapes of the other sources (SPEC §10).
    pub shapes: shapes::ShapeOutputs,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            out: PathBuf::from("archive"),
            seed: 1,
            days: 49,
            accounts: 2,
            regions: 2,
            events_per_day: 150,
            ce_share: 0.3,
            start: NaiveDate::from_ymd_opt(2026, 9, 7).unwrap_or_default(),
            digests: true,
            file_minutes: 5,
            digest_hours: 1,
            trail: true,
            shapes: shapes::ShapeOutputs::default(),
        }
    }
}

/// What was written.
#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct GenerateSummary {
    pub log_files: u64,
    pub records: u64,
    pub ce_events: u64,
    pub duplicates: u64,
    pub digest_files: u64,
    pub insight_files: u64,
    pub bytes_uncompressed: u64,
    pub bytes_compressed: u64,
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    pub first_day: String,
    pub last_day: String,
    /// What the other shapes received, when any was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shapes: Option<shapes::ShapeSummary>,
}

const REGIONS: [&str; 6] = [
    "eu-west-1",
    "us-east-1",
    "eu-central-1",
    "us-west-2",
    "ap-southeast-2",
    "eu-north-1",
];
pub const CE_ROLES: [&str; 6] = [
    "CE-ReadOnly",
    "CE-Security",
    "CE-SRE",
    "CE-DevOps",
    "CE-Data",
    "CE-Admin",
];
const ROLE_WEIGHTS: [u32; 6] = [30, 14, 22, 20, 12, 2];
const ENGINEERS: [&str; 8] = [
    "alice.martin",
    "bob.nguyen",
    "carla.rossi",
    "dmitri.ivanov",
    "emma.schulz",
    "farid.haddad",
    "grace.kim",
    "henrik.larsen",
];
const SENIORS: [&str; 2] = ["alice.martin", "henrik.larsen"];
const VENDOR_IPS: [&str; 4] = [
    "203.0.113.10",
    "203.0.113.11",
    "203.0.113.12",
    "198.51.100.20",
];
pub const NEW_ENGINEER: &str = "new.hire";
pub const NEW_IP: &str = "198.51.100.77";
const AGENTS: [&str; 3] = [
    "aws-cli/2.17.20 md/awscrt#0.20.11 ua/2.0 os/linux#6.5 md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe sid/ab12 md/prompt#off md/command#ec2.describe-instances",
    "Boto3/1.34.144 md/Botocore#1.34.144 ua/2.0 os/linux#5.15 md/arch#x86_64 lang/python#3.12.4 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.144",
    "console.amazonaws.com",
];
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// One action a role may call.
struct Action {
    source: &'static str,
    name: &'static str,
    read_only: bool,
}

const fn a(source: &'static str, name: &'static str, read_only: bool) -> Action {
    Action {
        source,
        name,
        read_only,
    }
}

fn role_actions(role: &str) -> &'static [Action] {
    const READONLY: &[Action] = &[
        a("ec2.amazonaws.com", "DescribeInstances", true),
        a("ec2.amazonaws.com", "DescribeSecurityGroups", true),
        a("s3.amazonaws.com", "ListBuckets", true),
        a("monitoring.amazonaws.com", "GetMetricData", true),
        a("logs.amazonaws.com", "DescribeLogGroups", true),
        a("iam.amazonaws.com", "ListRoles", true),
        a("lambda.amazonaws.com", "ListFunctions20150331", true),
        a("rds.amazonaws.com", "DescribeDBInstances", true),
    ];
    const SECURITY: &[Action] = &[
        a("guardduty.amazonaws.com", "ListFindings", true),
        a("guardduty.amazonaws.com", "GetFindings", true),
        a("securityhub.amazonaws.com", "GetFindings", true),
        a("iam.amazonaws.com", "GetAccountAuthorizationDetails", true),
        a("cloudtrail.amazonaws.com", "DescribeTrails", true),
        a("cloudtrail.amazonaws.com", "GetTrailStatus", true),
        a("config.amazonaws.com", "DescribeConfigRules", true),
        a("access-analyzer.amazonaws.com", "ListFindings", true),
    ];
    const SRE: &[Action] = &[
        a("ec2.amazonaws.com", "DescribeInstances", true),
        a("ssm.amazonaws.com", "DescribeInstanceInformation", true),
        a(
            "autoscaling.amazonaws.com",
            "DescribeAutoScalingGroups",
            true,
        ),
        a("monitoring.amazonaws.com", "DescribeAlarms", true),
        a("logs.amazonaws.com", "FilterLogEvents", true),
        a("ecs.amazonaws.com", "DescribeServices", true),
        a("ecs.amazonaws.com", "UpdateService", false),
        a("ec2.amazonaws.com", "RebootInstances", false),
    ];
    const DEVOPS: &[Action] = &[
        a(
            "lambda.amazonaws.com",
            "UpdateFunctionCode20150331v2",
            false,
        ),
        a("cloudformation.amazonaws.com", "DescribeStacks", true),
        a("cloudformation.amazonaws.com", "UpdateStack", false),
        a("ssm.amazonaws.com", "PutParameter", false),
        a("ssm.amazonaws.com", "GetParameter", true),
        a("ecr.amazonaws.com", "DescribeRepositories", true),
        a("codebuild.amazonaws.com", "StartBuild", false),
        a("lambda.amazonaws.com", "GetFunction20150331v2", true),
    ];
    const DATA: &[Action] = &[
        a("s3.amazonaws.com", "GetObject", true),
        a("s3.amazonaws.com", "PutObject", false),
        a("s3.amazonaws.com", "ListObjects", true),
        a("rds.amazonaws.com", "DescribeDBInstances", true),
        a("rdsdata.amazonaws.com", "ExecuteStatement", false),
        a("rds.amazonaws.com", "CreateDBSnapshot", false),
        a("ec2.amazonaws.com", "DescribeInstances", true),
    ];
    const ADMIN: &[Action] = &[
        a("iam.amazonaws.com", "ListRoles", true),
        a("iam.amazonaws.com", "CreatePolicyVersion", false),
        a("iam.amazonaws.com", "AttachRolePolicy", false),
        a("organizations.amazonaws.com", "DescribeOrganization", true),
        a("ec2.amazonaws.com", "ModifyInstanceAttribute", false),
        a("sts.amazonaws.com", "GetCallerIdentity", true),
    ];
    match role {
        "CE-ReadOnly" => READONLY,
        "CE-Security" => SECURITY,
        "CE-SRE" => SRE,
        "CE-DevOps" => DEVOPS,
        "CE-Data" => DATA,
        _ => ADMIN,
    }
}

/// One client account and what lives in it.
struct Account {
    id: String,
    org: Option<String>,
    regions: Vec<String>,
    role_path: String,
    instances: Vec<String>,
    buckets: Vec<String>,
    dbs: Vec<String>,
    compact_dates: bool,
}

struct World {
    seed: u64,
    vendor: String,
    accounts: Vec<Account>,
    start_ms: i64,
    days: u32,
    ce_share: f64,
    events_per_day: u32,
}

/// Account ids derived from the seed (12 digits, distinct).
fn account_id(seed: u64, i: u32) -> String {
    let mut r = Rng::derive(seed, &[0xACC0, u64::from(i)]);
    format!("{}{:011}", 1 + i % 9, r.below(100_000_000_000))
}

impl World {
    fn new(o: &GenerateOptions) -> Result<Self, GenerateError> {
        let param = |name, message: &str| GenerateError::Param {
            name,
            message: message.to_string(),
        };
        if o.days == 0 {
            return Err(param("--days", "must be at least 1"));
        }
        if o.accounts == 0 || o.accounts > 50 {
            return Err(param("--accounts", "must be between 1 and 50"));
        }
        if o.regions == 0 || o.regions as usize > REGIONS.len() {
            return Err(param("--regions", "must be between 1 and 6"));
        }
        if !(0.0..=1.0).contains(&o.ce_share) {
            return Err(param("--ce-share", "must be between 0 and 1"));
        }
        if o.events_per_day == 0 {
            return Err(param("--events-per-day", "must be at least 1"));
        }
        let org = format!(
            "o-{}",
            Rng::derive(o.seed, &[0x0E6]).string(b"abcdefghijklmnopqrstuvwxyz0123456789", 10)
        );
        let accounts = (0..o.accounts)
            .map(|i| {
                let mut r = Rng::derive(o.seed, &[0xAC, u64::from(i)]);
                let regions: Vec<String> = (0..o.regions)
                    .map(|k| REGIONS[((i + k) as usize) % REGIONS.len()].to_string())
                    .collect();
                Account {
                    id: account_id(o.seed, i),
                    org: (i > 0).then(|| org.clone()),
                    regions,
                    role_path: if i % 2 == 1 {
                        "/ce/".into()
                    } else {
                        "/".into()
                    },
                    instances: (0..6).map(|_| format!("i-0{}", r.hex(16))).collect(),
                    buckets: ["analytics-exports", "customer-uploads", "ml-training-data"]
                        .iter()
                        .map(|b| format!("{b}-{}", &account_id(o.seed, i)[8..]))
                        .collect(),
                    dbs: vec![
                        "orders-db".into(),
                        "analytics".into(),
                        "billing-replica".into(),
                    ],
                    compact_dates: i % 2 == 1,
                }
            })
            .collect();
        Ok(World {
            seed: o.seed,
            vendor: account_id(o.seed, 999),
            accounts,
            start_ms: o
                .start
                .and_hms_opt(0, 0, 0)
                .unwrap_or_default()
                .and_utc()
                .timestamp_millis(),
            days: o.days,
            ce_share: o.ce_share,
            events_per_day: o.events_per_day,
        })
    }
}

/// Day-specific generation state for one account.
struct DayGen<'w> {
    world: &'w World,
    acct: &'w Account,
    day: u32,
    rng: Rng,
    events: Vec<Ev>,
    ce_events: u64,
}

fn ms_of_day(day_start: i64, h: i64, m: i64) -> i64 {
    day_start + h * HOUR_MS + m * 60_000
}

impl<'w> DayGen<'w> {
    fn day_start(&self) -> i64 {
        self.world.start_ms + i64::from(self.day) * DAY_MS
    }

    fn weekday(&self) -> Weekday {
        DateTime::<Utc>::from_timestamp_millis(self.day_start())
            .map(|d| d.weekday())
            .unwrap_or(Weekday::Mon)
    }

    fn push(&mut self, ev: Ev, ce: bool) {
        if ce {
            self.ce_events += 1;
        }
        self.events.push(ev);
    }

    fn role_arn(&self, role: &str) -> String {
        format!(
            "arn:aws:iam::{}:role{}{role}",
            self.acct.id, self.acct.role_path
        )
    }

    fn role_id(&self, role: &str) -> String {
        let mut r = Rng::derive(
            self.world.seed,
            &[
                0x0401E,
                self.acct.id.len() as u64,
                role.len() as u64,
                role.as_bytes()[3] as u64,
            ],
        );
        format!("AROA{}", r.upper_alnum(17))
    }

    /// A whole CE session: AssumeRole, then `calls` calls spread over the session.
    #[allow(clippy::too_many_arguments)]
    fn ce_session(
        &mut self,
        role: &str,
        engineer: &str,
        ip: &str,
        start_ms: i64,
        calls: u32,
        spread_ms: i64,
        denied_share: f64,
    ) {
        let region = self.acct.regions[0].clone();
        let account = self.acct.id.clone();
        let duration = *self.rng.pick(&[7200i64, 10800, 14400]);
        let key = format!("ASIA{}", self.rng.upper_alnum(16));
        let role_id = self.role_id(role);
        let role_arn = self.role_arn(role);
        let vendor = Actor::Account {
            account: self.world.vendor.clone(),
            principal: format!("AROAVENDOR{}:{engineer}", self.rng.upper_alnum(7)),
            key: format!("ASIA{}", self.rng.upper_alnum(16)),
        };
        let agent = *self.rng.pick(&AGENTS[..2]);
        let assume = Assume {
            role_arn: &role_arn,
            session: engineer,
            duration,
            external_id: Some("continuous.engineer"),
            new_key: &key,
            role_id: &role_id,
            assumed_arn: format!("arn:aws:sts::{account}:assumed-role/{role}/{engineer}"),
        };
        let (params, response) = assume_params(&assume, start_ms, &mut self.rng);
        let mut call = Call::new(
            start_ms,
            &account,
            &region,
            "sts.amazonaws.com",
            "AssumeRole",
            &vendor,
            ip,
            agent,
        );
        call.params = params;
        call.response = response;
        call.resources =
            Some(json!([{"accountId": account, "type": "AWS::IAM::Role", "ARN": role_arn}]));
        call.shared_event_id = Some(self.rng.uuid());
        let ev = call.render(&mut self.rng);
        self.push(ev, true);

        let actor = Actor::Session {
            account: account.clone(),
            role: role.to_string(),
            role_path: self.acct.role_path.clone(),
            role_id,
            session: engineer.to_string(),
            key,
            created_ms: start_ms + 1000,
            compact_created: self.acct.compact_dates && self.rng.chance(0.3),
            mfa: false,
            invoked_by: None,
        };
        let mut open_shell: Option<(String, i64)> = None;
        for i in 0..calls {
            let t = start_ms
                + 2_000
                + (spread_ms * i64::from(i)) / i64::from(calls.max(1))
                + self.rng.range(0, 20_000);
            let region = if self.rng.chance(0.8) {
                self.acct.regions[0].clone()
            } else {
                self.rng.pick(&self.acct.regions).clone()
            };
            // SSM shell access for SRE/Admin/DevOps.
            if matches!(role, "CE-SRE" | "CE-Admin" | "CE-DevOps")
                && open_shell.is_none()
                && i == 1
                && self.rng.chance(0.45)
            {
                let target = self.rng.pick(&self.acct.instances).clone();
                let sid = format!("{engineer}-{}", self.rng.hex(17));
                let mut c = Call::new(
                    t,
                    &account,
                    &region,
                    "ssm.amazonaws.com",
                    "StartSession",
                    &actor,
                    ip,
                    agent,
                );
                c.read_only = false;
                c.params = json!({"target": target});
                c.response = json!({
                    "sessionId": sid,
                    "tokenValue": "Value hidden due to security reasons.",
                    "streamUrl": format!("wss://ssmmessages.{region}.amazonaws.com/v1/data-channel/{sid}?role=publish_subscribe&cell-number=AAEAA{}", self.rng.upper_alnum(20))
                });
                if self.rng.chance(0.1) {
                    c.error = Some(("TargetNotConnected", format!("{target} is not connected.")));
                } else {
                    open_shell = Some((sid, t + self.rng.range(5, 50) * 60_000));
                }
                let ev = c.render(&mut self.rng);
                self.push(ev, true);
                continue;
            }
            let action = self.rng.pick(role_actions(role));
            let mut c = Call::new(
                t,
                &account,
                &region,
                action.source,
                action.name,
                &actor,
                ip,
                agent,
            );
            c.read_only = action.read_only;
            self.fill_params(&mut c, role);
            if self.rng.chance(denied_share) {
                let (code, msg) = if action.source == "ec2.amazonaws.com" {
                    (
                        "Client.UnauthorizedOperation",
                        "You are not authorized to perform this operation.".to_string(),
                    )
                } else {
                    let svc = action.source.split('.').next().unwrap_or("");
                    let res = format!("arn:aws:{svc}:{region}:{account}:*");
                    (
                        "AccessDenied",
                        denied_message(&actor, &format!("{svc}:{}", action.name), &res),
                    )
                };
                c.error = Some((code, msg));
            } else if self.rng.chance(0.02) {
                c.error = Some(("ThrottlingException", "Rate exceeded".into()));
            }
            let ev = c.render(&mut self.rng);
            self.push(ev, true);
        }
        if let Some((sid, t)) = open_shell {
            let mut c = Call::new(
                t,
                &account,
                &region,
                "ssm.amazonaws.com",
                "TerminateSession",
                &actor,
                ip,
                agent,
            );
            c.read_only = false;
            c.params = json!({"sessionId": sid});
            c.response = json!({"sessionId": sid});
            let ev = c.render(&mut self.rng);
            self.push(ev, true);
        }
    }

    fn fill_params(&mut self, c: &mut Call<'_>, role: &str) {
        let acct = self.acct;
        match (c.source, c.name) {
            ("s3.amazonaws.com", "GetObject" | "PutObject") => {
                let bucket = self.rng.pick(&acct.buckets).clone();
                let key = format!("exports/{}/part-{:05}.parquet", 2026, self.rng.below(400));
                c.params = json!({"bucketName": bucket, "Host": format!("{bucket}.s3.{}.amazonaws.com", c.region), "key": key});
                c.data_event = true;
                c.resources = Some(json!([
                    {"type": "AWS::S3::Object", "ARN": format!("arn:aws:s3:::{bucket}/{key}")},
                    {"accountId": acct.id, "type": "AWS::S3::Bucket", "ARN": format!("arn:aws:s3:::{bucket}")}
                ]));
                c.additional = Some(
                    json!({"SignatureVersion": "SigV4", "bytesTransferredIn": 0, "bytesTransferredOut": self.rng.range(1000, 5_000_000), "AuthenticationMethod": "AuthHeader"}),
                );
                if c.name == "PutObject" {
                    c.response = json!({"x-amz-server-side-encryption": "aws:kms"});
                }
            }
            ("s3.amazonaws.com", "ListObjects") => {
                let bucket = self.rng.pick(&acct.buckets).clone();
                c.params = json!({"bucketName": bucket, "Host": format!("{bucket}.s3.{}.amazonaws.com", c.region), "prefix": "exports/"});
                c.data_event = true;
                c.resources = Some(
                    json!([{"accountId": acct.id, "type": "AWS::S3::Bucket", "ARN": format!("arn:aws:s3:::{bucket}")}]),
                );
            }
            ("rds.amazonaws.com", _) => {
                let db = self.rng.pick(&acct.dbs).clone();
                c.params = if role == "CE-Data" || self.rng.chance(0.5) {
                    json!({"dBInstanceIdentifier": db})
                } else {
                    json!({})
                };
            }
            ("rdsdata.amazonaws.com", _) => {
                let db = self.rng.pick(&acct.dbs).clone();
                c.params = json!({"resourceArn": format!("arn:aws:rds:{}:{}:cluster:{db}", c.region, acct.id), "database": db});
            }
            ("ec2.amazonaws.com", "RebootInstances" | "ModifyInstanceAttribute") => {
                let i = self.rng.pick(&acct.instances).clone();
                c.params = json!({"instancesSet": {"items": [{"instanceId": i}]}});
            }
            ("ec2.amazonaws.com", "DescribeInstances") => {
                c.params = if role == "CE-Data" {
                    json!({"filterSet": {"items": [{"name": "tag:database", "valueSet": {"items": [{"value": "true"}]}}]}})
                } else {
                    json!({"instancesSet": {}, "filterSet": {}})
                };
            }
            ("iam.amazonaws.com", "AttachRolePolicy") => {
                c.params = json!({"roleName": "app-orders-task", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"});
            }
            ("ssm.amazonaws.com", "PutParameter" | "GetParameter") => {
                c.params = json!({"name": "/app/orders/feature-flags", "withDecryption": false});
            }
            ("cloudformation.amazonaws.com", "UpdateStack") => {
                c.params = json!({"stackName": "app-orders", "usePreviousTemplate": true});
            }
            ("lambda.amazonaws.com", "UpdateFunctionCode20150331v2" | "GetFunction20150331v2") => {
                c.params = json!({"functionName": "orders-api"});
            }
            _ => {}
        }
    }

    /// Regular CE work for the day.
    fn ce_day(&mut self) {
        let weekday = self.weekday();
        let weekend = matches!(weekday, Weekday::Sat | Weekday::Sun);
        let regions = self.acct.regions.len() as f64;
        let target = f64::from(self.world.events_per_day) * regions * self.world.ce_share;
        let mut sessions = (target / 24.0).round() as u32;
        if weekend {
            sessions = sessions.div_ceil(5);
        }
        let sessions = if target > 0.0 { sessions.max(1) } else { 0 };
        let newcomer_from = self.world.days.saturating_sub(6);
        for _ in 0..sessions {
            let mut role = CE_ROLES[self.rng.weighted(&ROLE_WEIGHTS)];
            let mut engineer = *self.rng.pick(&ENGINEERS);
            if role == "CE-Admin" {
                engineer = *self.rng.pick(&SENIORS);
            }
            let mut ip = VENDOR_IPS[ENGINEERS.iter().position(|e| *e == engineer).unwrap_or(0) % 3]
                .to_string();
            if self.day >= newcomer_from && self.rng.chance(0.15) {
                engineer = NEW_ENGINEER;
                ip = NEW_IP.to_string();
                if role == "CE-Admin" {
                    role = "CE-ReadOnly";
                }
            } else if self.rng.chance(0.05) {
                ip = VENDOR_IPS[3].to_string();
            }
            let after_hours = weekend || self.rng.chance(0.12);
            let hour = if after_hours {
                *self.rng.pick(&[0i64, 5, 6, 19, 20, 21, 22, 23])
            } else {
                self.rng.range(8, 16)
            };
            let start = ms_of_day(self.day_start(), hour, self.rng.range(0, 59))
                + self.rng.range(0, 59_000);
            let calls = self.rng.range(8, 40) as u32;
            let spread = self.rng.range(30, 110) * 60_000;
            self.ce_session(role, engineer, &ip, start, calls, spread, 0.05);
        }
    }

    /// The planted facts of this day (see the module docs).
    fn planted(&mut self) {
        let days = self.world.days;
        let d0 = self.day_start();
        let first_account = self.acct.id == self.world.accounts[0].id;
        if self.day % 7 == 2 {
            // A CE-Admin session every week (admin alarm episodes).
            let eng = SENIORS[(self.day / 7 % 2) as usize];
            self.ce_session(
                "CE-Admin",
                eng,
                VENDOR_IPS[0],
                ms_of_day(d0, 14, 5),
                6,
                20 * 60_000,
                0.0,
            );
        }
        if first_account && self.day == days * 2 / 5 {
            // A burst of denied calls: the access-denied alarm.
            self.ce_session(
                "CE-DevOps",
                "farid.haddad",
                VENDOR_IPS[2],
                ms_of_day(d0, 10, 0),
                3,
                60_000,
                0.0,
            );
            let actor = self.session_actor("CE-DevOps", "farid.haddad", d0 + 10 * HOUR_MS);
            let account = self.acct.id.clone();
            let region = self.acct.regions[0].clone();
            for i in 0..14 {
                let t = ms_of_day(d0, 10, 31) + i * 9_000;
                let mut c = Call::new(
                    t,
                    &account,
                    &region,
                    "iam.amazonaws.com",
                    "PassRole",
                    &actor,
                    VENDOR_IPS[2],
                    AGENTS[0],
                );
                c.read_only = false;
                let res = format!("arn:aws:iam::{account}:role/app-orders-task");
                c.error = Some(("AccessDenied", denied_message(&actor, "iam:PassRole", &res)));
                c.params = json!({"roleName": "app-orders-task"});
                let ev = c.render(&mut self.rng);
                self.push(ev, true);
            }
        }
        if first_account && days >= 10 && self.day == days - 4 {
            // An hour of unusual SRE volume: the volume anomaly.
            self.ce_session(
                "CE-SRE",
                "dmitri.ivanov",
                VENDOR_IPS[1],
                ms_of_day(d0, 13, 2),
                70,
                50 * 60_000,
                0.0,
            );
        }
        if first_account && days >= 8 && self.day == days - 3 {
            // A new action: the newcomer reads secrets (first seen in the last week).
            self.ce_session(
                "CE-ReadOnly",
                NEW_ENGINEER,
                NEW_IP,
                ms_of_day(d0, 9, 40),
                4,
                20 * 60_000,
                0.0,
            );
            let actor = self.session_actor("CE-ReadOnly", NEW_ENGINEER, d0 + 9 * HOUR_MS);
            let account = self.acct.id.clone();
            let region = self.acct.regions[0].clone();
            let mut c = Call::new(
                ms_of_day(d0, 9, 55),
                &account,
                &region,
                "secretsmanager.amazonaws.com",
                "ListSecrets",
                &actor,
                NEW_IP,
                AGENTS[1],
            );
            c.params = json!({});
            let ev = c.render(&mut self.rng);
            self.push(ev, true);
        }
        if self.day == 5 || self.day == days / 2 {
            // A client user tries to assume CE-Admin in its own account: denied, logged
            // with null requestParameters; the role is only in the error message.
            let user = self.client_user("ops-intern");
            let account = self.acct.id.clone();
            let region = self.acct.regions[0].clone();
            let arn = self.role_arn("CE-Admin");
            let mut c = Call::new(
                ms_of_day(d0, 11, 12),
                &account,
                &region,
                "sts.amazonaws.com",
                "AssumeRole",
                &user,
                "192.0.2.44",
                AGENTS[0],
            );
            c.error = Some((
                "AccessDenied",
                format!(
                    "User: {} is not authorized to perform: sts:AssumeRole on resource: {arn}",
                    user.arn()
                ),
            ));
            c.params = serde_json::Value::Null;
            let ev = c.render(&mut self.rng);
            self.push(ev, true);
        }
        if first_account && self.day == 12 {
            // A CE-SRE session assumes CE-ReadOnly (role chaining) without external id.
            let actor = self.session_actor("CE-SRE", "grace.kim", d0 + 15 * HOUR_MS);
            let account = self.acct.id.clone();
            let region = self.acct.regions[0].clone();
            let role_arn = self.role_arn("CE-ReadOnly");
            let role_id = self.role_id("CE-ReadOnly");
            let key = format!("ASIA{}", self.rng.upper_alnum(16));
            let assume = Assume {
                role_arn: &role_arn,
                session: "grace.kim",
                duration: 3600,
                external_id: None,
                new_key: &key,
                role_id: &role_id,
                assumed_arn: format!("arn:aws:sts::{account}:assumed-role/CE-ReadOnly/grace.kim"),
            };
            let t = ms_of_day(d0, 15, 20);
            let (p, r) = assume_params(&assume, t, &mut self.rng);
            let mut c = Call::new(
                t,
                &account,
                &region,
                "sts.amazonaws.com",
                "AssumeRole",
                &actor,
                VENDOR_IPS[2],
                AGENTS[1],
            );
            c.params = p;
            c.response = r;
            let ev = c.render(&mut self.rng);
            self.push(ev, true);
        }
        if self.day == 9 || self.day == days.saturating_sub(9) {
            self.client_changes_ce_setup();
        }
    }

    fn session_actor(&mut self, role: &str, engineer: &str, created_ms: i64) -> Actor {
        Actor::Session {
            account: self.acct.id.clone(),
            role: role.to_string(),
            role_path: self.acct.role_path.clone(),
            role_id: self.role_id(role),
            session: engineer.to_string(),
            key: format!("ASIA{}", self.rng.upper_alnum(16)),
            created_ms,
            compact_created: false,
            mfa: false,
            invoked_by: None,
        }
    }

    fn client_user(&mut self, name: &str) -> Actor {
        let mut r = Rng::derive(
            self.world.seed,
            &[0x05E2, name.len() as u64, self.acct.id.len() as u64],
        );
        Actor::User {
            account: self.acct.id.clone(),
            name: name.to_string(),
            id: format!("AIDA{}", r.upper_alnum(17)),
            key: format!("AKIA{}", r.upper_alnum(16)),
        }
    }

    /// The client's admin touches the CE setup: `infra` events.
    fn client_changes_ce_setup(&mut self) {
        let d0 = self.day_start();
        let admin = self.client_user("client-admin");
        let account = self.acct.id.clone();
        let region = self.acct.regions[0].clone();
        let ip = "192.0.2.10";
        let mut c = Call::new(
            ms_of_day(d0, 16, 2),
            &account,
            &region,
            "iam.amazonaws.com",
            "GetRole",
            &admin,
            ip,
            AGENTS[2],
        );
        c.params = json!({"roleName": "CE-SRE"});
        let ev = c.render(&mut self.rng);
        self.push(ev, true);
        let mut c = Call::new(
            ms_of_day(d0, 16, 4),
            &account,
            &region,
            "iam.amazonaws.com",
            "AttachRolePolicy",
            &admin,
            ip,
            AGENTS[2],
        );
        c.read_only = false;
        c.params = json!({"roleName": "CE-DevOps", "policyArn": format!("arn:aws:iam::{account}:policy/CE-DenyProd")});
        let ev = c.render(&mut self.rng);
        self.push(ev, true);
        let mut c = Call::new(
            ms_of_day(d0, 16, 9),
            &account,
            &region,
            "cloudformation.amazonaws.com",
            "UpdateStack",
            &admin,
            ip,
            AGENTS[2],
        );
        c.read_only = false;
        c.params = json!({"stackName": format!("arn:aws:cloudformation:{region}:{account}:stack/continuous-engineering/{}", self.rng.uuid()), "usePreviousTemplate": true});
        let ev = c.render(&mut self.rng);
        self.push(ev, true);
    }

    /// Background noise: everything that is not CE.
    fn background(&mut self) {
        let regions = self.acct.regions.clone();
        let account = self.acct.id.clone();
        let per_region =
            (f64::from(self.world.events_per_day) * (1.0 - self.world.ce_share)).round() as u32;
        let d0 = self.day_start();
        let deploy = self.client_user("deploy-bot");
        let dev = self.client_user("jenkins");
        let lookalike = |rng: &mut Rng, role: &str| Actor::Session {
            account: account.clone(),
            role: role.to_string(),
            role_path: "/legacy/".into(),
            role_id: format!(
                "AROA{}",
                Rng::derive(7, &[role.len() as u64]).upper_alnum(17)
            ),
            session: format!("legacy-{}", rng.below(4)),
            key: format!("ASIA{}", rng.upper_alnum(16)),
            created_ms: d0,
            compact_created: false,
            mfa: true,
            invoked_by: None,
        };
        let legacy = lookalike(&mut self.rng, "CE-Admins-Legacy");
        let lower = lookalike(&mut self.rng, "ce-admin");
        let lambda = Actor::Session {
            account: account.clone(),
            role: "lambda-orders-exec".into(),
            role_path: "/service-role/".into(),
            role_id: "AROALAMBDAORDERS00001".into(),
            session: "orders-api".into(),
            key: format!("ASIA{}", self.rng.upper_alnum(16)),
            created_ms: d0,
            compact_created: false,
            mfa: false,
            invoked_by: None,
        };
        let autoscaling = Actor::Session {
            account: account.clone(),
            role: "AWSServiceRoleForAutoScaling".into(),
            role_path: "/aws-service-role/autoscaling.amazonaws.com/".into(),
            role_id: "AROAAUTOSCALING000001".into(),
            session: "AutoScaling".into(),
            key: format!("ASIA{}", self.rng.upper_alnum(16)),
            created_ms: d0,
            compact_created: false,
            mfa: false,
            invoked_by: Some("autoscaling.amazonaws.com".into()),
        };
        let service = Actor::Service {
            service: "lambda.amazonaws.com".into(),
        };
        for region in &regions {
            for _ in 0..per_region {
                // Busier in the day than at night. Shares (per mille): service role 30 %,
                // deploy user 20 %, CI user 15 %, auto scaling 10 %, look-alike roles
                // 0.6 % (rare, as in real accounts), AWS services 24.4 %.
                let hour = if self.rng.chance(0.7) {
                    self.rng.range(7, 19)
                } else {
                    self.rng.range(0, 23)
                };
                let t = d0 + hour * HOUR_MS + self.rng.range(0, HOUR_MS - 1);
                let pick = self.rng.below(1000);
                let (actor, ip, agent) = match pick {
                    0..=299 => (&lambda, "lambda.amazonaws.com", "aws-sdk-nodejs/3.600.0"),
                    300..=499 => (&deploy, "192.0.2.50", AGENTS[0]),
                    500..=649 => (&dev, "192.0.2.51", AGENTS[1]),
                    650..=749 => (
                        &autoscaling,
                        "autoscaling.amazonaws.com",
                        "autoscaling.amazonaws.com",
                    ),
                    750..=753 => (&legacy, "192.0.2.60", AGENTS[0]),
                    754..=755 => (&lower, "192.0.2.61", AGENTS[1]),
                    _ => (&service, "lambda.amazonaws.com", "lambda.amazonaws.com"),
                };
                let mut c = match pick {
                    0..=299 => {
                        let name = if self.rng.chance(0.6) {
                            "GetItem"
                        } else {
                            "PutItem"
                        };
                        let mut c = Call::new(
                            t,
                            &account,
                            region,
                            "dynamodb.amazonaws.com",
                            name,
                            actor,
                            ip,
                            agent,
                        );
                        c.read_only = name == "GetItem";
                        c.params =
                            json!({"tableName": "orders", "key": {"id": {"S": self.rng.hex(12)}}});
                        c.data_event = true;
                        c
                    }
                    300..=649 => {
                        let (src, name, ro) = *self.rng.pick(&[
                            ("ec2.amazonaws.com", "DescribeInstances", true),
                            ("s3.amazonaws.com", "ListBuckets", true),
                            (
                                "lambda.amazonaws.com",
                                "UpdateFunctionCode20150331v2",
                                false,
                            ),
                            ("ecs.amazonaws.com", "RegisterTaskDefinition", false),
                            ("cloudformation.amazonaws.com", "DescribeStacks", true),
                            ("ecr.amazonaws.com", "GetAuthorizationToken", true),
                        ]);
                        let mut c = Call::new(t, &account, region, src, name, actor, ip, agent);
                        c.read_only = ro;
                        c
                    }
                    650..=749 => {
                        let mut c = Call::new(
                            t,
                            &account,
                            region,
                            "ec2.amazonaws.com",
                            "DescribeInstanceStatus",
                            actor,
                            ip,
                            agent,
                        );
                        c.params = json!({"includeAllInstances": true});
                        c
                    }
                    750..=755 => {
                        let (src, name) = *self.rng.pick(&[
                            ("iam.amazonaws.com", "ListRoles"),
                            ("ec2.amazonaws.com", "DescribeInstances"),
                            ("s3.amazonaws.com", "GetBucketPolicy"),
                        ]);
                        Call::new(t, &account, region, src, name, actor, ip, agent)
                    }
                    _ => {
                        // A service assumes a (non-CE) role.
                        let role_arn =
                            format!("arn:aws:iam::{account}:role/service-role/lambda-orders-exec");
                        let mut c = Call::new(
                            t,
                            &account,
                            region,
                            "sts.amazonaws.com",
                            "AssumeRole",
                            actor,
                            ip,
                            agent,
                        );
                        c.params = json!({"roleArn": role_arn, "roleSessionName": "orders-api"});
                        c.response = json!({"credentials": {"accessKeyId": format!("ASIA{}", self.rng.upper_alnum(16))}});
                        c.event_type = "AwsApiCall";
                        c
                    }
                };
                if self.rng.chance(0.03) {
                    c.error = Some((
                        "AccessDenied",
                        denied_message(actor, "s3:GetObject", "arn:aws:s3:::x"),
                    ));
                }
                let ev = c.render(&mut self.rng);
                self.push(ev, false);
            }
        }
        // A client admin assumes the look-alike role: not a CE event.
        let admin = self.client_user("client-admin");
        let arn = format!("arn:aws:iam::{account}:role/legacy/CE-Admins-Legacy");
        let mut c = Call::new(
            d0 + 9 * HOUR_MS,
            &account,
            &regions[0],
            "sts.amazonaws.com",
            "AssumeRole",
            &admin,
            "192.0.2.10",
            AGENTS[0],
        );
        c.params = json!({"roleArn": arn, "roleSessionName": "legacy-0", "durationSeconds": 3600});
        c.response =
            json!({"credentials": {"accessKeyId": format!("ASIA{}", self.rng.upper_alnum(16))}});
        let ev = c.render(&mut self.rng);
        self.push(ev, false);
    }
}

/// A log file ready to write.
struct LogFile {
    key: String,
    delivered_ms: i64,
    bytes: Vec<u8>,
    uncompressed: Vec<u8>,
}

/// A delivered log file as a digest lists it: delivery time, key, SHA-256 (hex).
type Delivered = (i64, String, String);

/// Per account × region, the files delivered, for the digests.
#[derive(Default)]
struct DigestLog {
    files: BTreeMap<(String, String), Vec<Delivered>>,
}

fn prefix_of(acct: &Account) -> String {
    match &acct.org {
        Some(o) => format!("AWSLogs/{o}/{}", acct.id),
        None => format!("AWSLogs/{}", acct.id),
    }
}

fn date_path(t_ms: i64) -> (String, String) {
    let d = DateTime::<Utc>::from_timestamp_millis(t_ms).unwrap_or_default();
    (
        format!("{:04}/{:02}/{:02}", d.year(), d.month(), d.day()),
        format!(
            "{:04}{:02}{:02}T{:02}{:02}Z",
            d.year(),
            d.month(),
            d.day(),
            d.hour(),
            d.minute()
        ),
    )
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), GenerateError> {
    let io = |source| GenerateError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut f = std::fs::File::create(path).map_err(io)?;
    f.write_all(bytes).map_err(io)
}

/// Groups one account-day of events into delivery files.
fn package(acct: &Account, events: Vec<Ev>, window_ms: i64, rng: &mut Rng) -> (Vec<LogFile>, u64) {
    let mut windows: BTreeMap<(String, i64), Vec<String>> = BTreeMap::new();
    let mut dups = 0u64;
    // The day's latest event is always delivered late, in the next day's folder, so that
    // every archive exercises late delivery whatever its volume.
    let first = events.iter().map(|e| e.t_ms).min().unwrap_or(0);
    let day_end = (first.div_euclid(DAY_MS) + 1) * DAY_MS;
    let latest = events
        .iter()
        .map(|e| e.t_ms)
        .filter(|t| *t < day_end)
        .max()
        .unwrap_or(0);
    let next_day_window = day_end / window_ms;
    for ev in events {
        let mut window = ev.t_ms.div_euclid(window_ms);
        if ev.t_ms == latest {
            window = window.max(next_day_window);
        } else if rng.chance(0.02) {
            window += rng.range(1, (HOUR_MS / window_ms).max(1)); // late: up to an hour
        }
        if rng.chance(0.001) {
            dups += 1;
            let again = window + rng.range(0, 2);
            windows
                .entry((ev.region.clone(), again))
                .or_default()
                .push(ev.json.clone());
        }
        windows
            .entry((ev.region, window))
            .or_default()
            .push(ev.json);
    }
    let mut files = Vec::with_capacity(windows.len());
    for ((region, window), mut records) in windows {
        rng.shuffle(&mut records);
        let delivered = (window + 1) * window_ms + rng.range(30_000, 240_000);
        let (folder, stamp) = date_path(delivered);
        let name = format!(
            "{}_CloudTrail_{region}_{stamp}_{}.json.gz",
            acct.id,
            rng.string(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                16
            )
        );
        let key = format!("{}/CloudTrail/{region}/{folder}/{name}", prefix_of(acct));
        let mut body =
            String::with_capacity(records.iter().map(|r| r.len() + 1).sum::<usize>() + 16);
        body.push_str("{\"Records\":[");
        for (i, r) in records.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(r);
        }
        body.push_str("]}");
        let uncompressed = body.into_bytes();
        files.push(LogFile {
            key,
            delivered_ms: delivered,
            bytes: gzip(&uncompressed, 6),
            uncompressed,
        });
    }
    (files, dups)
}

/// Writes the archive.
pub fn generate(options: &GenerateOptions) -> Result<GenerateSummary, GenerateError> {
    let world = World::new(options)?;
    let mut summary = GenerateSummary {
        accounts: world.accounts.iter().map(|a| a.id.clone()).collect(),
        regions: world
            .accounts
            .iter()
            .flat_map(|a| a.regions.clone())
            .collect(),
        first_day: options.start.format("%Y-%m-%d").to_string(),
        last_day: (options.start + Duration::days(i64::from(options.days) - 1))
            .format("%Y-%m-%d")
            .to_string(),
        ..GenerateSummary::default()
    };
    summary.regions.sort();
    summary.regions.dedup();
    let mut digests = DigestLog::default();
    let mut shape_writer = if options.shapes.any() {
        Some(shapes::ShapeWriter::new(
            options.shapes.clone(),
            options.seed,
        )?)
    } else {
        None
    };
    for (ai, acct) in world.accounts.iter().enumerate() {
        for day in 0..world.days {
            let mut g = DayGen {
                world: &world,
                acct,
                day,
                rng: Rng::derive(world.seed, &[ai as u64, u64::from(day)]),
                events: Vec::new(),
                ce_events: 0,
            };
            g.background();
            g.ce_day();
            g.planted();
            summary.records += g.events.len() as u64;
            summary.ce_events += g.ce_events;
            if let Some(w) = &mut shape_writer {
                let date = options.start + Duration::days(i64::from(day));
                w.day(&acct.id, &date.format("%Y-%m-%d").to_string(), &g.events)?;
            }
            if !options.trail {
                continue;
            }
            let mut rng = Rng::derive(world.seed, &[ai as u64, u64::from(day), 0xF11E]);
            let window_ms = i64::from(options.file_minutes.max(1)) * 60_000;
            let (files, dups) = package(acct, g.events, window_ms, &mut rng);
            summary.duplicates += dups;
            summary.records += dups;
            for f in files {
                write_file(&options.out.join(&f.key), &f.bytes)?;
                summary.log_files += 1;
                summary.bytes_compressed += f.bytes.len() as u64;
                summary.bytes_uncompressed += f.uncompressed.len() as u64;
                let region = f.key.split('/').rev().nth(4).unwrap_or("").to_string();
                let hash = hex(&Sha256::digest(&f.uncompressed));
                digests
                    .files
                    .entry((acct.id.clone(), region))
                    .or_default()
                    .push((f.delivered_ms, f.key, hash));
            }
            if day % 20 == 7 {
                summary.insight_files += write_insight(&options.out, acct, &world, day)?;
            }
        }
    }
    if let Some(w) = shape_writer {
        summary.shapes = Some(w.finish()?);
    }
    if options.digests && options.trail {
        summary.digest_files = write_digests(
            &options.out,
            &world,
            digests,
            i64::from(options.digest_hours.max(1)) * HOUR_MS,
        )?;
    }
    Ok(summary)
}

use crate::verify::hex;

fn write_insight(
    out: &Path,
    acct: &Account,
    world: &World,
    day: u32,
) -> Result<u64, GenerateError> {
    let t = world.start_ms + i64::from(day) * DAY_MS + 11 * HOUR_MS;
    let region = &acct.regions[0];
    let (folder, stamp) = date_path(t);
    let key = format!(
        "{}/CloudTrail-Insight/{region}/{folder}/{}_CloudTrail-Insight_{region}_{stamp}_{}.json.gz",
        prefix_of(acct),
        acct.id,
        Rng::derive(world.seed, &[u64::from(day), 0x1151]).upper_alnum(16)
    );
    let body = json!({"Records": [{
        "eventVersion": "1.08",
        "eventTime": iso(t),
        "awsRegion": region,
        "eventID": Rng::derive(world.seed, &[u64::from(day), 0x1152]).uuid(),
        "eventType": "AwsCloudTrailInsight",
        "recipientAccountId": acct.id,
        "sharedEventID": Rng::derive(world.seed, &[u64::from(day), 0x1153]).uuid(),
        "insightDetails": {"state": "Start", "eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances", "insightType": "ApiCallRateInsight"},
        "eventCategory": "Insight"
    }]});
    write_file(&out.join(key), &gzip(body.to_string().as_bytes(), 6))?;
    Ok(1)
}

/// A deterministic byte stream for the signing key: SHA-256 in counter mode over the
/// seed. The key of a generated archive is reproducible from its seed, which is what
/// test archives need and why it must never sign anything real.
struct KeyRng {
    seed: u64,
    counter: u64,
    block: [u8; 32],
    used: usize,
}

impl KeyRng {
    fn new(seed: u64) -> Self {
        Self {
            seed,
            counter: 0,
            block: [0; 32],
            used: 32,
        }
    }

    fn byte(&mut self) -> u8 {
        if self.used == 32 {
            let mut h = Sha256::new();
            h.update(b"cetrail generate signing key");
            h.update(self.seed.to_le_bytes());
            h.update(self.counter.to_le_bytes());
            self.block.copy_from_slice(&h.finalize());
            self.counter += 1;
            self.used = 0;
        }
        self.used += 1;
        self.block[self.used - 1]
    }
}

impl rand_core::TryRng for KeyRng {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for d in dst {
            *d = self.byte();
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for KeyRng {}

/// The signing key of the archives generated with `seed` (RSA 2048; deterministic, so
/// tests can sign digests of their own; never for anything real).
pub fn signing_key(seed: u64) -> Result<DigestSigner, GenerateError> {
    let key = rsa::PrivateKey::new(&mut KeyRng::new(seed), 2048)
        .map_err(|e| GenerateError::Key(e.to_string()))?;
    DigestSigner::new(key).map_err(GenerateError::Key)
}

const BUCKET: &str = "client-cloudtrail-logs";

/// Digest files chaining the log files of each account × region, one per period
/// (CloudTrail: an hour), signed like CloudTrail signs them. A folder cannot hold the
/// S3 metadata that carries each digest's own signature, so the signatures are also
/// written to `digest-signatures.json`, and the public key to `public-keys.json` in the
/// form of `aws cloudtrail list-public-keys`.
fn write_digests(
    out: &Path,
    world: &World,
    log: DigestLog,
    period_ms: i64,
) -> Result<u64, GenerateError> {
    let signer = signing_key(world.seed)?;
    let fingerprint = signer.fingerprint();
    let mut signatures: BTreeMap<String, String> = BTreeMap::new();
    let mut written = 0u64;
    for ((account, region), mut files) in log.files {
        files.sort();
        let Some(acct) = world.accounts.iter().find(|a| a.id == account) else {
            continue;
        };
        let first = files.first().map_or(0, |f| f.0.div_euclid(period_ms));
        let last = files.last().map_or(0, |f| f.0.div_euclid(period_ms));
        // (key, SHA-256 of the uncompressed digest, signature) of the previous digest.
        let mut prev: Option<(String, String, String)> = None;
        let mut i = 0usize;
        for period in first..=last {
            let start = period * period_ms;
            let end = start + period_ms;
            let mut listed = Vec::new();
            let (mut oldest, mut newest) = (None, None);
            while i < files.len() && files[i].0 < end {
                let (t, key, hash) = &files[i];
                oldest = oldest.or(Some(*t));
                newest = Some(*t);
                listed.push(json!({
                    "s3Bucket": BUCKET,
                    "s3Object": key,
                    "hashValue": hash,
                    "hashAlgorithm": "SHA-256",
                    "oldestEventTime": iso(*t - 300_000),
                    "newestEventTime": iso(*t - 60_000)
                }));
                i += 1;
            }
            let (folder, _) = date_path(end);
            let stamp = DateTime::<Utc>::from_timestamp_millis(end)
                .map(|d| d.format("%Y%m%dT%H%M%SZ").to_string())
                .unwrap_or_default();
            let key = format!(
                "{}/CloudTrail-Digest/{region}/{folder}/{account}_CloudTrail-Digest_{region}_management-events_{}_{stamp}.json.gz",
                prefix_of(acct),
                acct.regions[0]
            );
            let body = json!({
                "awsAccountId": account,
                "digestStartTime": iso(start),
                "digestEndTime": iso(end),
                "digestS3Bucket": BUCKET,
                "digestS3Object": key,
                "digestPublicKeyFingerprint": fingerprint,
                "digestSignatureAlgorithm": "SHA256withRSA",
                "newestEventTime": newest.map(|t| iso(t - 60_000)),
                "oldestEventTime": oldest.map(|t| iso(t - 300_000)),
                "previousDigestS3Bucket": prev.as_ref().map(|_| BUCKET),
                "previousDigestS3Object": prev.as_ref().map(|p| p.0.clone()),
                "previousDigestHashValue": prev.as_ref().map(|p| p.1.clone()),
                "previousDigestHashAlgorithm": prev.as_ref().map(|_| "SHA-256"),
                "previousDigestSignature": prev.as_ref().map(|p| p.2.clone()),
                "logFiles": listed
            });
            let text = body.to_string();
            let sha = hex(&Sha256::digest(text.as_bytes()));
            let signature = signer.sign(
                signing_string(
                    &iso(end),
                    BUCKET,
                    &key,
                    &sha,
                    prev.as_ref().map(|p| p.2.as_str()),
                )
                .as_bytes(),
            );
            write_file(&out.join(&key), &gzip(text.as_bytes(), 6))?;
            signatures.insert(key.clone(), signature.clone());
            prev = Some((key, sha, signature));
            written += 1;
        }
    }
    let first = iso(world.start_ms - DAY_MS);
    let until = iso(world.start_ms + i64::from(world.days + 2) * DAY_MS);
    let keys = serde_json::to_vec_pretty(&signer.public_key_list(&first, &until))
        .map_err(|e| GenerateError::Key(e.to_string()))?;
    write_file(&out.join(PUBLIC_KEYS_FILE), &keys)?;
    let sigs =
        serde_json::to_vec_pretty(&signatures).map_err(|e| GenerateError::Key(e.to_string()))?;
    write_file(&out.join(SIGNATURES_FILE), &sigs)?;
    Ok(written)
}
