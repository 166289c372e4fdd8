//! Builds the Cliniko and Reckon clients from settings, and runs the Reckon connect flows.

use crate::settings::{ClinikoSettings, ReckonSettings};
use anyhow::{Context, anyhow, bail};
use cliniko_reckon::adapters::sqlite::SqliteState;
use cliniko_reckon::cliniko::{ClinikoClient, ClinikoClientConfig};
use cliniko_reckon::domain::ReckonId;
use cliniko_reckon::mapping::MappingConfig;
use cliniko_reckon::ports::TokenStore;
use cliniko_reckon::reckon::{ReckonClient, ReckonClientConfig};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub type Reckon = ReckonClient<SqliteState>;

/// Clients that count the requests they send (for the run summary).
pub trait Counted {
    fn requests_made(&self) -> u64;
}

impl Counted for ClinikoClient {
    fn requests_made(&self) -> u64 {
        ClinikoClient::requests_made(self)
    }
}

impl<S: TokenStore> Counted for ReckonClient<S> {
    fn requests_made(&self) -> u64 {
        ReckonClient::requests_made(self)
    }
}

pub fn cliniko(s: &ClinikoSettings) -> anyhow::Result<ClinikoClient> {
    let mut cfg = ClinikoClientConfig::new(s.api_key.clone(), s.user_agent.clone());
    cfg.base_url = s.base_url.clone();
    cfg.requests_per_minute = s.requests_per_minute;
    ClinikoClient::new(cfg).map_err(|e| anyhow!("{e}"))
}

fn reckon_config(s: &ReckonSettings) -> anyhow::Result<ReckonClientConfig> {
    let book: ReckonId = s
        .book_id
        .parse()
        .map_err(|_| anyhow!("RECKON_BOOK_ID (reckon.book_id) must be the book's GUID"))?;
    let mut cfg = ReckonClientConfig::new(
        s.client_id.clone(),
        s.client_secret.clone(),
        s.subscription_key.clone(),
        book,
        s.redirect_uri.clone(),
        s.receipt_account.clone(),
    )
    .map_err(|e| anyhow!("{e}"))?;
    cfg.api_base_url = s.api_base_url.clone();
    cfg.identity_url = s.identity_url.clone();
    cfg.requests_per_minute = s.requests_per_minute;
    Ok(cfg)
}

/// The Reckon client over the state file's token store. Bootstraps from
/// `RECKON_REFRESH_TOKEN` when the store holds no tokens yet.
pub async fn reckon(s: &ReckonSettings, store: SqliteState) -> anyhow::Result<Reckon> {
    let has_tokens = store.load().await?.is_some();
    let tenant = store.tenant_id().clone();
    let single = tenant.as_str() == cliniko_reckon::domain::DEFAULT_TENANT;
    let client = ReckonClient::new(reckon_config(s)?, store).map_err(|e| anyhow!("{e}"))?;
    if !has_tokens {
        let Some(token) = s.refresh_token.clone() else {
            bail!(
                "Reckon is not connected for tenant {tenant}: run `cliniko-reckon{} connect`{}",
                if single {
                    String::new()
                } else {
                    format!(" --tenant {tenant}")
                },
                if single {
                    " (or set RECKON_REFRESH_TOKEN)"
                } else {
                    ""
                }
            );
        };
        client
            .tokens()
            .bootstrap_from_refresh_token(token)
            .await
            .map_err(|e| anyhow!("{e}"))
            .context("redeeming RECKON_REFRESH_TOKEN")?;
    }
    Ok(client)
}

/// The Reckon client after checking the configured ledger accounts against the book:
/// missing ones are replaced by an account of the right type, with a note for the user.
pub async fn reckon_checked(
    s: &ReckonSettings,
    store: SqliteState,
    mapping: &mut MappingConfig,
) -> anyhow::Result<(Reckon, Vec<String>)> {
    let mut client = reckon(s, store).await?;
    let notes = client.check_book(mapping).await.map_err(|e| anyhow!(e))?;
    Ok((client, notes))
}

/// The businesses `[invoicing.businesses]` names, checked against Cliniko's (one request,
/// only when any is named).
pub async fn check_businesses(
    source: &cliniko_reckon::cliniko::ClinikoClient,
    mapping: &MappingConfig,
) -> anyhow::Result<()> {
    use cliniko_reckon::ports::ClinikoSource;
    if mapping.invoicing.businesses.is_empty() {
        return Ok(());
    }
    let businesses = source
        .businesses()
        .await
        .context("reaching Cliniko (listing businesses for invoicing.businesses)")?;
    mapping
        .invoicing
        .check_businesses(&businesses)
        .map_err(|e| anyhow!(e))
}

