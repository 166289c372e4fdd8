//! Client configuration: the API key (secret), its shard host, the required User-Agent,
//! self-pacing and retry settings.

use super::ClinikoError;
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use url::Url;

/// How to reach Cliniko and how patiently.
///
/// `Debug` never shows the key (`SecretString` redacts itself).
#[derive(Clone, Debug)]
pub struct ClinikoClientConfig {
    /// The user's API key, with or without its `-shard` suffix (used as given).
    pub api_key: SecretString,
    /// Overrides the host derived from the key's shard (simulators, proxies), e.g.
    /// `http://127.0.0.1:8080/v1`.
    pub base_url: Option<Url>,
    /// `App Name (contact@example.com)`: Cliniko requires a name and a contact email.
    pub user_agent: String,
    /// Self-pacing under Cliniko's per-user limit (200/min); 0 turns pacing off.
    pub requests_per_minute: u32,
    /// Attempts per request (first try included) for 429, 5xx, transport errors, timeouts.
    pub max_attempts: u32,
    /// Timeout of one HTTP attempt (connect, headers and body).
    pub request_timeout: Duration,
    /// First retry delay; doubled per attempt, jittered, capped at `max_backoff`.
    pub backoff_base: Duration,
    pub max_backoff: Duration,
    /// The longest a 429 answer makes the client wait before trying again.
    pub max_rate_limit_wait: Duration,
}

impl ClinikoClientConfig {
    /// The defaults: 200 requests/min, 5 attempts, 30 s per attempt, backoff from 500 ms to
    /// 30 s, and at most 65 s of waiting for a rate-limit window to reset.
    pub fn new(api_key: SecretString, user_agent: impl Into<String>) -> Self {
        ClinikoClientConfig {
            api_key,
            base_url: None,
            user_agent: user_agent.into(),
            requests_per_minute: 200,
            max_attempts: 5,
            request_timeout: Duration::from_secs(30),
            backoff_base: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_rate_limit_wait: Duration::from_secs(65),
        }
    }
}

/// The shard of an API key: its `-xxN` suffix, `au1` when there is none.
///
/// Follows Cliniko's sample code: split on `-`; one part means `au1`; two parts need a suffix
/// matching `^\w{2}\d{1,2}$`; anything else is an invalid key. The key is never echoed.
pub fn shard_of(api_key: &str) -> Result<String, ClinikoError> {
    if api_key.trim().is_empty() {
        return Err(ClinikoError::Config("the Cliniko API key is empty".into()));
    }
    let parts: Vec<&str> = api_key.split('-').collect();
    match parts.as_slice() {
        [_] => Ok("au1".into()),
        [key, shard] if !key.is_empty() && is_shard(shard) => Ok(shard.to_ascii_lowercase()),
        _ => Err(ClinikoError::Config(
            "invalid Cliniko API key: expected KEY or KEY-<shard> with a shard like au2".into(),
        )),
    }
}

fn is_shard(s: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    (3..=4).contains(&s.len())
        && s.is_ascii()
        && s[..2].chars().all(word)
        && s[2..].chars().all(|c| c.is_ascii_digit())
}

/// `https://api.{shard}.cliniko.com/v1`
pub fn shard_base_url(shard: &str) -> Result<Url, ClinikoError> {
    Url::parse(&format!("https://api.{shard}.cliniko.com/v1"))
        .map_err(|e| ClinikoError::Config(format!("cannot build the Cliniko host: {e}")))
}

