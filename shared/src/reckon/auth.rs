//! OAuth 2 against Reckon's IdentityServer (docs/vendor-apis.md): the authorization-code flow, the
//! refresh grant (client id/secret as HTTP Basic), and a token manager over a [`TokenStore`]
//! that refreshes early, refreshes once on a 401, persists a rotated refresh token before
//! using the new access token, and lets only one refresh run at a time.

use super::{ReckonClientConfig, ReckonError};
use crate::ports::StateError;
use crate::ports::{TokenSet, TokenStore};
use chrono::{TimeDelta, Utc};
use oauth2::basic::{BasicClient, BasicErrorResponse, BasicErrorResponseType};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    HttpClientError, RedirectUrl, RefreshToken, RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use url::Url;

/// The scopes Reckon's help article requests; `offline_access` yields refresh tokens.
pub const SCOPES: [&str; 4] = ["openid", "read", "write", "offline_access"];

/// How often a refreshed pair is offered to the store before the call gives up.
const SAVE_ATTEMPTS: u32 = 4;

/// Access-token lifetime assumed when the token endpoint omits `expires_in` (docs/vendor-apis.md).
const DEFAULT_ACCESS_TTL_SECS: i64 = 10800;

type OAuthClient =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// The identity-server side: builds the consent URL and talks to the token endpoint.
pub struct ReckonOAuth {
    client: OAuthClient,
    http: reqwest::Client,
    redirect_uri: Url,
    requests: AtomicU64,
}

impl std::fmt::Debug for ReckonOAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReckonOAuth")
            .field("client_id", self.client.client_id())
            .field("redirect_uri", &self.redirect_uri.as_str())
            .finish_non_exhaustive()
    }
}

impl ReckonOAuth {
    pub fn new(config: &ReckonClientConfig) -> Result<Self, ReckonError> {
        config.validate()?;
        let client = BasicClient::new(ClientId::new(config.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                config.client_secret.expose_secret().to_string(),
            ))
            .set_auth_uri(AuthUrl::from_url(config.identity_endpoint("authorize")?))
            .set_token_uri(TokenUrl::from_url(config.identity_endpoint("token")?))
            .set_redirect_uri(RedirectUrl::from_url(config.redirect_uri.clone()));
        // No redirects at the token endpoint (the oauth2 crate's SSRF advice).
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.token_timeout)
            .connect_timeout(config.token_timeout)
            .build()
            .map_err(|e| ReckonError::Config(format!("HTTP client: {e}")))?;
        Ok(ReckonOAuth {
            client,
            http,
            redirect_uri: config.redirect_uri.clone(),
            requests: AtomicU64::new(0),
        })
    }

    /// Where to send the user's browser: the code flow with `openid read write
    /// offline_access`, the caller's `state` and a random `nonce`.
    pub fn authorize_url(&self, state: &str) -> Url {
        let state = state.to_string();
        let (url, _) = self
            .client
            .authorize_url(move || CsrfToken::new(state))
            .add_scopes(SCOPES.iter().map(|s| Scope::new((*s).to_string())))
            .add_extra_param("nonce", uuid::Uuid::new_v4().simple().to_string())
            .url();
        url
    }

    /// Exchanges the code from the redirect for tokens (does not store them).
    #[tracing::instrument(skip_all)]
    pub async fn exchange_code(&self, code: &str) -> Result<TokenSet, ReckonError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let response = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        token_set(&response, None)
    }

    /// The refresh grant (with `redirect_uri`, as docs/vendor-apis.md recommends). A response without
    /// a refresh token keeps the old one (IdentityServer `ReUse`).
    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenSet, ReckonError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let rt = RefreshToken::new(refresh_token.expose_secret().to_string());
        let response = self
            .client
            .exchange_refresh_token(&rt)
            .add_extra_param("redirect_uri", self.redirect_uri.as_str())
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        token_set(&response, Some(refresh_token))
    }

    /// Requests sent to the token endpoint so far.
    pub fn requests_made(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

fn token_set(
    response: &oauth2::basic::BasicTokenResponse,
    previous_refresh: Option<&SecretString>,
) -> Result<TokenSet, ReckonError> {
    let refresh_token = match (response.refresh_token(), previous_refresh) {
        (Some(rt), _) => SecretString::from(rt.secret().clone()),
        (None, Some(old)) => old.clone(),
        (None, None) => {
            return Err(ReckonError::Identity {
                detail: "the token response has no refresh token (was offline_access granted?)"
                    .into(),
                retryable: false,
            });
        }
    };
    // `expires_in` comes from outside: a value too large for a timestamp is capped at a
    // day (the token is refreshed early anyway), never an overflow.
    let ttl = response
        .expires_in()
        .and_then(|d| TimeDelta::from_std(d).ok())
        .unwrap_or(TimeDelta::seconds(DEFAULT_ACCESS_TTL_SECS))
        .min(TimeDelta::days(1));
    let now = Utc::now();
    Ok(TokenSet {
        access_token: SecretString::from(response.access_token().secret().clone()),
        refresh_token,
        expires_at: now.checked_add_signed(ttl).unwrap_or(now),
    })
}

/// Maps token-endpoint failures; never includes the response body (it may hold tokens).
fn token_error(
    e: RequestTokenError<HttpClientError<reqwest::Error>, BasicErrorResponse>,
) -> ReckonError {
    match e {
        RequestTokenError::ServerResponse(r) => match r.error() {
            BasicErrorResponseType::InvalidGrant => ReckonError::ReauthorizationNeeded(
                "Reckon rejected the authorization code or refresh token (invalid_grant)".into(),
            ),
            BasicErrorResponseType::InvalidClient | BasicErrorResponseType::UnauthorizedClient => {
                ReckonError::Config(format!(
                    "Reckon rejected the client id or secret ({})",
                    r.error().as_ref()
                ))
            }
            other => ReckonError::Identity {
                detail: format!("token endpoint error {}", other.as_ref()),
                retryable: false,
            },
        },
        RequestTokenError::Request(e) => ReckonError::Identity {
            detail: format!("token request failed: {}", http_client_error(&e)),
            retryable: true,
        },
        RequestTokenError::Parse(_, _) => ReckonError::Identity {
            detail: "the token endpoint answered something that is not a token response".into(),
            retryable: true,
        },
        RequestTokenError::Other(detail) => ReckonError::Identity {
            detail,
            retryable: true,
        },
    }
}

fn http_client_error(e: &HttpClientError<reqwest::Error>) -> String {
    match e {
        HttpClientError::Reqwest(inner) => {
            let inner: &reqwest::Error = inner;
            format!("{}", ReqwestNoUrl(inner))
        }
        other => other.to_string(),
    }
}

struct ReqwestNoUrl<'a>(&'a reqwest::Error);

