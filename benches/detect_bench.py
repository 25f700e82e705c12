"""Driver of benches/detect.sh: 100 Sigma rules over the dashboard benchmark's lake, in
cetrail (`cetrail detect`, the whole command) and in DuckDB running pySigma's SQL for the
same rules (pysigma-backend-duckdb) over a table of the same events with CloudTrail's field
names (read from the lake's Parquet, its time counted in DuckDB's total). Checks that both
select the same (rule, event) pairs.

The rules are written here, from the event names the lake holds and names it does not
(most rules of a SOC's collection look for rare calls): selections on eventSource and
eventName, with filters on userAgent and errorCode, wildcard names, requestParameters
paths, and rules with no eventName at all (every event is a candidate)."""
import argparse, json, os, statistics, subprocess, sys, tempfile, time

import duckdb
from sigma.collection import SigmaCollection
from sigma_backend_duckdb import DuckDBBackend

p = argparse.ArgumentParser()
p.add_argument("--bin", required=True)
p.add_argument("--runs", type=int, default=3)
p.add_argument("--rules", type=int, default=100)
p.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "cetrail-bench-dash"))
a = p.parse_args()
lake = os.path.join(a.work, "lake")
if not os.path.isdir(lake):
    sys.exit(f"no lake at {lake}: run `bash benches/dashboard.sh` first (it makes it)")
files = f"{lake}/events/*/*.parquet"
con = duckdb.connect()
pairs = con.execute(f"SELECT event_source, event_name, count(*) n FROM read_parquet('{files}') "
                    "GROUP BY ALL ORDER BY n DESC, event_name").fetchall()
absent = [("iam.amazonaws.com", n) for n in ["CreateAccessKey", "CreateLoginProfile", "UpdateLoginProfile",
          "CreateUser", "DeleteUser", "AddUserToGroup", "PutUserPolicy", "DeleteRolePolicy",
          "UpdateAssumeRolePolicy", "DeactivateMFADevice"]] + \
         [("cloudtrail.amazonaws.com", n) for n in ["StopLogging", "DeleteTrail", "UpdateTrail",
          "PutEventSelectors"]] + \
         [("ec2.amazonaws.com", n) for n in ["AuthorizeSecurityGroupIngress", "CreateKeyPair",
          "ImportKeyPair", "DisableEbsEncryptionByDefault", "ModifySnapshotAttribute",
          "CreateInstanceExportTask", "GetPasswordData"]] + \
         [("s3.amazonaws.com", n) for n in ["PutBucketPolicy", "PutBucketAcl", "DeleteBucketPolicy",
          "PutBucketPublicAccessBlock", "PutBucketReplication"]] + \
         [("guardduty.amazonaws.com", n) for n in ["DeleteDetector", "UpdateDetector"]] + \
         [("kms.amazonaws.com", n) for n in ["ScheduleKeyDeletion", "DisableKey"]] + \
         [("organizations.amazonaws.com", "LeaveOrganization"), ("sso.amazonaws.com", "CreatePermissionSet"),
          ("secretsmanager.amazonaws.com", "GetSecretValue"), ("lambda.amazonaws.com", "AddPermission20150331v2"),
          ("route53.amazonaws.com", "ChangeResourceRecordSets"), ("config.amazonaws.com", "StopConfigurationRecorder")]


def yaml_list(values):
    return "\n".join(f"      - '{v}'" for v in values)


def rule(i, title, detection, level="medium"):
    return (f"title: {title}\nid: 00000000-0000-4000-8000-{i:012d}\nstatus: test\nlevel: {level}\n"
            f"tags:\n  - attack.t{1000 + i}\nlogsource:\n  product: aws\n  service: cloudtrail\n"
            f"detection:\n{detection}")


