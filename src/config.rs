//! The configuration of SPEC §8: the access model's names and numbers.
//!
//! Every later stage reads its parameters from [`Config`]. The built-in defaults are
//! written twice on purpose: as Rust values (so no code path can fail to obtain them)
//! and as the commented TOML text printed by `cetrail config --print-default`
//! (`config/default.toml`); a test proves the two are equal.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// The default configuration as TOML text, with comments.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// One CE role and the maximum MFA age it accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    pub name: String,
    pub mfa_max_age_hours: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessConfig {
    pub external_id: String,
    pub max_session_seconds: i64,
    pub vendor_accounts: Vec<String>,
    pub onboarded_accounts: Vec<String>,
    pub data_role: String,
    pub admin_role: String,
}

impl Default for AccessConfig {
    fn default() -> Self {
        Self {
            external_id: "continuous.engineer".into(),
            max_session_seconds: 14_400,
            vendor_accounts: Vec::new(),
            onboarded_accounts: Vec::new(),
            data_role: "CE-Data".into(),
            admin_role: "CE-Admin".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SetupConfig {
    pub deny_prod_policy: String,
    pub stack_name: String,
    pub log_group: String,
    pub event_rule: String,
    pub dashboard: String,
}

impl Default for SetupConfig {
    fn default() -> Self {
        Self {
            deny_prod_policy: "CE-DenyProd".into(),
            stack_name: "continuous-engineering".into(),
            log_group: "continuous.engineering-access".into(),
            event_rule: "continuous-engineering-access".into(),
            dashboard: "continuous-engineering-access".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeConfig {
    pub zone: String,
    pub business_start: String,
    pub business_end: String,
    pub business_days: Vec<String>,
}

impl Default for TimeConfig {
    fn default() -> Self {
        Self {
            zone: "UTC".into(),
            business_start: "08:00".into(),
            business_end: "18:00".into(),
            business_days: ["Mon", "Tue", "Wed", "Thu", "Fri"]
                .iter()
                .map(|d| (*d).to_string())
                .collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlarmConfig {
    pub admin_threshold: u32,
    pub denied_threshold: u32,
}

impl Default for AlarmConfig {
    fn default() -> Self {
        Self {
            admin_threshold: 1,
            denied_threshold: 10,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnomalyConfig {
    pub volume_window_days: u32,
    pub volume_min_hours: u32,
    pub volume_score: f64,
    pub volume_min_excess: f64,
    pub first_seen_lookback_days: u32,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        Self {
            volume_window_days: 28,
            volume_min_hours: 5,
            volume_score: 3.5,
            volume_min_excess: 5.0,
            first_seen_lookback_days: 30,
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub roles: Vec<RoleConfig>,
    pub access: AccessConfig,
    pub setup: SetupConfig,
    pub time: TimeConfig,
    pub alarms: AlarmConfig,
    pub anomalies: AnomalyConfig,
}

impl Default for Config {
    fn default() -> Self {
        let role = |name: &str, hours| RoleConfig {
            name: name.into(),
            mfa_max_age_hours: hours,
        };
        Self {
            roles: vec![
                role("CE-ReadOnly", 8),
                role("CE-Security", 8),
                role("CE-SRE", 8),
                role("CE-DevOps", 8),
                role("CE-Data", 8),
                role("CE-Admin", 1),
            ],
            access: AccessConfig::default(),
            setup: SetupConfig::default(),
            time: TimeConfig::default(),
            alarms: AlarmConfig::default(),
            anomalies: AnomalyConfig::default(),
        }
    }
}

impl Config {
    /// Parses TOML text; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_path_buf(),
            message: e.to_string(),
        })?;
        config.validate(origin)?;
        Ok(config)
    }

    /// Loads `--config FILE`, else `./cetrail.toml` when present, else the defaults.
    pub fn load(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        let path: PathBuf = match explicit {
            Some(p) => p.to_path_buf(),
            None => {
                let local = PathBuf::from("cetrail.toml");
                if !local.is_file() {
                    return Ok(Self::default());
                }
                local
            }
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        Self::from_toml(&text, &path)
    }

    fn validate(&self, origin: &Path) -> Result<(), ConfigError> {
        let bad = |field: &str, message: String| ConfigError::Invalid {
            path: origin.to_path_buf(),
            field: field.to_string(),
            message,
        };
        if self.roles.is_empty() {
            return Err(bad("roles", "at least one CE role is required".into()));
        }
        if let Some(r) = self.roles.iter().find(|r| r.name.is_empty()) {
            return Err(bad("roles.name", format!("empty role name in {r:?}")));
        }
        if self.time.zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(bad(
                "time.zone",
                format!("`{}` is not an IANA time zone", self.time.zone),
            ));
        }
        for (field, value) in [
            ("time.business_start", &self.time.business_start),
            ("time.business_end", &self.time.business_end),
        ] {
            if chrono::NaiveTime::parse_from_str(value, "%H:%M").is_err() {
                return Err(bad(field, format!("`{value}` is not HH:MM")));
            }
        }
        Ok(())
    }

    /// The CE role names, in configuration order.
    pub fn role_names(&self) -> impl Iterator<Item = &str> {
        self.roles.iter().map(|r| r.name.as_str())
    }

    /// Whether `name` is a CE role (exact, case-sensitive match).
    pub fn is_ce_role(&self, name: &str) -> bool {
        self.roles.iter().any(|r| r.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_default_equals_builtin_default() {
        let parsed = Config::from_toml(DEFAULT_TOML, Path::new("config/default.toml"));
        assert_eq!(parsed.ok(), Some(Config::default()));
    }

    #[test]
    fn unknown_field_is_named() {
        let err = Config::from_toml("[access]\nexternal_idd = \"x\"\n", Path::new("c.toml"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("c.toml") && err.contains("external_idd"),
            "{err}"
        );
    }

    #[test]
    fn bad_zone_is_rejected() {
        let err = Config::from_toml("[time]\nzone = \"Mars/Base\"\n", Path::new("c.toml"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("time.zone") && err.contains("Mars/Base"),
            "{err}"
        );
    }

    #[test]
    fn partial_file_keeps_other_defaults() {
        let c = Config::from_toml("[alarms]\ndenied_threshold = 3\n", Path::new("c.toml"));
        let c = c.ok().unwrap_or_default();
        assert_eq!(c.alarms.denied_threshold, 3);
        assert_eq!(c.alarms.admin_threshold, 1);
        assert!(c.is_ce_role("CE-Admin"));
        assert!(!c.is_ce_role("CE-Admins-Legacy"));
        assert!(!c.is_ce_role("ce-admin"));
    }
}
