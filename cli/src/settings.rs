//! Configuration: a TOML file (`--config`) with environment overrides under fixed names.
//! A missing or invalid value is a one-line error naming the variable and the file key.

use anyhow::{Context, anyhow, bail};
use cliniko_reckon::adapters::sqlite::SqliteState;
use cliniko_reckon::config::{TenantConfig, parse_tenant_config};
use cliniko_reckon::domain::{DEFAULT_TENANT, TenantId};
use cliniko_reckon::ports::TenantDirectory;
use secrecy::SecretString;
use std::path::{Path, PathBuf};
use url::Url;

pub const DEFAULT_RECKON_API: &str = "https://api.reckon.com/r1/v2";
pub const DEFAULT_RECKON_IDENTITY: &str = "https://identity.reckon.com";
pub const DEFAULT_REDIRECT: &str = "http://127.0.0.1:8765/callback";

/// Where each value came from, for error messages.
struct Source<'a> {
    env: &'a str,
    file_key: &'a str,
}

fn url_value(src: Source<'_>, text: &str) -> anyhow::Result<Url> {
    let url = Url::parse(text)
        .map_err(|e| anyhow!("{} ({}) is not a valid URL: {e}", src.env, src.file_key))?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("{} ({}) must be an http(s) URL", src.env, src.file_key);
    }
    Ok(url)
}

/// The settings every Cliniko call needs.
#[derive(Debug, Clone)]
pub struct ClinikoSettings {
    pub api_key: SecretString,
    pub base_url: Option<Url>,
    pub user_agent: String,
    pub requests_per_minute: u32,
}

/// The settings every Reckon call needs.
#[derive(Debug, Clone)]
pub struct ReckonSettings {
    pub api_base_url: Url,
    pub identity_url: Url,
    pub client_id: String,
    pub client_secret: SecretString,
    pub subscription_key: SecretString,
    pub book_id: String,
    pub refresh_token: Option<SecretString>,
    pub redirect_uri: Url,
    pub receipt_account: String,
    pub requests_per_minute: u32,
}

pub struct Loaded {
    pub file: TenantConfig,
    /// Whether environment variables override the file: only for the one clinic of a state
    /// file without registered tenants, so one clinic's environment never reaches another.
    pub use_env: bool,
}

impl Loaded {
    fn pick(&self, env: &str, file: &Option<String>) -> Option<String> {
        self.use_env
            .then(|| std::env::var(env).ok())
            .flatten()
            .filter(|v| !v.trim().is_empty())
            .or_else(|| file.clone().filter(|v| !v.trim().is_empty()))
    }

    fn required(&self, src: Source<'_>, file: &Option<String>) -> anyhow::Result<String> {
        self.pick(src.env, file).ok_or_else(|| {
            if self.use_env {
                anyhow!(
                    "{} is missing: set it in the environment or as {} in the config file",
                    src.env,
                    src.file_key
                )
            } else {
                anyhow!("{} is missing from the tenant's config file", src.file_key)
            }
        })
    }

