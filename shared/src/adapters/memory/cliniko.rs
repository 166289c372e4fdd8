//! A Cliniko account in memory: the source port's twin. Records are kept as the Cliniko
//! client hands them over (domain types), read back in the orders the port promises.

use crate::domain::*;
use crate::ports::{Changes, ClinikoSource, ErrorClass, Page, PageCursor, SourceError, Unreadable};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

/// How many records one full-read page holds.
const PAGE: usize = 50;

/// Why the twin refused a read (an outage a test switched on, or a bad cursor).
#[derive(Debug, thiserror::Error)]
pub enum MemoryClinikoError {
    #[error("Cliniko (in memory) is unavailable")]
    Unavailable,
    #[error("Cliniko (in memory): page cursor {0:?} is not one this source gave out")]
    BadCursor(String),
}

#[derive(Default)]
struct Account {
    records: BTreeMap<(EntityKind, ClinikoId), Record>,
    unreadable: Vec<Unreadable>,
    taxes: Vec<Tax>,
    businesses: Vec<Business>,
    appointment_type_lines: Vec<AppointmentTypeLine>,
    down: bool,
    reads: u64,
}

/// A Cliniko account held in memory, for tests of the steps that read Cliniko.
#[derive(Default)]
pub struct MemoryCliniko {
    account: Mutex<Account>,
}

impl MemoryCliniko {
    pub fn new() -> MemoryCliniko {
        MemoryCliniko::default()
    }

    fn account(&self) -> MutexGuard<'_, Account> {
        self.account.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds the record, or replaces the one with its kind and id (an edit in Cliniko).
    pub fn put(&self, record: Record) {
        self.account()
            .records
            .insert((record.kind(), record.id()), record);
    }

    /// A record that the next reads report as unreadable (malformed in Cliniko).
    pub fn put_unreadable(&self, record: Unreadable) {
        self.account().unreadable.push(record);
    }

    pub fn put_tax(&self, tax: Tax) {
        self.account().taxes.push(tax);
    }

    pub fn put_business(&self, business: Business) {
        self.account().businesses.push(business);
    }

    /// A line appointments of a type are charged with.
    pub fn put_appointment_type_line(&self, line: AppointmentTypeLine) {
        self.account().appointment_type_lines.push(line);
    }

    /// While down, every read fails as a passing outage.
    pub fn set_down(&self, down: bool) {
        self.account().down = down;
    }

    /// How many reads were answered (a read while down counts too).
    pub fn reads(&self) -> u64 {
        self.account().reads
    }

    /// Counts the read and fails it while the account is down.
    fn read(&self) -> Result<MutexGuard<'_, Account>, SourceError> {
        let mut account = self.account();
        account.reads += 1;
        if account.down {
            return Err(SourceError::new(
                ErrorClass::Retry,
                MemoryClinikoError::Unavailable,
            ));
        }
        Ok(account)
    }
}

impl ClinikoSource for MemoryCliniko {
    async fn changed_since(
        &self,
        kind: EntityKind,
        since: Option<DateTime<Utc>>,
    ) -> Result<Changes, SourceError> {
        let account = self.read()?;
        let changed = |at: DateTime<Utc>| since.is_none_or(|s| at >= s);
        let mut records: Vec<Record> = account
            .records
            .values()
            .filter(|r| r.kind() == kind && changed(r.version()))
            .cloned()
            .collect();
        records.sort_by_key(|r| (r.version(), r.id()));
        let unreadable = account
            .unreadable
            .iter()
            .filter(|u| u.kind == kind && u.updated_at.is_none_or(changed))
            .cloned()
            .collect();
        Ok(Changes {
            records,
            unreadable,
        })
    }

    async fn record(&self, kind: EntityKind, id: ClinikoId) -> Result<Option<Record>, SourceError> {
        Ok(self.read()?.records.get(&(kind, id)).cloned())
    }

    async fn all_page(
        &self,
        kind: EntityKind,
        cursor: Option<PageCursor>,
    ) -> Result<Page<Record>, SourceError> {
        let account = self.read()?;
        let start = match cursor {
            None => 0,
            Some(PageCursor(c)) => c.parse::<usize>().map_err(|_| {
                SourceError::new(ErrorClass::Park, MemoryClinikoError::BadCursor(c.clone()))
            })?,
        };
        let all: Vec<&Record> = account
            .records
            .range((kind, ClinikoId(0))..=(kind, ClinikoId(u64::MAX)))
            .map(|(_, r)| r)
            .collect();
        let end = start.saturating_add(PAGE).min(all.len());
        let items = all.get(start..end).unwrap_or_default().to_vec();
        let next = (end < all.len()).then(|| PageCursor(end.to_string()));
        let mut page = Page::new(items.into_iter().cloned().collect(), next);
        if start == 0 {
            page.unreadable = account
                .unreadable
                .iter()
                .filter(|u| u.kind == kind)
                .cloned()
                .collect();
        }
        Ok(page)
    }

    async fn taxes(&self) -> Result<Vec<Tax>, SourceError> {
        Ok(self.read()?.taxes.clone())
    }

    async fn businesses(&self) -> Result<Vec<Business>, SourceError> {
        Ok(self.read()?.businesses.clone())
    }

    async fn appointment_type_lines(&self) -> Result<Vec<AppointmentTypeLine>, SourceError> {
        Ok(self.read()?.appointment_type_lines.clone())
    }

    async fn invoices_of_appointment(
        &self,
        appointment: ClinikoId,
    ) -> Result<Vec<Invoice>, SourceError> {
        Ok(self
            .read()?
            .records
            .values()
            .filter_map(|r| match r {
                Record::Invoice(i)
                    if i.appointment_id == Some(appointment)
                        && i.archived_at.is_none()
                        && i.deleted_at.is_none() =>
                {
                    Some(Invoice {
                        items: Vec::new(),
                        ..i.clone()
                    })
                }
                _ => None,
            })
            .collect())
    }
}
