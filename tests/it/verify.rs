//! `cetrail verify`: the digest chain, log file hashes and RSA signatures of generated
//! archives, untouched and tampered with, over a folder and over S3; the signature
//! check against an independent implementation (Python `cryptography`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use cetrail::source::Prune;
use cetrail::source::s3::S3Source;
use cetrail::verify::digest::{DigestFile, parse_key, signing_string, string_to_sign};
use cetrail::verify::keys::{self, PublicKeys, fingerprint};
use cetrail::verify::{Problem, VerifyOptions, verify};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::util::*;

const SEED: &str = "5";

fn archive(dir: &Path) -> PathBuf {
    let a = dir.join("archive");
    generate(
        &a,
        &[
            "--days",
            "2",
            "--accounts",
            "2",
            "--regions",
            "1",
            "--events-per-day",
            "60",
            "--file-minutes",
            "30",
            "--seed",
            SEED,
        ],
    );
    a
}

/// `cetrail verify SRC --public-keys SRC/public-keys.json --format json [extra]`.
fn run_verify(src: &Path, extra: &[&str]) -> (i32, Value) {
    let keys = src.join("public-keys.json");
    let mut args = vec!["verify", src.to_str().expect("utf-8"), "--format", "json"];
    if !extra.contains(&"--public-keys") {
        args.extend(["--public-keys", keys.to_str().expect("utf-8")]);
    }
    args.extend_from_slice(extra);
    let o = cetrail(&args, Path::new("."));
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("verify JSON: {e}; stderr: {}", stderr(&o)));
    (o.status.code().unwrap_or(-1), v)
}