    /// Reads the file if given (a missing file named explicitly is an error).
    pub fn load(path: Option<&Path>) -> anyhow::Result<Loaded> {
        let file = match path {
            None => TenantConfig::default(),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read config file {}", p.display()))?;
                parse_tenant_config(&text)
                    .map_err(|e| anyhow!("config file {}: {e}", p.display()))?
            }
        };
        Ok(Loaded {
            file,
            use_env: true,
        })
    }

    pub fn cliniko(&self) -> anyhow::Result<ClinikoSettings> {
        let c = &self.file.cliniko;
        let api_key = self.required(
            Source {
                env: "CLINIKO_API_KEY",
                file_key: "cliniko.api_key",
            },
            &c.api_key,
        )?;
        let base_url = self
            .pick("CLINIKO_BASE_URL", &c.base_url)
            .map(|u| {
                url_value(
                    Source {
                        env: "CLINIKO_BASE_URL",
                        file_key: "cliniko.base_url",
                    },
                    &u,
                )
            })
            .transpose()?;
        let user_agent = self.required(
            Source {
                env: "CLINIKO_USER_AGENT",
                file_key: "cliniko.user_agent",
            },
            &c.user_agent,
        )?;
        if !user_agent_has_contact(&user_agent) {
            bail!(
                "CLINIKO_USER_AGENT (cliniko.user_agent) must name the app and a contact email, e.g. \"Clinic Sync (ops@example.com)\""
            );
        }
        Ok(ClinikoSettings {
            api_key: SecretString::from(api_key),
            base_url,
            user_agent,
            requests_per_minute: self.file.sync.cliniko_requests_per_minute,
        })
    }

    pub fn reckon(&self) -> anyhow::Result<ReckonSettings> {
        let r = &self.file.reckon;
        let api = self
            .pick("RECKON_API_BASE_URL", &r.api_base_url)
            .unwrap_or_else(|| DEFAULT_RECKON_API.to_string());
        let identity = self
            .pick("RECKON_IDENTITY_URL", &r.identity_url)
            .unwrap_or_else(|| DEFAULT_RECKON_IDENTITY.to_string());
        let redirect = r
            .redirect_uri
            .clone()
            .unwrap_or_else(|| DEFAULT_REDIRECT.to_string());
        let book_id = self.required(
            Source {
                env: "RECKON_BOOK_ID",
                file_key: "reckon.book_id",
            },
            &r.book_id,
        )?;
        if uuid::Uuid::parse_str(book_id.trim()).is_err() {
            bail!("RECKON_BOOK_ID (reckon.book_id) must be the book's GUID, got {book_id:?}");
        }
        Ok(ReckonSettings {
            api_base_url: url_value(
                Source {
                    env: "RECKON_API_BASE_URL",
                    file_key: "reckon.api_base_url",
                },
                &api,
            )?,
            identity_url: url_value(
                Source {
                    env: "RECKON_IDENTITY_URL",
                    file_key: "reckon.identity_url",
                },
                &identity,
            )?,
            client_id: self.required(
                Source {
                    env: "RECKON_CLIENT_ID",
                    file_key: "reckon.client_id",
                },
                &r.client_id,
            )?,
            client_secret: SecretString::from(self.required(
                Source {
                    env: "RECKON_CLIENT_SECRET",
                    file_key: "reckon.client_secret",
                },
                &r.client_secret,
            )?),
            subscription_key: SecretString::from(self.required(
                Source {
                    env: "RECKON_SUBSCRIPTION_KEY",
                    file_key: "reckon.subscription_key",
                },
                &r.subscription_key,
            )?),
            book_id: book_id.trim().to_string(),
            refresh_token: self
                .pick("RECKON_REFRESH_TOKEN", &r.refresh_token)
                .map(SecretString::from),
            redirect_uri: url_value(
                Source {
                    env: "RECKON_REDIRECT_URI",
                    file_key: "reckon.redirect_uri",
                },
                &redirect,
            )?,
            receipt_account: r
                .receipt_account
                .clone()
                .unwrap_or_else(|| "Undeposited Funds".to_string()),
            requests_per_minute: self.file.sync.reckon_requests_per_minute,
        })
    }

    pub fn overlap(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.file.sync.overlap_seconds)
    }
}

/// `App Name (contact@example.com)`: Cliniko blocks requests without a contact email.
pub fn user_agent_has_contact(ua: &str) -> bool {
    let Some(open) = ua.find('(') else {
        return false;
    };
    let Some(close) = ua[open..].find(')') else {
        return false;
    };
    let inside = &ua[open + 1..open + close];
    open > 0 && inside.contains('@') && !inside.starts_with('@') && !inside.ends_with('@')
}

/// What a command works on: the state file, the clinic (tenant) within it, and that
/// clinic's configuration. A state file holds many clinics; `--tenant` picks one (else
/// `default`, the clinic of `--config` and the environment).
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub config: Option<PathBuf>,
    pub state: Option<PathBuf>,
    pub tenant: Option<TenantId>,
}

impl Scope {
    pub fn state_path(&self) -> PathBuf {
        state_path(self.state.as_deref())
    }

    pub fn tenant_id(&self) -> TenantId {
        self.tenant.clone().unwrap_or_default()
    }

    /// The same state file and configuration override, for another clinic.
    pub fn for_tenant(&self, tenant: &TenantId) -> Scope {
        Scope {
            tenant: Some(tenant.clone()),
            ..self.clone()
        }
    }

    /// Opens the state file (as its writer when `writer` names the command), scoped to the
    /// clinic, and loads the clinic's configuration.
    pub async fn open(&self, writer: Option<&str>) -> anyhow::Result<(SqliteState, Loaded)> {
        let path = self.state_path();
        let store = match writer {
            Some(command) => open_state_writer(&path, command)?,
            None => open_state(&path)?,
        };
        let store = store.for_tenant(&self.tenant_id());
        let loaded = self.load(&store).await?;
        Ok((store, loaded))
    }

    /// The clinic's configuration without keeping the state file open (nor creating it when
    /// it does not exist and no clinic is named).
    pub async fn load_config(&self) -> anyhow::Result<Loaded> {
        if self.tenant.is_none() && !self.state_path().exists() {
            return Loaded::load(self.config.as_deref());
        }
        let store = open_state(&self.state_path())?.for_tenant(&self.tenant_id());
        self.load(&store).await
    }

