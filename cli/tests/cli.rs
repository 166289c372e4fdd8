//! Runs the built `cliniko-reckon` binary: the demo end to end, `status` on its state file,
//! and configuration errors that name the missing value.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_cliniko-reckon");

/// The binary with none of the configuration variables inherited from the environment.
fn cmd() -> Command {
    let mut c = Command::new(BIN);
    for var in [
        "CLINIKO_API_KEY",
        "CLINIKO_BASE_URL",
        "CLINIKO_USER_AGENT",
        "RECKON_API_BASE_URL",
        "RECKON_IDENTITY_URL",
        "RECKON_CLIENT_ID",
        "RECKON_CLIENT_SECRET",
        "RECKON_SUBSCRIPTION_KEY",
        "RECKON_BOOK_ID",
        "RECKON_REFRESH_TOKEN",
    ] {
        c.env_remove(var);
    }
    c
}

#[test]
fn demo_syncs_a_clinic_then_status_reads_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("demo.sqlite");
    let out = cmd()
        .args(["demo", "--size", "40", "--rounds", "2", "--json", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        summary["invoices_checked"], summary["invoices_equal_to_the_cent"],
        "{summary}"
    );
    assert!(summary["invoices_checked"].as_u64().unwrap() > 40);
    assert!(
        summary["backfill"]["entities"]["patient"]["created"]
            .as_u64()
            .unwrap()
            > 20
    );
    assert_eq!(summary["backfill"]["failed"], 0);
    for round in summary["rounds"].as_array().unwrap() {
        assert_eq!(round["entities"]["patient"]["created"], 1, "{round}");
        assert_eq!(round["entities"]["invoice"]["created"], 1, "{round}");
        assert!(
            round["entities"]["invoice"]["updated"].as_u64().unwrap() >= 1,
            "{round}"
        );
        assert_eq!(round["entities"]["product"]["created"], 1, "{round}");
    }
    assert_eq!(
        summary["idle_run"]["api_requests"]["reckon"], 0,
        "an idle run writes nothing to Reckon: {summary}"
    );
    assert!(state.exists());

    let status = cmd()
        .args(["status", "--json", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(status.status.success());
    let view: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(view["watermarks"].as_array().unwrap().len(), 4, "{view}");
    assert_eq!(view["queued"], 0);
    assert_eq!(view["failed"].as_array().unwrap().len(), 0);
}

#[test]
fn a_missing_setting_is_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = cmd()
        .current_dir(dir.path())
        .args(["sync", "--once"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("CLINIKO_API_KEY"), "{stderr}");

    let out = cmd()
        .current_dir(dir.path())
        .env("CLINIKO_API_KEY", "abc-au2")
        .env("CLINIKO_USER_AGENT", "no contact here")
        .args(["sync", "--once"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("CLINIKO_USER_AGENT"), "{stderr}");

    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[reckon]\nbook = \"x\"\n").unwrap();
    let out = cmd()
        .arg("--config")
        .arg(&config)
        .args(["config", "check"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("book"), "unknown keys are named: {stderr}");
}

#[test]
fn help_lists_every_command() {
    let out = cmd().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for c in ["demo", "sync", "connect", "status", "config"] {
        assert!(help.contains(c), "{help}");
    }
    let out = cmd().args(["sync", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in ["--once", "--watch", "--interval", "--json"] {
        assert!(help.contains(flag), "{help}");
    }
}