/// The objects named by findings of one problem.
fn named(v: &Value, problem: &str) -> Vec<String> {
    v["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|f| f["problem"] == problem)
                .filter_map(|f| f["object"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn files_under(root: &Path, service: &str) -> Vec<PathBuf> {
    walk(root)
        .into_iter()
        .filter(|p| {
            p.components()
                .any(|c| c.as_os_str().to_string_lossy() == service)
        })
        .collect()
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .expect("under root")
        .to_string_lossy()
        .replace('\\', "/")
}

fn gunzip(p: &Path) -> Vec<u8> {
    let mut g = cetrail::record::gunzip::Gunzip::new().expect("decompressor");
    let mut out = Vec::new();
    g.decompress(&std::fs::read(p).expect("read"), &mut out, 1 << 30)
        .expect("gunzip");
    out
}

/// The digests of the first chain (account × region), in chain order.
fn first_chain(root: &Path) -> Vec<PathBuf> {
    let mut by_chain: BTreeMap<(String, String), Vec<(String, PathBuf)>> = BTreeMap::new();
    for p in files_under(root, "CloudTrail-Digest") {
        let k = parse_key(&rel(root, &p)).expect("digest key");
        by_chain
            .entry((k.account, k.region))
            .or_default()
            .push((k.end.to_rfc3339(), p));
    }
    let mut chain = by_chain.into_values().next().expect("a chain");
    chain.sort();
    chain.into_iter().map(|c| c.1).collect()
}

#[test]
fn an_untouched_generated_archive_verifies_with_every_signature() {
    let dir = tempdir();
    let a = archive(dir.path());
    let (code, v) = run_verify(&a, &[]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["verdict"], "pass");
    assert_eq!(n(&v, "failures"), 0);
    assert_eq!(n(&v, "warnings"), 0, "{:#}", v["findings"]);
    let digests = files_under(&a, "CloudTrail-Digest").len() as u64;
    let logs = files_under(&a, "CloudTrail").len() as u64;
    assert!(digests > 90 && logs > 100, "{digests} digests, {logs} logs");
    assert_eq!(n(&v, "digests"), digests);
    // Every digest's signature checked: the newest of each chain from the sidecar.
    assert_eq!(n(&v, "signatures_verified"), digests);
    assert_eq!(n(&v, "log_files_listed"), logs);
    assert_eq!(n(&v, "log_files_ok"), logs);
    assert_eq!(v["chains"].as_array().map(Vec::len), Some(2));

    // Without keys: the chain and hashes still pass, signatures are not checked.
    let o = cetrail(
        &["verify", a.to_str().expect("p"), "--format", "json"],
        Path::new("."),
    );
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(v["signatures_checked"], false);
    assert_eq!(n(&v, "signatures_verified"), 0);

    // Without the sidecar the newest digests' signatures (S3 metadata only) are
    // unverifiable: a warning each, the verdict still passes.
    std::fs::remove_file(a.join("digest-signatures.json")).expect("rm");
    let (code, v) = run_verify(&a, &[]);
    assert_eq!(code, 0);
    assert_eq!(named(&v, "unsigned").len(), 2);
    assert_eq!(n(&v, "signatures_verified"), digests - 2);

    // Table output names the verdict.
    let o = cetrail(&["verify", a.to_str().expect("p")], Path::new("."));
    assert!(stdout(&o).contains("PASS"), "{}", stdout(&o));
}

#[test]
fn every_kind_of_tampering_is_detected_and_named() {
    let dir = tempdir();
    let clean = archive(dir.path());
    let fresh = |name: &str| {
        let p = dir.path().join(name);
        copy_tree(&clean, &p);
        p
    };
    let logs = files_under(&clean, "CloudTrail");
    let victim = rel(&clean, &logs[logs.len() / 2]);

    // A deleted log file.
    let a = fresh("deleted-log");
    std::fs::remove_file(a.join(&victim)).expect("rm");
    let (code, v) = run_verify(&a, &[]);
    assert_eq!(code, 1);
    assert_eq!(named(&v, "missing-log"), vec![victim.clone()]);
    assert_eq!(n(&v, "failures"), 1, "{:#}", v["findings"]);
    // The default table, piped, names the whole key (SPEC §11: nothing is cut).
    let o = cetrail(&["verify", a.to_str().expect("p")], Path::new("."));
    assert!(
        stdout(&o).contains(&victim),
        "the whole key {victim} in:\n{}",
        stdout(&o)
    );
    // On a narrow terminal (a pseudo-terminal of 100 columns, through `script`) the key
    // wraps inside its cell: its pieces, read down the `object` column, are the key.
    if let Some(shown) = on_a_terminal(&["verify", a.to_str().expect("p")], 100) {
        let findings = shown
            .split("╞")
            .last()
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split('┆').nth(4))
            .map(str::trim)
            .collect::<String>();
        assert_eq!(findings, victim, "in:\n{shown}");
        assert!(!shown.contains('…'), "nothing is cut:\n{shown}");
    }

    // One byte of one log file changed (re-compressed, so only the content differs).
    let a = fresh("changed-byte");
    let mut body = gunzip(&a.join(&victim));
    let at = body.len() / 2;
    body[at] = if body[at] == b'x' { b'y' } else { b'x' };
    write(&a.join(&victim), &gzip(&body));
    let (code, v) = run_verify(&a, &[]);
    assert_eq!(code, 1);
    assert_eq!(named(&v, "altered-log"), vec![victim.clone()]);
    assert_eq!(n(&v, "failures"), 1);

    // A log file moved to another day's folder.
    let a = fresh("moved-log");
    let moved = victim.clone();
    let mut parts: Vec<&str> = moved.split('/').collect();
    let len = parts.len();
    parts[len - 2] = "28"; // another day
    let moved = parts.join("/");
    std::fs::create_dir_all(a.join(&moved).parent().expect("parent")).expect("mkdir");
    std::fs::rename(a.join(&victim), a.join(&moved)).expect("mv");
    let (code, v) = run_verify(&a, &[]);
    assert_eq!(code, 1);
    assert_eq!(named(&v, "moved-log"), vec![victim.clone()]);
    let detail = v["findings"][0]["detail"].as_str().unwrap_or("");
    assert!(detail.contains(&moved), "{detail}");

    // A log file no digest lists (a forged or re-delivered copy).
    let a = fresh("unlisted-log");
    let forged = victim.replace(".json.gz", "X.json.gz");
    std::fs::copy(a.join(&victim), a.join(&forged)).expect("cp");
    let (code, v) = run_verify(&a, &[]);
    assert_eq!(code, 1);
    assert_eq!(named(&v, "unlisted-log"), vec![forged]);

    // A digest deleted in the middle of the chain (one that lists log files).
    let chain = first_chain(&clean);
    let listing = |p: &Path| {
        let d: Value = serde_json::from_slice(&gunzip(p)).expect("json");
        d["logFiles"].as_array().map_or(0, Vec::len)
    };
    let k = (chain.len() / 2..chain.len())
        .find(|&i| listing(&chain[i]) > 0)
        .expect("a digest with log files");
    let middle = rel(&clean, &chain[k]);
    let a = fresh("deleted-digest");
    std::fs::remove_file(a.join(&middle)).expect("rm");
    let (code, v) = run_verify(&a, &[]);
    assert_eq!(code, 1);
    assert_eq!(named(&v, "missing-digest"), vec![middle.clone()]);
    // Its log files are now listed by no digest: named too.
    assert!(!named(&v, "unlisted-log").is_empty());

    // A digest altered (a harmless-looking field): its successor's hash no longer
    // matches, and its own signature fails.
    let a = fresh("altered-digest");
    let text = String::from_utf8(gunzip(&a.join(&middle))).expect("utf-8");
    let altered = text.replacen("\"oldestEventTime\":\"2", "\"oldestEventTime\":\"1", 1);
    assert_ne!(altered, text);
    write(&a.join(&middle), &gzip(altered.as_bytes()));
    let (code, v) = run_verify(&a, &[]);
    assert_eq!(code, 1);
    assert_eq!(named(&v, "altered-digest"), vec![middle.clone()]);
    assert_eq!(named(&v, "bad-signature"), vec![middle.clone()]);

    // A swapped signature: the newest digest carries another digest's signature.
    let a = fresh("swapped-signature");
    let newest = rel(&clean, chain.last().expect("newest"));
    let sidecar = a.join("digest-signatures.json");
    let mut sigs: BTreeMap<String, String> =
        serde_json::from_slice(&std::fs::read(&sidecar).expect("read")).expect("json");
    let other = sigs[&middle].clone();
    sigs.insert(newest.clone(), other);
    write(&sidecar, &serde_json::to_vec(&sigs).expect("json"));
    let (code, v) = run_verify(&a, &[]);
    assert_eq!(code, 1);
    assert_eq!(named(&v, "bad-signature"), vec![newest]);
    assert_eq!(n(&v, "failures"), 1);

    // Keys that did not sign the trail: every digest names an unknown key.
    let a = fresh("wrong-keys");
    let other_keys = dir.path().join("other");
    generate(
        &other_keys,
        &["--days", "1", "--accounts", "1", "--seed", "6"],
    );
    let (code, v) = run_verify(
        &a,
        &[
            "--public-keys",
            other_keys.join("public-keys.json").to_str().expect("p"),
        ],
    );
    assert_eq!(code, 1);
    assert_eq!(
        named(&v, "unknown-key").len() as u64,
        files_under(&a, "CloudTrail-Digest").len() as u64
    );
}

/// Re-chains the digests of `chain` from index `from` on, as CloudTrail would have
/// written them: `from` becomes a starting digest when `restart`, every later one points
/// at its predecessor; each is re-signed with the archive's key and the sidecar updated.
fn rechain(root: &Path, chain: &[PathBuf], from: usize, restart: bool) {
    let signer = cetrail::generate::signing_key(SEED.parse().expect("seed")).expect("key");
    let sidecar = root.join("digest-signatures.json");
    let mut sigs: BTreeMap<String, String> =
        serde_json::from_slice(&std::fs::read(&sidecar).expect("read")).expect("json");
    let mut prev: Option<(String, String, String)> = None; // key, sha, signature
    if !restart && from > 0 {
        let p = &chain[from - 1];
        let k = rel(root, p);
        let sha = cetrail::verify::hex(&Sha256::digest(gunzip(p)));
        prev = Some((k.clone(), sha, sigs[&k].clone()));
    }
    for p in &chain[from..] {
        let mut d: Value = serde_json::from_slice(&gunzip(p)).expect("digest json");
        let set = |d: &mut Value, f: &str, x: Option<String>| {
            d[f] = x.map_or(Value::Null, Value::String);
        };
        set(
            &mut d,
            "previousDigestS3Object",
            prev.as_ref().map(|p| p.0.clone()),
        );
        set(
            &mut d,
            "previousDigestHashValue",
            prev.as_ref().map(|p| p.1.clone()),
        );
        set(
            &mut d,
            "previousDigestSignature",
            prev.as_ref().map(|p| p.2.clone()),
        );
        let b = prev.as_ref().map(|_| "client-cloudtrail-logs".to_string());
        set(&mut d, "previousDigestS3Bucket", b);
        let text = d.to_string();
        let sha = cetrail::verify::hex(&Sha256::digest(text.as_bytes()));
        let key = rel(root, p);
        let sig = signer.sign(
            signing_string(
                d["digestEndTime"].as_str().expect("end"),
                "client-cloudtrail-logs",
                &key,
                &sha,
                prev.as_ref().map(|p| p.2.as_str()),
            )
            .as_bytes(),
        );
        write(p, &gzip(text.as_bytes()));
        sigs.insert(key.clone(), sig.clone());
        prev = Some((key, sha, sig));
    }
    write(&sidecar, &serde_json::to_vec(&sigs).expect("json"));
}

#[test]
fn a_logging_stop_is_a_gap_and_a_backfill_digest_vouches_for_late_files() {
    let dir = tempdir();
    let a = archive(dir.path());
    let chain = first_chain(&a);
    // Logging stopped for one period: its digest and its log files never existed, and
    // the next digest starts a new chain.
    let k = chain.len() / 2;
    let d: Value = serde_json::from_slice(&gunzip(&chain[k])).expect("json");
    for l in d["logFiles"].as_array().expect("logFiles") {
        std::fs::remove_file(a.join(l["s3Object"].as_str().expect("key"))).expect("rm");
    }
    std::fs::remove_file(&chain[k]).expect("rm digest");
    let rest: Vec<PathBuf> = chain[k + 1..].to_vec();
    rechain(&a, &rest, 0, true);

    // A late log file, vouched for by a backfill digest.
    let logs = files_under(&a, "CloudTrail");
    let late = rel(&a, &logs[0]).replace(".json.gz", "LATE.json.gz");
    std::fs::copy(&logs[0], a.join(&late)).expect("cp");
    let sha = cetrail::verify::hex(&Sha256::digest(gunzip(&a.join(&late))));
    let last = rel(&a, chain.last().expect("last"));
    let backfill = last.replace(".json.gz", "_backfill.json.gz");
    let base: Value = serde_json::from_slice(&gunzip(chain.last().expect("last"))).expect("j");
    let body = serde_json::json!({
        "awsAccountId": base["awsAccountId"],
        "digestStartTime": base["digestStartTime"],
        "digestEndTime": base["digestEndTime"],
        "digestS3Bucket": "client-cloudtrail-logs",
        "digestS3Object": backfill,
        "digestPublicKeyFingerprint": base["digestPublicKeyFingerprint"],
        "digestSignatureAlgorithm": "SHA256withRSA",
        "previousDigestS3Bucket": null, "previousDigestS3Object": null,
        "previousDigestHashValue": null, "previousDigestHashAlgorithm": null,
        "previousDigestSignature": null,
        "logFiles": [{"s3Bucket": "client-cloudtrail-logs", "s3Object": late, "hashValue": sha, "hashAlgorithm": "SHA-256"}]
    })
    .to_string();
    write(&a.join(&backfill), &gzip(body.as_bytes()));
    let signer = cetrail::generate::signing_key(5).expect("key");
    let digest_sha = cetrail::verify::hex(&Sha256::digest(body.as_bytes()));
    let parsed = DigestFile::parse(body.as_bytes()).expect("parse");
    let sig = signer.sign(string_to_sign(&parsed, &digest_sha).as_bytes());
    let sidecar = a.join("digest-signatures.json");
    let mut sigs: BTreeMap<String, String> =
        serde_json::from_slice(&std::fs::read(&sidecar).expect("read")).expect("json");
    sigs.insert(backfill.clone(), sig);
    write(&sidecar, &serde_json::to_vec(&sigs).expect("json"));

    let (code, v) = run_verify(&a, &[]);
    assert_eq!(code, 0, "{:#}", v["findings"]);
    assert_eq!(named(&v, "gap"), vec![rel(&a, &chain[k + 1])]);
    assert_eq!(n(&v, "failures"), 0);
    let digests = files_under(&a, "CloudTrail-Digest").len() as u64;
    assert_eq!(n(&v, "signatures_verified"), digests);
    let backfills: u64 = v["chains"]
        .as_array()
        .expect("chains")
        .iter()
        .map(|c| n(c, "backfill_digests"))
        .sum();
    assert_eq!(backfills, 1);
    assert_eq!(
        n(&v, "log_files_ok"),
        files_under(&a, "CloudTrail").len() as u64
    );
}

#[test]
fn the_documented_digest_shape_parses_and_gives_the_string_to_sign() {
    // The fields of the example in AWS's "CloudTrail digest file structure" page.
    let doc = r#"{
      "awsAccountId": "111122223333",
      "digestStartTime": "2015-08-17T14:01:31Z",
      "digestEndTime": "2015-08-17T15:01:31Z",
      "digestS3Bucket": "amzn-s3-demo-bucket",
      "digestS3Object": "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_your-trail-name_us-east-2_20150817T150131Z.json.gz",
      "digestPublicKeyFingerprint": "31e8b5433410dfb61a9dc45cc65b22ff",
      "digestSignatureAlgorithm": "SHA256withRSA",
      "newestEventTime": "2015-08-17T14:52:27Z",
      "oldestEventTime": "2015-08-17T14:42:27Z",
      "previousDigestS3Bucket": "amzn-s3-demo-bucket",
      "previousDigestS3Object": "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_your-trail-name_us-east-2_20150817T140131Z.json.gz",
      "previousDigestHashValue": "97fb791cf91ffc440d274f8190dbdd9aa09c34432aba82739df18b6d3c13df2d",
      "previousDigestHashAlgorithm": "SHA-256",
      "previousDigestSignature": "50887ccffad4c002b97caa37cc9dc626e3c680207d41d27fa5835458e066e0d3",
      "logFiles": [{
        "s3Bucket": "amzn-s3-demo-bucket",
        "s3Object": "AWSLogs/111122223333/CloudTrail/us-east-2/2015/08/17/111122223333_CloudTrail_us-east-2_20150817T1445Z_9nYN7gp2eWAJHIfT.json.gz",
        "hashValue": "9bb6196fc6b84d6f075a56548feca262bd99ba3c2de41b618e5b6e22c1fc71f6",
        "oldestEventTime": "2015-08-17T14:42:27Z",
        "newestEventTime": "2015-08-17T14:52:27Z"
      }]
    }"#;
    let d = DigestFile::parse(doc.as_bytes()).expect("documented shape parses");
    assert_eq!(d.log_files.len(), 1);
    assert!(!d.is_start());
    let k = parse_key(&d.digest_s3_object).expect("documented key parses");
    assert_eq!(
        (k.trail.as_str(), k.home_region.as_str()),
        ("your-trail-name", "us-east-2")
    );
    assert_eq!(k.end.to_rfc3339(), "2015-08-17T15:01:31+00:00");
    assert_eq!(
        string_to_sign(&d, "abc"),
        format!(
            "2015-08-17T15:01:31Z\namzn-s3-demo-bucket/{}\nabc\n50887ccffad4c002b97caa37cc9dc626e3c680207d41d27fa5835458e066e0d3",
            d.digest_s3_object
        )
    );
    // An empty starting digest: null previous fields, no log files.
    let empty = doc
        .replace(
            r#""previousDigestS3Object": "AWSLogs"#,
            r#""previousDigestS3ObjectX": "AWSLogs"#,
        )
        .replace(r#""previousDigestSignature": "5088"#, r#""x": "5088"#);
    let e = DigestFile::parse(empty.as_bytes()).expect("parses");
    assert!(e.is_start());
    assert!(string_to_sign(&e, "h").ends_with("\nh\nnull"));
    // A digest with a wrong type names the field.
    let bad = doc.replace(r#""logFiles": ["#, r#""logFiles": 3, "x": ["#);
    let err = DigestFile::parse(bad.as_bytes()).err().unwrap_or_default();
    assert!(err.contains("logFiles"), "{err}");
}

#[test]
fn signatures_agree_with_an_independent_implementation() {
    let Some(py) = python_with("cryptography") else {
        eprintln!("skipped: no Python with `cryptography`");
        return;
    };
    let message = "2026-10-01T10:00:00Z\nbucket/AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2026/10/01/111122223333_CloudTrail-Digest_eu-west-1_t_eu-west-1_20261001T100000Z.json.gz\nabcdef\nnull";
    // Python signs; both DER forms of its public key are offered.
    let script = r#"
import base64, json, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
msg = sys.argv[1].encode()
sig = key.sign(msg, padding.PKCS1v15(), hashes.SHA256())
pub = key.public_key()
pkcs1 = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
spki = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
print(json.dumps({"pkcs1": base64.b64encode(pkcs1).decode(), "spki": base64.b64encode(spki).decode(), "sig": sig.hex()}))
"#;
    let o = Command::new(&py)
        .args(["-c", script, message])
        .output()
        .expect("python");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    let sig = v["sig"].as_str().expect("sig");
    for form in ["pkcs1", "spki"] {
        let b64 = v[form].as_str().expect("b64");
        let der = {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .expect("b64")
        };
        let list = serde_json::json!({"PublicKeyList": [{"Value": b64}]});
        let keys = PublicKeys::from_json(list.to_string().as_bytes()).expect("keys");
        let key = keys
            .get(&fingerprint(&der))
            .expect("found by MD5 fingerprint");
        assert!(keys::verify(key, message.as_bytes(), sig), "{form}");
        // One flipped bit of the signature, or of the message: rejected.
        let mut flipped = cetrail::verify::unhex(sig).expect("hex");
        flipped[100] ^= 0x01;
        assert!(!keys::verify(
            key,
            message.as_bytes(),
            &cetrail::verify::hex(&flipped)
        ));
        let mut other = message.as_bytes().to_vec();
        other[0] ^= 0x01;
        assert!(!keys::verify(key, &other, sig));
    }

    // cetrail signs (generate's key); Python verifies with the published public key.
    let signer = cetrail::generate::signing_key(7).expect("key");
    let sig = signer.sign(message.as_bytes());
    let list = serde_json::to_string(&signer.public_key_list("a", "b")).expect("json");
    let check = r#"
import base64, json, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
entry = json.loads(sys.argv[1])["PublicKeyList"][0]
der = base64.b64decode(entry["Value"])
# CloudTrail publishes PKCS#1 RSAPublicKey DER; read it through its PEM form.
pem = b"-----BEGIN RSA PUBLIC KEY-----\n" + base64.encodebytes(der) + b"-----END RSA PUBLIC KEY-----\n"
key = serialization.load_pem_public_key(pem)
key.verify(bytes.fromhex(sys.argv[3]), sys.argv[2].encode(), padding.PKCS1v15(), hashes.SHA256())
import hashlib
print(hashlib.md5(der).hexdigest() == entry["Fingerprint"])
"#;
    let o = Command::new(&py)
        .args(["-c", check, &list, message, &sig])
        .output()
        .expect("python");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "True");
}

#[test]
fn verify_over_s3_reads_the_newest_signature_from_object_metadata() {
    let dir = tempdir();
    let a = archive(dir.path());
    let root = crate::s3::bucket_with(&a, "trail");
    let faults: Arc<crate::s3::Faults> = Arc::default();
    let client = crate::s3::client(root.path(), faults.clone());
    let sigs: BTreeMap<String, String> =
        serde_json::from_slice(&std::fs::read(a.join("digest-signatures.json")).expect("read"))
            .expect("json");
    let put = |key: &str, sig: &str| {
        faults
            .metadata
            .lock()
            .expect("lock")
            .insert(key.to_string(), sig.to_string());
    };
    for (k, s) in &sigs {
        put(k, s);
    }
    // The sidecar is not in the bucket's AWSLogs/: metadata is the only source.
    let keys = PublicKeys::load(&a.join("public-keys.json")).expect("keys");
    let options = VerifyOptions {
        keys,
        threads: 2,
        ..VerifyOptions::default()
    };
    let open = || {
        S3Source::new(client.clone(), "trail-bucket", "trail", Prune::default())
            .expect("source")
            .with_digests()
    };
    let r = verify(&open(), &options).expect("verify");
    assert!(r.passed(), "{:#?}", r.findings);
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    let digests = files_under(&a, "CloudTrail-Digest").len() as u64;
    assert_eq!(r.digests, digests);
    assert_eq!(r.signatures_verified, digests);
    assert_eq!(r.log_files_ok, files_under(&a, "CloudTrail").len() as u64);

    // The newest digest of a chain re-uploaded with another digest's signature.
    let chain = first_chain(&a);
    let newest = rel(&a, chain.last().expect("newest"));
    let other = &sigs[&rel(&a, &chain[0])];
    put(&newest, other);
    // And a log file deleted from the bucket.
    let logs = files_under(&a, "CloudTrail");
    let victim = rel(&a, &logs[3]);
    std::fs::remove_file(root.path().join("trail-bucket/trail").join(&victim)).expect("rm");
    let r = verify(&open(), &options).expect("verify");
    assert!(!r.passed());
    let of = |p: Problem| -> Vec<String> {
        r.findings
            .iter()
            .filter(|f| f.problem == p)
            .map(|f| f.object.clone())
            .collect()
    };
    assert_eq!(of(Problem::BadSignature), vec![newest]);
    assert_eq!(of(Problem::MissingLog), vec![victim]);
    assert_eq!(r.failures, 2);
}

/// What `cetrail args` prints on a pseudo-terminal `cols` wide (util-linux `script`);
/// `None` where `script` is missing.
fn on_a_terminal(args: &[&str], cols: u32) -> Option<String> {
    let command = format!(
        "stty cols {cols} rows 50; {BIN} {}",
        args.iter()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("NO_COLOR", "1")
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).replace('\r', ""))
}