texts = []
# Rules on calls the lake holds: one to three names of one source, some with a filter.
present = [(s, n) for s, n, _ in pairs]
for k in range(40):
    src, name = present[k % len(present)]
    names = [n for s, n in present if s == src][: 1 + k % 3]
    if name not in names:
        names.append(name)
    sel = f"  selection:\n    eventSource: {src}\n    eventName:\n{yaml_list(names)}\n"
    if k % 4 == 1:
        det = sel + "  filter:\n    - userAgent|contains: 'aws-cli/'\n    - userAgent|startswith: 'Boto3/'\n  condition: selection and not filter\n"
    elif k % 4 == 2:
        det = sel + "  denied:\n    errorCode|startswith: 'AccessDenied'\n  condition: selection and denied\n"
    elif k % 4 == 3:
        det = sel + "  cli:\n    userAgent|contains|all:\n      - 'aws-cli'\n      - 'md/command#iam'\n  condition: selection and cli\n"
    else:
        det = sel + "  odd_ip:\n    sourceIPAddress|cidr: '192.0.2.0/24'\n  condition: selection and odd_ip\n"
    texts.append(("present", det))
# Rules on calls the lake does not hold (what most of a SOC's rules look for).
for k, (src, name) in enumerate(absent):
    det = f"  selection:\n    eventSource: {src}\n    eventName: {name}\n"
    if k % 3 == 0:
        det += "  filter:\n    userIdentity.type: 'AWSService'\n  condition: selection and not filter\n"
    else:
        det += "  condition: selection\n"
    texts.append(("absent", det))
# Wildcard names.
for k, pat in enumerate(["Delete*", "*Policy*", "Put*", "*Snapshot", "Update*", "Start*", "Create*", "Modify*"]):
    who = "    userIdentity.type: IAMUser\n" if k % 2 else "    errorCode: AccessDenied\n"
    texts.append(("wildcard", f"  selection:\n    eventName: '{pat}'\n    readOnly: 'false'\n{who}  condition: selection\n"))
