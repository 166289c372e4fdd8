//! Runs the built `cliniko-sim` binary: it starts on a free port, answers an authenticated
//! request, and its `--help` documents every flag.

use simulators::cliniko::DEFAULT_API_KEY;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_cliniko-sim");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the child when the test ends, even on a failed assertion.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

#[test]
fn help_documents_every_flag() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--host",
        "--port",
        "--seed",
        "--size",
        "--api-key",
        "--rate-limit",
        "--error-rate",
        "--error-route",
        "--latency-ms",
        "--hang-rate",
        "--drop-rate",
        "--no-user-agent-check",
    ] {
        assert!(
            help.contains(flag),
            "--help does not mention {flag}:\n{help}"
        );
    }
    assert!(help.contains("[default: 8081]"));
    assert!(help.contains("[default: 200]"));
    let bad = Command::new(BIN)
        .args(["--error-rate", "2"])
        .output()
        .unwrap();
    assert!(!bad.status.success(), "rates outside 0..1 are refused");
}

#[tokio::test]
async fn binary_serves_an_authenticated_patient_list() {
    let port = free_port();
    let child = Command::new(BIN)
        .args(["--port", &port.to_string(), "--size", "3", "--seed", "7"])
        .args(["--api-key", "BinaryTestKey-au2", "--rate-limit", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Running(child);
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/v1/patients");
    let deadline = Instant::now() + Duration::from_secs(20);
    let response = loop {
        let attempt = client
            .get(&url)
            .basic_auth("BinaryTestKey", Some(""))
            .header("User-Agent", "Binary test (dev@example.com)")
            .header("Accept", "application/json")
            .send()
            .await;
        match attempt {
            Ok(r) => break r,
            Err(e) if Instant::now() < deadline => {
                assert!(child.0.try_wait().unwrap().is_none(), "exited early: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("cliniko-sim did not answer: {e}"),
        }
    };
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["total_entries"], serde_json::json!(3), "{body}");
    assert!(body["patients"][0]["id"].is_string());
    // Only the configured key is accepted.
    let denied = client
        .get(&url)
        .basic_auth(DEFAULT_API_KEY, Some(""))
        .header("User-Agent", "Binary test (dev@example.com)")
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);

    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let mut banner = String::new();
    use std::io::Read;
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut banner)
        .unwrap();
    assert!(
        banner.contains(&format!("http://127.0.0.1:{port}/v1")),
        "{banner}"
    );
    assert!(banner.contains("BinaryTestKey-au2"), "{banner}");
    assert!(banner.contains("/__admin/faults"), "{banner}");
}