impl std::fmt::Display for ReqwestNoUrl<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_timeout() {
            write!(f, "timed out")
        } else if self.0.is_connect() {
            write!(f, "could not connect")
        } else {
            write!(f, "transport error")
        }
    }
}

fn store_error(e: StateError) -> ReckonError {
    ReckonError::TokenStore {
        retryable: e.is_retryable(),
        detail: e.to_string(),
    }
}

/// Keeps a valid access token, backed by a [`TokenStore`].
///
/// * `access_token()` returns the cached token, or refreshes when it expires within
///   `refresh_margin`.
/// * `refresh_after_rejection(token)` is for a 401: it refreshes unless someone already
///   replaced that token.
/// * Refreshes are single-flight: one at a time per manager, and the store is re-read after
///   taking the lock, so a refresh done meanwhile (here or by another process) is reused.
/// * A rotated refresh token is saved before the new access token is used; a failed save
///   fails the call.
pub struct TokenManager<S> {
    oauth: ReckonOAuth,
    store: S,
    cached: Mutex<Option<TokenSet>>,
    refresh_lock: tokio::sync::Mutex<()>,
    margin: TimeDelta,
}

impl<S> std::fmt::Debug for TokenManager<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenManager")
            .field("oauth", &self.oauth)
            .field("margin", &self.margin)
            .finish_non_exhaustive()
    }
}

impl<S: TokenStore> TokenManager<S> {
    pub fn new(oauth: ReckonOAuth, store: S, refresh_margin: std::time::Duration) -> Self {
        TokenManager {
            oauth,
            store,
            cached: Mutex::new(None),
            refresh_lock: tokio::sync::Mutex::new(()),
            margin: TimeDelta::from_std(refresh_margin).unwrap_or(TimeDelta::minutes(5)),
        }
    }

