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
    assert_eq!(summary["reconciliation"]["mismatches"], 0, "{summary}");
    let report = summary["reconciliation"]["report"].as_str().unwrap();
    assert!(std::path::Path::new(report).exists(), "{report}");

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

/// `demo --invoicing completed_appointments`: an appointments clinic, where attended
/// appointments become invoices priced from their type and a cancelled one is credited.
#[test]
fn demo_of_an_appointments_clinic_invoices_attended_appointments_and_withdraws_a_cancelled_one() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("demo.sqlite");
    let out = cmd()
        .args([
            "demo",
            "--size",
            "30",
            "--rounds",
            "2",
            "--invoicing",
            "completed_appointments",
            "--json",
            "--state",
        ])
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
    let backfill = &summary["backfill"]["entities"];
    assert!(
        backfill["appointment"]["created"].as_u64().unwrap() > 30,
        "{backfill}"
    );
    assert_eq!(
        backfill["invoice"]["created"], 0,
        "Cliniko's invoices are not read"
    );
    for round in summary["rounds"].as_array().unwrap() {
        let appointments = &round["entities"]["appointment"];
        assert_eq!(appointments["created"], 1, "the attended one: {round}");
        assert_eq!(appointments["updated"], 1, "the cancelled one: {round}");
    }
    assert_eq!(summary["idle_run"]["api_requests"]["reckon"], 0);
    assert_eq!(summary["reconciliation"]["mismatches"], 0, "{summary}");
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

