//! A seeded clinic at any size: an Australian allied-health practice with the awkward data a
//! sync meets in real life: names with apostrophes, hyphens, accents and non-Latin scripts;
//! missing and shared family emails; postal and street addresses; mobile and landline numbers;
//! archived and merged patients; invoices with GST and GST-free lines, percentage and money
//! discounts, both tax calculation methods and every status; products with and without GST;
//! cancelled, did-not-arrive and attended appointments. Same seed and size, same clinic.

use crate::cliniko::model::*;
use crate::cliniko::store::{ClinikoState, InvoicePatch, InvoiceSpec, ItemSpec};
use chrono::{DateTime, Duration, TimeDelta, Utc};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

/// How big a clinic to make.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClinicSize {
    pub patients: usize,
    /// Average invoices per patient.
    pub invoices_per_patient: f64,
    pub products: usize,
    pub practitioners: usize,
}

impl ClinicSize {
    /// Sensible proportions for a clinic with `n` patients.
    pub fn with_patients(n: usize) -> Self {
        ClinicSize {
            patients: n,
            invoices_per_patient: 2.5,
            products: PRODUCTS.len(),
            practitioners: (2 + n / 150).min(6),
        }
    }
}

/// What was made, with ids tests can use.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedReport {
    pub patients: usize,
    pub invoices: usize,
    pub invoice_items: usize,
    pub products: usize,
    pub appointments: usize,
    pub business_id: u64,
    pub gst_tax_id: u64,
    pub gst_free_tax_id: u64,
    pub practitioner_ids: Vec<u64>,
    pub billable_item_ids: Vec<u64>,
    pub product_ids: Vec<u64>,
}

/// Someone who is already a customer in the clinic's Reckon book before the first sync.
#[derive(Debug, Clone, PartialEq)]
pub struct ExistingCustomer {
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address_line1: Option<String>,
    pub suburb: Option<String>,
    pub state: Option<String>,
    pub postcode: Option<String>,
    pub cliniko_patient_id: u64,
}

const FIRST_NAMES: &[&str] = &[
    "Olivia",
    "Jack",
    "Charlotte",
    "William",
    "Amelia",
    "Noah",
    "Isla",
    "Oliver",
    "Mia",
    "Thomas",
    "Grace",
    "James",
    "Chloe",
    "Lachlan",
    "Ruby",
    "Liam",
    "Sophie",
    "Ethan",
    "Matilda",
    "Cooper",
    "Zoë",
    "José",
    "Renée",
    "Siobhán",
    "Chloé",
    "Maëlle",
    "Seán",
    "Aoife",
    "Zoë-Rose",
    "Mary-Jane",
    "Nguyen",
    "Linh",
    "Minh",
    "Wei",
    "Mei",
    "Priya",
    "Arjun",
    "Aisha",
    "Omar",
    "Fatima",
    "Giulia",
    "Marco",
    "Eleni",
    "Giorgos",
    "Kiri",
    "Tane",
    "Bindi",
    "Jarrah",
    "Hamish",
    "Fiona",
];
const LAST_NAMES: &[&str] = &[
    "Smith",
    "Jones",
    "Williams",
    "Brown",
    "Wilson",
    "Taylor",
    "Johnson",
    "White",
    "Martin",
    "Anderson",
    "Thompson",
    "Nguyen",
    "Tran",
    "Le",
    "Pham",
    "Chen",
    "Wang",
    "Li",
    "Zhang",
    "Singh",
    "Patel",
    "Kumar",
    "O'Brien",
    "O'Connor",
    "D'Arcy",
    "McDonald",
    "MacKenzie",
    "Smith-Jones",
    "Lee-Wong",
    "Papadopoulos",
    "Rossi",
    "Esposito",
    "Kowalski",
    "Müller",
    "García",
    "Núñez",
    "Haddad",
    "Khoury",
    "Walker",
    "Ryan",
];
/// Whole identities written in their own script (given, family, an ASCII alias for email).
const NON_LATIN: &[(&str, &str, &str)] = &[
    ("伟", "李", "wei.li"),
    ("秀英", "王", "xiuying.wang"),
    ("Νίκος", "Παπαδόπουλος", "nikos.papadopoulos"),
    ("Мария", "Иванова", "maria.ivanova"),
    ("محمد", "حداد", "mohammed.haddad"),
    ("민준", "김", "minjun.kim"),
];
const REMINDERS: &[&str] = &["SMS", "Email", "SMS & Email", "None"];
const TITLES: &[&str] = &["Mr", "Mrs", "Ms", "Dr", "Mx"];
const PREFERRED: &[&str] = &["Liz", "Bill", "Kate", "Tom", "Sam", "Jimmy", "Bec", "Tash"];
const SUBURBS: &[(&str, &str, &str)] = &[
    ("Bondi", "NSW", "2026"),
    ("Newtown", "NSW", "2042"),
    ("Parramatta", "NSW", "2150"),
    ("Manly", "NSW", "2095"),
    ("Fitzroy", "VIC", "3065"),
    ("St Kilda", "VIC", "3182"),
    ("Geelong", "VIC", "3220"),
    ("New Farm", "QLD", "4005"),
    ("Cairns", "QLD", "4870"),
    ("Fremantle", "WA", "6160"),
    ("Subiaco", "WA", "6008"),
    ("Glenelg", "SA", "5045"),
    ("Sandy Bay", "TAS", "7005"),
    ("Braddon", "ACT", "2612"),
    ("Parap", "NT", "0820"),
];
const STREETS: &[&str] = &[
    "Campbell Parade",
    "King Street",
    "Church Street",
    "Brunswick Street",
    "Fitzroy Street",
    "Brunswick Street",
    "Sheridan Street",
    "South Terrace",
    "Rokeby Road",
    "Jetty Road",
    "Sandy Bay Road",
    "Lonsdale Street",
    "Parap Road",
];
const EMAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "outlook.com",
    "bigpond.com",
    "icloud.com",
    "yahoo.com.au",
    "optusnet.com.au",
];
const NOTES: &[&str] = &[
    "Left ACL reconstruction 2023; progressing well.",
    "Chronic lower back pain. Avoid lumbar flexion under load.",
    "Post-natal pelvic floor program.",
    "Rotator cuff tendinopathy (R).",
    "Referred by GP for plantar fasciitis.",
];

