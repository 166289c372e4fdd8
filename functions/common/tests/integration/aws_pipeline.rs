//! The deployed flow with the real AWS SDK against a local AWS emulator (moto server):
//! the poller writes SQS queues (each with a DLQ), the worker handlers are fed the messages
//! received from them (as Lambda's event source mapping would: successes deleted, failures
//! left to come back and, after `maxReceiveCount`, to the DLQ), Reckon is the simulator,
//! tokens live in Secrets Manager behind the DynamoDB lease, and the state is read back from
//! DynamoDB. Run via `scripts/with-moto`; under `CI=true` a missing emulator fails.
#![cfg(feature = "aws")]

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use chrono::Utc;
use cliniko_reckon::adapters::aws::{
    DynamoState, LeasedTokenStore, QueueUrls, S3Reports, SecretsTokenStore, SqsQueue, TokenLease,
    create_state_table, load_sdk_config,
};
use cliniko_reckon::domain::TenantId;
use cliniko_reckon::domain::{ClinikoId, EntityKind};
use cliniko_reckon::mapping::MappingConfig;
use cliniko_reckon::pipeline::Syncer;
use cliniko_reckon::ports::{Outcome, StateStore, TokenSet, TokenStore};
use cliniko_reckon::reckon::ReckonClient;
use cliniko_reckon_e2e::{Harness, Options, assert_in_step, cliniko_client, reckon_config};
use lambda_handlers::{PollLoop, handle_batch, poll_rounds, reconcile_and_publish};
use secrecy::SecretString;
use serde_json::{Value, json};
use std::time::Duration;

/// As `infra/lib/entity-queue.ts` (`MAX_RECEIVE_COUNT`).
const MAX_RECEIVE_COUNT: u32 = 5;

async fn moto() -> Option<aws_config::SdkConfig> {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        let how = "run it via scripts/with-moto: scripts/with-moto cargo test -p lambda-handlers \
                   --features aws --test integration aws_pipeline";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("AWS_ENDPOINT_URL is not set, so the AWS flow cannot reach an emulator; {how}");
        }
        eprintln!("note: AWS_ENDPOINT_URL is not set; skipping the AWS flow test ({how})");
        return None;
    }
    Some(load_sdk_config().await)
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// One entity queue with its DLQ, configured as the stack does (short visibility for speed).
struct EntityQueue {
    url: String,
    dlq_url: String,
    accepts: &'static [EntityKind],
}

async fn entity_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    accepts: &'static [EntityKind],
) -> EntityQueue {
    let dlq_url = sqs
        .create_queue()
        .queue_name(unique(&format!("{name}-dlq")))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    let redrive = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT});
    let url = sqs
        .create_queue()
        .queue_name(unique(name))
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .attributes(QueueAttributeName::VisibilityTimeout, "1")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    EntityQueue {
        url,
        dlq_url,
        accepts,
    }
}

async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    [
        QueueAttributeName::ApproximateNumberOfMessages,
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
    ]
    .iter()
    .map(|a| {
        attrs
            .get(a)
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    })
    .sum()
}

/// What Lambda's SQS event source mapping does, for every queue until all are empty:
/// receive up to 10, invoke the handler, delete what it did not report as failed.
/// Returns how many handler invocations ran.
async fn deliver_until_empty<S, R, St>(
    sqs: &aws_sdk_sqs::Client,
    queues: &[EntityQueue],
    syncer: &Syncer<S, R, St>,
) -> usize
where
    S: cliniko_reckon::ports::ClinikoSource,
    R: cliniko_reckon::ports::ReckonSink,
    St: StateStore,
{
    deliver_with(sqs, queues, |event, accepts| async move {
        handle_batch(
            syncer,
            event,
            accepts,
            MAX_RECEIVE_COUNT,
            &TenantId::default(),
        )
        .await
        .unwrap()
    })
    .await
}

