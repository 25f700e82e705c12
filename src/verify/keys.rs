//! Public keys of CloudTrail digest signatures, and the signature check itself.
//!
//! Keys come as the JSON of `aws cloudtrail list-public-keys`:
//! `{"PublicKeyList": [{"Value": "<base64 DER>", "Fingerprint": "<hex>", …}]}`. The DER
//! is an RSA public key, either PKCS#1 `RSAPublicKey` (what CloudTrail returns) or
//! X.509 `SubjectPublicKeyInfo`; both are accepted. A digest names its key by
//! `digestPublicKeyFingerprint`, the hex MD5 of the DER; a key is found by the listed
//! `Fingerprint` and by the MD5 computed here, so either spelling works.
//!
//! The signature is SHA256withRSA (RSASSA-PKCS1-v1_5 over SHA-256) of the digest's
//! string to sign (see [`super::digest::string_to_sign`]), hex-encoded.

use std::collections::HashMap;
use std::path::Path;

use base64::Engine as _;
use md5::{Digest as _, Md5};
use rsa::PublicKey as RsaPublicKey;
use rsa::pkcs1::{DecodeRsaPublicKey, EncodeRsaPublicKey};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::VerifyError;

/// The public keys a verification may use, by fingerprint (lowercase hex).
#[derive(Debug, Clone, Default)]
pub struct PublicKeys {
    keys: HashMap<String, RsaPublicKey>,
}

/// One entry of `list-public-keys` as AWS prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublicKeyEntry {
    /// Base64 of the DER key.
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity_start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity_end_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

/// The whole `list-public-keys` document.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublicKeyList {
    pub public_key_list: Vec<PublicKeyEntry>,
}

/// Hex MD5 of a DER key: CloudTrail's key fingerprint.
pub fn fingerprint(der: &[u8]) -> String {
    super::hex(&Md5::digest(der))
}

/// Reads an RSA public key from PKCS#1 or SubjectPublicKeyInfo DER.
pub fn parse_der(der: &[u8]) -> Option<RsaPublicKey> {
    RsaPublicKey::from_pkcs1_der(der)
        .ok()
        .or_else(|| RsaPublicKey::from_public_key_der(der).ok())
}

impl PublicKeys {
    /// Reads the JSON of `aws cloudtrail list-public-keys` from a file.
    pub fn load(path: &Path) -> Result<Self, VerifyError> {
        let text = std::fs::read(path).map_err(|source| VerifyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&text).map_err(|message| VerifyError::Keys {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses the JSON of `list-public-keys`; the message names the entry at fault.
    pub fn from_json(json: &[u8]) -> Result<Self, String> {
        let list: PublicKeyList = serde_json::from_slice(json)
            .map_err(|e| format!("not the JSON of `list-public-keys`: {e}"))?;
        let mut keys = HashMap::new();
        for (i, entry) in list.public_key_list.iter().enumerate() {
            let der = base64::engine::general_purpose::STANDARD
                .decode(entry.value.trim())
                .map_err(|e| format!("PublicKeyList[{i}].Value is not base64: {e}"))?;
            let key = parse_der(&der).ok_or_else(|| {
                format!(
                    "PublicKeyList[{i}].Value is neither a PKCS#1 nor a SubjectPublicKeyInfo RSA key"
                )
            })?;
            if let Some(f) = &entry.fingerprint {
                keys.insert(f.trim().to_ascii_lowercase(), key.clone());
            }
            keys.insert(fingerprint(&der), key);
        }
        Ok(Self { keys })
    }

    /// Whether no key was supplied.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key with this fingerprint.
    pub fn get(&self, fingerprint: &str) -> Option<&RsaPublicKey> {
        self.keys.get(&fingerprint.trim().to_ascii_lowercase())
    }
}

/// Whether `signature_hex` is a valid SHA256withRSA signature of `message` by `key`.
pub fn verify(key: &RsaPublicKey, message: &[u8], signature_hex: &str) -> bool {
    let Some(bytes) = super::unhex(signature_hex.trim()) else {
        return false;
    };
    let Ok(signature) = Signature::try_from(bytes.as_slice()) else {
        return false;
    };
    VerifyingKey::<Sha256>::new(key.clone())
        .verify(message, &signature)
        .is_ok()
}

/// A signing key for `generate`: signs like CloudTrail does (hex SHA256withRSA).
pub struct DigestSigner {
    key: SigningKey<Sha256>,
    der: Vec<u8>,
}

impl DigestSigner {
    /// Wraps a private key.
    pub fn new(private: rsa::PrivateKey) -> Result<Self, String> {
        let der = private
            .to_public_key()
            .to_pkcs1_der()
            .map_err(|e| format!("encoding the public key: {e}"))?
            .as_bytes()
            .to_vec();
        Ok(Self {
            key: SigningKey::<Sha256>::new(private),
            der,
        })
    }

    /// The hex signature of `message`.
    pub fn sign(&self, message: &[u8]) -> String {
        super::hex(&self.key.sign(message).to_vec())
    }

    /// The public key as PKCS#1 DER.
    pub fn public_der(&self) -> &[u8] {
        &self.der
    }

    /// The key's fingerprint (hex MD5 of the PKCS#1 DER).
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.der)
    }

    /// The `list-public-keys` JSON of this key, valid over `[start, end)`.
    pub fn public_key_list(&self, start: &str, end: &str) -> PublicKeyList {
        PublicKeyList {
            public_key_list: vec![PublicKeyEntry {
                value: base64::engine::general_purpose::STANDARD.encode(&self.der),
                validity_start_time: Some(start.to_string()),
                validity_end_time: Some(end.to_string()),
                fingerprint: Some(self.fingerprint()),
            }],
        }
    }
}