/// (name, item_type, price ex tax, GST?)
const BILLABLE_ITEMS: &[(&str, &str, &str, bool)] = &[
    ("Initial Consultation", "Service", "130.00", false),
    ("Standard Consultation", "Service", "95.00", false),
    ("Extended Consultation", "Service", "145.50", false),
    ("Telehealth Review", "Service", "85.00", false),
    ("Group Pilates Class", "Service", "33.33", true),
    ("Report Writing", "Other", "95.45", true),
    ("Late Cancellation Fee", "Other", "50.00", true),
    ("Strapping (per application)", "Product", "12.95", true),
];
/// (name, code, price, price includes tax?, GST?, stock)
const PRODUCTS: &[(&str, &str, &str, bool, bool, i64)] = &[
    (
        "Theraband Resistance Band – Light",
        "TB-L",
        "18.95",
        true,
        true,
        40,
    ),
    (
        "Theraband Resistance Band – Heavy",
        "TB-H",
        "21.95",
        true,
        true,
        25,
    ),
    ("Wheat Heat Pack", "HP-1", "24.95", true, true, 18),
    ("Foam Roller 90cm", "FR-90", "49.00", true, true, 9),
    (
        "Orthotic Insoles (pair)",
        "ORTH-1",
        "89.00",
        false,
        false,
        12,
    ),
    ("Hinged Knee Brace", "KB-2", "65.00", false, false, 6),
    (
        "Rigid Strapping Tape 38mm",
        "RST-38",
        "9.95",
        true,
        true,
        120,
    ),
    ("Kinesiology Tape", "KT-5", "19.99", true, true, 60),
    ("Massage Ball", "MB-1", "7.50", true, true, 35),
    ("Cervical Contour Pillow", "CP-1", "99.00", true, true, 4),
    (
        "Disposable Electrode Pads (4)",
        "EP-4",
        "33.33",
        false,
        true,
        50,
    ),
    ("Ice Gel Pack", "IGP", "0.05", false, true, 200),
    ("Exercise Mat", "EM-1", "45.45", false, true, 7),
    ("Posture Corrector", "PC-1", "39.95", true, false, 10),
];

fn map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn dec(text: &str) -> Decimal {
    text.parse().unwrap_or_default()
}