/// As [`deliver_until_empty`], with the handler given.
async fn deliver_with<F, Fut>(sqs: &aws_sdk_sqs::Client, queues: &[EntityQueue], handle: F) -> usize
where
    F: Fn(SqsEvent, &'static [EntityKind]) -> Fut,
    Fut: std::future::Future<Output = aws_lambda_events::event::sqs::SqsBatchResponse>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut invocations = 0;
    loop {
        let mut received_any = false;
        for q in queues {
            let out = sqs
                .receive_message()
                .queue_url(&q.url)
                .max_number_of_messages(10)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .send()
                .await
                .unwrap();
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                continue;
            }
            received_any = true;
            let mut event = SqsEvent::default();
            let mut handles = Vec::new();
            for m in messages {
                let mut record = SqsMessage::default();
                record.message_id = m.message_id.clone();
                record.body = m.body.clone();
                record.receipt_handle = m.receipt_handle.clone();
                for (name, value) in m.attributes.unwrap_or_default() {
                    record.attributes.insert(name.as_str().to_string(), value);
                }
                handles.push((
                    m.message_id.unwrap_or_default(),
                    m.receipt_handle.unwrap_or_default(),
                ));
                event.records.push(record);
            }
            let response = handle(event, q.accepts).await;
            invocations += 1;
            for (id, handle) in handles {
                let failed = response
                    .batch_item_failures
                    .iter()
                    .any(|f| f.item_identifier == id);
                if !failed {
                    sqs.delete_message()
                        .queue_url(&q.url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .unwrap();
                }
            }
        }
        if !received_any {
            let mut left = 0;
            for q in queues {
                left += depth(sqs, &q.url).await;
            }
            if left == 0 {
                return invocations;
            }
            // Failed messages become visible again after the visibility timeout.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the queues never drained"
        );
    }
}

/// Runs on its own thread with a larger stack: the AWS SDK's futures nest deeply in
/// unoptimised test builds (release Lambdas run on an 8 MiB main thread).
#[test]
fn poller_to_sqs_to_workers_to_reckon_with_state_in_dynamodb() {
    let flow_thread = std::thread::Builder::new()
        .name("aws-flow".into())
        .stack_size(64 << 20)
        .spawn(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(async {
                    if let Some(config) = moto().await {
                        flow(config).await;
                    }
                })
        })
        .expect("thread");
    if let Err(panic) = flow_thread.join() {
        std::panic::resume_unwind(panic);
    }
}

