//! Black-box tests of the Cliniko simulator over real HTTP: auth and headers, paging,
//! filters and sorting, archive/cancel/merge visibility, wire formats, writes and their
//! validation, the rate limit, fault injection and request counters.

use crate::support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use simulators::cliniko::{ClinikoConfig, ClinikoSim, DEFAULT_API_KEY};
use simulators::common::FaultRule;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use support::cliniko::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn query_of(url: &str) -> Vec<(String, String)> {
    url::Url::parse(url)
        .expect("absolute link")
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn pairs_in(url: &str, key: &str) -> Vec<String> {
    query_of(url)
        .into_iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v)
        .collect()
}

// ---- auth and headers ----------------------------------------------------------------------

#[tokio::test]
async fn basic_auth_takes_the_key_with_or_without_its_shard() {
    let h = Harness::start().await;
    let bare = DEFAULT_API_KEY.rsplit_once('-').unwrap().0;
    assert_ne!(bare, DEFAULT_API_KEY);
    for user in [DEFAULT_API_KEY, bare] {
        let r = h
            .client
            .get(h.url("/patients"))
            .basic_auth(user, Some(""))
            .header("User-Agent", UA)
            .header("Accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "key {user}");
    }
    // The documented test vector shape: `Basic base64(key + ":")` written by hand.
    let r = h
        .client
        .get(h.url("/patients"))
        .header(
            "Authorization",
            format!("Basic {}", base64_of(&format!("{DEFAULT_API_KEY}:"))),
        )
        .header("User-Agent", UA)
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for user in ["wrong-key-au1", "MS0x-au1", "", &format!("{bare}x")] {
        let r = h
            .client
            .get(h.url("/patients"))
            .basic_auth(user, Some(""))
            .header("User-Agent", UA)
            .header("Accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "key {user:?}");
        assert!(r.headers().contains_key("www-authenticate"));
        assert_eq!(r.text().await.unwrap().trim(), "HTTP Basic: Access denied.");
    }
    let r = h
        .client
        .get(h.url("/patients"))
        .header("User-Agent", UA)
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "no Authorization header");
    // A second key on the same simulator works too.
    h.sim.add_api_key("SecondKey123-uk2");
    let r = h
        .client
        .get(h.url("/taxes"))
        .basic_auth("SecondKey123", Some(""))
        .header("User-Agent", UA)
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn user_agent_needs_a_contact_email() {
    let h = Harness::start().await;
    for ua in ["reqwest", "Sync App", "Sync App (no email here)", ""] {
        let r = h
            .client
            .get(h.url("/patients"))
            .basic_auth(h.sim.api_key(), Some(""))
            .header("User-Agent", ua)
            .header("Accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "User-Agent {ua:?}");
        let body: Value = r.json().await.unwrap();
        assert!(body["message"].as_str().unwrap().contains("User-Agent"));
    }
    let (status, _) = h.get_json("/patients").await;
    assert_eq!(status, 200);

    // The check can be switched off.
    let lax = Harness::with_config(ClinikoConfig {
        require_user_agent_email: false,
        ..Default::default()
    })
    .await;
    let r = lax
        .client
        .get(lax.url("/patients"))
        .basic_auth(lax.sim.api_key(), Some(""))
        .header("User-Agent", "curl/8.0")
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// A request written by hand so no `Accept` header is added (reqwest sends `*/*`).
async fn raw_get(h: &Harness, path: &str, extra_headers: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(h.server.addr())
        .await
        .unwrap();
    let auth = base64_of(&format!("{}:", h.sim.api_key()));
    let request = format!(
        "GET /v1{path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {auth}\r\nUser-Agent: {UA}\r\n{extra_headers}Connection: close\r\n\r\n",
        h.server.addr()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn accept_must_allow_json() {
    let h = Harness::start().await;
    let missing = raw_get(&h, "/patients", "").await;
    assert!(missing.starts_with("HTTP/1.1 406"), "{missing}");
    let json = raw_get(&h, "/patients", "Accept: application/json\r\n").await;
    assert!(json.starts_with("HTTP/1.1 200"), "{json}");
    let r = h
        .client
        .get(h.url("/patients"))
        .basic_auth(h.sim.api_key(), Some(""))
        .header("User-Agent", UA)
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 406);
    let (status, body) = h.get_json("/patients").await;
    assert_eq!(status, 200);
    assert!(body["patients"].is_array());
}

// ---- paging ------------------------------------------------------------------------------

#[tokio::test]
async fn pages_follow_links_next_and_links_keep_the_query() {
    let h = Harness::start().await;
    let mut created = Vec::new();
    h.sim.with(|s| {
        for i in 0..7 {
            created.push(patient(s, &format!("P{i}"), "Pager").id.to_string());
        }
        patient(s, "Not", "Included");
    });
    let mut url = h.url("/patients?q%5B%5D=last_name%3A%3DPager&per_page=3&sort=first_name");
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let (status, body) = h.get_json(&url).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        assert_eq!(body["total_entries"], json!(7));
        assert!(
            body["total_entries"].is_u64(),
            "total_entries is an integer"
        );
        let links = &body["links"];
        let this = links["self"].as_str().unwrap();
        assert!(this.starts_with(&format!("{}/patients?", h.base)), "{this}");
        assert_eq!(pairs_in(this, "page"), vec![pages.to_string()]);
        for link in [links.get("self"), links.get("next"), links.get("previous")]
            .into_iter()
            .flatten()
        {
            let link = link.as_str().unwrap();
            assert!(link.starts_with("http://"), "absolute: {link}");
            assert_eq!(pairs_in(link, "q[]"), vec!["last_name:=Pager"], "{link}");
            assert_eq!(pairs_in(link, "per_page"), vec!["3"], "{link}");
            assert_eq!(pairs_in(link, "sort"), vec!["first_name"], "{link}");
        }
        match pages {
            1 => assert!(links.get("previous").is_none()),
            2 => assert_eq!(
                pairs_in(links["previous"].as_str().unwrap(), "page"),
                vec!["1"]
            ),
            _ => {}
        }
        seen.extend(ids_of(&body["patients"]));
        match links.get("next") {
            Some(next) => url = next.as_str().unwrap().to_string(),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created, "every row once, sorted by first_name");

    // Past the end: empty page with a previous link and no next.
    let (status, body) = h
        .list("/patients", &[("per_page", "3"), ("page", "9")])
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["patients"], json!([]));
    assert!(body["links"].get("next").is_none());
    assert!(body["links"].get("previous").is_some());
}

#[tokio::test]
async fn per_page_defaults_to_50_and_is_capped_at_100() {
    let h = Harness::start().await;
    h.sim.with(|s| {
        for i in 0..120 {
            patient(s, &format!("N{i}"), "Many");
        }
    });
    let (_, body) = h.list("/patients", &[]).await;
    assert_eq!(body["patients"].as_array().unwrap().len(), 50);
    assert_eq!(body["total_entries"], json!(120));
    assert_eq!(
        pairs_in(body["links"]["next"].as_str().unwrap(), "page"),
        vec!["2"]
    );
    let (_, body) = h.list("/patients", &[("per_page", "500")]).await;
    assert_eq!(body["patients"].as_array().unwrap().len(), 100);
    let (_, body) = h
        .list("/patients", &[("per_page", "100"), ("page", "2")])
        .await;
    assert_eq!(body["patients"].as_array().unwrap().len(), 20);
    assert!(body["links"].get("next").is_none());
}

#[tokio::test]
async fn identical_updated_at_across_a_page_boundary_is_returned_exactly_once() {
    let h = Harness::start().await;
    let stamp = at(1_750_000_000);
    let mut expected = BTreeSet::new();
    h.sim.with(|s| {
        for i in 0..9 {
            let p = patient(s, &format!("Same{i}"), "Second");
            s.edit::<simulators::cliniko::model::Patient>(p.id, |p| p.updated_at = stamp);
            expected.insert(p.id);
        }
        // One a second later, which must come last.
        let later = patient(s, "Later", "Second");
        s.edit::<simulators::cliniko::model::Patient>(later.id, |p| {
            p.updated_at = at(1_750_000_001)
        });
    });
    let since = format!(
        "updated_at:>={}",
        simulators::common::wire::timestamp_text(&stamp)
    );
    let (mut status, mut body) = h
        .list(
            "/patients",
            &[
                ("q[]", &since),
                ("sort", "updated_at,id"),
                ("per_page", "2"),
            ],
        )
        .await;
    let mut ids = Vec::new();
    let mut pages = 1;
    loop {
        assert_eq!(status, 200, "{body}");
        ids.extend(ids_of(&body["patients"]));
        let Some(next) = body["links"].get("next").and_then(Value::as_str) else {
            break;
        };
        (status, body) = h.get_json(next).await;
        pages += 1;
    }
    assert_eq!(pages, 5);
    assert_eq!(ids.len(), 10, "{ids:?}");
    let numeric: Vec<u64> = ids.iter().map(|i| i.parse().unwrap()).collect();
    let unique: BTreeSet<u64> = numeric.iter().copied().collect();
    assert_eq!(unique.len(), 10, "no duplicates");
    let first_nine: Vec<u64> = numeric[..9].to_vec();
    let mut sorted = first_nine.clone();
    sorted.sort();
    assert_eq!(first_nine, sorted, "ties broken by id");
    assert_eq!(
        first_nine.into_iter().collect::<BTreeSet<_>>(),
        expected,
        "the tied rows come first"
    );
}

// ---- filters and sorting ------------------------------------------------------------------

#[tokio::test]
async fn string_filters() {
    let h = Harness::start().await;
    let (jameson, jackson, bob) = h.sim.with(|s| {
        let a = s
            .create_patient(&obj(json!({"first_name": "Jameson", "last_name": "Lee",
                "email": "jameson@example.com"})))
            .unwrap();
        let b = patient(s, "Jackson", "Lee");
        let c = patient(s, "Bob", "Lee");
        (a.id.to_string(), b.id.to_string(), c.id.to_string())
    });
    let ids = |f: &'static str| {
        let h = &h;
        async move { h.ids("/patients", &[("q[]", f)]).await }
    };
    assert_eq!(ids("first_name:=Jameson").await, vec![jameson.clone()]);
    assert_eq!(ids("first_name:=jameson").await, Vec::<String>::new());
    assert_eq!(
        ids("first_name:!=Jameson").await,
        vec![jackson.clone(), bob.clone()]
    );
    assert_eq!(
        ids("first_name:~son").await,
        vec![jameson.clone(), jackson.clone()]
    );
    assert_eq!(ids("first_name:~MES").await, vec![jameson.clone()]);
    assert_eq!(
        ids("first_name:~~ja%on").await,
        vec![jameson.clone(), jackson.clone()]
    );
    assert_eq!(ids("first_name:~~ja%e%on").await, vec![jameson.clone()]);
    assert_eq!(ids("email:?").await, vec![jameson.clone()]);
    assert_eq!(ids("email:!?").await, vec![jackson.clone(), bob.clone()]);
    // Repeated q[] are ANDed.
    assert_eq!(
        h.ids(
            "/patients",
            &[("q[]", "first_name:~son"), ("q[]", "email:!?")]
        )
        .await,
        vec![jackson.clone()]
    );
    // The legacy single `q=` form.
    assert_eq!(
        h.ids("/patients", &[("q", "first_name:=Bob")]).await,
        vec![bob]
    );
}

#[tokio::test]
async fn numeric_filters_and_id_lists() {
    let h = Harness::start().await;
    let ids: Vec<u64> = h.sim.with(|s| {
        (0..5)
            .map(|i| patient(s, &format!("I{i}"), "Num").id)
            .collect()
    });
    let text: Vec<String> = ids.iter().map(u64::to_string).collect();
    let q = |op: &str, v: u64| format!("id:{op}{v}");
    let got = |f: String| {
        let h = &h;
        async move { h.ids("/patients", &[("q[]", &f)]).await }
    };
    assert_eq!(got(q("=", ids[2])).await, vec![text[2].clone()]);
    assert_eq!(got(q("!=", ids[2])).await.len(), 4);
    assert_eq!(got(q(">", ids[2])).await, text[3..].to_vec());
    assert_eq!(got(q(">=", ids[2])).await, text[2..].to_vec());
    assert_eq!(got(q("<", ids[2])).await, text[..2].to_vec());
    assert_eq!(got(q("<=", ids[2])).await, text[..3].to_vec());
    let list = format!("id:={},{},{}", ids[0], ids[4], ids[2]);
    assert_eq!(
        got(list).await,
        vec![text[0].clone(), text[2].clone(), text[4].clone()]
    );
    // Ids above 2^53 compare exactly (no float rounding): the neighbour is not matched.
    assert!(ids[2] > 1 << 53);
    assert_eq!(
        got(format!("id:={}", ids[2] + 1)).await,
        Vec::<String>::new()
    );
    // A list with another operator, or a non-number, is a 400.
    let (status, _) = h
        .list(
            "/patients",
            &[("q[]", &format!("id:>{},{}", ids[0], ids[1]))],
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = h.list("/patients", &[("q[]", "id:=abc")]).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn datetime_date_and_boolean_filters() {
    let h = Harness::start().await;
    let (early, late) = h.sim.with(|s| {
        let a = s
            .create_patient(&obj(json!({"first_name": "May", "last_name": "Born",
                "date_of_birth": "1980-05-17", "accepted_privacy_policy": true})))
            .unwrap();
        let b = s
            .create_patient(&obj(json!({"first_name": "June", "last_name": "Born",
                "date_of_birth": "1990-06-01", "accepted_privacy_policy": false})))
            .unwrap();
        s.edit::<simulators::cliniko::model::Patient>(a.id, |p| p.updated_at = at(1_700_000_000));
        s.edit::<simulators::cliniko::model::Patient>(b.id, |p| p.updated_at = at(1_700_000_100));
        (a.id.to_string(), b.id.to_string())
    });
    let got = |f: &'static str| {
        let h = &h;
        async move { h.ids("/patients", &[("q[]", f)]).await }
    };
    let both = vec![early.clone(), late.clone()];
    // 1_700_000_000 is 2023-11-14T22:13:20Z.
    assert_eq!(
        got("updated_at:>2023-11-14T22:13:20Z").await,
        vec![late.clone()]
    );
    assert_eq!(got("updated_at:>=2023-11-14T22:13:20Z").await, both);
    assert_eq!(
        got("updated_at:<2023-11-14T22:15:00Z").await,
        vec![early.clone()]
    );
    assert_eq!(got("updated_at:<=2023-11-14T22:15:00Z").await, both);
    assert_eq!(got("updated_at:?").await, both);
    assert_eq!(got("archived_at:!?").await, both);
    assert_eq!(got("updated_at:*").await, both);
    // DateTime filters need UTC with T and Z, and have no `=`.
    for bad in [
        "updated_at:>2023-11-14 22:13:20",
        "updated_at:>2023-11-14T22:13:20+10:00",
        "updated_at:=2023-11-14T22:13:20Z",
    ] {
        let (status, _) = h.list("/patients", &[("q[]", bad)]).await;
        assert_eq!(status, 400, "{bad}");
    }
    assert_eq!(got("date_of_birth:=1980-05-17").await, vec![early.clone()]);
    assert_eq!(got("date_of_birth:>1980-05-17").await, vec![late.clone()]);
    assert_eq!(got("date_of_birth:>=1980-05-17").await, both);
    assert_eq!(got("date_of_birth:<1990-06-01").await, vec![early.clone()]);
    assert_eq!(got("date_of_birth:<=1990-06-01").await, both);
    assert_eq!(got("date_of_birth:=****-05-**").await, vec![early.clone()]);
    assert_eq!(got("date_of_birth:=1990-**-**").await, vec![late.clone()]);
    assert_eq!(got("date_of_birth:?").await, both);
    assert_eq!(got("date_of_birth:!?").await, Vec::<String>::new());
    assert_eq!(
        got("accepted_privacy_policy:=true").await,
        vec![early.clone()]
    );
    assert_eq!(
        got("accepted_privacy_policy:!=true").await,
        vec![late.clone()]
    );
}

#[tokio::test]
async fn unsearchable_columns_and_bad_sorts_are_400() {
    let h = Harness::start().await;
    h.sim.with(|s| patient(s, "A", "B"));
    for (path, filter) in [
        ("/patients", "shoe_size:=9"),
        // Patients have deleted_at as a field but it is not filterable.
        ("/patients", "deleted_at:*"),
        ("/patients", "no_colon_at_all"),
        ("/invoices", "total_amount:>10"),
        ("/products", "price_ex_tax:>1"),
        ("/taxes", "name:=GST"),
    ] {
        let (status, body) = h.list(path, &[("q[]", filter)]).await;
        assert_eq!(status, 400, "{path} {filter}");
        assert_eq!(body, json!({"message": "This column is not searchable."}));
    }
    for sort in ["shoe_size", "first_name:sideways", "created_at,nope:desc"] {
        let (status, body) = h.list("/patients", &[("sort", sort)]).await;
        assert_eq!(status, 400, "sort={sort}");
        assert_eq!(
            body,
            json!({"message": "Sort parameter must be a valid column name"})
        );
    }
}

#[tokio::test]
async fn sort_takes_several_columns_and_desc() {
    let h = Harness::start().await;
    let (a1, a2, b1) = h.sim.with(|s| {
        let a1 = patient(s, "Amy", "Zed").id.to_string();
        let b1 = patient(s, "Bea", "Alpha").id.to_string();
        let a2 = patient(s, "Amy", "Alpha").id.to_string();
        (a1, a2, b1)
    });
    // Default: created_at ascending (then id).
    assert_eq!(
        h.ids("/patients", &[]).await,
        vec![a1.clone(), b1.clone(), a2.clone()]
    );
    assert_eq!(
        h.ids("/patients", &[("sort", "first_name,last_name")])
            .await,
        vec![a2.clone(), a1.clone(), b1.clone()]
    );
    assert_eq!(
        h.ids("/patients", &[("sort", "first_name:desc,last_name:desc")])
            .await,
        vec![b1.clone(), a1.clone(), a2.clone()]
    );
    assert_eq!(
        h.ids("/patients", &[("sort", "id:desc")]).await,
        vec![a2, b1, a1]
    );
}

// ---- archived, cancelled, merged ----------------------------------------------------------

#[tokio::test]
async fn archive_unarchive_and_delete_of_patients() {
    let h = Harness::start().await;
    let (keep, gone, deleted) = h.sim.with(|s| {
        (
            patient(s, "Keep", "Me").id.to_string(),
            patient(s, "Archive", "Me").id.to_string(),
            patient(s, "Delete", "Me").id.to_string(),
        )
    });
    h.sim.clock.advance(Duration::from_secs(30));
    let r = h
        .request(Method::POST, &format!("/patients/{gone}/archive"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(r.text().await.unwrap().is_empty());
    let r = h
        .request(Method::DELETE, &format!("/patients/{deleted}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT, "DELETE archives");

    assert_eq!(h.ids("/patients", &[]).await, vec![keep.clone()]);
    assert_eq!(
        h.ids("/patients", &[("q[]", "archived_at:*")]).await,
        vec![keep.clone(), gone.clone(), deleted.clone()]
    );
    assert_eq!(
        h.ids("/patients", &[("q[]", "archived_at:?")]).await,
        vec![gone.clone(), deleted.clone()]
    );
    assert_eq!(
        h.ids("/patients", &[("q[]", "archived_at:!?")]).await,
        vec![keep.clone()]
    );
    // Fetching an archived patient by id needs the filter too.
    let (status, _) = h.get_json(&format!("/patients/{gone}")).await;
    assert_eq!(status, 404);
    let (status, body) = h
        .list(&format!("/patients/{gone}"), &[("q[]", "archived_at:*")])
        .await;
    assert_eq!(status, 200);
    let archived_at = body["archived_at"].as_str().expect("archived_at set");
    assert_eq!(
        body["updated_at"].as_str(),
        Some(archived_at),
        "archive bumps updated_at"
    );
    assert!(body["created_at"].as_str().unwrap() < archived_at);

    let (status, body) = h
        .send_json(
            Method::POST,
            &format!("/patients/{gone}/unarchive"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["id"], json!(gone));
    assert_eq!(body["archived_at"], Value::Null);
    assert_eq!(h.ids("/patients", &[]).await, vec![keep, gone]);

    let (status, _) = h
        .send_json(Method::POST, "/patients/123/archive", &json!({}))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn cancelled_and_archived_appointments_are_hidden_unless_asked() {
    let h = Harness::start().await;
    let (live, cancelled, archived) = h.sim.with(|s| {
        let c = seed_clinic(s);
        let live = appointment(s, &c, 1_760_000_000).id;
        let cancelled = appointment(s, &c, 1_760_010_000).id;
        let archived = appointment(s, &c, 1_760_020_000).id;
        let now = s.now();
        s.edit::<simulators::cliniko::model::IndividualAppointment>(cancelled, |a| {
            a.cancelled_at = Some(now);
            a.cancellation_reason = Some(40);
            a.cancellation_reason_description = Some("Away".into());
        });
        s.edit::<simulators::cliniko::model::IndividualAppointment>(archived, |a| {
            a.archived_at = Some(now)
        });
        (
            live.to_string(),
            cancelled.to_string(),
            archived.to_string(),
        )
    });
    let path = "/individual_appointments";
    assert_eq!(h.ids(path, &[]).await, vec![live.clone()]);
    assert_eq!(
        h.ids(path, &[("q[]", "cancelled_at:*")]).await,
        vec![live.clone(), cancelled.clone()]
    );
    assert_eq!(
        h.ids(path, &[("q[]", "cancelled_at:?")]).await,
        vec![cancelled.clone()]
    );
    assert_eq!(
        h.ids(path, &[("q[]", "archived_at:*")]).await,
        vec![live.clone(), archived.clone()]
    );
    assert_eq!(
        h.ids(path, &[("q[]", "archived_at:*"), ("q[]", "cancelled_at:*")])
            .await,
        vec![live.clone(), cancelled.clone(), archived]
    );
    let (status, body) = h
        .list(&format!("{path}/{cancelled}"), &[("q[]", "cancelled_at:*")])
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["cancellation_reason"], json!(40));
}

#[tokio::test]
async fn merge_through_the_admin_route_links_the_survivor() {
    let h = Harness::start().await;
    let (from, into) = h.sim.with(|s| {
        (
            patient(s, "Dup", "Licate").id.to_string(),
            patient(s, "Dup", "Licate").id.to_string(),
        )
    });
    h.sim.clock.advance(Duration::from_secs(60));
    let (status, body) = h
        .admin(
            Method::POST,
            &format!("/patients/{from}/merge"),
            Some(&json!({"into": into})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, merged) = h
        .list(&format!("/patients/{from}"), &[("q[]", "archived_at:*")])
        .await;
    assert_eq!(status, 200);
    let merged_at = merged["merged_at"].as_str().expect("merged_at");
    assert!(merged_at.ends_with('Z'));
    assert_eq!(merged["archived_at"].as_str(), Some(merged_at));
    assert_eq!(merged["updated_at"].as_str(), Some(merged_at));
    assert_eq!(
        merged["merged_with_patient"]["links"]["self"],
        json!(format!("{}/patients/{into}", h.base))
    );
    assert_eq!(h.ids("/patients", &[]).await, vec![into.clone()]);
    let (_, survivor) = h.get_json(&format!("/patients/{into}")).await;
    assert_eq!(survivor["merged_at"], Value::Null);
    assert!(
        survivor
            .get("merged_with_patient")
            .is_none_or(Value::is_null)
    );
    // Merging into a patient that does not exist is a 404.
    let (status, _) = h
        .admin(
            Method::POST,
            &format!("/patients/{into}/merge"),
            Some(&json!({"into": "42"})),
        )
        .await;
    assert_eq!(status, 404);
}

// ---- wire formats ------------------------------------------------------------------------

fn is_timestamp(s: &str) -> bool {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%SZ").is_ok() && s.len() == 20
}

fn is_decimal(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    match s.split_once('.') {
        Some((int, frac)) => {
            !int.is_empty()
                && !frac.is_empty()
                && int.chars().all(|c| c.is_ascii_digit())
                && frac.chars().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

/// Every `id` a string of an integer, every `*_at` a `…Z` timestamp (or null), everywhere.
fn check_formats(value: &Value, path: &str) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let here = format!("{path}/{k}");
                if k == "id" {
                    let s = v
                        .as_str()
                        .unwrap_or_else(|| panic!("{here} not a string: {v}"));
                    s.parse::<u64>()
                        .unwrap_or_else(|_| panic!("{here} not an integer: {s}"));
                }
                if k.ends_with("_at") && !v.is_null() {
                    let s = v.as_str().unwrap_or_else(|| panic!("{here}: {v}"));
                    assert!(is_timestamp(s), "{here} is not UTC …Z: {s}");
                }
                check_formats(v, &here);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                check_formats(v, &format!("{path}/{i}"));
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn ids_are_big_strings_money_is_decimal_strings_times_end_in_z() {
    let h = Harness::start().await;
    let (c, invoice) = h.sim.with(|s| {
        let c = seed_clinic(s);
        let inv = s
            .create_invoice(&simulators::cliniko::store::InvoiceSpec {
                patient_id: Some(c.patient),
                items: vec![simulators::cliniko::store::ItemSpec {
                    product_id: Some(c.product),
                    quantity: Some(rust_decimal::Decimal::new(15, 1)),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .unwrap();
        (c, inv.id)
    });
    let (_, patient) = h.get_json(&format!("/patients/{}", c.patient)).await;
    let id: u64 = patient["id"].as_str().unwrap().parse().unwrap();
    assert!(id > 1 << 53, "ids exceed 2^53: {id}");
    check_formats(&patient, "/patient");

    let (_, product) = h.get_json(&format!("/products/{}", c.product)).await;
    for key in ["price_ex_tax", "price_including_tax", "stock_level"] {
        let v = product[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key}: {}", product[key]));
        assert!(is_decimal(v), "{key}={v}");
    }
    assert_eq!(product["price_ex_tax"], json!("20.0"));
    assert_eq!(product["price_including_tax"], json!("22.0"));
    assert_eq!(product["stock_level"], json!("5.0"));
    assert!(
        product.get("price").is_none(),
        "responses have no price field"
    );
    assert!(
        product.get("tax_id").is_none(),
        "no *_id fields, a tax link instead"
    );
    assert_eq!(
        product["tax"]["links"]["self"],
        json!(format!("{}/taxes/{}", h.base, c.gst))
    );

    let (_, inv) = h.get_json(&format!("/invoices/{invoice}")).await;
    check_formats(&inv, "/invoice");
    for key in [
        "total_amount",
        "net_amount",
        "tax_amount",
        "discounted_amount",
    ] {
        assert!(
            is_decimal(inv[key].as_str().unwrap()),
            "{key}: {}",
            inv[key]
        );
    }
    assert_eq!(inv["net_amount"], json!("30.0"));
    assert_eq!(inv["tax_amount"], json!("3.0"));
    assert_eq!(inv["total_amount"], json!("33.0"));
    assert!(inv["number"].is_i64() && inv["status"] == json!(10));
    let (_, items) = h
        .list(
            "/invoice_items",
            &[("q[]", &format!("invoice_id:={invoice}"))],
        )
        .await;
    let item = &items["invoice_items"][0];
    check_formats(item, "/item");
    assert_eq!(item["quantity"], json!("1.5"));
    assert_eq!(item["unit_price"], json!("20.0"));
    assert!(
        item["total_including_tax"].is_number(),
        "a JSON number per the spec"
    );
    assert_eq!(
        item["invoice"]["links"]["self"],
        json!(format!("{}/invoices/{invoice}", h.base))
    );
    let (_, taxes) = h.get_json("/taxes").await;
    assert_eq!(taxes["taxes"][0]["rate"], json!("10.0"));
    check_formats(&taxes, "/taxes");
}

#[tokio::test]
async fn every_read_endpoint_lists_and_gets() {
    let h = Harness::start().await;
    let (c, appt, invoice) = h.sim.with(|s| {
        let c = seed_clinic(s);
        let appt = appointment(s, &c, 1_760_000_000).id;
        let inv = s
            .create_invoice(&simulators::cliniko::store::InvoiceSpec {
                patient_id: Some(c.patient),
                appointment_id: Some(appt),
                items: vec![simulators::cliniko::store::ItemSpec {
                    billable_item_id: Some(c.billable_item),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .unwrap()
            .id;
        (c, appt, inv)
    });
    let item = h
        .sim
        .with(|s| *s.tables.invoice_items.keys().next().unwrap());
    for (plural, id) in [
        ("patients", c.patient),
        ("invoices", invoice),
        ("invoice_items", item),
        ("products", c.product),
        ("billable_items", c.billable_item),
        ("taxes", c.gst),
        ("individual_appointments", appt),
        ("appointment_types", c.appointment_type),
        ("businesses", c.business),
        ("practitioners", c.practitioner),
        ("contacts", c.contact),
    ] {
        let (status, body) = h.get_json(&format!("/{plural}")).await;
        assert_eq!(status, 200, "{plural}: {body}");
        assert_eq!(body["total_entries"], json!(1), "{plural}");
        assert_eq!(ids_of(&body[plural]), vec![id.to_string()], "{plural}");
        assert_eq!(
            body["links"]["self"],
            json!(format!("{}/{plural}?page=1", h.base))
        );
        check_formats(&body, plural);
        let (status, one) = h.get_json(&format!("/{plural}/{id}")).await;
        assert_eq!(status, 200, "{plural}/{id}");
        assert_eq!(one, body[plural][0], "get and list agree for {plural}");
        assert_eq!(
            one["links"]["self"],
            json!(format!("{}/{plural}/{id}", h.base))
        );
        let (status, body) = h.get_json(&format!("/{plural}/999")).await;
        assert_eq!(status, 404, "{plural}/999: {body}");
        let (status, _) = h.get_json(&format!("/{plural}/not-a-number")).await;
        assert_eq!(status, 404);
    }
    // Inactive practitioners live on their own list.
    let inactive = h.ids("/practitioners/inactive", &[]).await;
    assert_eq!(inactive, vec![c.inactive_practitioner.to_string()]);
    // The deprecated nested invoice items route still answers.
    let (status, nested) = h
        .get_json(&format!("/invoices/{invoice}/invoice_items"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(ids_of(&nested["invoice_items"]), vec![item.to_string()]);
    // The invoice links back to its appointment, patient and items; the item to its service.
    let (_, inv) = h.get_json(&format!("/invoices/{invoice}")).await;
    assert_eq!(
        inv["patient"]["links"]["self"],
        json!(format!("{}/patients/{}", h.base, c.patient))
    );
    assert!(
        inv["appointment"]["links"]["self"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/{appt}"))
    );
    let (_, line) = h.get_json(&format!("/invoice_items/{item}")).await;
    assert_eq!(
        line["billable_item"]["links"]["self"],
        json!(format!("{}/billable_items/{}", h.base, c.billable_item))
    );
    assert!(line.get("product").is_none_or(Value::is_null));
    // Unknown routes are 404 JSON, invoices cannot be written through the public API.
    let (status, _) = h.get_json("/payments").await;
    assert_eq!(status, 404);
    let (status, _) = h.send_json(Method::POST, "/invoices", &json!({})).await;
    assert!(status.is_client_error(), "invoices are read-only: {status}");
    let (status, _) = h
        .send_json(
            Method::PATCH,
            &format!("/invoices/{invoice}"),
            &json!({"notes": "x"}),
        )
        .await;
    assert!(status.is_client_error(), "invoices are read-only: {status}");
}

// ---- writes ------------------------------------------------------------------------------

#[tokio::test]
async fn patient_create_and_patch_bump_updated_at() {
    let h = Harness::start().await;
    let (status, created) = h
        .send_json(
            Method::POST,
            "/patients",
            &json!({"first_name": "Zoë", "last_name": "O'Brien", "email": "zoe@example.com",
                "patient_phone_numbers": [{"number": "0412 345 678", "phone_type": "Mobile"}]}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["label"], json!("Zoë O'Brien"));
    assert_eq!(
        created["patient_phone_numbers"][0]["normalized_number"],
        json!("61412345678")
    );
    assert_eq!(created["created_at"], created["updated_at"]);
    check_formats(&created, "/created");

    h.sim.clock.advance(Duration::from_secs(10));
    let (status, patched) = h
        .send_json(
            Method::PATCH,
            &format!("/patients/{id}"),
            &json!({"email": "zoe@example.org", "reminder_type": "SMS"}),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        patched["first_name"],
        json!("Zoë"),
        "PATCH keeps other fields"
    );
    assert_eq!(patched["email"], json!("zoe@example.org"));
    assert_eq!(patched["created_at"], created["created_at"]);
    let before = created["updated_at"].as_str().unwrap();
    let after = patched["updated_at"].as_str().unwrap();
    assert!(after > before, "updated_at {before} → {after}");

    h.sim.clock.advance(Duration::from_secs(10));
    let (status, put) = h
        .send_json(
            Method::PUT,
            &format!("/patients/{id}"),
            &json!({"city": "Hobart"}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(put["updated_at"].as_str().unwrap() > after);
    // A changed-since filter now finds it.
    assert_eq!(
        h.ids("/patients", &[("q[]", &format!("updated_at:>{after}"))])
            .await,
        vec![id.clone()]
    );
    let (status, _) = h
        .send_json(Method::PATCH, "/patients/77", &json!({"city": "Hobart"}))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn create_returns_201_with_location() {
    let h = Harness::start().await;
    let r = h
        .request(Method::POST, "/patients")
        .json(&json!({"first_name": "Loc", "last_name": "Ation"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    assert_eq!(location, body["links"]["self"].as_str().unwrap());
    let (status, again) = h.get_json(&location).await;
    assert_eq!(status, 200);
    assert_eq!(again["id"], body["id"]);
}

#[tokio::test]
async fn validation_errors_have_the_documented_shape() {
    let h = Harness::start().await;
    let (status, body) = h.send_json(Method::POST, "/patients", &json!({})).await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"message": "Validation Failed",
            "errors": {"first_name": "can\u{2019}t be blank", "last_name": "can\u{2019}t be blank"}})
    );
    let (status, body) = h
        .send_json(
            Method::POST,
            "/patients",
            &json!({"first_name": "A", "last_name": "B", "email": "not-an-email"}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"]["email"], json!("is invalid"));
    assert!(body["errors"]["email"].is_string(), "one string per field");

    // A JSON body without a JSON content type is ignored: every field reads as blank.
    let r = h
        .request(Method::POST, "/patients")
        .header("Content-Type", "text/plain")
        .body(r#"{"first_name":"A","last_name":"B"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errors"]["first_name"], json!("can\u{2019}t be blank"));
    let r = h
        .request(Method::POST, "/patients")
        .body(r#"{"first_name":"A","last_name":"B"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "no content type at all");

    // Not an object, and not JSON.
    let (status, body) = h.send_json(Method::POST, "/patients", &json!([1])).await;
    assert_eq!(status, 422);
    assert_eq!(body, json!({"message": "must be an object"}));
    let r = h
        .request(Method::POST, "/patients")
        .header("Content-Type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(h.sim.state().tables.patients.len(), 0, "nothing was stored");
}

#[tokio::test]
async fn products_create_with_price_and_tax_and_refuse_stock_level_updates() {
    let h = Harness::start().await;
    let c = h.sim.with(seed_clinic);
    let (gst, theraband) = (c.gst.to_string(), c.product.to_string());
    let (status, p) = h
        .send_json(
            Method::POST,
            "/products",
            &json!({"name": "Foam roller", "price": 45.5, "tax_id": gst, "item_code": "FR-1",
                "cost_price": "20.00", "stock_level": "3"}),
        )
        .await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(p["price_ex_tax"], json!("45.5"));
    assert_eq!(p["price_including_tax"], json!("50.05"));
    assert_eq!(p["cost_price"], json!("20.0"));
    assert_eq!(p["stock_level"], json!("3.0"));
    assert_eq!(
        p["tax"]["links"]["self"],
        json!(format!("{}/taxes/{gst}", h.base))
    );
    let id = p["id"].as_str().unwrap().to_string();

    // Price as a string, tax-inclusive.
    let (status, q) = h
        .send_json(
            Method::POST,
            "/products",
            &json!({"name": "Ice pack", "price": "11.00", "price_includes_tax": true, "tax_id": gst}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(q["price_ex_tax"], json!("10.0"));
    assert_eq!(q["price_including_tax"], json!("11.0"));

    h.sim.clock.advance(Duration::from_secs(5));
    let (status, body) = h
        .send_json(
            Method::PATCH,
            &format!("/products/{id}"),
            &json!({"stock_level": "9"}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["message"], json!("Validation Failed"));
    assert!(
        body["errors"]["stock_level"]
            .as_str()
            .unwrap()
            .contains("stock adjustment")
    );
    let (status, patched) = h
        .send_json(
            Method::PATCH,
            &format!("/products/{id}"),
            &json!({"name": "Foam roller XL"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(patched["stock_level"], json!("3.0"));
    assert!(patched["updated_at"].as_str() > p["updated_at"].as_str());

    let (status, body) = h
        .send_json(Method::POST, "/products", &json!({"price": 1}))
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"]["name"], json!("can\u{2019}t be blank"));
    let (status, body) = h
        .send_json(
            Method::POST,
            "/products",
            &json!({"name": "X", "tax_id": "1"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");

    // Archive: DELETE and POST …/archive both hide it.
    let r = h
        .request(Method::DELETE, &format!("/products/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let ice_pack = q["id"].as_str().unwrap().to_string();
    assert_eq!(
        h.ids("/products", &[]).await,
        vec![theraband.clone(), ice_pack.clone()]
    );
    let r = h
        .request(Method::POST, &format!("/products/{ice_pack}/archive"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(h.ids("/products", &[]).await, vec![theraband]);
    assert_eq!(
        h.ids("/products", &[("q[]", "archived_at:*")]).await.len(),
        3
    );
}

#[tokio::test]
async fn stock_adjustments_follow_the_sign_rules() {
    let h = Harness::start().await;
    let product = h.sim.with(|s| seed_clinic(s).product.to_string());
    let adjust = |kind: &'static str, qty: &'static str| {
        let h = &h;
        let product = product.clone();
        async move {
            h.send_json(
                Method::POST,
                "/stock_adjustments",
                &json!({"product_id": product, "adjustment_type": kind, "quantity": qty,
                    "notes": "test"}),
            )
            .await
        }
    };
    for (kind, qty, ok) in [
        ("Stock Purchase", "10", true),
        ("Returned", "1", true),
        ("Other", "2", true),
        ("Other", "-1", true),
        ("Damaged", "-2", true),
        ("Out of Date", "-1", true),
        ("Item Sold", "-3", true),
        ("Correction", "-1", true),
        ("Stock Purchase", "-1", false),
        ("Returned", "-1", false),
        ("Damaged", "2", false),
        ("Item Sold", "1", false),
        ("Correction", "1", false),
        ("Stock Purchase", "0", false),
        ("Lost", "1", false),
    ] {
        let (status, body) = adjust(kind, qty).await;
        if ok {
            assert_eq!(status, 201, "{kind} {qty}: {body}");
            assert_eq!(body["adjustment_type"], json!(kind));
            assert_eq!(
                body["product"]["links"]["self"],
                json!(format!("{}/products/{product}", h.base))
            );
            assert!(body["user"]["links"]["self"].is_string());
        } else {
            assert_eq!(status, 422, "{kind} {qty}: {body}");
            assert_eq!(body["message"], json!("Validation Failed"));
        }
    }
    // 5 + 10 + 1 + 2 - 1 - 2 - 1 - 3 - 1 = 10
    let (_, p) = h.get_json(&format!("/products/{product}")).await;
    assert_eq!(p["stock_level"], json!("10.0"));
    let listed = h
        .ids(
            "/stock_adjustments",
            &[("q[]", &format!("product_id:={product}"))],
        )
        .await;
    assert_eq!(listed.len(), 8);
    let (status, body) = h
        .send_json(
            Method::POST,
            "/stock_adjustments",
            &json!({"product_id": "1", "adjustment_type": "Returned", "quantity": "1"}),
        )
        .await;
    assert_eq!(status, 422);
    assert!(body["errors"]["product"].is_string());
}

#[tokio::test]
async fn admin_routes_create_and_change_invoices() {
    let h = Harness::start().await;
    let c = h.sim.with(seed_clinic);
    let (status, inv) = h
        .admin(
            Method::POST,
            "/invoices",
            Some(
                &json!({"patient_id": c.patient.to_string(), "issue_date": "2025-03-01",
                "items": [{"product_id": c.product.to_string(), "quantity": "2"},
                          {"billable_item_id": c.billable_item.to_string()}]}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{inv}");
    let id = inv["id"].as_str().unwrap().to_string();
    assert_eq!(inv["issue_date"], json!("2025-03-01"));
    assert_eq!(inv["status_description"], json!("Open"));
    assert_eq!(inv["total_amount"], json!("139.0"));
    let (_, public) = h.get_json(&format!("/invoices/{id}")).await;
    assert_eq!(public, inv, "the admin answer is what the API serves");
    assert_eq!(
        h.ids("/invoice_items", &[("q[]", &format!("invoice_id:={id}"))])
            .await
            .len(),
        2
    );

    h.sim.clock.advance(Duration::from_secs(60));
    let (status, paid) = h
        .admin(
            Method::PATCH,
            &format!("/invoices/{id}"),
            Some(&json!({"status": 20})),
        )
        .await;
    assert_eq!(status, 200, "{paid}");
    assert_eq!(paid["status"], json!(20));
    assert_eq!(paid["status_description"], json!("Paid"));
    assert!(paid["closed_at"].is_string());
    assert!(paid["updated_at"].as_str() > inv["updated_at"].as_str());
    assert_eq!(
        h.ids("/invoices", &[("q[]", "status:=20")]).await,
        vec![id.clone()]
    );

    // Replacing the lines deletes the old ones (hidden unless asked).
    let (status, _) = h
        .admin(
            Method::PATCH,
            &format!("/invoices/{id}"),
            Some(&json!({"items": [{"billable_item_id": c.billable_item.to_string()}]})),
        )
        .await;
    assert_eq!(status, 200);
    let q = format!("invoice_id:={id}");
    assert_eq!(h.ids("/invoice_items", &[("q[]", &q)]).await.len(), 1);
    assert_eq!(
        h.ids("/invoice_items", &[("q[]", &q), ("q[]", "deleted_at:*")])
            .await
            .len(),
        3
    );
    let (status, _) = h
        .admin(
            Method::PATCH,
            &format!("/invoices/{id}"),
            Some(&json!({"archived": true})),
        )
        .await;
    assert_eq!(status, 200);
    assert!(h.ids("/invoices", &[]).await.is_empty());
    assert_eq!(
        h.ids("/invoices", &[("q[]", "archived_at:*")]).await,
        vec![id]
    );

    let (status, body) = h
        .admin(Method::POST, "/invoices", Some(&json!({"items": []})))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["message"], json!("Validation Failed"));
}

// ---- rate limit --------------------------------------------------------------------------

#[tokio::test]
async fn rate_limit_answers_429_with_a_future_reset() {
    let h = Harness::with_config(ClinikoConfig {
        rate_limit_per_minute: 3,
        ..Default::default()
    })
    .await;
    for _ in 0..3 {
        assert_eq!(h.get_json("/patients").await.0, 200);
    }
    let r = h.get("/patients").send().await.unwrap();
    assert_eq!(r.status(), 429);
    let reset: i64 = r.headers()["x-ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .expect("unix seconds");
    let now = unix_now();
    assert!(reset > now, "reset {reset} is after now {now}");
    assert!(reset <= now + 61, "within the minute window");
    // The bare key is the same user: it shares the budget.
    let bare = DEFAULT_API_KEY.rsplit_once('-').unwrap().0;
    let r = h
        .client
        .get(h.url("/taxes"))
        .basic_auth(bare, Some(""))
        .header("User-Agent", UA)
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    // Another user has their own budget.
    h.sim.add_api_key("OtherUserKey-au2");
    let r = h
        .client
        .get(h.url("/taxes"))
        .basic_auth("OtherUserKey-au2", Some(""))
        .header("User-Agent", UA)
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Rejected requests do not count; the next window starts after the reset.
    h.sim.clock.advance(Duration::from_secs(61));
    assert_eq!(h.get_json("/patients").await.0, 200);

    // 0 turns the limit off.
    h.sim.rate_limit.set_limit(0);
    for _ in 0..50 {
        assert_eq!(h.get_json("/taxes").await.0, 200);
    }
    // And the admin route sets it too.
    let (status, _) = h
        .admin(Method::POST, "/rate_limit", Some(&json!({"per_minute": 1})))
        .await;
    assert_eq!(status, 204);
    assert_eq!(h.get_json("/taxes").await.0, 200);
    assert_eq!(h.get_json("/taxes").await.0, 429);
}

#[tokio::test]
async fn default_rate_limit_is_200_a_minute() {
    let sim = ClinikoSim::new(ClinikoConfig::default());
    assert_eq!(sim.rate_limit.limit(), 200);
    let h = Harness::start().await;
    let mut statuses = Vec::new();
    for _ in 0..201 {
        statuses.push(h.get("/taxes").send().await.unwrap().status().as_u16());
    }
    assert!(statuses[..200].iter().all(|s| *s == 200));
    assert_eq!(statuses[200], 429);
}

// ---- faults ------------------------------------------------------------------------------

#[tokio::test]
async fn fail_next_then_success() {
    let h = Harness::start().await;
    h.sim
        .faults
        .add(FaultRule::fail_next("/v1/patients*", 503, 1));
    let (status, _) = h.get_json("/patients").await;
    assert_eq!(status, 503);
    let (status, _) = h.get_json("/patients").await;
    assert_eq!(status, 200);
    // Only the matching route is affected.
    h.sim
        .faults
        .add(FaultRule::fail_next("/v1/invoices*", 502, 2));
    assert_eq!(h.get_json("/patients").await.0, 200);
    assert_eq!(h.get_json("/invoices").await.0, 502);
    assert_eq!(h.get_json("/invoices").await.0, 502);
    assert_eq!(h.get_json("/invoices").await.0, 200);
}

async fn status_sequence(seed: u64) -> Vec<u16> {
    let h = Harness::with_config(ClinikoConfig {
        seed,
        rate_limit_per_minute: 0,
        ..Default::default()
    })
    .await;
    h.sim.faults.add(FaultRule {
        path: Some("/v1/patients*".into()),
        error_rate: 0.4,
        ..Default::default()
    });
    let mut out = Vec::new();
    for _ in 0..40 {
        out.push(h.get("/patients").send().await.unwrap().status().as_u16());
        // Other routes are untouched and do not consume the random stream.
        assert_eq!(h.get("/taxes").send().await.unwrap().status(), 200);
    }
    out
}

#[tokio::test]
async fn error_rates_are_deterministic_under_a_seed() {
    let a = status_sequence(42).await;
    let b = status_sequence(42).await;
    assert_eq!(a, b, "same seed, same statuses");
    assert!(a.iter().all(|s| [200, 500, 502, 503].contains(s)), "{a:?}");
    let errors = a.iter().filter(|s| **s >= 500).count();
    assert!(
        (4..=30).contains(&errors),
        "about 40% of 40: {errors} ({a:?})"
    );
    let c = status_sequence(43).await;
    assert_ne!(a, c, "a different seed gives a different sequence");
}

#[tokio::test]
async fn rate_limit_bursts_are_429_with_reset() {
    let h = Harness::start().await;
    h.sim.faults.add(FaultRule::rate_limit_burst(2));
    for _ in 0..2 {
        let r = h.get("/patients").send().await.unwrap();
        assert_eq!(r.status(), 429);
        let reset: i64 = r.headers()["x-ratelimit-reset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(reset > unix_now());
    }
    assert_eq!(h.get_json("/patients").await.0, 200);
}

#[tokio::test]
async fn latency_is_added() {
    let h = Harness::start().await;
    h.sim.faults.add(FaultRule {
        path: Some("/v1/patients".into()),
        latency_ms: 250,
        ..Default::default()
    });
    let started = Instant::now();
    assert_eq!(h.get_json("/patients").await.0, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn hung_requests_time_out_on_the_client() {
    let h = Harness::start().await;
    h.sim.faults.set_hang_duration(Duration::from_secs(3));
    h.sim.faults.add(FaultRule {
        hang_rate: 1.0,
        remaining: Some(1),
        ..Default::default()
    });
    let started = Instant::now();
    let err = h
        .get("/patients")
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .expect_err("the request hangs");
    assert!(err.is_timeout(), "{err:?}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    // The rule is spent: the next request is answered.
    assert_eq!(h.get_json("/patients").await.0, 200);
}

#[tokio::test]
async fn dropped_connections_are_transport_errors() {
    let h = Harness::start().await;
    h.sim.with(|s| patient(s, "A", "B"));
    h.sim.faults.add(FaultRule {
        path: Some("/v1/patients".into()),
        drop_rate: 1.0,
        remaining: Some(1),
        ..Default::default()
    });
    let failed = match h.get("/patients").send().await {
        Err(_) => true,
        Ok(r) => r.bytes().await.is_err(),
    };
    assert!(failed, "the client sees a broken connection");
    let dropped: Vec<_> = h
        .sim
        .traffic
        .exchanges()
        .into_iter()
        .filter(|e| e.dropped)
        .collect();
    assert_eq!(dropped.len(), 1);
    assert_eq!(h.get_json("/patients").await.0, 200);
}

#[tokio::test]
async fn outages_switch_on_and_off() {
    let h = Harness::start().await;
    h.sim.faults.set_outage(true);
    assert_eq!(h.get_json("/patients").await.0, 503);
    assert_eq!(h.get_json("/taxes").await.0, 503);
    h.sim.faults.set_outage(false);
    assert_eq!(h.get_json("/patients").await.0, 200);
    // The same through the admin route, which stays up during the outage.
    let (status, _) = h
        .admin(Method::POST, "/outage", Some(&json!({"down": true})))
        .await;
    assert_eq!(status, 204);
    assert_eq!(h.get_json("/patients").await.0, 503);
    let (status, body) = h.admin(Method::GET, "/faults", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["outage"], json!(true));
    let (status, _) = h
        .admin(Method::POST, "/outage", Some(&json!({"down": false})))
        .await;
    assert_eq!(status, 204);
    assert_eq!(h.get_json("/patients").await.0, 200);
    // Fault rules through the admin route.
    let (status, _) = h
        .admin(
            Method::POST,
            "/faults",
            Some(
                &json!({"path": "/v1/taxes", "error_rate": 1.0, "error_statuses": [500],
                "remaining": 1}),
            ),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(h.get_json("/taxes").await.0, 500);
    assert_eq!(h.get_json("/taxes").await.0, 200);
}

#[tokio::test]
async fn requests_are_counted_per_route() {
    let h = Harness::start().await;
    let id = h.sim.with(|s| patient(s, "A", "B").id);
    for _ in 0..3 {
        h.get_json("/patients").await;
    }
    h.get_json(&format!("/patients/{id}")).await;
    h.get_json(&format!("/patients/{id}")).await;
    h.get_json("/invoices").await;
    let counts = h.sim.traffic.counts();
    assert_eq!(counts[&("GET".into(), "/v1/patients".into())], 3);
    assert_eq!(counts[&("GET".into(), "/v1/patients/{id}".into())], 2);
    assert_eq!(h.sim.traffic.count("GET", "/v1/invoices"), 1);
    assert_eq!(
        h.sim.traffic.count("GET", "/v1/patients"),
        5,
        "needle matches both"
    );
    assert_eq!(h.sim.traffic.count("POST", "/v1/patients"), 0);
    // Failed requests count too.
    h.sim
        .faults
        .add(FaultRule::fail_next("/v1/invoices", 500, 1));
    h.get_json("/invoices").await;
    assert_eq!(h.sim.traffic.count("GET", "/v1/invoices"), 2);
    let (status, body) = h.admin(Method::GET, "/requests", None).await;
    assert_eq!(status, 200);
    // The admin request itself is counted once it has been answered.
    assert_eq!(body["total"], json!(h.sim.traffic.total() - 1));
    h.sim.traffic.reset();
    assert_eq!(h.sim.traffic.total(), 0);
}