    pub fn oauth(&self) -> &ReckonOAuth {
        &self.oauth
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Completes the connect flow: exchanges `code` and saves the tokens.
    pub async fn connect(&self, code: &str) -> Result<(), ReckonError> {
        let _guard = self.refresh_lock.lock().await;
        self.excluded(async {
            self.store.check_writable().await.map_err(store_error)?;
            let tokens = self.oauth.exchange_code(code).await?;
            self.adopt(tokens).await.map(|_| ())
        })
        .await
    }

    /// Headless bootstrap: redeems `refresh_token` once and saves the resulting pair.
    pub async fn bootstrap_from_refresh_token(
        &self,
        refresh_token: SecretString,
    ) -> Result<(), ReckonError> {
        let _guard = self.refresh_lock.lock().await;
        self.excluded(async {
            self.store.check_writable().await.map_err(store_error)?;
            let tokens = self.oauth.refresh(&refresh_token).await?;
            self.adopt(tokens).await.map(|_| ())
        })
        .await
    }

    /// Runs `work` between the store's `begin_refresh` and `end_refresh`. A failed release
    /// is only logged: the work is done (or failed on its own), and a lease left behind
    /// only delays the next refresh until it runs out.
    async fn excluded<T>(
        &self,
        work: impl Future<Output = Result<T, ReckonError>>,
    ) -> Result<T, ReckonError> {
        self.store.begin_refresh().await.map_err(store_error)?;
        let result = work.await;
        if let Err(e) = self.store.end_refresh().await {
            tracing::warn!(error = %e, "could not release the token refresh lock");
        }
        result
    }

    /// A usable access token, refreshed first when it expires within the margin.
    pub async fn access_token(&self) -> Result<SecretString, ReckonError> {
        if let Some(t) = self.cached_fresh() {
            return Ok(t);
        }
        self.refresh(None).await
    }

    /// After a 401 with `rejected`: a new access token (refreshing at most once even when
    /// many callers report the same rejected token).
    pub async fn refresh_after_rejection(
        &self,
        rejected: &SecretString,
    ) -> Result<SecretString, ReckonError> {
        self.refresh(Some(rejected)).await
    }

    fn cached_fresh(&self) -> Option<SecretString> {
        let cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        cached
            .as_ref()
            .filter(|t| self.is_fresh(t))
            .map(|t| t.access_token.clone())
    }

    fn is_fresh(&self, t: &TokenSet) -> bool {
        t.expires_at
            .checked_sub_signed(self.margin)
            .is_some_and(|at| at > Utc::now())
    }

    async fn refresh(&self, rejected: Option<&SecretString>) -> Result<SecretString, ReckonError> {
        let _guard = self.refresh_lock.lock().await;
        // Another process may have refreshed already: a fresh stored token needs no
        // cross-process exclusion (double-checked below once excluded).
        let stored = self.load_stored().await?;
        if let Some(token) = self.reuse_if_fresh(stored, rejected) {
            return Ok(token);
        }
        self.excluded(self.refresh_excluded(rejected)).await
    }

    /// Runs with the other processes excluded: re-read, then refresh only if still needed.
    async fn refresh_excluded(
        &self,
        rejected: Option<&SecretString>,
    ) -> Result<SecretString, ReckonError> {
        let stored = self.load_stored().await?;
        let refresh_token = stored.refresh_token.clone();
        if let Some(token) = self.reuse_if_fresh(stored, rejected) {
            return Ok(token);
        }
        // A redeemed refresh token is spent: only redeem it when the new pair can be saved.
        self.store.check_writable().await.map_err(store_error)?;
        tracing::debug!("refreshing the Reckon access token");
        let tokens = self.oauth.refresh(&refresh_token).await?;
        self.adopt(tokens).await
    }

    async fn load_stored(&self) -> Result<TokenSet, ReckonError> {
        self.store
            .load()
            .await
            .map_err(store_error)?
            .ok_or_else(|| ReckonError::ReauthorizationNeeded("no Reckon tokens are stored".into()))
    }

    /// The stored access token when it is fresh and is not the one Reckon just rejected.
    fn reuse_if_fresh(
        &self,
        stored: TokenSet,
        rejected: Option<&SecretString>,
    ) -> Option<SecretString> {
        let was_rejected =
            rejected.is_some_and(|r| r.expose_secret() == stored.access_token.expose_secret());
        if was_rejected || !self.is_fresh(&stored) {
            return None;
        }
        let token = stored.access_token.clone();
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some(stored);
        Some(token)
    }

    /// Saves first, then caches: the rotated refresh token must never be lost. A failed
    /// save is tried again (a busy file clears up); if it still fails the call stops with
    /// the reason rather than carrying on with a pair nothing has stored.
    async fn adopt(&self, tokens: TokenSet) -> Result<SecretString, ReckonError> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self.store.save(&tokens).await {
                Ok(()) => break,
                Err(e) if attempt < SAVE_ATTEMPTS => {
                    tracing::warn!(attempt, error = %e, "saving the refreshed Reckon tokens failed; trying again");
                    tokio::time::sleep(std::time::Duration::from_millis(250 << attempt)).await;
                }
                Err(e) => {
                    return Err(ReckonError::TokenStore {
                        detail: format!(
                            "the refreshed Reckon token pair could not be saved ({SAVE_ATTEMPTS} attempts): {e}; \
                             the sync stops here: make the token store writable, then run `connect` again"
                        ),
                        // The rotated pair is lost: retrying cannot bring it back.
                        retryable: false,
                    });
                }
            }
        }
        let token = tokens.access_token.clone();
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some(tokens);
        Ok(token)
    }
}

/// In-memory [`TokenStore`] (tests, demos). Clones share the same slot.
#[derive(Debug, Clone, Default)]
pub struct MemoryTokenStore {
    slot: Arc<Mutex<Option<TokenSet>>>,
    saves: Arc<AtomicU64>,
}

impl MemoryTokenStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_tokens(tokens: TokenSet) -> Self {
        let store = Self::default();
        *store.slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(tokens);
        store
    }

    /// What is stored now.
    pub fn current(&self) -> Option<TokenSet> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// How many times `save` ran.
    pub fn saves(&self) -> u64 {
        self.saves.load(Ordering::Relaxed)
    }
}

impl TokenStore for MemoryTokenStore {
    async fn load(&self) -> Result<Option<TokenSet>, StateError> {
        Ok(self.current())
    }

    async fn save(&self, tokens: &TokenSet) -> Result<(), StateError> {
        *self.slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(tokens.clone());
        self.saves.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