async fn flow(config: aws_config::SdkConfig) {
    // The simulators and a seeded clinic; the harness's SQLite state is not used here.
    let h = Harness::start(Options {
        patients: 30,
        ..Default::default()
    })
    .await;

    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let table = unique("state");
    create_state_table(&dynamodb, &table).await.unwrap();
    const PATIENTS: &[EntityKind] = &[EntityKind::Patient];
    const PRODUCTS: &[EntityKind] = &[EntityKind::Product, EntityKind::BillableItem];
    const INVOICES: &[EntityKind] = &[EntityKind::Invoice];
    let queues = [
        entity_queue(&sqs, "patients", PATIENTS).await,
        entity_queue(&sqs, "products", PRODUCTS).await,
        entity_queue(&sqs, "invoices", INVOICES).await,
    ];
    let urls = QueueUrls {
        patients: queues[0].url.clone(),
        products: queues[1].url.clone(),
        invoices: queues[2].url.clone(),
    };

    // The tokens secret as `cliniko-reckon connect` would leave it.
    let tokens_secret = unique("reckon-tokens");
    let pair = h.reckon.issue_tokens();
    SecretsTokenStore::new(secrets.clone(), tokens_secret.clone())
        .save(&TokenSet {
            access_token: SecretString::from(pair.access_token),
            refresh_token: SecretString::from(pair.refresh_token),
            expires_at: Utc::now() + chrono::TimeDelta::seconds(pair.expires_in),
        })
        .await
        .unwrap();

    // The poller's clients and a worker's, as the functions wire them.
    let state = || DynamoState::new(dynamodb.clone(), table.clone(), "clinic-1").unwrap();
    let queue = SqsQueue::new(sqs.clone(), urls);
    let lease = TokenLease::new(
        dynamodb.clone(),
        table.clone(),
        "clinic-1",
        "worker-1",
        Duration::from_secs(30),
    )
    .unwrap();
    let tokens = LeasedTokenStore::new(
        SecretsTokenStore::new(secrets.clone(), tokens_secret.clone()),
        lease,
        Duration::from_secs(45),
    );
    let worker = Syncer::new(
        cliniko_client(&h.cliniko_server),
        ReckonClient::new(reckon_config(&h.reckon, &h.reckon_server), tokens).unwrap(),
        state(),
        MappingConfig::default(),
    );
    let poller_source = cliniko_client(&h.cliniko_server);

    // Cold-start wiring checks the income accounts against the book, as `sync` does: one the
    // book lacks is replaced by an active Income account; one it has is kept.
    let mut checked = MappingConfig {
        product_income_account: "No Such Account".into(),
        ..MappingConfig::default()
    };
    let mut reckon = ReckonClient::new(
        reckon_config(&h.reckon, &h.reckon_server),
        SecretsTokenStore::new(secrets.clone(), tokens_secret.clone()),
    )
    .unwrap();
    lambda_handlers::wiring::checked_accounts(&mut reckon, &mut checked)
        .await
        .unwrap();
    assert_ne!(checked.product_income_account, "No Such Account");
    assert!(!checked.product_income_account.is_empty());
    assert_eq!(
        checked.service_income_account,
        MappingConfig::default().service_income_account
    );
    assert_eq!(
        reckon.config().receipt_account,
        reckon_config(&h.reckon, &h.reckon_server).receipt_account,
        "the receipt account the book has is kept"
    );

    // 1. Backfill: one poller invocation, then the workers drain the three queues.
    let summary = poll_rounds(&poller_source, &state(), &queue, &PollLoop::default())
        .await
        .unwrap();
    assert!(
        summary.enqueued >= h.seed.patients + h.seed.invoices,
        "{summary:?}"
    );
    let invocations = deliver_until_empty(&sqs, &queues, &worker).await;
    assert!(
        invocations >= summary.enqueued / 10,
        "batches of at most ten: {invocations} invocations for {} messages",
        summary.enqueued
    );
    // Both sides agree, judged through the cross-references read back from DynamoDB.
    let compared = assert_in_step(&h.cliniko, &h.reckon, &state()).await;
    assert_eq!(compared.patients, h.seed.patients);
    assert!(
        compared.invoices > 0 && compared.paid_invoices > 0,
        "{compared:?}"
    );
    assert_eq!(
        h.reckon.with_book(|b, _| b.customers.len()),
        h.seed.patients,
        "no customer created twice"
    );
    let watermarks = state().watermarks().await.unwrap();
    // Appointments are read only by clinics that invoice them.
    let polled = cliniko_reckon::mapping::appointment::InvoicingSource::default().kinds();
    assert_eq!(watermarks.len(), polled.len(), "{watermarks:?}");
    let audit = state()
        .audit_for_day(Utc::now().date_naive())
        .await
        .unwrap();
    assert!(
        audit
            .iter()
            .filter(|e| e.kind == EntityKind::Patient && e.outcome == Outcome::Created)
            .count()
            >= h.seed.patients,
        "every created customer is in the audit log"
    );

    // 2. An idle poll enqueues nothing and Reckon sees no writes.
    let writes = h.reckon_writes();
    h.next_second().await;
    let idle = poll_rounds(&poller_source, &state(), &queue, &PollLoop::default())
        .await
        .unwrap();
    assert_eq!(idle.enqueued, 0, "{idle:?}");
    assert_eq!(h.reckon_writes(), writes);

    // 3. An edit in Cliniko reaches Reckon through the queue.
    let patient_id = h.cliniko.with(|s| {
        let id = *s.tables.patients.keys().next().unwrap();
        let mut patch = serde_json::Map::new();
        patch.insert("last_name".into(), Value::from("Through-the-queue"));
        s.update_patient(id, &patch).unwrap();
        id
    });
    let edit = poll_rounds(&poller_source, &state(), &queue, &PollLoop::default())
        .await
        .unwrap();
    assert_eq!(edit.enqueued, 1, "{edit:?}");
    deliver_until_empty(&sqs, &queues, &worker).await;
    let customer = state()
        .cross_ref(EntityKind::Patient, ClinikoId(patient_id))
        .await
        .unwrap()
        .expect("linked")
        .reckon_id;
    let name = h
        .reckon
        .with_book(|b, _| b.customers[&customer.0].name.clone());
    let trail: Vec<_> = state()
        .audit_for_day(Utc::now().date_naive())
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.cliniko_id == ClinikoId(patient_id))
        .collect();
    let patient = h.cliniko.with(|s| s.tables.patients[&patient_id].clone());
    assert!(
        name.contains("Through-the-queue"),
        "{name}: {trail:?} {patient:?} {edit:?}"
    );

    // 4. A poison message is retried up to maxReceiveCount, then SQS moves it to the DLQ;
    //    nothing reaches Reckon.
    let writes = h.reckon_writes();
    sqs.send_message()
        .queue_url(&queues[0].url)
        .message_body("{\"schema\": 1, \"not\": \"a work item\"}")
        .send()
        .await
        .unwrap();
    // The emulator moves a message to the DLQ on the receive after its last one, and under
    // a loaded machine that receive can come after the source queue already reads empty:
    // keep delivering (and long-polling the DLQ) until it is there, within a deadline.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let dead = loop {
        deliver_until_empty(&sqs, &queues, &worker).await;
        let dead = sqs
            .receive_message()
            .queue_url(&queues[0].dlq_url)
            .max_number_of_messages(10)
            .wait_time_seconds(2)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        if !dead.is_empty() || tokio::time::Instant::now() > deadline {
            break dead;
        }
    };
    assert_eq!(dead.len(), 1, "the poison message is in the DLQ");
    assert!(dead[0].body().unwrap_or_default().contains("not"));
    assert_eq!(h.reckon_writes(), writes);
    for q in &queues[1..] {
        assert_eq!(
            depth(&sqs, &q.dlq_url).await,
            0,
            "nothing else dead-lettered"
        );
    }

    // 5. The nightly reconciler: both sides agree, the report is in S3.
    // Path-style addressing: the emulator serves one host, not a host per bucket.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let bucket = unique("reports");
    let region = config.region().map(|r| r.to_string()).unwrap_or_default();
    s3.create_bucket()
        .bucket(&bucket)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                    region.as_str(),
                ))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let reports = S3Reports::new(s3.clone(), bucket.clone());
    // The reconciler's invocation, with the repair queue when `{"repair": true}` asks.
    let reconciler = async |repair_into: Option<&SqsQueue>| {
        reconcile_and_publish(
            &poller_source,
            &worker.sink,
            &state(),
            &MappingConfig::default(),
            "clinic-1",
            &reports,
            repair_into,
        )
        .await
    };
    let outcome = reconciler(None).await.unwrap();
    assert_eq!(outcome.repair, None, "no repair unless asked");
    assert_eq!(outcome.mismatches, 0, "{outcome:?}");
    assert_eq!(outcome.keys.len(), 10, "JSON, HTML and eight CSVs");
    let listed = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("reports/clinic-1/")
        .send()
        .await
        .unwrap()
        .contents
        .unwrap_or_default();
    assert_eq!(listed.len(), 10);
    let json = s3
        .get_object()
        .bucket(&bucket)
        .key(outcome.keys.iter().find(|k| k.ends_with(".json")).unwrap())
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    let report: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(report["mismatches"].as_array().map(Vec::len), Some(0));
    assert_eq!(
        report["scanned"]["cliniko_patients"].as_u64(),
        Some(h.seed.patients as u64)
    );

    // 7. A customer renamed in Reckon by hand; a reconciler invoked with {"repair": true}
    //    queues its patient with the stored content cleared (in DynamoDB), and the patient
    //    worker renames the customer back.
    let (patient, customer) = state()
        .links(EntityKind::Patient)
        .await
        .unwrap()
        .first()
        .copied()
        .unwrap();
    let cliniko_name = h.reckon.with_book(|b, _| {
        let c = b.customers.get_mut(&customer.0).unwrap();
        let name = c.name.clone();
        c.name = format!("{name} (edited in Reckon)");
        name
    });
    assert!(lambda_handlers::repair_requested(&json!({"repair": true})));
    assert!(!lambda_handlers::repair_requested(
        &serde_json::from_str(include_str!("../../../../events/reconciler-scheduled.json"))
            .unwrap()
    ));
    let outcome = reconciler(Some(&queue)).await.unwrap();
    assert_eq!(outcome.mismatches, 1, "{outcome:?}");
    let repaired = outcome.repair.expect("repair summary");
    assert_eq!((repaired.queued(), repaired.queued_to_rewrite), (1, 1));
    assert_eq!(depth(&sqs, &queues[0].url).await, 1, "one patient message");
    assert_eq!(
        state()
            .cross_ref(EntityKind::Patient, patient)
            .await
            .unwrap()
            .unwrap()
            .content_hash,
        "",
        "the stored content is cleared so the worker rewrites Reckon"
    );
    deliver_until_empty(&sqs, &queues, &worker).await;
    assert_eq!(
        h.reckon
            .with_book(|b, _| b.customers[&customer.0].name.clone()),
        cliniko_name
    );
    let clean = reconciler(None).await.unwrap();
    assert_eq!(clean.mismatches, 0, "{clean:?}");
}