# requestParameters paths.
texts += [
    ("params", "  selection:\n    eventName: GetParameter\n    requestParameters.withDecryption: 'true'\n  condition: selection\n"),
    ("params", "  selection:\n    eventName: PutObject\n    requestParameters.bucketName|startswith: 'analytics-exports'\n  condition: selection\n"),
    ("params", "  selection:\n    eventName: StartSession\n    requestParameters.target|startswith: 'i-0'\n  condition: selection\n"),
    ("params", "  selection:\n    eventName: AssumeRole\n    requestParameters.roleArn|endswith: '/CE-Admin'\n  condition: selection\n"),
    ("params", "  selection:\n    eventName: GetObject\n    requestParameters.key|contains: 'secret'\n  condition: selection\n"),
    ("params", "  selection:\n    eventName: DescribeInstances\n    requestParameters.filterSet.items.name: 'tag:database'\n  condition: selection\n"),
]
# No eventName: every event is a candidate.
texts += [
    ("all", "  selection:\n    userIdentity.type: Root\n  condition: selection\n"),
    ("all", "  selection:\n    sourceIPAddress|cidr: '10.0.0.0/8'\n  condition: selection\n"),
    ("all", "  selection:\n    userAgent|contains: 'kali'\n  condition: selection\n"),
    ("all", "  selection:\n    awsRegion:\n      - ap-east-1\n      - me-south-1\n      - af-south-1\n  condition: selection\n"),
    ("all", "  selection:\n    eventSource: kms.amazonaws.com\n    errorCode: AccessDenied\n  condition: selection\n"),
    ("all", "  selection:\n    errorCode|endswith: 'UnauthorizedOperation'\n  condition: selection\n"),
]
rules_dir = os.path.join(a.work, f"rules-{a.rules}")
os.makedirs(rules_dir, exist_ok=True)
texts = (texts * (a.rules // len(texts) + 1))[: a.rules]
kinds = {}
for i, (kind, det) in enumerate(texts):
    kinds[kind] = kinds.get(kind, 0) + 1
    with open(os.path.join(rules_dir, f"r{i:03d}.yml"), "w") as f:
        f.write(rule(i, f"bench {kind} {i}", det))

# pySigma's SQL for each rule (conversion not timed).
backend = DuckDBBackend()
sql = {}
for i in range(a.rules):
    path = os.path.join(rules_dir, f"r{i:03d}.yml")
    sql[f"00000000-0000-4000-8000-{i:012d}"] = backend.convert(SigmaCollection.from_yaml(open(path).read()))

# DuckDB: the lake's events with CloudTrail's field names (the ones the rules use).
COLUMNS = {"eventID": "event_id", "eventName": "event_name", "eventSource": "event_source",
           "awsRegion": "aws_region", "sourceIPAddress": "source_ip", "userAgent": "user_agent",
           "errorCode": "error_code", "userIdentity.type": "identity_type",
           "readOnly": "CASE WHEN read_only THEN 'true' WHEN NOT read_only THEN 'false' END"}
JSON = {"requestParameters.withDecryption": "$.withDecryption", "requestParameters.bucketName": "$.bucketName",
        "requestParameters.target": "$.target", "requestParameters.roleArn": "$.roleArn",
        "requestParameters.key": "$.key", "requestParameters.filterSet.items.name": "$.filterSet.items[0].name"}
select = ", ".join([f'{e} AS "{c}"' for c, e in COLUMNS.items()] +
                   [f"json_extract_string(request_parameters, '{p}') AS \"{c}\"" for c, p in JSON.items()])


def duck_once():
    db = duckdb.connect()
    t0 = time.perf_counter()
    db.execute(f"CREATE TABLE logs AS SELECT {select} FROM read_parquet('{files}')")
    t1 = time.perf_counter()
    hits = set()
    for rid, queries in sql.items():
        for q in queries:
            hits.update((rid, r[0]) for r in db.execute(f'SELECT "eventID" FROM ({q})').fetchall())
    t2 = time.perf_counter()
    return (t2 - t0) * 1e3, (t2 - t1) * 1e3, hits


def ours_once():
    t0 = time.perf_counter()
    out = subprocess.run([a.bin, "detect", "--lake", lake, "--rules", rules_dir, "--no-builtin",
                          "--format", "jsonl", "--timings"], check=True, capture_output=True, text=True)
    wall = (time.perf_counter() - t0) * 1e3
    hits = {(r["rule_id"], r["event_id"]) for r in map(json.loads, out.stdout.splitlines()) if r}
    laps = {l.split(":")[0].strip(): float(l.split(":")[1].split()[0])
            for l in out.stderr.splitlines() if l.strip().endswith(" ms")}
    return wall, laps, hits


ours, duck = [], []
for _ in range(a.runs):
    ours.append(ours_once())
    duck.append(duck_once())
if ours[0][2] != duck[0][2]:
    only_ours = sorted(ours[0][2] - duck[0][2])[:5]
    only_duck = sorted(duck[0][2] - ours[0][2])[:5]
    sys.exit(f"the hits differ: cetrail only {only_ours}, DuckDB only {only_duck}")
med = statistics.median
n_events = con.execute(f"SELECT count(*) FROM read_parquet('{files}')").fetchone()[0]
o, d = med([x[0] for x in ours]), med([x[0] for x in duck])
print(f"Sigma detections: {a.rules} rules ({', '.join(f'{v} {k}' for k, v in kinds.items())}) "
      f"over {n_events:,} events, {len(ours[0][2]):,} hits (the same in both), median of {a.runs}")
print(f"{'':34}{'cetrail':>10}{'DuckDB':>10}{'ratio':>8}")
print(f"{'whole pass (ms)':34}{o:>10.0f}{d:>10.0f}{d / o:>7.1f}x")
print(f"{'  DuckDB: rules over its table':34}{'':>10}{med([x[1] for x in duck]):>10.0f}")
for name in ours[0][1]:
    print(f"{'  cetrail: ' + name:34}{med([x[1].get(name, 0) for x in ours]):>10.0f}")
