//! A Reckon One book in memory: the sink port's twin (and the book-reading port's). It
//! keeps the rules of Reckon's documented API that the sync relies on, so a test against
//! it fails where the real book would refuse: customer and item names are unique, tax codes
//! must exist, Reckon computes invoice and credit-note totals from the lines (the sync
//! checks them), a payment or credit allocation never exceeds what is owed, and a Paid
//! invoice cannot be changed.

use crate::domain::*;
use crate::ports::{
    CreditNoteSink, CustomerSink, ErrorClass, InvoiceSink, ItemSink, Page, PageCursor,
    PaymentDraft, ReckonBook, SinkError,
};
use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

/// How many records one full-read page holds.
const PAGE: usize = 50;

/// Why the twin refused a call: the kinds of answer the real book gives.
#[derive(Debug, thiserror::Error)]
pub enum MemoryBookError {
    #[error("Reckon (in memory) is unavailable")]
    Unavailable,
    #[error("Reckon (in memory) needs to be connected again")]
    Disconnected,
    #[error("Reckon (in memory) refused {what}: field `{field}`: {message}")]
    Refused {
        what: String,
        field: &'static str,
        message: String,
    },
    #[error("Reckon (in memory): no {what} {id}")]
    NotFound { what: &'static str, id: ReckonId },
    #[error("Reckon (in memory): arithmetic overflow in {0}")]
    Overflow(&'static str),
    /// The write was made, but its answer never arrived (a timeout after Reckon committed).
    #[error("Reckon (in memory) took the write but the answer was lost")]
    AnswerLost,
    #[error("Reckon (in memory): page cursor {0:?} is not one this book gave out")]
    BadCursor(String),
}

fn refused(what: impl Into<String>, field: &'static str, message: impl Into<String>) -> SinkError {
    SinkError::new(
        ErrorClass::Park,
        MemoryBookError::Refused {
            what: what.into(),
            field,
            message: message.into(),
        },
    )
}

fn not_found(what: &'static str, id: ReckonId) -> SinkError {
    SinkError::new(ErrorClass::Park, MemoryBookError::NotFound { what, id })
}

fn overflow(what: &'static str) -> SinkError {
    SinkError::new(ErrorClass::Park, MemoryBookError::Overflow(what))
}

fn sum(
    values: impl IntoIterator<Item = Decimal>,
    what: &'static str,
) -> Result<Decimal, SinkError> {
    values
        .into_iter()
        .try_fold(Decimal::ZERO, |a, b| a.checked_add(b))
        .ok_or_else(|| overflow(what))
}

/// A line's amount as Reckon computes it: `price × quantity − discount`, to the cent.
fn line_amount(l: &InvoiceLineDraft) -> Result<Decimal, SinkError> {
    l.price
        .checked_mul(l.quantity)
        .and_then(|gross| gross.checked_sub(l.discount_amount.unwrap_or_default()))
        .map(|a| a.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero))
        .ok_or_else(|| overflow("line amount"))
}

/// (total including tax, tax) of lines whose tax is given per line (the sync always
/// gives it: Cliniko's own figure).
fn totals(
    lines: &[InvoiceLineDraft],
    status: AmountTaxStatus,
) -> Result<(Decimal, Decimal), SinkError> {
    let amounts = sum(
        lines
            .iter()
            .map(line_amount)
            .collect::<Result<Vec<_>, _>>()?,
        "line amounts",
    )?;
    let tax = match status {
        AmountTaxStatus::NonTaxed => Decimal::ZERO,
        _ => sum(lines.iter().map(|l| l.tax_amount), "line tax")?,
    };
    let total = match status {
        AmountTaxStatus::Exclusive => amounts.checked_add(tax).ok_or_else(|| overflow("total"))?,
        _ => amounts,
    };
    Ok((total, tax))
}

struct StoredInvoice {
    draft: InvoiceDraft,
    number: u64,
    total: Decimal,
    tax: Decimal,
    modified: DateTime<Utc>,
}

struct StoredCredit {
    draft: CreditNoteDraft,
    total: Decimal,
    tax: Decimal,
    allocations: Vec<CreditAllocation>,
}

struct Book {
    tax_codes: BTreeSet<String>,
    payment_terms: BTreeSet<String>,
    customers: BTreeMap<ReckonId, CustomerDraft>,
    items: BTreeMap<ReckonId, ItemDraft>,
    invoices: BTreeMap<ReckonId, StoredInvoice>,
    receipts: BTreeMap<ReckonId, PaymentDraft>,
    credits: BTreeMap<ReckonId, StoredCredit>,
    next_id: u128,
    next_number: u64,
    writes: u64,
    reads: u64,
    fault: Option<ErrorClass>,
    lose_next_answer: bool,
}

/// A Reckon One book held in memory, for tests of the steps that write Reckon.
pub struct MemoryBook {
    book: Mutex<Book>,
}

impl Default for MemoryBook {
    fn default() -> Self {
        MemoryBook::new()
    }
}

impl MemoryBook {
    /// An empty book with Reckon's Australian tax codes `GST` and `FRE`.
    pub fn new() -> MemoryBook {
        MemoryBook {
            book: Mutex::new(Book {
                tax_codes: ["GST", "FRE"].map(String::from).into(),
                payment_terms: ["30 days net", "14 days net", "7 days net", "Due on receipt"]
                    .map(String::from)
                    .into(),
                customers: BTreeMap::new(),
                items: BTreeMap::new(),
                invoices: BTreeMap::new(),
                receipts: BTreeMap::new(),
                credits: BTreeMap::new(),
                next_id: 1,
                next_number: 1,
                writes: 0,
                reads: 0,
                fault: None,
                lose_next_answer: false,
            }),
        }
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Some(Retry)`: every call fails as an outage; `Some(StopTenant)`: as a revoked
    /// connection; `None`: the book answers again.
    pub fn set_fault(&self, fault: Option<ErrorClass>) {
        self.book().fault = fault;
    }

    /// The next write is made but answers with a passing error, as when the connection drops
    /// after Reckon committed it: what a retry must not duplicate.
    pub fn lose_next_answer(&self) {
        self.book().lose_next_answer = true;
    }

    /// Writes the book made (creates, updates, payments, allocations; a refused one is not
    /// counted, one whose answer was lost is).
    pub fn writes(&self) -> u64 {
        self.book().writes
    }

    /// Reads the book answered.
    pub fn reads(&self) -> u64 {
        self.book().reads
    }

    /// A customer someone typed into the book by hand (not through the sync).
    pub fn add_customer(&self, customer: CustomerDraft) -> ReckonId {
        let mut book = self.book();
        let id = book.new_id();
        book.customers.insert(id, customer);
        id
    }

    /// An item someone typed into the book by hand.
    pub fn add_item(&self, item: ItemDraft) -> ReckonId {
        let mut book = self.book();
        let id = book.new_id();
        book.items.insert(id, item);
        id
    }

    /// A bookkeeper approves a Draft invoice in Reckon (not through the sync).
    pub fn approve_by_hand(&self, id: ReckonId) -> bool {
        match self.book().invoices.get_mut(&id) {
            Some(i) if i.draft.status == ReckonInvoiceStatus::Draft => {
                i.draft.status = ReckonInvoiceStatus::Approved;
                true
            }
            _ => false,
        }
    }

    pub fn customer_draft(&self, id: ReckonId) -> Option<CustomerDraft> {
        self.book().customers.get(&id).cloned()
    }

    pub fn item_draft(&self, id: ReckonId) -> Option<ItemDraft> {
        self.book().items.get(&id).cloned()
    }

    pub fn invoice_draft(&self, id: ReckonId) -> Option<InvoiceDraft> {
        self.book().invoices.get(&id).map(|i| i.draft.clone())
    }

    pub fn credit_note_draft(&self, id: ReckonId) -> Option<CreditNoteDraft> {
        self.book().credits.get(&id).map(|c| c.draft.clone())
    }

    /// Every receipt in the book.
    pub fn receipts(&self) -> Vec<PaymentDraft> {
        self.book().receipts.values().cloned().collect()
    }

    /// (customers, items, invoices, credit notes) in the book.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let b = self.book();
        (
            b.customers.len(),
            b.items.len(),
            b.invoices.len(),
            b.credits.len(),
        )
    }

    /// Answers a call: counts it and fails it while a fault is set.
    fn call(&self, write: bool) -> Result<MutexGuard<'_, Book>, SinkError> {
        let mut book = self.book();
        match book.fault {
            Some(ErrorClass::StopTenant) => Err(SinkError::new(
                ErrorClass::StopTenant,
                MemoryBookError::Disconnected,
            )),
            Some(class) => Err(SinkError::new(class, MemoryBookError::Unavailable)),
            None => {
                // A write is counted once it is made (`Book::answer`).
                if !write {
                    book.reads += 1;
                }
                Ok(book)
            }
        }
    }
}

impl Book {
    /// The answer to a write that was made: `value`, unless it is to be lost.
    fn answer<T>(&mut self, value: T) -> Result<T, SinkError> {
        self.writes += 1;
        if std::mem::take(&mut self.lose_next_answer) {
            return Err(SinkError::new(
                ErrorClass::Retry,
                MemoryBookError::AnswerLost,
            ));
        }
        Ok(value)
    }

    fn new_id(&mut self) -> ReckonId {
        let id = ReckonId(uuid::Uuid::from_u128(self.next_id));
        self.next_id += 1;
        id
    }

    fn check_tax_code(&self, what: &str, code: &str) -> Result<(), SinkError> {
        if self.tax_codes.contains(code) {
            Ok(())
        } else {
            Err(refused(what, "taxRate", format!("no tax code {code:?}")))
        }
    }

    /// The (total, tax) Reckon computes for a document's lines, once each line's tax code
    /// and item are known to the book.
    fn priced(
        &self,
        what: &str,
        lines: &[InvoiceLineDraft],
        status: AmountTaxStatus,
    ) -> Result<(Decimal, Decimal), SinkError> {
        self.check_lines(what, lines)?;
        totals(lines, status)
    }

    fn check_lines(&self, what: &str, lines: &[InvoiceLineDraft]) -> Result<(), SinkError> {
        for l in lines {
            self.check_tax_code(what, &l.tax_code)?;
            if let LineTarget::Item(item) = &l.target
                && !self.items.contains_key(item)
            {
                return Err(refused(what, "item", format!("no item {item}")));
            }
        }
        Ok(())
    }

    fn check_terms(&self, what: &str, c: &CustomerDraft) -> Result<(), SinkError> {
        match c.payment_terms.as_deref() {
            Some(t)
                if !self
                    .payment_terms
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(t.trim())) =>
            {
                Err(refused(
                    what,
                    "paymentTerms",
                    format!("no payment terms {t:?}"),
                ))
            }
            _ => Ok(()),
        }
    }

    fn customer_name_taken(&self, name: &str, except: Option<ReckonId>) -> bool {
        self.customers
            .iter()
            .any(|(id, c)| Some(*id) != except && c.name.eq_ignore_ascii_case(name))
    }

    fn item_name_taken(&self, name: &str, except: Option<ReckonId>) -> bool {
        self.items
            .iter()
            .any(|(id, i)| Some(*id) != except && i.name.eq_ignore_ascii_case(name))
    }

    /// Receipts and credit allocations applied to an invoice.
    fn applied(&self, invoice: ReckonId) -> Result<Decimal, SinkError> {
        let received = self
            .receipts
            .values()
            .filter(|r| r.invoice == invoice)
            .map(|r| r.amount);
        let credited = self
            .credits
            .values()
            .flat_map(|c| &c.allocations)
            .filter(|a| a.invoice == invoice)
            .map(|a| a.amount);
        sum(received.chain(credited), "applied amounts")
    }

    fn invoice_view(&self, id: ReckonId, i: &StoredInvoice) -> Result<ReckonInvoice, SinkError> {
        let applied = self.applied(id)?;
        let balance = i
            .total
            .checked_sub(applied)
            .ok_or_else(|| overflow("balance"))?;
        let status = if applied > Decimal::ZERO && balance <= Decimal::ZERO {
            ReckonInvoiceStatus::Paid
        } else {
            i.draft.status
        };
        Ok(ReckonInvoice {
            id,
            reference: Some(i.draft.reference.clone()),
            customer: Some(i.draft.customer),
            invoice_number: Some(format!("INV-{:05}", i.number)),
            status,
            total_amount: i.total,
            total_tax_amount: i.tax,
            balance,
            last_modified: Some(i.modified),
        })
    }

    fn credit_view(&self, id: ReckonId, c: &StoredCredit) -> Result<ReckonCreditNote, SinkError> {
        let used = sum(c.allocations.iter().map(|a| a.amount), "allocations")?;
        let balance = c
            .total
            .checked_sub(used)
            .ok_or_else(|| overflow("balance"))?;
        let status = if c.draft.status == CreditNoteStatus::Approved && balance <= Decimal::ZERO {
            CreditNoteStatus::Closed
        } else {
            c.draft.status
        };
        Ok(ReckonCreditNote {
            id,
            reference: Some(c.draft.reference.clone()),
            customer: Some(c.draft.customer),
            status,
            total_amount: c.total,
            total_tax_amount: c.tax,
            balance,
            allocations: c.allocations.clone(),
        })
    }
}

fn customer_view(id: ReckonId, c: &CustomerDraft) -> ReckonCustomer {
    ReckonCustomer {
        id,
        name: c.name.clone(),
        status: c.status,
        email: c.email.clone(),
    }
}

fn item_view(id: ReckonId, i: &ItemDraft) -> ReckonItem {
    ReckonItem {
        id,
        name: i.name.clone(),
        status: i.status,
        item_type: Some(i.item_type),
        item_code: i.item_code.clone(),
    }
}

fn page_of<T: Clone>(all: Vec<T>, cursor: Option<PageCursor>) -> Result<Page<T>, SinkError> {
    let start = match cursor {
        None => 0,
        Some(PageCursor(c)) => c
            .parse::<usize>()
            .map_err(|_| SinkError::new(ErrorClass::Park, MemoryBookError::BadCursor(c.clone())))?,
    };
    let end = start.saturating_add(PAGE).min(all.len());
    let items = all.get(start..end).unwrap_or_default().to_vec();
    Ok(Page::new(
        items,
        (end < all.len()).then(|| PageCursor(end.to_string())),
    ))
}

impl CustomerSink for MemoryBook {
    async fn customers(&self) -> Result<Vec<ReckonCustomer>, SinkError> {
        let book = self.call(false)?;
        Ok(book
            .customers
            .iter()
            .map(|(id, c)| customer_view(*id, c))
            .collect())
    }

    async fn find_customer_by_name(&self, name: &str) -> Result<Option<ReckonCustomer>, SinkError> {
        let book = self.call(false)?;
        Ok(book
            .customers
            .iter()
            .find(|(_, c)| c.name == name)
            .map(|(id, c)| customer_view(*id, c)))
    }

    async fn create_customer(&self, customer: &CustomerDraft) -> Result<ReckonId, SinkError> {
        let mut book = self.call(true)?;
        if book.customer_name_taken(&customer.name, None) {
            return Err(refused(
                format!("customer {:?}", customer.name),
                "name",
                "a customer with this name already exists",
            ));
        }
        book.check_terms(&format!("customer {:?}", customer.name), customer)?;
        let id = book.new_id();
        book.customers.insert(id, customer.clone());
        book.answer(id)
    }

    async fn update_customer(
        &self,
        id: ReckonId,
        customer: &CustomerDraft,
    ) -> Result<(), SinkError> {
        let mut book = self.call(true)?;
        if !book.customers.contains_key(&id) {
            return Err(not_found("customer", id));
        }
        if book.customer_name_taken(&customer.name, Some(id)) {
            return Err(refused(
                format!("customer {id}"),
                "name",
                "a customer with this name already exists",
            ));
        }
        book.check_terms(&format!("customer {id}"), customer)?;
        // As Reckon's client does (GET, then PUT what it read back): terms the customer
        // already has stay.
        let mut customer = customer.clone();
        if let Some(kept) = book
            .customers
            .get(&id)
            .and_then(|c| c.payment_terms.clone())
        {
            customer.payment_terms = Some(kept);
        }
        book.customers.insert(id, customer);
        book.answer(())
    }
}

impl ItemSink for MemoryBook {
    async fn find_item_by_name(&self, name: &str) -> Result<Option<ReckonItem>, SinkError> {
        let book = self.call(false)?;
        Ok(book
            .items
            .iter()
            .find(|(_, i)| i.name == name)
            .map(|(id, i)| item_view(*id, i)))
    }

    async fn find_items_by_code(&self, code: &str) -> Result<Vec<ReckonItem>, SinkError> {
        let book = self.call(false)?;
        Ok(book
            .items
            .iter()
            .filter(|(_, i)| i.item_code.as_deref() == Some(code))
            .map(|(id, i)| item_view(*id, i))
            .collect())
    }

    async fn create_item(&self, item: &ItemDraft) -> Result<ReckonId, SinkError> {
        let mut book = self.call(true)?;
        let what = format!("item {:?}", item.name);
        book.check_tax_code(&what, &item.tax_code)?;
        if book.item_name_taken(&item.name, None) {
            return Err(refused(
                what,
                "name",
                "an item with this name already exists",
            ));
        }
        let id = book.new_id();
        book.items.insert(id, item.clone());
        book.answer(id)
    }

    async fn update_item(&self, id: ReckonId, item: &ItemDraft) -> Result<(), SinkError> {
        let mut book = self.call(true)?;
        let what = format!("item {id}");
        if !book.items.contains_key(&id) {
            return Err(not_found("item", id));
        }
        book.check_tax_code(&what, &item.tax_code)?;
        if book.item_name_taken(&item.name, Some(id)) {
            return Err(refused(
                what,
                "name",
                "an item with this name already exists",
            ));
        }
        book.items.insert(id, item.clone());
        book.answer(())
    }
}

impl InvoiceSink for MemoryBook {
    async fn find_invoices_by_reference(
        &self,
        reference: &str,
    ) -> Result<Vec<ReckonInvoice>, SinkError> {
        let book = self.call(false)?;
        book.invoices
            .iter()
            .filter(|(_, i)| i.draft.reference == reference)
            .map(|(id, i)| book.invoice_view(*id, i))
            .collect()
    }

    async fn invoice(&self, id: ReckonId) -> Result<Option<ReckonInvoice>, SinkError> {
        let book = self.call(false)?;
        book.invoices
            .get(&id)
            .map(|i| book.invoice_view(id, i))
            .transpose()
    }

    async fn create_invoice(&self, invoice: &InvoiceDraft) -> Result<ReckonId, SinkError> {
        let mut book = self.call(true)?;
        let what = format!("invoice {:?}", invoice.reference);
        if !book.customers.contains_key(&invoice.customer) {
            return Err(refused(what, "customer", "no such customer"));
        }
        let (total, tax) = book.priced(&what, &invoice.lines, invoice.amount_tax_status)?;
        let id = book.new_id();
        let number = book.next_number;
        book.next_number += 1;
        book.invoices.insert(
            id,
            StoredInvoice {
                draft: invoice.clone(),
                number,
                total,
                tax,
                modified: Utc::now(),
            },
        );
        book.answer(id)
    }

    async fn update_invoice(&self, id: ReckonId, invoice: &InvoiceDraft) -> Result<(), SinkError> {
        let mut book = self.call(true)?;
        let what = format!("invoice {id}");
        let stored = book
            .invoices
            .get(&id)
            .ok_or_else(|| not_found("invoice", id))?;
        if book.invoice_view(id, stored)?.status == ReckonInvoiceStatus::Paid {
            return Err(refused(what, "status", "a paid invoice cannot be changed"));
        }
        let (number, customer) = (stored.number, stored.draft.customer);
        let (total, tax) = book.priced(&what, &invoice.lines, invoice.amount_tax_status)?;
        let applied = book.applied(id)?;
        if applied > Decimal::ZERO && invoice.customer != customer {
            return Err(refused(
                what,
                "customer",
                "an invoice with receipts keeps its customer",
            ));
        }
        if total < applied {
            return Err(refused(
                what,
                "lineItems",
                "the total is below what is applied",
            ));
        }
        if applied > Decimal::ZERO && invoice.status == ReckonInvoiceStatus::Draft {
            return Err(refused(
                what,
                "status",
                "an invoice with receipts cannot be Draft",
            ));
        }
        book.invoices.insert(
            id,
            StoredInvoice {
                draft: invoice.clone(),
                number,
                total,
                tax,
                modified: Utc::now(),
            },
        );
        book.answer(())
    }

    async fn record_payment(&self, payment: &PaymentDraft) -> Result<ReckonId, SinkError> {
        let mut book = self.call(true)?;
        let what = format!("receipt {:?}", payment.reference);
        let stored = book
            .invoices
            .get(&payment.invoice)
            .ok_or_else(|| refused(&what, "invoice", "no such invoice"))?;
        let view = book.invoice_view(payment.invoice, stored)?;
        if view.status == ReckonInvoiceStatus::Draft {
            return Err(refused(what, "invoice", "a Draft invoice cannot be paid"));
        }
        if payment.amount <= Decimal::ZERO || payment.amount > view.balance {
            return Err(refused(
                what,
                "amount",
                format!(
                    "{} is not within the balance {}",
                    payment.amount, view.balance
                ),
            ));
        }
        if view.customer != Some(payment.customer) {
            return Err(refused(what, "customer", "not the invoice's customer"));
        }
        let id = book.new_id();
        book.receipts.insert(id, payment.clone());
        book.answer(id)
    }
}

impl CreditNoteSink for MemoryBook {
    async fn find_credit_notes_by_reference(
        &self,
        reference: &str,
    ) -> Result<Vec<ReckonCreditNote>, SinkError> {
        let book = self.call(false)?;
        book.credits
            .iter()
            .filter(|(_, c)| c.draft.reference == reference)
            .map(|(id, c)| book.credit_view(*id, c))
            .collect()
    }

    async fn credit_note(&self, id: ReckonId) -> Result<Option<ReckonCreditNote>, SinkError> {
        let book = self.call(false)?;
        book.credits
            .get(&id)
            .map(|c| book.credit_view(id, c))
            .transpose()
    }

    async fn create_credit_note(&self, credit: &CreditNoteDraft) -> Result<ReckonId, SinkError> {
        let mut book = self.call(true)?;
        let what = format!("credit note {:?}", credit.reference);
        if !book.customers.contains_key(&credit.customer) {
            return Err(refused(what, "customer", "no such customer"));
        }
        let (total, tax) = book.priced(&what, &credit.lines, credit.amount_tax_status)?;
        let id = book.new_id();
        book.credits.insert(
            id,
            StoredCredit {
                draft: credit.clone(),
                total,
                tax,
                allocations: Vec::new(),
            },
        );
        book.answer(id)
    }

    async fn update_credit_note(
        &self,
        id: ReckonId,
        credit: &CreditNoteDraft,
    ) -> Result<(), SinkError> {
        let mut book = self.call(true)?;
        let what = format!("credit note {id}");
        let (total, tax) = book.priced(&what, &credit.lines, credit.amount_tax_status)?;
        let stored = book
            .credits
            .get(&id)
            .ok_or_else(|| not_found("credit note", id))?;
        let used = sum(stored.allocations.iter().map(|a| a.amount), "allocations")?;
        if total < used {
            return Err(refused(
                what,
                "lineItems",
                "the total is below what is allocated",
            ));
        }
        if credit.status == CreditNoteStatus::Closed {
            return Err(refused(
                what,
                "status",
                "Closed is Reckon's to set, when it is used up",
            ));
        }
        if !stored.allocations.is_empty()
            && (credit.status == CreditNoteStatus::Draft
                || credit.customer != stored.draft.customer)
        {
            return Err(refused(
                what,
                "status",
                "an allocated credit note stays Approved and keeps its customer",
            ));
        }
        let allocations = stored.allocations.clone();
        book.credits.insert(
            id,
            StoredCredit {
                draft: credit.clone(),
                total,
                tax,
                allocations,
            },
        );
        book.answer(())
    }

    async fn allocate_credit_note(
        &self,
        credit: ReckonId,
        invoice: ReckonId,
        amount: Decimal,
    ) -> Result<(), SinkError> {
        let mut book = self.call(true)?;
        let what = format!("allocation of credit note {credit}");
        let c = book
            .credits
            .get(&credit)
            .ok_or_else(|| not_found("credit note", credit))?;
        let c = book.credit_view(credit, c)?;
        let i = book
            .invoices
            .get(&invoice)
            .ok_or_else(|| not_found("invoice", invoice))?;
        let i = book.invoice_view(invoice, i)?;
        if c.status != CreditNoteStatus::Approved {
            return Err(refused(
                what,
                "status",
                "only an Approved credit note can be allocated",
            ));
        }
        if i.status == ReckonInvoiceStatus::Draft {
            return Err(refused(
                what,
                "transactionId",
                "a Draft invoice takes no credit",
            ));
        }
        if c.customer != i.customer {
            return Err(refused(
                what,
                "transactionId",
                "not the credit note's customer",
            ));
        }
        if amount <= Decimal::ZERO || amount > c.balance || amount > i.balance {
            return Err(refused(
                what,
                "transactionAmount",
                format!(
                    "{amount} exceeds the credit's balance {} or the invoice's {}",
                    c.balance, i.balance
                ),
            ));
        }
        let link = book.new_id();
        if let Some(stored) = book.credits.get_mut(&credit) {
            stored.allocations.push(CreditAllocation {
                link_id: Some(link.to_string()),
                invoice,
                amount,
            });
        }
        book.answer(())
    }
}

impl ReckonBook for MemoryBook {
    async fn customer_page(
        &self,
        cursor: Option<PageCursor>,
    ) -> Result<Page<ReckonCustomerRecord>, SinkError> {
        let all: Vec<ReckonCustomerRecord> = self
            .call(false)?
            .customers
            .iter()
            .map(|(id, c)| customer_record(*id, c))
            .collect();
        page_of(all, cursor)
    }

    async fn item_page(
        &self,
        cursor: Option<PageCursor>,
    ) -> Result<Page<ReckonItemRecord>, SinkError> {
        let all: Vec<ReckonItemRecord> = self
            .call(false)?
            .items
            .iter()
            .map(|(id, i)| item_record(*id, i))
            .collect();
        page_of(all, cursor)
    }

    async fn invoice_page(
        &self,
        cursor: Option<PageCursor>,
    ) -> Result<Page<ReckonInvoiceRecord>, SinkError> {
        let book = self.call(false)?;
        let all = book
            .invoices
            .iter()
            .map(|(id, i)| invoice_record(&book, *id, i))
            .collect::<Result<Vec<_>, _>>()?;
        page_of(all, cursor)
    }

    async fn credit_note_page(
        &self,
        cursor: Option<PageCursor>,
    ) -> Result<Page<ReckonCreditNote>, SinkError> {
        let book = self.call(false)?;
        let all = book
            .credits
            .iter()
            .map(|(id, c)| book.credit_view(*id, c))
            .collect::<Result<Vec<_>, _>>()?;
        page_of(all, cursor)
    }

    async fn customer(&self, id: ReckonId) -> Result<Option<ReckonCustomerRecord>, SinkError> {
        Ok(self
            .call(false)?
            .customers
            .get(&id)
            .map(|c| customer_record(id, c)))
    }

    async fn item(&self, id: ReckonId) -> Result<Option<ReckonItemRecord>, SinkError> {
        Ok(self.call(false)?.items.get(&id).map(|i| item_record(id, i)))
    }

    async fn invoice_record(&self, id: ReckonId) -> Result<Option<ReckonInvoiceRecord>, SinkError> {
        let book = self.call(false)?;
        book.invoices
            .get(&id)
            .map(|i| invoice_record(&book, id, i))
            .transpose()
    }
}

fn customer_record(id: ReckonId, c: &CustomerDraft) -> ReckonCustomerRecord {
    ReckonCustomerRecord {
        id,
        name: c.name.clone(),
        status: c.status,
        email: c.email.clone(),
        phones: c.phones.clone(),
        addresses: c.addresses.clone(),
    }
}

fn item_record(id: ReckonId, i: &ItemDraft) -> ReckonItemRecord {
    ReckonItemRecord {
        id,
        name: i.name.clone(),
        status: i.status,
        sale_price: Some(i.sale_price),
        tax_code: Some(i.tax_code.clone()),
    }
}

fn invoice_record(
    book: &Book,
    id: ReckonId,
    i: &StoredInvoice,
) -> Result<ReckonInvoiceRecord, SinkError> {
    let view = book.invoice_view(id, i)?;
    let lines = i
        .draft
        .lines
        .iter()
        .map(|l| {
            Ok(ReckonLineRecord {
                line_number: l.line_number,
                amount: line_amount(l)?,
                tax_amount: l.tax_amount,
            })
        })
        .collect::<Result<Vec<_>, SinkError>>()?;
    Ok(ReckonInvoiceRecord {
        id,
        reference: view.reference,
        customer: view.customer,
        status: view.status,
        total_amount: view.total_amount,
        total_tax_amount: view.total_tax_amount,
        balance: view.balance,
        lines,
    })
}
