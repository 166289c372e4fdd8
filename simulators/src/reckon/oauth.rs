//! Reckon's identity server (IdentityServer3) as the sync meets it: the authorization-code
//! flow, refresh tokens that rotate and are single-use by default, revocation, and access
//! tokens that expire (10800 s by default). Tokens are opaque random strings.

use chrono::{DateTime, TimeDelta, Utc};
use std::collections::HashMap;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct OAuthConfig {
    pub client_id: String,
    pub client_secret: String,
    pub access_ttl_secs: i64,
    /// `true`: a refresh returns a new refresh token and the old one is dead (IdentityServer
    /// `OneTime`); `false`: the same refresh token keeps working (`ReUse`).
    pub rotate_refresh_tokens: bool,
    /// Idle lifetime of a refresh token.
    pub refresh_sliding_days: i64,
    /// Absolute lifetime of a refresh token chain.
    pub refresh_absolute_days: i64,
    /// Allowed redirect URIs, matched by prefix (loopback by default, for `connect`).
    pub redirect_uri_prefixes: Vec<String>,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        OAuthConfig {
            client_id: "cliniko-reckon-sync".into(),
            client_secret: "sim-client-secret".into(),
            access_ttl_secs: 10800,
            rotate_refresh_tokens: true,
            refresh_sliding_days: 45,
            refresh_absolute_days: 365,
            redirect_uri_prefixes: vec!["http://127.0.0.1".into(), "http://localhost".into()],
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub scope: String,
}

/// OAuth error codes as the token endpoint answers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthError {
    InvalidClient,
    InvalidGrant,
    InvalidRequest,
    UnsupportedGrantType,
}

impl OAuthError {
    pub fn code(self) -> &'static str {
        match self {
            OAuthError::InvalidClient => "invalid_client",
            OAuthError::InvalidGrant => "invalid_grant",
            OAuthError::InvalidRequest => "invalid_request",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
        }
    }
}