/// `connect`: with a refresh token, redeem it; otherwise the OAuth code flow through the
/// user's browser and a one-shot listener on the loopback redirect URI.
pub async fn connect<S: TokenStore>(
    s: &ReckonSettings,
    store: S,
    timeout: Duration,
) -> anyhow::Result<()> {
    let client = ReckonClient::new(reckon_config(s)?, store).map_err(|e| anyhow!("{e}"))?;
    if let Some(token) = s.refresh_token.clone() {
        return client
            .tokens()
            .bootstrap_from_refresh_token(token)
            .await
            .map_err(|e| anyhow!("{e}"));
    }
    let redirect = &s.redirect_uri;
    let host = redirect.host_str().unwrap_or("127.0.0.1");
    if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
        bail!(
            "the redirect URI must be a loopback address to receive the code here, got {redirect}"
        );
    }
    let port = redirect.port_or_known_default().unwrap_or(80);
    let listener = tokio::net::TcpListener::bind((host, port))
        .await
        .with_context(|| format!("cannot listen on {host}:{port} for the OAuth redirect"))?;
    let state = uuid::Uuid::new_v4().simple().to_string();
    println!(
        "Open this URL in a browser and approve access to the book:\n\n  {}\n",
        client.authorize_url(&state)
    );
    println!("Waiting for Reckon to redirect to {redirect} …");
    let code = tokio::time::timeout(timeout, receive_code(&listener, redirect.path(), &state))
        .await
        .map_err(|_| anyhow!("no redirect from Reckon within {} s", timeout.as_secs()))??;
    client.connect(&code).await.map_err(|e| anyhow!("{e}"))
}

/// Accepts connections until one brings `path?code=…&state=…` with our state.
async fn receive_code(
    listener: &tokio::net::TcpListener,
    path: &str,
    expected_state: &str,
) -> anyhow::Result<String> {
    loop {
        let (mut socket, _) = listener.accept().await?;
        let mut buf = vec![0u8; 8192];
        let n = socket.read(&mut buf).await?;
        let request = String::from_utf8_lossy(&buf[..n]);
        let target = request
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("/");
        let url = url::Url::parse(&format!("http://localhost{target}"))?;
        if url.path() != path {
            socket
                .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                .await?;
            continue;
        }
        let param = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        let (body, outcome) = match (param("code"), param("state"), param("error")) {
            (_, _, Some(err)) => (
                "Reckon refused access.",
                Err(anyhow!("Reckon refused access: {err}")),
            ),
            (Some(code), Some(state), None) if state == expected_state => {
                ("Connected. You can close this tab.", Ok(code))
            }
            (_, Some(_), None) => (
                "State mismatch: ignored.",
                Err(anyhow!(
                    "the redirect carried a different state: ignored (possible CSRF)"
                )),
            ),
            _ => (
                "Missing code.",
                Err(anyhow!("the redirect carried no code")),
            ),
        };
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(response.as_bytes()).await?;
        return outcome;
    }
}

/// The demo's connect: the Reckon simulator approves at once, so follow its redirect by
/// hand (checking `state`) and exchange the code, exactly as the browser flow would.
pub async fn connect_auto_approved(s: &ReckonSettings, store: SqliteState) -> anyhow::Result<()> {
    let client = ReckonClient::new(reckon_config(s)?, store).map_err(|e| anyhow!("{e}"))?;
    let state = uuid::Uuid::new_v4().simple().to_string();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let response = http.get(client.authorize_url(&state)).send().await?;
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            anyhow!(
                "authorize answered {} without a redirect",
                response.status()
            )
        })?;
    let url = url::Url::parse(location)?;
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    if param("state").as_deref() != Some(state.as_str()) {
        bail!("the redirect carried a different state");
    }
    let code = param("code").ok_or_else(|| anyhow!("the redirect carried no code"))?;
    client.connect(&code).await.map_err(|e| anyhow!("{e}"))
}

/// `config check` for Reckon: the book must be reachable with the stored tokens, and the
/// configured accounts present (or replaceable; the notes say by what).
pub async fn check_reckon(
    s: &ReckonSettings,
    store: SqliteState,
    mapping: &MappingConfig,
) -> anyhow::Result<Vec<String>> {
    let mut mapping = mapping.clone();
    let (_, notes) = reckon_checked(s, store, &mut mapping).await?;
    Ok(notes)
}