/// Many clinics in one deployment, through the functions' own wiring (`wiring::Aws`, the
/// tenant directory in DynamoDB, each tenant's secrets in Secrets Manager): three tenants
/// against their own simulator pairs, one of them with Reckon down throughout, then a
/// fourth added, one paused and one disconnected in Reckon, all without redeploying.
#[test]
fn clinics_in_one_deployment_never_touch_each_other() {
    let flow_thread = std::thread::Builder::new()
        .name("aws-tenants".into())
        .stack_size(64 << 20)
        .spawn(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(async {
                    if let Some(config) = moto().await {
                        tenants_flow(config).await;
                    }
                })
        })
        .expect("thread");
    if let Err(panic) = flow_thread.join() {
        std::panic::resume_unwind(panic);
    }
}

/// A tenant of the moto deployment: its simulators, and its item and secrets written as
/// `cliniko-reckon --aws-table TABLE tenants add` and `connect` would.
struct Clinic {
    id: TenantId,
    h: Harness,
}

async fn add_clinic(aws: &lambda_handlers::wiring::Aws, id: &str, seed: u64) -> Clinic {
    use cliniko_reckon::ports::{TenantDirectory, TenantEntry, TenantStatus};
    use lambda_handlers::wiring::cliniko_secret_id;
    let h = Harness::start(Options {
        patients: 5,
        seed,
        ..Default::default()
    })
    .await;
    let id = TenantId::new(id).unwrap();
    aws.secrets
        .create_secret()
        .name(cliniko_secret_id(&aws.secret_prefix, &id))
        .secret_string(json!({"api_key": simulators::cliniko::DEFAULT_API_KEY}).to_string())
        .send()
        .await
        .unwrap();
    connect(aws, &id, &h).await;
    let config = format!(
        "[cliniko]\nbase_url = \"{cliniko}/v1\"\nuser_agent = \"Tenant test (ops@example.com)\"\n\
         [reckon]\nbook_id = \"{book}\"\napi_base_url = \"{reckon}/r1/v2\"\nidentity_url = \"{reckon}\"\n\
         [sync]\ncliniko_requests_per_minute = 10000\nreckon_requests_per_minute = 0\n",
        cliniko = h.cliniko_server.origin(),
        reckon = h.reckon_server.origin(),
        book = h.reckon.book_id(),
    );
    let now = Utc::now();
    aws.directory()
        .put_tenant(&TenantEntry {
            id: id.clone(),
            config,
            status: TenantStatus::Active,
            reason: None,
            added_at: now,
            changed_at: now,
        })
        .await
        .unwrap();
    Clinic { id, h }
}