#[derive(Debug, Clone)]
struct Code {
    redirect_uri: String,
    scope: String,
    expires: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Access {
    expires: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Refresh {
    chain_started: DateTime<Utc>,
    last_used: DateTime<Utc>,
    scope: String,
}

#[derive(Debug, Clone, Default)]
pub struct OAuthState {
    codes: HashMap<String, Code>,
    access: HashMap<String, Access>,
    refresh: HashMap<String, Refresh>,
    /// How many token responses were issued (code exchanges plus refreshes).
    pub tokens_issued: u64,
    /// How many refresh_token grants succeeded.
    pub refreshes: u64,
}

fn random_token() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

impl OAuthState {
    /// The authorize endpoint's decision: a one-time code for an allowed redirect URI.
    pub fn authorize(
        &mut self,
        config: &OAuthConfig,
        client_id: &str,
        redirect_uri: &str,
        scope: &str,
        now: DateTime<Utc>,
    ) -> Result<String, OAuthError> {
        if client_id != config.client_id {
            return Err(OAuthError::InvalidClient);
        }
        if !config
            .redirect_uri_prefixes
            .iter()
            .any(|p| redirect_uri.starts_with(p.as_str()))
        {
            return Err(OAuthError::InvalidRequest);
        }
        let code = random_token();
        self.codes.insert(
            code.clone(),
            Code {
                redirect_uri: redirect_uri.into(),
                scope: scope.into(),
                expires: now + TimeDelta::minutes(5),
            },
        );
        Ok(code)
    }

    fn issue(
        &mut self,
        config: &OAuthConfig,
        scope: &str,
        chain_started: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> TokenPair {
        let access_token = random_token();
        self.access.insert(
            access_token.clone(),
            Access {
                expires: now + TimeDelta::seconds(config.access_ttl_secs),
            },
        );
        let refresh_token = random_token();
        self.refresh.insert(
            refresh_token.clone(),
            Refresh {
                chain_started,
                last_used: now,
                scope: scope.into(),
            },
        );
        self.tokens_issued += 1;
        TokenPair {
            access_token,
            refresh_token,
            expires_in: config.access_ttl_secs,
            scope: scope.into(),
        }
    }

    /// Tokens for a test or a headless bootstrap, as if the user had just connected.
    pub fn issue_for_test(&mut self, config: &OAuthConfig, now: DateTime<Utc>) -> TokenPair {
        self.issue(config, "openid read write offline_access", now, now)
    }

    pub fn exchange_code(
        &mut self,
        config: &OAuthConfig,
        code: &str,
        redirect_uri: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<TokenPair, OAuthError> {
        let grant = self.codes.remove(code).ok_or(OAuthError::InvalidGrant)?;
        if grant.expires < now || redirect_uri.is_some_and(|r| r != grant.redirect_uri) {
            return Err(OAuthError::InvalidGrant);
        }
        Ok(self.issue(config, &grant.scope, now, now))
    }

    pub fn refresh(
        &mut self,
        config: &OAuthConfig,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<TokenPair, OAuthError> {
        let current = self
            .refresh
            .get(token)
            .cloned()
            .ok_or(OAuthError::InvalidGrant)?;
        let idle_expired = now > current.last_used + TimeDelta::days(config.refresh_sliding_days);
        let absolute_expired =
            now > current.chain_started + TimeDelta::days(config.refresh_absolute_days);
        if idle_expired || absolute_expired {
            self.refresh.remove(token);
            return Err(OAuthError::InvalidGrant);
        }
        self.refreshes += 1;
        if config.rotate_refresh_tokens {
            self.refresh.remove(token);
            Ok(self.issue(config, &current.scope, current.chain_started, now))
        } else {
            let mut pair = self.issue(config, &current.scope, current.chain_started, now);
            self.refresh.remove(&pair.refresh_token);
            if let Some(r) = self.refresh.get_mut(token) {
                r.last_used = now;
            }
            pair.refresh_token = token.to_string();
            Ok(pair)
        }
    }

    pub fn revoke(&mut self, token: &str) {
        self.access.remove(token);
        self.refresh.remove(token);
    }

    /// What disconnecting the app in Reckon does: every token of the book stops working.
    pub fn revoke_all(&mut self) {
        self.access.clear();
        self.refresh.clear();
    }

    pub fn access_valid(&self, token: &str, now: DateTime<Utc>) -> bool {
        self.access.get(token).is_some_and(|a| a.expires > now)
    }

    /// Makes every access token expire now (refresh tokens keep working).
    pub fn expire_access_tokens(&mut self, now: DateTime<Utc>) {
        for a in self.access.values_mut() {
            a.expires = now;
        }
    }

    pub fn live_refresh_tokens(&self) -> usize {
        self.refresh.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_flow_and_rotation() {
        let config = OAuthConfig::default();
        let mut s = OAuthState::default();
        let now = Utc::now();
        let code = s
            .authorize(
                &config,
                &config.client_id,
                "http://127.0.0.1:9000/cb",
                "openid read write offline_access",
                now,
            )
            .unwrap();
        assert_eq!(
            s.exchange_code(&config, &code, Some("http://127.0.0.1:9999/other"), now),
            Err(OAuthError::InvalidGrant)
        );
        let code = s
            .authorize(
                &config,
                &config.client_id,
                "http://127.0.0.1:9000/cb",
                "read",
                now,
            )
            .unwrap();
        let pair = s
            .exchange_code(&config, &code, Some("http://127.0.0.1:9000/cb"), now)
            .unwrap();
        assert!(s.access_valid(&pair.access_token, now));
        assert_eq!(
            s.exchange_code(&config, &code, None, now),
            Err(OAuthError::InvalidGrant),
            "codes are single-use"
        );
        let next = s.refresh(&config, &pair.refresh_token, now).unwrap();
        assert_ne!(next.refresh_token, pair.refresh_token);
        assert_eq!(
            s.refresh(&config, &pair.refresh_token, now),
            Err(OAuthError::InvalidGrant),
            "rotated token is dead"
        );
        assert!(s.refresh(&config, &next.refresh_token, now).is_ok());
    }

    #[test]
    fn reuse_mode_keeps_the_refresh_token() {
        let config = OAuthConfig {
            rotate_refresh_tokens: false,
            ..Default::default()
        };
        let mut s = OAuthState::default();
        let now = Utc::now();
        let pair = s.issue_for_test(&config, now);
        let a = s.refresh(&config, &pair.refresh_token, now).unwrap();
        let b = s.refresh(&config, &pair.refresh_token, now).unwrap();
        assert_eq!(a.refresh_token, pair.refresh_token);
        assert_eq!(b.refresh_token, pair.refresh_token);
        assert_ne!(a.access_token, b.access_token);
    }

    #[test]
    fn access_tokens_expire_and_refresh_tokens_slide() {
        let config = OAuthConfig::default();
        let mut s = OAuthState::default();
        let now = Utc::now();
        let pair = s.issue_for_test(&config, now);
        assert!(!s.access_valid(&pair.access_token, now + TimeDelta::seconds(10800)));
        assert_eq!(
            s.refresh(&config, &pair.refresh_token, now + TimeDelta::days(46)),
            Err(OAuthError::InvalidGrant)
        );
    }
}