fn ascii_slug(text: &str) -> String {
    let folded: String = text
        .chars()
        .map(|c| match c {
            'à' | 'á' | 'â' | 'ä' | 'ã' => 'a',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ò' | 'ó' | 'ô' | 'ö' | 'õ' => 'o',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            'ñ' => 'n',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    folded
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect()
}

struct Person {
    first: String,
    last: String,
    alias: String,
}

fn person(rng: &mut ChaCha8Rng) -> Person {
    if rng.random_bool(0.03) {
        let (first, last, alias) = NON_LATIN.choose(rng).copied().unwrap_or(NON_LATIN[0]);
        return Person {
            first: first.into(),
            last: last.into(),
            alias: alias.into(),
        };
    }
    let first = FIRST_NAMES.choose(rng).copied().unwrap_or("Alex");
    let last = LAST_NAMES.choose(rng).copied().unwrap_or("Smith");
    Person {
        first: first.into(),
        last: last.into(),
        alias: format!("{}.{}", ascii_slug(first), ascii_slug(last)),
    }
}

struct Home {
    line1: String,
    line2: Option<String>,
    line3: Option<String>,
    suburb: &'static str,
    state: &'static str,
    postcode: &'static str,
    landline: String,
}

fn home(rng: &mut ChaCha8Rng) -> Home {
    let (suburb, state, postcode) = SUBURBS.choose(rng).copied().unwrap_or(SUBURBS[0]);
    let postal = rng.random_bool(0.08);
    let line1 = if postal {
        format!("PO Box {}", rng.random_range(1..=2999))
    } else {
        format!(
            "{} {}",
            rng.random_range(1..=420),
            STREETS.choose(rng).copied().unwrap_or("King Street")
        )
    };
    let line2 =
        (!postal && rng.random_bool(0.2)).then(|| format!("Unit {}", rng.random_range(1..=40)));
    let line3 = rng.random_bool(0.03).then(|| "c/o Reception".to_string());
    let area = match state {
        "NSW" | "ACT" => "02",
        "VIC" | "TAS" => "03",
        "QLD" => "07",
        _ => "08",
    };
    let landline = format!(
        "({area}) {} {:04}",
        rng.random_range(5000..=9999),
        rng.random_range(0..=9999)
    );
    Home {
        line1,
        line2,
        line3,
        suburb,
        state,
        postcode,
        landline,
    }
}

fn mobile(rng: &mut ChaCha8Rng) -> String {
    format!(
        "04{:02} {:03} {:03}",
        rng.random_range(0..=99),
        rng.random_range(0..=999),
        rng.random_range(0..=999)
    )
}

/// Fills an empty Cliniko state with a deterministic clinic, all of it in the past relative
/// to the state's clock (second precision, `updated_at >= created_at`, ids in creation order).
pub fn seed_clinic(state: &mut ClinikoState, seed: u64, size: ClinicSize) -> SeedReport {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let now = state.now();
    let opened = now - TimeDelta::days(400);

    // Reference data, all from the day the clinic opened.
    let business_id = state.fresh_id();
    state.insert(Business {
        id: business_id,
        business_name: Some("Harbourside Physiotherapy".into()),
        display_name: Some("Harbourside Physio".into()),
        label: Some("Harbourside Physio".into()),
        address_1: Some("Level 2, 88 Bay Street".into()),
        city: Some("Double Bay".into()),
        state: Some("NSW".into()),
        post_code: Some("2028".into()),
        country: Some("Australia".into()),
        country_code: Some("AU".into()),
        business_registration_name: Some("ABN".into()),
        business_registration_value: Some("51 824 753 556".into()),
        email_reply_to: Some("reception@harbourside.example".into()),
        time_zone: Some("Sydney".into()),
        time_zone_identifier: Some("Australia/Sydney".into()),
        created_at: opened,
        updated_at: opened,
        ..Default::default()
    });
    let gst_tax_id = state.fresh_id();
    state.insert(Tax {
        id: gst_tax_id,
        name: "GST".into(),
        rate: dec("10.0"),
        amount: dec("10.0"),
        created_at: opened,
        updated_at: opened,
    });
    let gst_free_tax_id = state.fresh_id();
    state.insert(Tax {
        id: gst_free_tax_id,
        name: "GST Free".into(),
        rate: Decimal::ZERO,
        amount: Decimal::ZERO,
        created_at: opened,
        updated_at: opened,
    });

    let titles = ["Dr", "Mx", "Ms", "Mr"];
    let mut practitioner_ids = Vec::new();
    for i in 0..size.practitioners.max(1) {
        let p = person(&mut rng);
        let id = state.fresh_id();
        state.insert(Practitioner {
            id,
            active: Some(i + 1 < size.practitioners.max(2) || size.practitioners == 1),
            title: Some(titles[i % titles.len()].into()),
            first_name: Some(p.first.clone()),
            last_name: Some(p.last.clone()),
            display_name: Some(format!("{} {}", p.first, p.last)),
            label: Some(format!("{} {}", p.first, p.last)),
            designation: Some(
                if i % 3 == 2 {
                    "Exercise Physiologist"
                } else {
                    "Physiotherapist"
                }
                .into(),
            ),
            show_in_online_bookings: Some(true),
            created_at: opened,
            updated_at: opened,
            ..Default::default()
        });
        practitioner_ids.push(id);
    }
    let mut billable_item_ids = Vec::new();
    for (name, kind, price, gst) in BILLABLE_ITEMS {
        let id = state.fresh_id();
        state.insert(BillableItem {
            id,
            name: (*name).into(),
            item_code: Some(format!("BI-{}", billable_item_ids.len() + 1)),
            item_type: (*kind).into(),
            price: dec(price),
            archived_at: None,
            created_at: opened,
            updated_at: opened,
            tax_id: Some(if *gst { gst_tax_id } else { gst_free_tax_id }),
        });
        billable_item_ids.push(id);
    }
    let mut appointment_type_ids = Vec::new();
    for (i, (name, minutes)) in [
        ("Initial Consultation", 60),
        ("Standard Consultation", 30),
        ("Extended Consultation", 45),
        ("Telehealth Review", 20),
        ("Group Pilates Class", 55),
    ]
    .into_iter()
    .enumerate()
    {
        let id = state.fresh_id();
        state.insert(AppointmentType {
            id,
            name: name.into(),
            category: Some(if i == 4 { "Classes" } else { "Consultations" }.into()),
            color: ["#3b82f6", "#10b981", "#f59e0b", "#8b5cf6", "#ef4444"][i].into(),
            duration_in_minutes: minutes,
            max_attendees: if i == 4 { 8 } else { 1 },
            show_in_online_bookings: Some(true),
            telehealth_enabled: Some(i == 3),
            created_at: opened,
            updated_at: opened,
            billable_item_id: Some(billable_item_ids[i]),
            ..Default::default()
        });
        // What an appointment of the type is charged with (the current, non-deprecated way).
        let row = state.fresh_id();
        state.insert(AppointmentTypeBillableItem {
            id: row,
            quantity: Decimal::ONE,
            created_at: opened,
            updated_at: opened,
            appointment_type_id: Some(id),
            billable_item_id: Some(billable_item_ids[i]),
            ..Default::default()
        });
        appointment_type_ids.push(id);
    }
    for (first, last, company) in [
        ("Helen", "Marsh", "Double Bay Medical Centre"),
        ("Rajesh", "Iyer", "Eastern Suburbs GP"),
    ] {
        let id = state.fresh_id();
        state.insert(Contact {
            id,
            title: Some("Dr".into()),
            first_name: Some(first.into()),
            last_name: Some(last.into()),
            company_name: Some(company.into()),
            occupation: Some("General Practitioner".into()),
            doctor_type: Some("GP".into()),
            email: Some(format!(
                "{}.{}@clinic.example",
                first.to_lowercase(),
                last.to_lowercase()
            )),
            contact_type: Some("Doctor".into()),
            country_code: Some("AU".into()),
            created_at: opened,
            updated_at: opened,
            ..Default::default()
        });
    }
    let mut product_ids = Vec::new();
    for (name, code, price, inclusive, gst, stock) in PRODUCTS.iter().take(size.products.max(1)) {
        let body = map(
            json!({"name": name, "item_code": code, "price": price, "price_includes_tax": inclusive,
            "tax_id": (if *gst { gst_tax_id } else { gst_free_tax_id }).to_string(), "stock_level": stock.to_string(),
            "cost_price": "4.50"}),
        );
        if let Ok(p) = state.create_product(&body) {
            stamp::<Product>(state, p.id, opened, opened);
            product_ids.push(p.id);
        }
    }

    // Patients, created in time order over the clinic's life.
    let n = size.patients;
    let span = (now - opened).num_seconds().max(1);
    let mut patient_ids: Vec<u64> = Vec::with_capacity(n);
    let mut families: Vec<(String, String, usize)> = Vec::new(); // (last name, shared email, index)
    for i in 0..n {
        let created = opened + TimeDelta::seconds(span * i as i64 / (n as i64 + 1));
        let mut p = person(&mut rng);
        let mut email = Some(format!(
            "{}{}@{}",
            p.alias,
            rng.random_range(1..=99),
            EMAIL_DOMAINS
                .choose(&mut rng)
                .copied()
                .unwrap_or("gmail.com")
        ));
        // Children share a parent's email, surname and home.
        let family = (!families.is_empty() && rng.random_bool(0.08))
            .then(|| families[rng.random_range(0..families.len())].clone());
        if let Some((last, shared, _)) = &family {
            p.last = last.clone();
            email = Some(shared.clone());
        }
        if rng.random_bool(0.10) {
            email = None;
        }
        // A deliberate namesake: two different live patients called Sarah Nguyen.
        if n >= 50 && (i == n / 3 || i == 2 * n / 3) {
            p = Person {
                first: "Sarah".into(),
                last: "Nguyen".into(),
                alias: "sarah.nguyen".into(),
            };
            email = Some(format!("sarah.nguyen{}@gmail.com", i));
        }
        let h = home(&mut rng);
        let mut phones = Vec::new();
        if rng.random_bool(0.85) {
            phones.push(json!({"number": mobile(&mut rng), "phone_type": "Mobile"}));
        }
        if rng.random_bool(0.3) || phones.is_empty() && rng.random_bool(0.6) {
            phones.push(json!({"number": h.landline, "phone_type": "Home"}));
        }
        let dob = chrono::NaiveDate::from_ymd_opt(
            rng.random_range(1940..=2022),
            rng.random_range(1..=12),
            rng.random_range(1..=28),
        );
        let body = map(json!({
            "title": if rng.random_bool(0.3) { TITLES.choose(&mut rng).copied() } else { None },
            "first_name": p.first,
            "last_name": p.last,
            "preferred_first_name": if rng.random_bool(0.07) { PREFERRED.choose(&mut rng).copied() } else { None },
            "date_of_birth": dob.map(|d| d.format("%Y-%m-%d").to_string()),
            "email": email,
            "invoice_email": if rng.random_bool(0.04) { Some(format!("accounts{}@workcover.example", i)) } else { None },
            "address_1": h.line1,
            "address_2": h.line2,
            "address_3": h.line3,
            "city": h.suburb,
            "state": h.state,
            "post_code": h.postcode,
            "country_code": "AU",
            "patient_phone_numbers": phones,
            "medicare": format!("{} {:05} {}", rng.random_range(2000..=6999), rng.random_range(0..=99999), rng.random_range(1..=9)),
            "medicare_reference_number": rng.random_range(1..=5).to_string(),
            "notes": NOTES.choose(&mut rng).copied(),
            "reminder_type": REMINDERS.choose(&mut rng).copied(),
            "accepted_privacy_policy": rng.random_bool(0.9),
            "time_zone": "Australia/Sydney",
        }));
        let Ok(patient) = state.create_patient(&body) else {
            continue;
        };
        stamp::<Patient>(state, patient.id, created, created);
        if family.is_none() && patient.email.is_some() && rng.random_bool(0.3) {
            families.push((
                patient.last_name.clone(),
                patient.email.clone().unwrap_or_default(),
                i,
            ));
        }
        patient_ids.push(patient.id);
    }

    // Merged duplicates (~1%): a second record for an existing person, merged into the first.
    let merges = if n >= 20 { (n / 100).max(1) } else { 0 };
    let mut merged_away = Vec::new();
    for k in 0..merges {
        let survivor = patient_ids[(k * 37 + 5) % patient_ids.len()];
        let Some(original) = state.tables.patients.get(&survivor).cloned() else {
            continue;
        };
        let body = map(
            json!({"first_name": original.first_name, "last_name": original.last_name,
            "email": original.email, "date_of_birth": original.date_of_birth.map(|d| d.format("%Y-%m-%d").to_string())}),
        );
        if let Ok(dup) = state.create_patient(&body) {
            let at = original.created_at + TimeDelta::days(3);
            stamp::<Patient>(state, dup.id, at, at);
            if state.merge_patients(dup.id, survivor).is_ok() {
                let merged_at = at + TimeDelta::days(1);
                state.edit::<Patient>(dup.id, |p| {
                    p.merged_at = Some(merged_at);
                    p.archived_at = Some(merged_at);
                    p.updated_at = merged_at;
                });
                merged_away.push(dup.id);
            }
        }
    }

    // Invoices and appointments, planned per patient then created in time order.
    let mut plans: Vec<(DateTime<Utc>, u64)> = Vec::new();
    for &pid in &patient_ids {
        let Some(created) = state.tables.patients.get(&pid).map(|p| p.created_at) else {
            continue;
        };
        let mean = size.invoices_per_patient.max(0.0);
        let count = (mean * 2.0 * rng.random::<f64>()).round() as usize;
        let life = (now - created).num_seconds().max(1);
        for _ in 0..count {
            plans.push((created + TimeDelta::seconds(rng.random_range(0..life)), pid));
        }
    }
    plans.sort();
    let mut appointments = 0;
    for (at, pid) in plans {
        let practitioner = *practitioner_ids
            .choose(&mut rng)
            .unwrap_or(&practitioner_ids[0]);
        let type_index = rng.random_range(0..appointment_type_ids.len());
        let appointment_id = state.fresh_id();
        let starts = at - TimeDelta::hours(1);
        let patient_name = state.tables.patients.get(&pid).map(Patient::full_label);
        state.insert(IndividualAppointment {
            id: appointment_id,
            starts_at: starts,
            ends_at: starts + TimeDelta::minutes(45),
            patient_name,
            patient_arrived: Some(true),
            did_not_arrive: Some(false),
            invoice_status: Some(10),
            treatment_note_status: Some(90),
            created_at: starts - TimeDelta::days(7).min(starts - opened),
            updated_at: at,
            patient_id: Some(pid),
            practitioner_id: Some(practitioner),
            business_id: Some(business_id),
            appointment_type_id: Some(appointment_type_ids[type_index]),
            ..Default::default()
        });
        appointments += 1;
        let mut items = vec![ItemSpec {
            billable_item_id: Some(billable_item_ids[type_index.min(3)]),
            ..Default::default()
        }];
        for _ in 0..rng.random_range(0..=3) {
            let mut line = if rng.random_bool(0.6) && !product_ids.is_empty() {
                ItemSpec {
                    product_id: product_ids.choose(&mut rng).copied(),
                    quantity: Some(Decimal::from(rng.random_range(1..=3))),
                    ..Default::default()
                }
            } else {
                ItemSpec {
                    billable_item_id: billable_item_ids.choose(&mut rng).copied(),
                    ..Default::default()
                }
            };
            if rng.random_bool(0.04) {
                line.quantity = Some(dec("0.5"));
            }
            items.push(line);
        }
        for line in &mut items {
            let roll: f64 = rng.random();
            if roll < 0.12 {
                line.discount_percentage = Some(dec(["10", "15", "33.3333"]
                    .choose(&mut rng)
                    .copied()
                    .unwrap_or("10")));
            } else if roll < 0.18 {
                line.discount_amount =
                    Some(dec(["5", "12.50"].choose(&mut rng).copied().unwrap_or("5")));
            }
        }
        let age = now - at;
        let status = {
            let r: f64 = rng.random();
            if age < Duration::days(21) {
                if r < 0.5 { 10 } else { 20 }
            } else if r < 0.82 {
                20
            } else if r < 0.90 {
                10
            } else if r < 0.95 {
                30
            } else {
                40
            }
        };
        let spec = InvoiceSpec {
            patient_id: Some(pid),
            business_id: Some(business_id),
            practitioner_id: Some(practitioner),
            appointment_id: Some(appointment_id),
            issue_date: Some((at + TimeDelta::hours(10)).date_naive()),
            status: Some(10),
            calculation_method: Some(if rng.random_bool(0.6) { 2 } else { 3 }),
            items,
            ..Default::default()
        };
        let Ok(invoice) = state.create_invoice_at(&spec, at) else {
            continue;
        };
        if status != 10 {
            let settled = (at + TimeDelta::days(rng.random_range(0..14))).min(now);
            // How Cliniko gets there: Closed is mostly a reversal of an open invoice (the
            // credit note settles it; some are closed outright), and an Open credit is a
            // paid invoice reversed with the credit kept for the patient.
            let reversal = match status {
                30 if rng.random_bool(0.7) => Some(false),
                40 => Some(true),
                _ => None,
            };
            let direct = match (status, reversal) {
                (40, _) => Some(20),
                (_, Some(_)) => None,
                _ => Some(status),
            };
            // Payment is a later change: it moves updated_at and closed_at forward.
            if let Some(direct) = direct
                && state
                    .update_invoice(
                        invoice.id,
                        &InvoicePatch {
                            status: Some(direct),
                            ..Default::default()
                        },
                    )
                    .is_ok()
            {
                state.edit::<Invoice>(invoice.id, |inv| {
                    inv.closed_at = Some(settled);
                    inv.updated_at = settled;
                });
            }
            if let Some(keep_credit) = reversal {
                let reversed_at = (settled + TimeDelta::hours(2)).min(now);
                if state
                    .reverse_invoice_at(invoice.id, keep_credit, reversed_at)
                    .is_err()
                {
                    continue;
                }
            }
            let final_status = direct.filter(|_| reversal.is_none()).unwrap_or(status);
            let shown = if status == 40 { 20 } else { final_status };
            state.edit::<IndividualAppointment>(appointment_id, |a| a.invoice_status = Some(shown));
        }
        if rng.random_bool(0.01) {
            state.edit::<Invoice>(invoice.id, |inv| {
                inv.archived_at = Some(inv.updated_at);
            });
        } else if rng.random_bool(0.005) {
            state.edit::<Invoice>(invoice.id, |inv| inv.deleted_at = Some(inv.updated_at));
        }
    }

    // Appointments without invoices: did not arrive, cancelled, and booked ahead.
    for &pid in patient_ids.iter().step_by(4) {
        let Some(created) = state.tables.patients.get(&pid).map(|p| p.created_at) else {
            continue;
        };
        let kind = rng.random_range(0..3);
        let starts = match kind {
            2 => now + TimeDelta::days(rng.random_range(1..=30)),
            _ => {
                created
                    + TimeDelta::seconds(rng.random_range(0..(now - created).num_seconds().max(1)))
            }
        };
        let booked = (starts - TimeDelta::days(5)).max(created).min(now);
        let id = state.fresh_id();
        let mut a = IndividualAppointment {
            id,
            starts_at: starts,
            ends_at: starts + TimeDelta::minutes(30),
            patient_name: state.tables.patients.get(&pid).map(Patient::full_label),
            patient_arrived: Some(false),
            did_not_arrive: Some(false),
            created_at: booked,
            updated_at: booked,
            patient_id: Some(pid),
            practitioner_id: practitioner_ids.choose(&mut rng).copied(),
            business_id: Some(business_id),
            appointment_type_id: appointment_type_ids.choose(&mut rng).copied(),
            ..Default::default()
        };
        match kind {
            0 => {
                a.did_not_arrive = Some(true);
                a.updated_at = starts.min(now);
            }
            1 => {
                let cancelled = (starts - TimeDelta::hours(20)).max(booked).min(now);
                a.cancelled_at = Some(cancelled);
                a.cancellation_reason = [10, 20, 30, 40, 50, 60].choose(&mut rng).copied();
                a.cancellation_reason_description = Some("Cancelled by patient".into());
                a.updated_at = cancelled;
            }
            _ => {}
        }
        state.insert(a);
        appointments += 1;
    }

    // Archived patients (~3%), after their history.
    for (i, &pid) in patient_ids.iter().enumerate() {
        if (i * 7919 + seed as usize).is_multiple_of(33) {
            let Some(created) = state.tables.patients.get(&pid).map(|p| p.created_at) else {
                continue;
            };
            let at = (created + TimeDelta::days(200)).min(now);
            state.edit::<Patient>(pid, |p| {
                p.archived_at = Some(at);
                p.updated_at = at;
            });
        }
    }

    let t = &state.tables;
    SeedReport {
        patients: t.patients.len(),
        invoices: t.invoices.len(),
        invoice_items: t.invoice_items.len(),
        products: t.products.len(),
        appointments,
        business_id,
        gst_tax_id,
        gst_free_tax_id,
        practitioner_ids,
        billable_item_ids,
        product_ids,
    }
}

/// Sets a record's creation and change times (seeding writes history in the past).
fn stamp<R: Resource + Stamped>(
    state: &mut ClinikoState,
    id: u64,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
) where
    ClinikoState: crate::cliniko::store::Table<R>,
{
    state.edit::<R>(id, |r| r.set_times(created, updated));
}

trait Stamped {
    fn set_times(&mut self, created: DateTime<Utc>, updated: DateTime<Utc>);
}

impl Stamped for Patient {
    fn set_times(&mut self, created: DateTime<Utc>, updated: DateTime<Utc>) {
        self.created_at = created;
        self.updated_at = updated;
    }
}

impl Stamped for Product {
    fn set_times(&mut self, created: DateTime<Utc>, updated: DateTime<Utc>) {
        self.created_at = created;
        self.updated_at = updated;
    }
}

/// About `fraction` of the emailed, live patients, as they already appear in Reckon: typed by a
/// bookkeeper, so names are sometimes "Last, First" or in capitals.
pub fn existing_reckon_customers(
    state: &ClinikoState,
    seed: u64,
    fraction: f64,
) -> Vec<ExistingCustomer> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_cafe);
    let mut out = Vec::new();
    let mut seen_emails = std::collections::HashSet::new();
    for p in state.tables.patients.values() {
        let Some(email) = p.email.clone() else {
            continue;
        };
        if p.archived_at.is_some()
            || !rng.random_bool(fraction.clamp(0.0, 1.0))
            || !seen_emails.insert(email.clone())
        {
            continue;
        }
        let name = match rng.random_range(0..10) {
            0..=5 => format!("{} {}", p.first_name, p.last_name),
            6..=7 => format!("{}, {}", p.last_name, p.first_name),
            _ => format!("{} {}", p.first_name, p.last_name).to_uppercase(),
        };
        out.push(ExistingCustomer {
            name,
            email: Some(email),
            phone: p.patient_phone_numbers.first().map(|n| n.number.clone()),
            address_line1: p.address_1.clone(),
            suburb: p.city.clone(),
            state: p.state.clone(),
            postcode: p.post_code.clone(),
            cliniko_patient_id: p.id,
        });
    }
    out
}