/// The tenant's tokens secret as `connect` leaves it.
async fn connect(aws: &lambda_handlers::wiring::Aws, id: &TenantId, h: &Harness) {
    let pair = h.reckon.issue_tokens();
    SecretsTokenStore::new(
        aws.secrets.clone(),
        lambda_handlers::wiring::tokens_secret_id(&aws.secret_prefix, id),
    )
    .save(&TokenSet {
        access_token: SecretString::from(pair.access_token),
        refresh_token: SecretString::from(pair.refresh_token),
        expires_at: Utc::now() + chrono::TimeDelta::seconds(pair.expires_in),
    })
    .await
    .unwrap();
}

async fn tenants_flow(config: aws_config::SdkConfig) {
    use cliniko_reckon::ports::{TenantDirectory, TenantStatus};
    use lambda_handlers::wiring::{Aws, PollerBuilder, WorkerBuilder};
    use lambda_handlers::{Tenants, handle_tenant_batch, poll_tenants};

    let aws = Aws::new(&config, unique("state")).with_secret_prefix(format!("{}/", unique("t")));
    create_state_table(&aws.dynamodb, &aws.table).await.unwrap();
    const PATIENTS: &[EntityKind] = &[EntityKind::Patient];
    const PRODUCTS: &[EntityKind] = &[EntityKind::Product, EntityKind::BillableItem];
    const INVOICES: &[EntityKind] = &[EntityKind::Invoice];
    let queues = [
        entity_queue(&aws.sqs, "patients", PATIENTS).await,
        entity_queue(&aws.sqs, "products", PRODUCTS).await,
        entity_queue(&aws.sqs, "invoices", INVOICES).await,
    ];
    let urls = QueueUrls {
        patients: queues[0].url.clone(),
        products: queues[1].url.clone(),
        invoices: queues[2].url.clone(),
    };
    let a = add_clinic(&aws, "clinic-a", 31).await;
    let b = add_clinic(&aws, "clinic-b", 32).await;
    let c = add_clinic(&aws, "clinic-c", 33).await;
    // The consultancy's one Reckon app (every simulator accepts the same app).
    let oauth = &a.h.reckon.config().oauth;
    let app = cliniko_reckon::adapters::aws::ReckonAppSecret {
        client_id: oauth.client_id.clone(),
        client_secret: SecretString::from(oauth.client_secret.clone()),
        subscription_key: SecretString::from(simulators::reckon::DEFAULT_SUBSCRIPTION_KEY),
    };
    let poller = Tenants::new(
        aws.directory(),
        PollerBuilder {
            aws: aws.clone(),
            queues: urls.clone(),
        },
    );
    let new_worker = || {
        Tenants::new(
            aws.directory(),
            WorkerBuilder {
                aws: aws.clone(),
                app: app.clone(),
            },
        )
    };
    let plan = PollLoop {
        requeue_after: chrono::TimeDelta::zero(),
        ..PollLoop::default()
    };
    let enqueued = |polled: &[lambda_handlers::TenantPolled], id: &TenantId| {
        polled
            .iter()
            .find(|p| p.tenant == *id)
            .and_then(|p| p.summary.as_ref())
            .map(|s| s.enqueued + s.requeued)
    };
    let skipped = |polled: &[lambda_handlers::TenantPolled], id: &TenantId| {
        polled
            .iter()
            .find(|p| p.tenant == *id)
            .and_then(|p| p.skipped.clone())
    };
    let in_step = async |clinic: &Clinic| {
        let state = aws.state(&clinic.id).unwrap();
        let compared = assert_in_step(&clinic.h.cliniko, &clinic.h.reckon, &state).await;
        assert_eq!(compared.patients, clinic.h.seed.patients, "{}", clinic.id);
        assert_eq!(
            clinic.h.reckon.with_book(|b, _| b.customers.len()),
            clinic.h.seed.patients,
            "{}: only its own customers, none twice",
            clinic.id
        );
    };

    // 1. Clinic C's Reckon is down for the whole backfill; A and B sync in full.
    c.h.reckon.faults.set_outage(true);
    let worker = new_worker();
    let polled = poll_tenants(&poller, &plan, 4).await.unwrap();
    assert_eq!(polled.len(), 3, "{polled:?}");
    let c_enqueued = enqueued(&polled, &c.id).unwrap();
    assert!(c_enqueued >= c.h.seed.patients, "{polled:?}");
    let started = std::time::Instant::now();
    deliver_with(&aws.sqs, &queues, |event, accepts| {
        handle_tenant_batch(
            &worker,
            event,
            accepts,
            MAX_RECEIVE_COUNT,
            Duration::from_secs(60),
        )
    })
    .await;
    eprintln!(
        "backfill of 3 clinics, one with Reckon down: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    in_step(&a).await;
    in_step(&b).await;
    assert_eq!(c.h.reckon.with_book(|b, _| b.customers.len()), 0);
    let held = aws.state(&c.id).unwrap().failures().await.unwrap();
    assert_eq!(held.len(), c_enqueued, "every record of C kept: {held:?}");
    assert!(held.iter().all(|f| f.retryable), "{held:?}");
    for q in &queues {
        assert_eq!(
            depth(&aws.sqs, &q.dlq_url).await,
            0,
            "an outage dead-letters nothing"
        );
    }
    for clinic in [&a, &b] {
        assert!(
            aws.state(&clinic.id)
                .unwrap()
                .failures()
                .await
                .unwrap()
                .is_empty(),
            "{}",
            clinic.id
        );
    }

    // 2. Without a deploy: B paused, D added, A disconnected in Reckon.
    aws.directory()
        .set_tenant_status(&b.id, TenantStatus::Paused, Some("test"), Utc::now())
        .await
        .unwrap();
    let d = add_clinic(&aws, "clinic-d", 34).await;
    a.h.reckon.state().oauth.revoke_all();
    a.h.next_second().await;
    let edit = |clinic: &Clinic, name: &str| {
        let name = name.to_string();
        clinic.h.cliniko.with(move |s| {
            let id = *s.tables.patients.keys().next().unwrap();
            let mut patch = serde_json::Map::new();
            patch.insert("last_name".into(), Value::from(name));
            s.update_patient(id, &patch).unwrap();
            id
        })
    };
    let a_patient = edit(&a, "Edited-A");
    edit(&b, "Edited-B");
    let polled = poll_tenants(&poller, &plan, 4).await.unwrap();
    assert!(
        skipped(&polled, &b.id).is_some_and(|s| s.contains("paused")),
        "{polled:?}"
    );
    assert!(enqueued(&polled, &d.id).is_some_and(|n| n >= d.h.seed.patients));
    assert_eq!(enqueued(&polled, &a.id), Some(1), "{polled:?}");
    let b_writes = b.h.reckon_writes();
    deliver_with(&aws.sqs, &queues, |event, accepts| {
        handle_tenant_batch(
            &worker,
            event,
            accepts,
            MAX_RECEIVE_COUNT,
            Duration::from_secs(60),
        )
    })
    .await;
    in_step(&d).await;
    assert_eq!(
        b.h.reckon_writes(),
        b_writes,
        "a paused clinic is not written"
    );
    let a_entry = aws.directory().tenant(&a.id).await.unwrap().unwrap();
    assert_eq!(a_entry.status, TenantStatus::NeedsReconnect, "{a_entry:?}");
    let a_held = aws.state(&a.id).unwrap().failures().await.unwrap();
    assert_eq!(a_held.len(), 1, "A's edit is kept: {a_held:?}");
    assert_eq!(a_held[0].cliniko_id, ClinikoId(a_patient));
    assert!(a_held[0].error.contains("connected again"), "{a_held:?}");
    let polled = poll_tenants(&poller, &plan, 4).await.unwrap();
    assert!(
        skipped(&polled, &a.id).is_some_and(|s| s.contains("connected again")),
        "a disconnected clinic is not polled: {polled:?}"
    );

    // 3. C's Reckon back, A reconnected, B resumed: a fresh worker environment brings
    //    every kept record in, and all four books agree with their Cliniko.
    c.h.reckon.faults.set_outage(false);
    connect(&aws, &a.id, &a.h).await;
    for clinic in [&a, &b] {
        aws.directory()
            .set_tenant_status(&clinic.id, TenantStatus::Active, None, Utc::now())
            .await
            .unwrap();
    }
    let worker = new_worker();
    let polled = poll_tenants(&poller, &plan, 4).await.unwrap();
    assert!(
        enqueued(&polled, &c.id).is_some_and(|n| n >= c_enqueued),
        "C's kept records queued again: {polled:?}"
    );
    deliver_with(&aws.sqs, &queues, |event, accepts| {
        handle_tenant_batch(
            &worker,
            event,
            accepts,
            MAX_RECEIVE_COUNT,
            Duration::from_secs(60),
        )
    })
    .await;
    for clinic in [&a, &b, &c, &d] {
        in_step(clinic).await;
        assert!(
            aws.state(&clinic.id)
                .unwrap()
                .failures()
                .await
                .unwrap()
                .is_empty(),
            "{}",
            clinic.id
        );
    }
    let a_name =
        a.h.reckon
            .with_book(|b, _| b.customers.values().any(|c| c.name.contains("Edited-A")));
    assert!(a_name, "A's edit landed after reconnecting");
    let b_name =
        b.h.reckon
            .with_book(|b, _| b.customers.values().any(|c| c.name.contains("Edited-B")));
    assert!(b_name, "B's edit landed after resuming");
}
