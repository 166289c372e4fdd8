//! The `reckon-sim` binary: starts on a free port, prints a working bearer token and serves
//! the API; `--help` documents every flag.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_reckon-sim");

/// Kills the child when the test ends, pass or fail.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The value after `label` on the first stdout line that starts with it.
fn field(lines: &[String], label: &str) -> Option<String> {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(label))
        .map(|v| v.trim().to_string())
}

#[tokio::test]
async fn binary_serves_with_the_printed_token() {
    let port = free_port();
    let child = Command::new(BIN)
        .args([
            "--port",
            &port.to_string(),
            "--rate-limit",
            "0",
            "--existing-customers",
            "3",
            "--subscription-key",
            "bin-key-1",
            "--subscription-key",
            "bin-key-2",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("reckon-sim starts");
    let mut running = Running(child);
    let stdout = running.0.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while field(&lines, "Admin routes:").is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => panic!("no start-up banner; got {lines:?}"),
        }
    }
    let api = field(&lines, "API base URL:").expect("API base printed");
    assert_eq!(api, format!("http://127.0.0.1:{port}/r1/v2"));
    let token = field(&lines, "Bearer token:").expect("token printed");
    let book = field(&lines, "Book id:").expect("book printed");
    assert_eq!(
        field(&lines, "Subscription key:").as_deref(),
        Some("bin-key-1")
    );
    assert!(field(&lines, "Identity URL:").is_some());
    assert!(field(&lines, "Client id:").is_some());
    assert!(field(&lines, "Client secret:").is_some());

    let http = reqwest::Client::new();
    // Poll until it answers.
    let heartbeat = format!("{api}/heartbeat");
    let mut answered = false;
    for _ in 0..100 {
        if let Ok(r) = http
            .get(&heartbeat)
            .bearer_auth(&token)
            .header("Ocp-Apim-Subscription-Key", "bin-key-2")
            .send()
            .await
        {
            assert_eq!(r.status(), 200);
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answered, "the simulator never answered");
    let r = http
        .get(format!("{api}/{book}/customers"))
        .bearer_auth(&token)
        .header("Ocp-Apim-Subscription-Key", "bin-key-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("X-Total-Count")
            .and_then(|v| v.to_str().ok()),
        Some("3")
    );
    let body: serde_json::Value = r.json().await.unwrap();
    let list = body["list"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert!(
        list.iter()
            .all(|c| c["electronicAddresses"][0]["address"].is_string()),
        "{body}"
    );
    // The default key is off when keys are given.
    let r = http
        .get(format!("{api}/{book}/customers"))
        .bearer_auth(&token)
        .header(
            "Ocp-Apim-Subscription-Key",
            simulators::reckon::DEFAULT_SUBSCRIPTION_KEY,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[test]
fn help_documents_every_flag_and_default() {
    let out = Command::new(BIN)
        .arg("--help")
        .output()
        .expect("reckon-sim --help");
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--host",
        "--port",
        "--seed",
        "--client-id",
        "--client-secret",
        "--subscription-key",
        "--access-token-ttl",
        "--reuse-refresh-tokens",
        "--rate-limit",
        "--rate-burst",
        "--max-per-page",
        "--rounding",
        "--error-rate",
        "--error-route",
        "--latency-ms",
        "--hang-rate",
        "--drop-rate",
        "--existing-customers",
        "--size",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
    for default in [
        "[default: 127.0.0.1]",
        "[default: 8082]",
        "[default: 10800]",
        "[default: 60]",
        "[default: 100]",
        "[default: line-half-up]",
        "line-half-even",
        "invoice-total",
        "publishes no",
    ] {
        assert!(help.contains(default), "--help lacks {default}:\n{help}");
    }
}

#[test]
fn bad_flags_are_refused() {
    let out = Command::new(BIN)
        .args(["--rounding", "sometimes"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
}