/// `cliniko-reckon … | head` closing the pipe early ends the command quietly: no panic.
#[cfg(unix)]
#[test]
fn a_closed_output_pipe_is_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = cmd()
        .args(["demo", "--size", "40", "--rounds", "1", "--json", "--state"])
        .arg(dir.path().join("pipe.sqlite"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before (or while) the command writes.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn help_lists_every_command() {
    let out = cmd().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for c in ["demo", "sync", "connect", "status", "reconcile", "config"] {
        assert!(help.contains(c), "{help}");
    }
    let out = cmd().args(["sync", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in ["--once", "--watch", "--interval", "--json"] {
        assert!(help.contains(flag), "{help}");
    }
}

mod against_simulators {
    use super::cmd;
    use simulators::cliniko::{ClinikoConfig, ClinikoSim, DEFAULT_API_KEY};
    use simulators::common::RunningServer;
    use simulators::generator::{self, ClinicSize};
    use simulators::reckon::{DEFAULT_SUBSCRIPTION_KEY, ReckonConfig, ReckonSim};
    use std::process::{Command, Output};

    struct Sims {
        cliniko: ClinikoSim,
        reckon: ReckonSim,
        cliniko_server: RunningServer,
        reckon_server: RunningServer,
    }

    async fn sims() -> Sims {
        let cliniko = ClinikoSim::new(ClinikoConfig::default());
        cliniko.with(|s| generator::seed_clinic(s, 3, ClinicSize::with_patients(20)));
        let reckon = ReckonSim::new(ReckonConfig {
            rate_limit_per_minute: 0,
            ..Default::default()
        });
        let cliniko_server = cliniko.start("127.0.0.1", 0).await.unwrap();
        let reckon_server = reckon.start("127.0.0.1", 0).await.unwrap();
        Sims {
            cliniko,
            reckon,
            cliniko_server,
            reckon_server,
        }
    }

    /// The binary configured for the simulators through the documented variables (plus a
    /// config file lifting the client's Reckon pacing, which the simulator does not need).
    fn configured(s: &Sims, state: &std::path::Path, args: &[&str]) -> Command {
        let oauth = &s.reckon.config().oauth;
        let mut c = cmd();
        if !args.contains(&"--config") {
            let config = state.with_extension("toml");
            std::fs::write(&config, "[sync]\nreckon_requests_per_minute = 0\n").unwrap();
            c.arg("--config").arg(config);
        }
        c.env("CLINIKO_API_KEY", DEFAULT_API_KEY)
            .env(
                "CLINIKO_BASE_URL",
                format!("{}/v1", s.cliniko_server.origin()),
            )
            .env("CLINIKO_USER_AGENT", "CLI test (cli@example.com)")
            .env(
                "RECKON_API_BASE_URL",
                format!("{}/r1/v2", s.reckon_server.origin()),
            )
            .env("RECKON_IDENTITY_URL", s.reckon_server.origin())
            .env("RECKON_CLIENT_ID", &oauth.client_id)
            .env("RECKON_CLIENT_SECRET", &oauth.client_secret)
            .env("RECKON_SUBSCRIPTION_KEY", DEFAULT_SUBSCRIPTION_KEY)
            .env("RECKON_BOOK_ID", s.reckon.book_id().to_string())
            .arg("--state")
            .arg(state)
            .args(args);
        c
    }

    async fn run(mut c: Command) -> Output {
        tokio::task::spawn_blocking(move || c.output().unwrap())
            .await
            .unwrap()
    }

    fn json(out: &Output) -> serde_json::Value {
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn headless_connect_then_check_then_sync_once() {
        let s = sims().await;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("clinic.sqlite");

        // Without tokens, sync says how to connect.
        let out = run(configured(&s, &state, &["sync", "--once"])).await;
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("connect"));

        // For AWS: the pair goes to an owner-only file in the tokens secret's format, and
        // nowhere else (no state file is written).
        let tokens_file = dir.path().join("tokens.json");
        let tokens_arg = tokens_file.display().to_string();
        let aws_token = s.reckon.issue_tokens().refresh_token;
        let elsewhere = dir.path().join("unused.sqlite");
        let out = run(configured(
            &s,
            &elsewhere,
            &[
                "connect",
                "--refresh-token",
                &aws_token,
                "--tokens-json",
                &tokens_arg,
            ],
        ))
        .await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!elsewhere.exists(), "no local copy of the pair");
        let secret: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&tokens_file).unwrap()).unwrap();
        for field in ["access_token", "refresh_token", "expires_at"] {
            assert!(
                secret[field].as_str().is_some_and(|v| !v.is_empty()),
                "{field}: {secret}"
            );
        }
        assert_ne!(secret["refresh_token"], aws_token.as_str(), "rotated");
        assert!(
            chrono::DateTime::parse_from_rfc3339(secret["expires_at"].as_str().unwrap()).is_ok()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&tokens_file)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let unspent = s.reckon.issue_tokens().refresh_token;
        let again = run(configured(
            &s,
            &elsewhere,
            &[
                "connect",
                "--refresh-token",
                &unspent,
                "--tokens-json",
                &tokens_arg,
            ],
        ))
        .await;
        assert!(
            !again.status.success(),
            "an existing file is never replaced"
        );
        assert!(
            String::from_utf8_lossy(&again.stderr).contains("must not exist yet"),
            "{}",
            String::from_utf8_lossy(&again.stderr)
        );

        // Into a directory that does not exist: refused before the token is redeemed, so
        // the same token still connects below.
        let token = s.reckon.issue_tokens().refresh_token;
        let nowhere = dir.path().join("missing-dir").join("tokens.json");
        let out = run(configured(
            &s,
            &elsewhere,
            &[
                "connect",
                "--refresh-token",
                &token,
                "--tokens-json",
                &nowhere.display().to_string(),
            ],
        ))
        .await;
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("missing-dir"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );

        let out = run(configured(
            &s,
            &state,
            &["connect", "--refresh-token", &token],
        ))
        .await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );

        let out = run(configured(&s, &state, &["config", "check"])).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("Reckon: ok"));

        // An account the book does not have is replaced by one of the right type, with a note.
        let odd = dir.path().join("odd-accounts.toml");
        std::fs::write(
            &odd,
            "[mapping]\nproduct_income_account = \"Physio Retail\"\n[sync]\nreckon_requests_per_minute = 0\n",
        )
        .unwrap();
        let odd_arg = odd.display().to_string();
        let out = run(configured(
            &s,
            &state,
            &["--config", &odd_arg, "config", "check"],
        ))
        .await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}");
        assert!(
            stdout.contains("warning: mapping.product_income_account")
                && stdout.contains("Physio Retail"),
            "{stdout}"
        );

        // The go-live preview: nothing written, the plan on disk, and the real run after it
        // does what it said.
        let preview_dir = dir.path().join("preview");
        let writes_before_preview: u64 = ["POST", "PUT", "PATCH"]
            .iter()
            .map(|m| s.reckon.traffic.count(m, "/r1/v2/"))
            .sum();
        let plan = json(
            &run(configured(
                &s,
                &state,
                &[
                    "sync",
                    "--once",
                    "--dry-run",
                    "--json",
                    "--out",
                    &preview_dir.display().to_string(),
                ],
            ))
            .await,
        );
        let writes_after_preview: u64 = ["POST", "PUT", "PATCH"]
            .iter()
            .map(|m| s.reckon.traffic.count(m, "/r1/v2/"))
            .sum();
        assert_eq!(
            writes_after_preview, writes_before_preview,
            "a preview writes nothing"
        );
        for f in ["plan.json", "plan.csv", "plan.html"] {
            assert!(preview_dir.join(f).exists(), "{f}");
        }
        let planned_creates = plan["summary"]["create"].as_u64().unwrap();
        assert!(planned_creates >= 20, "{}", plan["summary"]);

        let first = json(&run(configured(&s, &state, &["sync", "--once", "--json"])).await);
        let created: u64 = ["patient", "product", "billable_item", "invoice"]
            .iter()
            .map(|k| first["entities"][k]["created"].as_u64().unwrap())
            .sum();
        assert_eq!(
            created, planned_creates,
            "the sync created what the preview said"
        );
        assert_eq!(first["failed"], 0, "{first}");
        assert!(
            first["entities"]["patient"]["created"].as_u64().unwrap() >= 20,
            "{first}"
        );
        assert!(first["api_requests"]["cliniko"].as_u64().unwrap() > 0);
        let customers = s.reckon.with_book(|b, _| b.customers.len());
        assert_eq!(
            customers as u64,
            first["entities"]["patient"]["created"].as_u64().unwrap()
        );

        let writes = |s: &Sims| -> u64 {
            ["POST", "PUT", "PATCH"]
                .iter()
                .map(|m| s.reckon.traffic.count(m, "/r1/v2/"))
                .sum()
        };
        // One writer per state file: a `sync --watch` holds it, a second sync refuses at
        // once naming it, and nothing is written twice.
        let before_watch = writes(&s);
        let mut watch = configured(&s, &state, &["sync", "--watch", "--interval", "1h"]);
        watch
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut watcher = watch.spawn().unwrap();
        let lock = {
            let mut p = state.as_os_str().to_owned();
            p.push(".lock");
            std::path::PathBuf::from(p)
        };
        let holder = format!("\"pid\":{}", watcher.id());
        for _ in 0..200 {
            if std::fs::read_to_string(&lock).is_ok_and(|t| t.contains(&holder)) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        let refused = run(configured(&s, &state, &["sync", "--once"])).await;
        watcher.kill().unwrap();
        watcher.wait().unwrap();
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success());
        assert!(
            stderr.contains("in use by `sync --watch`")
                && stderr.contains(&format!("pid {}", watcher.id())),
            "{stderr}"
        );
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert_eq!(
            writes(&s),
            before_watch,
            "the watcher found nothing new to write"
        );

        let before = writes(&s);
        let second = json(&run(configured(&s, &state, &["sync", "--once", "--json"])).await);
        assert_eq!(writes(&s), before, "a second sync writes nothing: {second}");
        assert_eq!(second["api_requests"]["reckon"], 0, "{second}");

        // Reconcile: clean after the sync, then a customer renamed in Reckon is found, the
        // report files are written and the exit code says mismatches exist.
        let out_dir = dir.path().join("reconciliation");
        let out_arg = out_dir.display().to_string();
        let clean = json(
            &run(configured(
                &s,
                &state,
                &["reconcile", "--out", &out_arg, "--json"],
            ))
            .await,
        );
        assert_eq!(
            clean["mismatches"].as_array().map(Vec::len),
            Some(0),
            "{clean}"
        );
        s.reckon.with_book(|b, _| {
            let c = b.customers.values_mut().next().unwrap();
            c.name = format!("{} (renamed by hand)", c.name);
        });
        let out = run(configured(&s, &state, &["reconcile", "--out", &out_arg])).await;
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("1 mismatches need attention"), "{stdout}");
        let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
        assert!(html.contains("(renamed by hand)"));
        let csv = std::fs::read_to_string(out_dir.join("field_drift.csv")).unwrap();
        assert_eq!(csv.lines().count(), 2, "header and one row: {csv}");
        for file in ["report.json", "missing_in_reckon.csv", "sync_failure.csv"] {
            assert!(out_dir.join(file).exists(), "{file}");
        }

        // --repair queues the renamed customer's patient; the next sync renames it back.
        let repaired = run(configured(
            &s,
            &state,
            &["reconcile", "--out", &out_arg, "--repair"],
        ))
        .await;
        assert_eq!(repaired.status.code(), Some(2));
        let stdout = String::from_utf8_lossy(&repaired.stdout);
        assert!(
            stdout.contains("Repair: queued 1 record(s)") && stdout.contains("1 to rewrite"),
            "{stdout}"
        );
        let applied = json(&run(configured(&s, &state, &["sync", "--once", "--json"])).await);
        assert_eq!(applied["entities"]["patient"]["updated"], 1, "{applied}");
        let again = run(configured(&s, &state, &["reconcile", "--out", &out_arg])).await;
        assert!(
            again.status.success(),
            "{}",
            String::from_utf8_lossy(&again.stdout)
        );

        // link refuses what it cannot do, naming why.
        let (patient, customer) = {
            use cliniko_reckon::ports::StateStore;
            let store = cliniko_reckon::adapters::sqlite::SqliteState::open(&state).unwrap();
            let links = store
                .links(cliniko_reckon::domain::EntityKind::Patient)
                .await
                .unwrap();
            let (p, c) = links.first().copied().unwrap();
            (p.to_string(), c.to_string())
        };
        let unknown = uuid::Uuid::new_v4().to_string();
        let refused = run(configured(
            &s,
            &state,
            &["link", "patient", &patient, &unknown],
        ))
        .await;
        assert_eq!(refused.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains("already linked"), "{stderr}");
        let bad_kind = run(configured(
            &s,
            &state,
            &["link", "practitioner", &patient, &customer],
        ))
        .await;
        assert_eq!(bad_kind.status.code(), Some(2), "clap usage error");
        let same = run(configured(
            &s,
            &state,
            &["link", "patient", &patient, &customer],
        ))
        .await;
        assert!(
            same.status.success(),
            "linking the same pair again is harmless: {}",
            String::from_utf8_lossy(&same.stderr)
        );
        drop(s.cliniko);
    }

    /// `[invoicing] draft_above`: open invoices above the threshold wait as Draft for a
    /// bookkeeper; the rest are approved, paid ones receipted; the reconciliation is clean.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_approval_threshold_leaves_large_open_invoices_for_a_bookkeeper() {
        let s = sims().await;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("clinic.sqlite");
        let token = s.reckon.issue_tokens().refresh_token;
        let out = run(configured(
            &s,
            &state,
            &["connect", "--refresh-token", &token],
        ))
        .await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );

        // The threshold: the median total of the clinic's open invoices, so both sides of it
        // are exercised whatever the seed made.
        let mut open_totals: Vec<rust_decimal::Decimal> = s.cliniko.with(|c| {
            c.tables
                .invoices
                .values()
                .filter(|i| i.status == 10 && i.deleted_at.is_none() && i.archived_at.is_none())
                .filter_map(|i| i.total_amount)
                .filter(|t| t.is_sign_positive())
                .collect()
        });
        open_totals.sort();
        assert!(
            open_totals.len() >= 2,
            "the seed has open invoices: {open_totals:?}"
        );
        let threshold = open_totals[open_totals.len() / 2 - 1];
        let config = dir.path().join("approval.toml");
        std::fs::write(
            &config,
            format!("[invoicing]\ndraft_above = \"{threshold}\"\n[sync]\nreckon_requests_per_minute = 0\n"),
        )
        .unwrap();
        let config_arg = config.display().to_string();
        let synced = json(
            &run(configured(
                &s,
                &state,
                &["--config", &config_arg, "sync", "--once", "--json"],
            ))
            .await,
        );
        assert_eq!(synced["failed"], 0, "{synced}");

        // Cliniko's open invoices by number, and what Reckon holds for each.
        let open: std::collections::BTreeMap<String, rust_decimal::Decimal> = s.cliniko.with(|c| {
            c.tables
                .invoices
                .values()
                .filter(|i| i.status == 10 && i.deleted_at.is_none() && i.archived_at.is_none())
                .filter_map(|i| Some((i.number.to_string(), i.total_amount?)))
                .filter(|(_, t)| t.is_sign_positive())
                .collect()
        });
        let in_reckon: Vec<(String, String, bool)> = s.reckon.with_book(|b, _| {
            b.invoices
                .values()
                .filter_map(|i| {
                    let reference = i.reference.clone()?;
                    Some((
                        reference,
                        i.status.clone(),
                        open.contains_key(i.reference.as_deref()?),
                    ))
                })
                .collect()
        });
        let (mut drafts, mut approved_open) = (0, 0);
        for (reference, status, is_open) in &in_reckon {
            let total = open.get(reference).copied();
            match (is_open, total) {
                (true, Some(t)) if t > threshold => {
                    assert_eq!(
                        status, "Draft",
                        "open invoice {reference} of {t} > {threshold}"
                    );
                    drafts += 1;
                }
                (true, Some(t)) => {
                    assert_eq!(
                        status, "Approved",
                        "open invoice {reference} of {t} <= {threshold}"
                    );
                    approved_open += 1;
                }
                _ => assert_ne!(
                    status, "Draft",
                    "a settled invoice {reference} is never left as Draft"
                ),
            }
        }
        assert!(
            drafts > 0 && approved_open > 0,
            "both sides of the threshold: {in_reckon:?}"
        );

        let out_dir = dir.path().join("reconciliation");
        let out_arg = out_dir.display().to_string();
        let clean = json(
            &run(configured(
                &s,
                &state,
                &[
                    "--config",
                    &config_arg,
                    "reconcile",
                    "--out",
                    &out_arg,
                    "--json",
                ],
            ))
            .await,
        );
        assert_eq!(
            clean["mismatches"].as_array().map(Vec::len),
            Some(0),
            "{clean}"
        );

        // Payment terms the book does not have stop the run at start, naming the key.
        std::fs::write(
            &config,
            "[invoicing]\npayment_terms = \"60 days\"\n[sync]\nreckon_requests_per_minute = 0\n",
        )
        .unwrap();
        let out = run(configured(
            &s,
            &state,
            &["--config", &config_arg, "sync", "--once"],
        ))
        .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.contains(
                "invoicing.payment_terms: the book has no active payment terms \"60 days\""
            ) && stderr.contains("\"30 days net\""),
            "{stderr}"
        );

        // A mistyped key is refused at start, naming it.
        std::fs::write(&config, "[invoicing]\ndraft_abov = 10\n").unwrap();
        let out = run(configured(
            &s,
            &state,
            &["--config", &config_arg, "sync", "--once"],
        ))
        .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.contains("invoicing") && stderr.contains("draft_abov"),
            "{stderr}"
        );
    }

    /// `[customers] name_format`: a change renames a customer when its patient next changes;
    /// the reconciliation lists the rest, `--repair` queues them, and after one sync every
    /// customer has the new form and the reconciliation is clean.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_name_format_change_reaches_every_customer_through_the_repair() {
        let s = sims().await;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("clinic.sqlite");
        let token = s.reckon.issue_tokens().refresh_token;
        let out = run(configured(
            &s,
            &state,
            &["connect", "--refresh-token", &token],
        ))
        .await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let first = json(&run(configured(&s, &state, &["sync", "--once", "--json"])).await);
        assert_eq!(first["failed"], 0, "{first}");

        let config = dir.path().join("last-first.toml");
        std::fs::write(
            &config,
            "[customers]\nname_format = \"last_first\"\n[sync]\nreckon_requests_per_minute = 0\n",
        )
        .unwrap();
        let config_arg = config.display().to_string();
        // One patient changes in Cliniko: only its customer is renamed by the next sync.
        let (touched, first_name, last_name) = s.cliniko.with(|c| {
            let now = c.now();
            let p = c
                .tables
                .patients
                .values_mut()
                .find(|p| !p.first_name.trim().is_empty() && !p.last_name.trim().is_empty())
                .expect("a named patient");
            p.notes = Some("seen again".into());
            p.updated_at = now;
            (
                p.id,
                p.first_name.trim().to_string(),
                p.last_name.trim().to_string(),
            )
        });
        let synced = json(
            &run(configured(
                &s,
                &state,
                &["--config", &config_arg, "sync", "--once", "--json"],
            ))
            .await,
        );
        assert_eq!(synced["entities"]["patient"]["updated"], 1, "{synced}");
        let names = || -> Vec<String> {
            s.reckon
                .with_book(|b, _| b.customers.values().map(|c| c.name.clone()).collect())
        };
        let renamed = format!("{last_name}, {first_name}");
        assert!(
            names().iter().any(|n| n.starts_with(&renamed)),
            "patient {touched} renamed to {renamed:?}: {:?}",
            names()
        );

        let out_arg = dir.path().join("reconciliation").display().to_string();
        let before = run(configured(
            &s,
            &state,
            &[
                "--config",
                &config_arg,
                "reconcile",
                "--out",
                &out_arg,
                "--repair",
            ],
        ))
        .await;
        assert_eq!(before.status.code(), Some(2), "the others are listed");
        let all = json(
            &run(configured(
                &s,
                &state,
                &["--config", &config_arg, "sync", "--once", "--json"],
            ))
            .await,
        );
        assert_eq!(all["failed"], 0, "{all}");
        let clean = json(
            &run(configured(
                &s,
                &state,
                &[
                    "--config",
                    &config_arg,
                    "reconcile",
                    "--out",
                    &out_arg,
                    "--json",
                ],
            ))
            .await,
        );
        assert_eq!(
            clean["mismatches"].as_array().map(Vec::len),
            Some(0),
            "{clean}"
        );
        let with_comma = names().iter().filter(|n| n.contains(", ")).count();
        let patients = s.cliniko.with(|c| {
            c.tables
                .patients
                .values()
                .filter(|p| !p.first_name.trim().is_empty() && !p.last_name.trim().is_empty())
                .count()
        });
        assert!(
            with_comma >= patients,
            "{with_comma} of {patients}: {:?}",
            names()
        );
    }

    /// `[accounts]`: services to the clinic's account, one billable item to its own; an own
    /// account the book lacks stops the run at start, naming the key.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn items_are_written_to_the_accounts_the_clinic_names() {
        let s = sims().await;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("clinic.sqlite");
        let token = s.reckon.issue_tokens().refresh_token;
        let out = run(configured(
            &s,
            &state,
            &["connect", "--refresh-token", &token],
        ))
        .await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (own, others): (String, Vec<String>) = s.cliniko.with(|c| {
            let mut names: Vec<String> = c
                .tables
                .billable_items
                .values()
                .filter(|b| b.archived_at.is_none())
                .map(|b| b.name.trim().to_string())
                .collect();
            names.sort();
            names.dedup();
            let own = names.remove(0);
            (own, names)
        });
        assert!(!others.is_empty(), "the seed has several billable items");
        let config = dir.path().join("accounts.toml");
        let config_arg = config.display().to_string();
        std::fs::write(
            &config,
            format!("[accounts]\nservices = \"consultation fees\"\n[accounts.items]\n{own:?} = \"Sales\"\n[sync]\nreckon_requests_per_minute = 0\n"),
        )
        .unwrap();
        let synced = json(
            &run(configured(
                &s,
                &state,
                &["--config", &config_arg, "sync", "--once", "--json"],
            ))
            .await,
        );
        assert_eq!(synced["failed"], 0, "{synced}");
        let accounts: std::collections::BTreeMap<String, String> = s.reckon.with_book(|b, _| {
            b.items
                .values()
                .filter_map(|i| {
                    let account = b.ledger_accounts.get(&i.sale.as_ref()?.ledger_account)?;
                    Some((i.name.clone(), account.name.clone()))
                })
                .collect()
        });
        assert_eq!(
            accounts.get(&own).map(String::as_str),
            Some("Sales"),
            "{accounts:?}"
        );
        for name in &others {
            if let Some(account) = accounts.get(name) {
                assert_eq!(account, "Consultation Fees", "{name}");
            }
        }

        std::fs::write(
            &config,
            format!(
                "[accounts.items]\n{own:?} = \"Nowhere\"\n[sync]\nreckon_requests_per_minute = 0\n"
            ),
        )
        .unwrap();
        let out = run(configured(
            &s,
            &state,
            &["--config", &config_arg, "sync", "--once"],
        ))
        .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.contains(&format!(
                "accounts.items.{own:?}: the book has no active account \"Nowhere\""
            )),
            "{stderr}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn browser_connect_receives_the_code_on_the_loopback_redirect() {
        let s = sims().await;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("clinic.sqlite");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("clinic.toml");
        std::fs::write(
            &config,
            format!(
                "[reckon]\nredirect_uri = \"http://127.0.0.1:{port}/callback\"\n[sync]\nreckon_requests_per_minute = 0\n"
            ),
        )
        .unwrap();
        let config_arg = config.display().to_string();
        let mut c = configured(
            &s,
            &state,
            &["--config", &config_arg, "connect", "--timeout", "30s"],
        );
        c.stdout(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        // Read the authorize URL the command prints, then play the browser.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Keep draining stdout so the command's later lines never hit a closed pipe.
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if line.trim().starts_with("http") {
                    tx.send(line.trim().to_string()).ok();
                }
            }
        });
        let url = tokio::task::spawn_blocking(move || {
            rx.recv_timeout(std::time::Duration::from_secs(20))
        })
        .await
        .unwrap()
        .expect("connect printed an authorize URL");
        assert!(url.contains("state="), "{url}");
        let page = reqwest::get(&url).await.unwrap();
        assert!(page.status().is_success(), "{}", page.status());
        assert!(page.text().await.unwrap().contains("Connected"));
        let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
            .await
            .unwrap();
        assert!(status.success());
        // The stored tokens work: config check reaches the book.
        let out = run(configured(
            &s,
            &state,
            &["--config", &config_arg, "config", "check"],
        ))
        .await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// One clinic of a multi-clinic state file: its own simulator pair and TOML file.
    struct Clinic {
        id: &'static str,
        sims: Sims,
        config: std::path::PathBuf,
    }

    async fn clinic(id: &'static str, seed: u64, dir: &std::path::Path) -> Clinic {
        let cliniko = ClinikoSim::new(ClinikoConfig::default());
        cliniko.with(|s| {
            generator::seed_clinic(s, seed, ClinicSize::with_patients(12));
            s.create_patient(
                &serde_json::json!({"first_name": "Only", "last_name": format!("In-{id}")})
                    .as_object()
                    .unwrap()
                    .clone(),
            )
            .unwrap();
        });
        let reckon = ReckonSim::new(ReckonConfig {
            rate_limit_per_minute: 0,
            seed,
            ..Default::default()
        });
        let cliniko_server = cliniko.start("127.0.0.1", 0).await.unwrap();
        let reckon_server = reckon.start("127.0.0.1", 0).await.unwrap();
        let sims = Sims {
            cliniko,
            reckon,
            cliniko_server,
            reckon_server,
        };
        let oauth = &sims.reckon.config().oauth;
        let config = dir.join(format!("{id}.toml"));
        std::fs::write(
            &config,
            format!(
                "[cliniko]\napi_key = \"{DEFAULT_API_KEY}\"\nbase_url = \"{}/v1\"\nuser_agent = \"Clinic {id} (ops@example.com)\"\n\
                 [reckon]\napi_base_url = \"{}/r1/v2\"\nidentity_url = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\n\
                 subscription_key = \"{DEFAULT_SUBSCRIPTION_KEY}\"\nbook_id = \"{}\"\n\
                 [sync]\nreckon_requests_per_minute = 0\n",
                sims.cliniko_server.origin(),
                sims.reckon_server.origin(),
                sims.reckon_server.origin(),
                oauth.client_id,
                oauth.client_secret,
                sims.reckon.book_id(),
            ),
        )
        .unwrap();
        Clinic { id, sims, config }
    }

    impl Clinic {
        fn customer_names(&self) -> Vec<String> {
            self.sims
                .reckon
                .with_book(|b, _| b.customers.values().map(|c| c.name.clone()).collect())
        }

        fn patients(&self) -> usize {
            self.sims.cliniko.with(|s| s.tables.patients.len())
        }
    }

    /// The binary on a multi-clinic state file: no configuration but the clinics' own files.
    fn tenants_cmd(state: &std::path::Path, args: &[&str]) -> Command {
        let mut c = cmd();
        c.arg("--state").arg(state).args(args);
        c
    }

    fn ok(out: &Output) -> String {
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn tenant_rows(state: &std::path::Path) -> serde_json::Value {
        let out = tenants_cmd(state, &["tenants", "list", "--json"])
            .output()
            .unwrap();
        serde_json::from_str(&ok(&out)).unwrap()
    }

    fn row<'a>(rows: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("no tenant {id} in {rows}"))
    }

    /// Three clinics in one state file, each against its own Cliniko and Reckon: all synced
    /// with nothing crossing between them; one clinic's Reckon down for the whole run while
    /// the others finish; a clinic paused and resumed, and one added, without restarting
    /// anything else; a revoked connection stopping only its clinic, its work kept.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn three_clinics_in_one_state_file_never_touch_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("clinics.sqlite");
        let a = clinic("clinic-a", 11, dir.path()).await;
        let b = clinic("clinic-b", 12, dir.path()).await;
        let c = clinic("clinic-c", 13, dir.path()).await;
        for k in [&a, &b] {
            let config = k.config.display().to_string();
            ok(&run(tenants_cmd(
                &state,
                &["tenants", "add", k.id, "--config", &config],
            ))
            .await);
            let token = k.sims.reckon.issue_tokens().refresh_token;
            ok(&run(tenants_cmd(
                &state,
                &["--tenant", k.id, "connect", "--refresh-token", &token],
            ))
            .await);
        }
        // Two tenants on one book would write every record twice; `default` is the clinic
        // of --config and the environment; a tenant's file is not swapped for another's.
        let a_config = a.config.display().to_string();
        for (args, says) in [
            (
                vec!["tenants", "add", "clinic-a2", "--config", &a_config],
                "already syncs into",
            ),
            (
                vec!["tenants", "add", "default", "--config", &a_config],
                "register this clinic",
            ),
            (
                vec![
                    "--tenant", "clinic-b", "--config", &a_config, "sync", "--once",
                ],
                "drop --config",
            ),
            (vec!["--tenant", "nobody", "status"], "no tenant nobody"),
            (
                vec!["--tenant", "clinic-a", "sync", "--once", "--all-tenants"],
                "drop --tenant",
            ),
        ] {
            let out = run(tenants_cmd(&state, &args)).await;
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success() && stderr.contains(says),
                "{args:?}: {stderr}"
            );
        }
        // An unknown clinic is named, never taken for the default one.
        let out = run(tenants_cmd(
            &state,
            &["--tenant", "clinic-x", "sync", "--once"],
        ))
        .await;
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("no tenant clinic-x"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );

        let out = run(tenants_cmd(
            &state,
            &["sync", "--once", "--all-tenants", "--json"],
        ))
        .await;
        let reports: Vec<serde_json::Value> = ok(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(reports.len(), 2, "{reports:?}");
        for k in [&a, &b] {
            let names = k.customer_names();
            assert_eq!(names.len(), k.patients(), "{}: every patient, once", k.id);
            let mine = format!("Only In-{}", k.id);
            assert!(names.contains(&mine), "{}: {names:?}", k.id);
            for other in ["clinic-a", "clinic-b", "clinic-c"]
                .iter()
                .filter(|o| **o != k.id)
            {
                assert!(
                    !names.iter().any(|n| n.ends_with(&format!("In-{other}"))),
                    "{} holds a patient of {other}: {names:?}",
                    k.id
                );
            }
            let report = reports.iter().find(|r| r["tenant"] == k.id).unwrap();
            assert_eq!(report["failed"], 0, "{report}");
            println!(
                "{}: {} customers in {:.2} s, {} Cliniko and {} Reckon requests",
                k.id,
                names.len(),
                report["duration_seconds"].as_f64().unwrap(),
                report["api_requests"]["cliniko"],
                report["api_requests"]["reckon"]
            );
        }

        // A third clinic joins a running `sync --watch --all-tenants` with its Reckon down
        // for the whole run: the others' changes still land, each on its next interval.
        let config = c.config.display().to_string();
        ok(&run(tenants_cmd(
            &state,
            &["tenants", "add", c.id, "--config", &config],
        ))
        .await);
        let token = c.sims.reckon.issue_tokens().refresh_token;
        ok(&run(tenants_cmd(
            &state,
            &["--tenant", c.id, "connect", "--refresh-token", &token],
        ))
        .await);
        c.sims.reckon.faults.set_outage(true);
        for k in [&a, &b] {
            k.sims.cliniko.with(|s| {
                s.create_patient(
                    &serde_json::json!({"first_name": "Later", "last_name": format!("In-{}", k.id)})
                        .as_object()
                        .unwrap()
                        .clone(),
                )
                .unwrap();
            });
        }
        let mut watch = tenants_cmd(
            &state,
            &[
                "sync",
                "--watch",
                "--all-tenants",
                "--json",
                "--interval",
                "1h",
            ],
        );
        watch
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        let mut child = watch.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<serde_json::Value>();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Ok(v) = serde_json::from_str(&line) {
                    tx.send(v).ok();
                }
            }
        });
        let seen = tokio::task::spawn_blocking(move || {
            let mut seen = Vec::new();
            while seen.len() < 2 {
                match rx.recv_timeout(std::time::Duration::from_secs(120)) {
                    Ok(v) => seen.push(v),
                    Err(_) => break,
                }
            }
            seen
        })
        .await
        .unwrap();
        let tenants_seen: Vec<&str> = seen.iter().filter_map(|r| r["tenant"].as_str()).collect();
        assert!(
            tenants_seen.contains(&"clinic-a") && tenants_seen.contains(&"clinic-b"),
            "the healthy clinics report while clinic-c's Reckon is down: {seen:?}"
        );
        for k in [&a, &b] {
            assert!(
                k.customer_names().contains(&format!("Later In-{}", k.id)),
                "{}",
                k.id
            );
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            c.customer_names().is_empty(),
            "clinic-c's Reckon was down throughout"
        );
        for r in &seen {
            println!(
                "with clinic-c's Reckon down: {} synced its change in {:.2} s",
                r["tenant"],
                r["duration_seconds"].as_f64().unwrap_or(f64::NAN)
            );
        }
        let rows = tenant_rows(&state);
        let down = row(&rows, "clinic-c");
        assert!(
            down["queued"].as_u64().unwrap() > 0 || down["synced_up_to"].is_null(),
            "whatever clinic-c read is queued, or it is read again: nothing is lost: {rows}"
        );
        assert_eq!(row(&rows, "clinic-a")["queued"], 0, "{rows}");

        // Pause clinic-c (its outage goes on) and clinic-b: a change in b waits, untouched.
        for id in ["clinic-c", "clinic-b"] {
            ok(&run(tenants_cmd(
                &state,
                &["tenants", "pause", id, "--reason", "month-end close"],
            ))
            .await);
        }
        b.sims.cliniko.with(|s| {
            s.create_patient(
                &serde_json::json!({"first_name": "Paused", "last_name": "In-clinic-b"})
                    .as_object()
                    .unwrap()
                    .clone(),
            )
            .unwrap();
        });
        let out = run(tenants_cmd(
            &state,
            &["sync", "--once", "--all-tenants", "--json"],
        ))
        .await;
        let stdout = ok(&out);
        assert_eq!(stdout.lines().count(), 1, "only clinic-a ran: {stdout}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("clinic-b: paused"));
        assert!(
            !b.customer_names()
                .contains(&"Paused In-clinic-b".to_string())
        );
        let refused = run(tenants_cmd(
            &state,
            &["--tenant", "clinic-b", "sync", "--once"],
        ))
        .await;
        assert!(!refused.status.success());
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("tenants resume clinic-b"),
            "{}",
            String::from_utf8_lossy(&refused.stderr)
        );
        ok(&run(tenants_cmd(&state, &["tenants", "resume", "clinic-b"])).await);

        // clinic-a's connection is revoked: only clinic-a stops, marked, its change kept.
        a.sims.cliniko.with(|s| {
            s.create_patient(
                &serde_json::json!({"first_name": "Revoked", "last_name": "In-clinic-a"})
                    .as_object()
                    .unwrap()
                    .clone(),
            )
            .unwrap();
        });
        a.sims.reckon.state().oauth.revoke_all();
        let out = run(tenants_cmd(
            &state,
            &["sync", "--once", "--all-tenants", "--json"],
        ))
        .await;
        assert!(!out.status.success(), "a clinic stopped");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("tenant clinic-a") && stderr.contains("connect"),
            "{stderr}"
        );
        assert!(
            b.customer_names()
                .contains(&"Paused In-clinic-b".to_string())
        );
        let rows = tenant_rows(&state);
        assert_eq!(
            row(&rows, "clinic-a")["status"],
            "needs_reconnect",
            "{rows}"
        );
        assert!(
            row(&rows, "clinic-a")["queued"].as_u64().unwrap() > 0,
            "{rows}"
        );
        assert_eq!(row(&rows, "clinic-b")["status"], "active", "{rows}");
        // Resuming cannot revive it; reconnecting makes it active and the kept change lands.
        let out = run(tenants_cmd(&state, &["tenants", "resume", "clinic-a"])).await;
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("--tenant clinic-a connect"));
        let token = a.sims.reckon.issue_tokens().refresh_token;
        let out = ok(&run(tenants_cmd(
            &state,
            &["--tenant", "clinic-a", "connect", "--refresh-token", &token],
        ))
        .await);
        assert!(out.contains("active again"), "{out}");
        ok(&run(tenants_cmd(
            &state,
            &["--tenant", "clinic-a", "sync", "--once"],
        ))
        .await);
        assert!(
            a.customer_names()
                .contains(&"Revoked In-clinic-a".to_string())
        );
        assert_eq!(row(&tenant_rows(&state), "clinic-a")["queued"], 0);

        // Removing a clinic forgets its state only.
        ok(&run(tenants_cmd(&state, &["tenants", "remove", "clinic-c"])).await);
        let rows = tenant_rows(&state);
        assert_eq!(rows.as_array().unwrap().len(), 2, "{rows}");
        assert!(row(&rows, "clinic-a")["linked"].as_u64().unwrap() > 10);
    }

    /// `tenants` and `connect` against an AWS deployment (moto): the tenant item holds the
    /// clinic's file without its credentials, the Cliniko key and the Reckon tokens are in the
    /// tenant's secrets, pause/resume/remove change only that clinic. Run via scripts/with-moto;
    /// under `CI=true` a missing emulator fails.
    #[cfg(feature = "aws")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tenants_of_an_aws_deployment_need_no_deploy() {
        use cliniko_reckon::adapters::aws::{DynamoTenants, create_state_table, load_sdk_config};
        use cliniko_reckon::ports::{TenantDirectory, TenantStatus};
        if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
            assert!(
                std::env::var("CI")
                    .is_ok_and(|v| v == "true")
                    .then_some(())
                    .is_none(),
                "AWS_ENDPOINT_URL is not set under CI=true: run via scripts/with-moto"
            );
            eprintln!("note: AWS_ENDPOINT_URL is not set; skipping (run via scripts/with-moto)");
            return;
        }
        let sdk = load_sdk_config().await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
        let unique = uuid_like();
        let table = format!("cli-tenants-{unique}");
        let prefix = format!("cli-{unique}/");
        create_state_table(&dynamodb, &table).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let a = clinic("clinic-a", 41, dir.path()).await;
        let b = clinic("clinic-b", 42, dir.path()).await;
        let aws = |args: &[&str]| {
            let mut c = cmd();
            c.args(["--aws-table", &table, "--secret-prefix", &prefix])
                .args(args);
            c
        };
        let secret = async |name: String| {
            secrets
                .get_secret_value()
                .secret_id(name)
                .send()
                .await
                .ok()
                .and_then(|v| v.secret_string().map(str::to_string))
        };
        for k in [&a, &b] {
            let config = k.config.display().to_string();
            ok(&run(aws(&["tenants", "add", k.id, "--config", &config])).await);
        }
        let directory = DynamoTenants::new(dynamodb.clone(), table.clone());
        let item = directory
            .tenant(&"clinic-a".parse().unwrap())
            .await
            .unwrap()
            .expect("the tenant item");
        let oauth = &a.sims.reckon.config().oauth;
        assert!(
            !item.config.contains(DEFAULT_API_KEY) && !item.config.contains(&oauth.client_secret),
            "no credential in the item: {}",
            item.config
        );
        assert!(item.config.contains(&a.sims.reckon.book_id().to_string()));
        let key = secret(format!("{prefix}clinic-a/cliniko"))
            .await
            .expect("the Cliniko secret");
        assert!(key.contains(DEFAULT_API_KEY));
        // One book, one tenant.
        let a_config = a.config.display().to_string();
        let out = run(aws(&["tenants", "add", "clinic-a2", "--config", &a_config])).await;
        assert!(String::from_utf8_lossy(&out.stderr).contains("already syncs into"));

        // connect: the tokens go into the tenant's secret, and a stopped tenant is active again.
        directory
            .set_tenant_status(
                &"clinic-a".parse().unwrap(),
                TenantStatus::NeedsReconnect,
                Some("invalid_grant"),
                chrono::Utc::now(),
            )
            .await
            .unwrap();
        for verb in ["resume", "pause"] {
            // Neither brings a disconnected clinic back without its Reckon.
            let out = run(aws(&["tenants", verb, "clinic-a"])).await;
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("needs Reckon connecting again"),
                "{verb}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // Its links point into its book: another book is refused, as is a bad prefix.
        let other_book = dir.path().join("other-book.toml");
        std::fs::write(
            &other_book,
            std::fs::read_to_string(&a.config).unwrap().replace(
                &a.sims.reckon.book_id().to_string(),
                "0b9f5a52-6f0e-4d5e-9d1c-2d4c1d7e8f90",
            ),
        )
        .unwrap();
        let other = other_book.display().to_string();
        let out = run(aws(&["tenants", "add", "clinic-a", "--config", &other])).await;
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("tenants remove clinic-a` first"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut bad_prefix = cmd();
        bad_prefix.args([
            "--aws-table",
            &table,
            "--secret-prefix",
            "no-slash",
            "tenants",
            "add",
            "clinic-z",
            "--config",
            &a_config,
        ]);
        let out = run(bad_prefix).await;
        assert!(String::from_utf8_lossy(&out.stderr).contains("--secret-prefix"));
        let token = a.sims.reckon.issue_tokens().refresh_token;
        let said = ok(&run(aws(&[
            "--tenant",
            "clinic-a",
            "connect",
            "--config",
            &a_config,
            "--refresh-token",
            &token,
        ]))
        .await);
        assert!(said.contains("active again"), "{said}");
        let tokens = secret(format!("{prefix}clinic-a/reckon-tokens"))
            .await
            .expect("tokens");
        assert!(
            tokens.contains("refresh_token") && !tokens.contains(&token),
            "rotated"
        );

        ok(&run(aws(&[
            "tenants", "pause", "clinic-b", "--reason", "holiday",
        ]))
        .await);
        let rows: serde_json::Value =
            serde_json::from_str(&ok(&run(aws(&["tenants", "list", "--json"])).await)).unwrap();
        assert_eq!(row(&rows, "clinic-a")["status"], "active");
        assert_eq!(row(&rows, "clinic-b")["status"], "paused");
        assert_eq!(row(&rows, "clinic-b")["reason"], "holiday");
        let out = run(aws(&["sync", "--once"])).await;
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("applies to `tenants` and `connect`")
        );

        ok(&run(aws(&["tenants", "remove", "clinic-b"])).await);
        let rows: serde_json::Value =
            serde_json::from_str(&ok(&run(aws(&["tenants", "list", "--json"])).await)).unwrap();
        assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
        let gone = secrets
            .describe_secret()
            .secret_id(format!("{prefix}clinic-b/cliniko"))
            .send()
            .await
            .unwrap();
        assert!(
            gone.deleted_date().is_some(),
            "the removed clinic's key is scheduled for deletion"
        );
    }

    fn uuid_like() -> String {
        format!(
            "{:x}{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        )
    }
}