/// The base URL to use: the override, else the key's shard host. No trailing slash.
pub fn base_url(cfg: &ClinikoClientConfig) -> Result<Url, ClinikoError> {
    let shard = shard_of(cfg.api_key.expose_secret())?;
    let mut url = match &cfg.base_url {
        Some(u) => {
            if !matches!(u.scheme(), "http" | "https") || u.cannot_be_a_base() {
                return Err(ClinikoError::Config(format!(
                    "the Cliniko base URL must be an http(s) URL, got scheme {:?}",
                    u.scheme()
                )));
            }
            if !u.username().is_empty() || u.password().is_some() {
                return Err(ClinikoError::Config(
                    "the Cliniko base URL must not carry credentials".into(),
                ));
            }
            u.clone()
        }
        None => shard_base_url(&shard)?,
    };
    let path = url.path().trim_end_matches('/').to_string();
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

/// Cliniko wants `App Name (contact@email)`: a name, then a contact email in parentheses.
pub fn validate_user_agent(ua: &str) -> Result<(), ClinikoError> {
    let bad = || {
        ClinikoError::Config(format!(
            "the User-Agent must look like \"App Name (contact@example.com)\", got {ua:?}"
        ))
    };
    let open = ua.find('(').ok_or_else(bad)?;
    let close = ua[open..].find(')').map(|c| open + c).ok_or_else(bad)?;
    let inside = &ua[open + 1..close];
    let has_email = inside.split([' ', ';', ',']).any(|part| {
        part.split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
    });
    if ua[..open].trim().is_empty() || !has_email || ua.chars().any(char::is_control) {
        return Err(bad());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_comes_from_the_key_suffix() {
        assert_eq!(shard_of("MS0xLWFiYw-au2").unwrap(), "au2");
        assert_eq!(shard_of("abc-uk1").unwrap(), "uk1");
        assert_eq!(shard_of("abc-ca1").unwrap(), "ca1");
        assert_eq!(shard_of("abc-us12").unwrap(), "us12");
        assert_eq!(shard_of("abc-AU3").unwrap(), "au3");
        assert_eq!(shard_of("nosuffixkey").unwrap(), "au1");
    }

    #[test]
    fn bad_suffixes_are_config_errors_that_do_not_echo_the_key() {
        for key in [
            "secretkey-australia",
            "secretkey-au",
            "secretkey-au123",
            "secretkey-a-au1",
            "secretkey-",
            "-au1",
            "",
            "secretkey-a.1",
        ] {
            match shard_of(key) {
                Err(ClinikoError::Config(msg)) => assert!(!msg.contains("secretkey"), "{msg}"),
                other => panic!("{key:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn host_follows_the_shard_unless_overridden() {
        let mut cfg = ClinikoClientConfig::new("k-au2".into(), "App (a@b.c)");
        assert_eq!(
            base_url(&cfg).unwrap().as_str(),
            "https://api.au2.cliniko.com/v1"
        );
        cfg.api_key = "k".into();
        assert_eq!(
            base_url(&cfg).unwrap().as_str(),
            "https://api.au1.cliniko.com/v1"
        );
        cfg.base_url = Some(Url::parse("http://127.0.0.1:9/v1/").unwrap());
        assert_eq!(base_url(&cfg).unwrap().as_str(), "http://127.0.0.1:9/v1");
        cfg.api_key = "k-nope".into();
        assert!(matches!(base_url(&cfg), Err(ClinikoError::Config(_))));
        cfg.api_key = "k".into();
        cfg.base_url = Some(Url::parse("ftp://x/v1").unwrap());
        assert!(matches!(base_url(&cfg), Err(ClinikoError::Config(_))));
    }

    #[test]
    fn user_agent_needs_a_name_and_contact_email() {
        assert!(validate_user_agent("Cliniko Reckon Sync (ops@example.com)").is_ok());
        assert!(validate_user_agent("Sync 1.0 (contact: ops@example.com)").is_ok());
        for ua in [
            "",
            "curl/8",
            "(ops@example.com)",
            "App (ops)",
            "App (@example.com)",
            "App (ops@)",
            "App ops@example.com",
            "App (ops@example.com",
            "App\n(ops@example.com)",
        ] {
            assert!(
                matches!(validate_user_agent(ua), Err(ClinikoError::Config(_))),
                "{ua:?}"
            );
        }
    }

    #[test]
    fn debug_of_the_config_hides_the_key() {
        let cfg = ClinikoClientConfig::new("topsecretvalue-au2".into(), "App (a@b.c)");
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("topsecretvalue"), "{shown}");
    }
}