/// Splits an Australian number into Reckon's parts: `(02) 9123 4567` → area `02`, number
/// `9123 4567`; mobiles keep the whole number.
fn phone_parts(number: &str) -> (Option<String>, String) {
    let trimmed = number.trim();
    if let Some(rest) = trimmed.strip_prefix('(')
        && let Some((area, local)) = rest.split_once(')')
    {
        return (Some(area.trim().to_string()), local.trim().to_string());
    }
    (None, trimmed.to_string())
}

/// The Reckon customer body for someone who is already in the book.
pub fn existing_customer_body(c: &ExistingCustomer) -> Value {
    let mut body =
        json!({ "name": c.name, "status": "Active", "entityTypes": {"isCustomer": true} });
    if let Some(email) = &c.email {
        body["electronicAddresses"] = json!([{ "type": "Email", "address": email }]);
    }
    if let Some(phone) = &c.phone {
        let (area, number) = phone_parts(phone);
        let kind = if area.is_some() { "Work" } else { "Mobile" };
        body["phoneNumbers"] =
            json!([{ "type": kind, "countryCode": "61", "areaCode": area, "number": number }]);
    }
    if c.address_line1.is_some() {
        body["addresses"] = json!([{ "type": "Postal", "line1": c.address_line1, "suburb": c.suburb,
            "state": c.state, "postcode": c.postcode, "country": "Australia" }]);
    }
    body
}