    /// The clinic's configuration: a registered clinic's own file (`tenants add`), which
    /// `--config` may replace for one run; the unregistered `default` clinic's `--config`
    /// and environment. Any other unregistered name is an error.
    pub async fn load(&self, store: &SqliteState) -> anyhow::Result<Loaded> {
        let tenant = self.tenant_id();
        let entry = store
            .tenant(&tenant)
            .await
            .with_context(|| format!("reading tenant {tenant}"))?;
        match entry {
            Some(entry) => {
                let path = PathBuf::from(&entry.config);
                // Another file would pair this clinic's state and tokens with other books.
                if let Some(given) = &self.config
                    && std::path::absolute(given).ok().as_deref() != Some(path.as_path())
                {
                    bail!(
                        "tenant {tenant} reads {}; drop --config, or change the file with `cliniko-reckon tenants add {tenant} --config FILE`",
                        path.display()
                    );
                }
                let mut loaded =
                    Loaded::load(Some(&path)).with_context(|| format!("tenant {tenant}"))?;
                loaded.use_env = false;
                Ok(loaded)
            }
            None if tenant.as_str() == DEFAULT_TENANT => Loaded::load(self.config.as_deref()),
            None => bail!(
                "no tenant {tenant} in {}: add it with `cliniko-reckon tenants add {tenant} --config FILE`",
                self.state_path().display()
            ),
        }
    }
}

/// The state file: `--state`, else `cliniko-reckon.sqlite` in the working directory.
pub fn state_path(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("cliniko-reckon.sqlite"))
}

/// Opens (creating owner-only if needed) the SQLite state file at `path` for a command that
/// changes no sync state (`reconcile` without `--repair`, `config check`). Token refreshes
/// still take turns with a writer on the same file.
pub fn open_state(path: &Path) -> anyhow::Result<cliniko_reckon::adapters::sqlite::SqliteState> {
    Ok(cliniko_reckon::adapters::sqlite::SqliteState::open(path)?)
}

/// Opens the state file as its only writer (`sync`, `demo`, `connect`, `link`, `reconcile
/// --repair`): a second one exits at once naming the holder. `command` is what that other
/// process is told holds it.
pub fn open_state_writer(
    path: &Path,
    command: &str,
) -> anyhow::Result<cliniko_reckon::adapters::sqlite::SqliteState> {
    Ok(cliniko_reckon::adapters::sqlite::SqliteState::open_writer(
        path, command,
    )?)
}

/// `10s`, `2m`, `1h`, or plain seconds.
pub fn parse_interval(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 10s, 2m or 1h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{text:?}: unit must be s, m or h")),
    };
    if secs == 0 {
        return Err("the interval must be at least 1s".into());
    }
    Ok(std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("10s").unwrap().as_secs(), 10);
        assert_eq!(parse_interval("2m").unwrap().as_secs(), 120);
        assert_eq!(parse_interval("15").unwrap().as_secs(), 15);
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("ten").is_err());
        assert!(parse_interval("5d").is_err());
    }

    #[test]
    fn user_agents_need_a_contact_email() {
        assert!(user_agent_has_contact("Clinic Sync (ops@example.com)"));
        assert!(!user_agent_has_contact("Clinic Sync"));
        assert!(!user_agent_has_contact("(ops@example.com)"));
        assert!(!user_agent_has_contact("Clinic Sync (ops)"));
    }

    #[test]
    fn config_errors_name_the_key_and_what_was_expected() {
        let err = parse_tenant_config("[sync]\noverlap_seconds = \"ten\"\n").unwrap_err();
        assert_eq!(
            err,
            "sync.overlap_seconds: expected a whole number of seconds, got \"ten\""
        );
        let err = parse_tenant_config("[sync]\noverlap_seconds = 999999999999\n").unwrap_err();
        assert!(
            err.starts_with(
                "sync.overlap_seconds: expected a whole number of seconds from 0 to 3600"
            ),
            "{err}"
        );
        let err = parse_tenant_config("[sync]\noverlap_seconds = -5\n").unwrap_err();
        assert!(err.contains("from 0 to 3600, got -5"), "{err}");
        let err = parse_tenant_config("[sync]\ncliniko_requests_per_minute = 0\n").unwrap_err();
        assert!(
            err.starts_with("sync.cliniko_requests_per_minute: expected"),
            "{err}"
        );
        let err = parse_tenant_config("[sync]\nreckon_requests_per_minute = 1.5\n").unwrap_err();
        assert!(
            err.starts_with("sync.reckon_requests_per_minute: expected a whole number"),
            "{err}"
        );
        let err = parse_tenant_config("[mapping]\nprefer_invoice_email = \"yes\"\n").unwrap_err();
        assert!(err.starts_with("mapping.prefer_invoice_email:"), "{err}");
        let ok = parse_tenant_config("[sync]\nreckon_requests_per_minute = 0\n").unwrap();
        assert_eq!(ok.sync.reckon_requests_per_minute, 0);
        assert_eq!(ok.sync.overlap_seconds, 120);
    }

    #[test]
    fn file_config_rejects_unknown_keys() {
        let err = toml::from_str::<TenantConfig>("[cliniko]\napi_kye = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("api_kye"), "{err}");
        let ok: TenantConfig = toml::from_str(
            "[cliniko]\napi_key = \"k-au2\"\nuser_agent = \"A (a@b.co)\"\n[sync]\noverlap_seconds = 60\n",
        )
        .unwrap();
        assert_eq!(ok.sync.overlap_seconds, 60);
        assert_eq!(ok.sync.cliniko_requests_per_minute, 200);
    }
}