/// Adds existing customers to a Reckon book; a name Reckon already has is skipped (as a
/// bookkeeper would not have typed the same customer twice). Returns how many were added.
pub fn seed_reckon_customers(
    book: &mut crate::reckon::book::Book,
    ctx: &crate::reckon::book::Ctx,
    customers: &[ExistingCustomer],
) -> usize {
    customers
        .iter()
        .filter(|c| {
            book.create_customer(&existing_customer_body(c), ctx)
                .is_ok()
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::SimClock;

    fn clinic(seed: u64, n: usize) -> (ClinikoState, SeedReport) {
        let mut s = ClinikoState::new(SimClock::new());
        let r = seed_clinic(&mut s, seed, ClinicSize::with_patients(n));
        (s, r)
    }

    fn serialised(s: &ClinikoState) -> String {
        let t = &s.tables;
        serde_json::to_string(&(
            t.patients.values().collect::<Vec<_>>(),
            t.invoices.values().collect::<Vec<_>>(),
            t.invoice_items.values().collect::<Vec<_>>(),
            t.appointments.values().collect::<Vec<_>>(),
        ))
        .unwrap()
    }

    fn strip_times(text: &str) -> String {
        // Timestamps are relative to the clock's now, so compare everything else.
        let re_free: String = text
            .split('"')
            .filter(|part| !part.ends_with('Z') || !part.contains('T'))
            .collect::<Vec<_>>()
            .join("\"");
        re_free
    }

    #[test]
    fn same_seed_same_clinic_different_seed_different_clinic() {
        let (a, _) = clinic(7, 120);
        let (b, _) = clinic(7, 120);
        let (c, _) = clinic(8, 120);
        assert_eq!(strip_times(&serialised(&a)), strip_times(&serialised(&b)));
        assert_ne!(strip_times(&serialised(&a)), strip_times(&serialised(&c)));
    }

    #[test]
    fn counts_follow_the_size() {
        let (s, r) = clinic(1, 300);
        assert!(
            (300..=306).contains(&r.patients),
            "patients plus merged duplicates, got {}",
            r.patients
        );
        assert!(
            (500..=1000).contains(&r.invoices),
            "about 2.5 per patient, got {}",
            r.invoices
        );
        assert!(r.invoice_items >= r.invoices);
        assert_eq!(r.products, PRODUCTS.len());
        assert_eq!(s.tables.businesses.len(), 1);
    }

    #[test]
    fn every_awkward_category_is_present() {
        let (s, _) = clinic(3, 300);
        let t = &s.tables;
        let names: Vec<String> = t
            .patients
            .values()
            .map(|p| format!("{} {}", p.first_name, p.last_name))
            .collect();
        assert!(names.iter().any(|n| n.contains('\'')), "apostrophe");
        assert!(names.iter().any(|n| n.contains('-')), "hyphen");
        assert!(
            names
                .iter()
                .any(|n| n.chars().any(|c| "éëèöüñáóúíôâä".contains(c))),
            "accent"
        );
        assert!(
            names
                .iter()
                .any(|n| n.chars().any(|c| !c.is_ascii() && !c.is_alphabetic()
                    || ('\u{0370}'..='\u{FFFF}').contains(&c))),
            "non-Latin script"
        );
        assert!(
            t.patients.values().any(|p| p.email.is_none()),
            "missing email"
        );
        let mut emails: Vec<&String> = t
            .patients
            .values()
            .filter(|p| p.merged_at.is_none())
            .filter_map(|p| p.email.as_ref())
            .collect();
        let before = emails.len();
        emails.sort();
        emails.dedup();
        assert!(emails.len() < before, "a shared family email");
        assert!(
            t.patients.values().any(|p| p
                .address_1
                .as_deref()
                .is_some_and(|a| a.starts_with("PO Box"))),
            "postal address"
        );
        assert!(
            t.patients.values().any(|p| p.address_2.is_some()),
            "multi-line street address"
        );
        let phones: Vec<&PhoneNumber> = t
            .patients
            .values()
            .flat_map(|p| &p.patient_phone_numbers)
            .collect();
        assert!(
            phones.iter().any(|n| n.phone_type == "Mobile")
                && phones.iter().any(|n| n.phone_type == "Home")
        );
        assert!(
            t.patients
                .values()
                .any(|p| p.archived_at.is_some() && p.merged_at.is_none()),
            "archived"
        );
        let merged: Vec<&Patient> = t
            .patients
            .values()
            .filter(|p| p.merged_at.is_some())
            .collect();
        assert!(!merged.is_empty(), "merged");
        for m in merged {
            let survivor = m
                .merged_with_patient_id
                .and_then(|id| t.patients.get(&id))
                .expect("survivor exists");
            assert!(survivor.archived_at.is_none() || survivor.merged_at.is_none());
        }
        let namesakes = t
            .patients
            .values()
            .filter(|p| {
                p.first_name == "Sarah" && p.last_name == "Nguyen" && p.archived_at.is_none()
            })
            .count();
        assert!(namesakes >= 2, "two different live patients share a name");
        let methods: std::collections::BTreeSet<i32> =
            t.invoices.values().map(|i| i.calculation_method).collect();
        assert!(methods.contains(&2) && methods.contains(&3));
        let statuses: std::collections::BTreeSet<i32> =
            t.invoices.values().map(|i| i.status).collect();
        assert_eq!(statuses, [10, 20, 30, 40].into_iter().collect());
        let items: Vec<&InvoiceItem> = t.invoice_items.values().collect();
        assert!(
            items.iter().any(|i| i.tax_rate == Some(dec("10")))
                && items.iter().any(|i| i.tax_rate == Some(Decimal::ZERO))
        );
        assert!(
            t.invoices.values().any(|inv| {
                let rates: std::collections::BTreeSet<_> = items
                    .iter()
                    .filter(|i| i.invoice_id == Some(inv.id))
                    .filter_map(|i| i.tax_rate)
                    .collect();
                rates.len() > 1
            }),
            "GST and GST-free lines on one invoice"
        );
        assert!(
            items.iter().any(|i| i.is_monetary_discount == Some(true)),
            "monetary discount"
        );
        assert!(
            items.iter().any(|i| i.is_monetary_discount == Some(false)
                && i.discount_percentage.is_some_and(|d| d > Decimal::ZERO)),
            "percentage discount"
        );
        assert!(
            items.iter().any(|i| i.quantity == dec("0.5")),
            "fractional quantity"
        );
        assert!(t.products.values().any(|p| {
            p.tax_id
                == Some(
                    s.tables
                        .taxes
                        .values()
                        .find(|x| x.name == "GST")
                        .unwrap()
                        .id,
                )
        }));
        assert!(t.products.values().any(|p| {
            p.tax_id
                == Some(
                    s.tables
                        .taxes
                        .values()
                        .find(|x| x.name == "GST Free")
                        .unwrap()
                        .id,
                )
        }));
        let appts: Vec<&IndividualAppointment> = t.appointments.values().collect();
        assert!(appts.iter().any(|a| a.cancelled_at.is_some()), "cancelled");
        assert!(
            appts.iter().any(|a| a.did_not_arrive == Some(true)),
            "did not arrive"
        );
        assert!(
            appts.iter().any(|a| a.patient_arrived == Some(true)),
            "attended"
        );
        assert!(
            t.patients
                .values()
                .any(|p| p.medicare.is_some() && p.notes.is_some()),
            "health data that must never leave Cliniko"
        );
    }

    #[test]
    fn invoices_are_the_sum_of_their_lines_and_everything_is_in_the_past() {
        let (s, _) = clinic(5, 300);
        let now = s.now();
        let mut by_invoice: std::collections::HashMap<u64, (Decimal, Decimal)> = Default::default();
        for item in s
            .tables
            .invoice_items
            .values()
            .filter(|i| i.deleted_at.is_none())
        {
            let e = by_invoice.entry(item.invoice_id.unwrap()).or_default();
            e.0 += item.total_including_tax.unwrap();
            e.1 += item.tax_amount.unwrap();
        }
        for inv in s.tables.invoices.values() {
            let (total, tax) = by_invoice[&inv.id];
            assert_eq!(inv.total_amount, Some(total), "invoice {}", inv.number);
            assert_eq!(inv.tax_amount, Some(tax), "invoice {}", inv.number);
            assert!(inv.created_at <= inv.updated_at && inv.updated_at <= now);
        }
        for p in s.tables.patients.values() {
            assert!(
                p.created_at <= p.updated_at && p.updated_at <= now,
                "patient {}",
                p.id
            );
        }
        let ids: Vec<(DateTime<Utc>, u64)> = s
            .tables
            .invoices
            .values()
            // Reversals are made while their invoice is generated, dated later.
            .filter(|i| i.original_invoice_id.is_none())
            .map(|i| (i.created_at, i.id))
            .collect();
        let mut by_time = ids.clone();
        by_time.sort();
        assert_eq!(ids, by_time, "invoice ids follow creation order");
        let credits: Vec<&Invoice> = s
            .tables
            .invoices
            .values()
            .filter(|i| i.original_invoice_id.is_some())
            .collect();
        assert!(!credits.is_empty(), "the clinic has credit notes");
        for c in credits {
            assert!(c.total_amount.unwrap_or_default() < Decimal::ZERO);
            assert!(c.created_at <= now);
            let original = &s.tables.invoices[&c.original_invoice_id.unwrap_or_default()];
            assert_eq!(
                c.total_amount.unwrap_or_default(),
                -original.total_amount.unwrap_or_default()
            );
        }
    }

    #[test]
    fn existing_customers_are_a_deterministic_emailed_subset() {
        let (s, _) = clinic(9, 300);
        let a = existing_reckon_customers(&s, 9, 0.2);
        let b = existing_reckon_customers(&s, 9, 0.2);
        assert_eq!(a, b);
        assert!(a.iter().all(|c| c.email.is_some()));
        let emailed = s
            .tables
            .patients
            .values()
            .filter(|p| p.email.is_some() && p.archived_at.is_none())
            .count() as f64;
        let share = a.len() as f64 / emailed;
        assert!(
            (0.1..0.3).contains(&share),
            "about 20% of emailed patients, got {share}"
        );
        assert!(
            a.iter().any(|c| c.name.contains(", "))
                || a.iter().any(|c| c.name == c.name.to_uppercase())
        );
    }

    #[test]
    fn existing_customers_load_into_a_reckon_book_with_their_emails() {
        let (s, _) = clinic(9, 300);
        let customers = existing_reckon_customers(&s, 9, 0.2);
        let now = s.now();
        let mut book = crate::reckon::book::Book::new(uuid::Uuid::new_v4(), "Test", now);
        let added = seed_reckon_customers(&mut book, &crate::reckon::book::Ctx { now }, &customers);
        assert!(
            added >= customers.len() * 9 / 10,
            "{added} of {}",
            customers.len()
        );
        let first = book.customers.values().next().expect("a customer");
        let email = &first.electronic_addresses[0];
        assert_eq!(email.kind, "Email");
        assert!(customers.iter().any(|c| c.email == email.address));
        assert_eq!(
            phone_parts("(02) 9123 4567"),
            (Some("02".into()), "9123 4567".into())
        );
        assert_eq!(phone_parts("0412 345 678"), (None, "0412 345 678".into()));
    }
}
