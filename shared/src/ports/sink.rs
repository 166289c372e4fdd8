//! The Reckon side: where changes go (one book), and reading the whole book back.

use super::{Page, PageCursor, SinkError};
use crate::domain::*;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::future::Future;

/// Where changes go: one Reckon One book, one trait per kind of record it holds, so a step
/// (and its test twin) asks only for what it writes.
pub trait ReckonSink: CustomerSink + ItemSink + InvoiceSink + CreditNoteSink {}

impl<T: CustomerSink + ItemSink + InvoiceSink + CreditNoteSink> ReckonSink for T {}

/// The book's customers.
pub trait CustomerSink: Send + Sync {
    /// Every customer in the book (for linking by email on the first sync).
    fn customers(&self) -> impl Future<Output = Result<Vec<ReckonCustomer>, SinkError>> + Send;
    fn find_customer_by_name(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<ReckonCustomer>, SinkError>> + Send;
    fn create_customer(
        &self,
        customer: &CustomerDraft,
    ) -> impl Future<Output = Result<ReckonId, SinkError>> + Send;
    fn update_customer(
        &self,
        id: ReckonId,
        customer: &CustomerDraft,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// The book's items (products and services).
pub trait ItemSink: Send + Sync {
    fn find_item_by_name(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<ReckonItem>, SinkError>> + Send;
    /// Items whose `itemCode` is exactly `code`.
    fn find_items_by_code(
        &self,
        code: &str,
    ) -> impl Future<Output = Result<Vec<ReckonItem>, SinkError>> + Send;
    fn create_item(
        &self,
        item: &ItemDraft,
    ) -> impl Future<Output = Result<ReckonId, SinkError>> + Send;
    fn update_item(
        &self,
        id: ReckonId,
        item: &ItemDraft,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// The book's invoices and the receipts paying them.
pub trait InvoiceSink: Send + Sync {
    /// Invoices whose `reference` is exactly `reference`.
    fn find_invoices_by_reference(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<Vec<ReckonInvoice>, SinkError>> + Send;
    fn invoice(
        &self,
        id: ReckonId,
    ) -> impl Future<Output = Result<Option<ReckonInvoice>, SinkError>> + Send;
    /// Creates the invoice and brings it to `draft.status`.
    fn create_invoice(
        &self,
        invoice: &InvoiceDraft,
    ) -> impl Future<Output = Result<ReckonId, SinkError>> + Send;
    /// Replaces the invoice's content and brings it to `draft.status`.
    fn update_invoice(
        &self,
        id: ReckonId,
        invoice: &InvoiceDraft,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;
    /// Records a customer payment of `amount` against the invoice (a receipt linked to it).
    fn record_payment(
        &self,
        payment: &PaymentDraft,
    ) -> impl Future<Output = Result<ReckonId, SinkError>> + Send;
}

/// The book's credit notes.
pub trait CreditNoteSink: Send + Sync {
    /// Credit notes whose `reference` is exactly `reference`.
    fn find_credit_notes_by_reference(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<Vec<ReckonCreditNote>, SinkError>> + Send;
    fn credit_note(
        &self,
        id: ReckonId,
    ) -> impl Future<Output = Result<Option<ReckonCreditNote>, SinkError>> + Send;
    /// Creates the credit note and brings it to `draft.status`.
    fn create_credit_note(
        &self,
        credit: &CreditNoteDraft,
    ) -> impl Future<Output = Result<ReckonId, SinkError>> + Send;
    /// Replaces the credit note's content and brings it to `draft.status`.
    fn update_credit_note(
        &self,
        id: ReckonId,
        credit: &CreditNoteDraft,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;
    /// Allocates `amount` of an approved credit note to an invoice of the same customer
    /// (lowers both balances).
    fn allocate_credit_note(
        &self,
        credit: ReckonId,
        invoice: ReckonId,
        amount: Decimal,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// Reading a whole Reckon book back, page by page (reconciliation; never writes).
pub trait ReckonBook: Send + Sync {
    fn customer_page(
        &self,
        cursor: Option<PageCursor>,
    ) -> impl Future<Output = Result<Page<ReckonCustomerRecord>, SinkError>> + Send;
    fn item_page(
        &self,
        cursor: Option<PageCursor>,
    ) -> impl Future<Output = Result<Page<ReckonItemRecord>, SinkError>> + Send;
    fn invoice_page(
        &self,
        cursor: Option<PageCursor>,
    ) -> impl Future<Output = Result<Page<ReckonInvoiceRecord>, SinkError>> + Send;
    fn credit_note_page(
        &self,
        cursor: Option<PageCursor>,
    ) -> impl Future<Output = Result<Page<ReckonCreditNote>, SinkError>> + Send;
    /// One record by id; `None` when the book has no such record.
    fn customer(
        &self,
        id: ReckonId,
    ) -> impl Future<Output = Result<Option<ReckonCustomerRecord>, SinkError>> + Send;
    fn item(
        &self,
        id: ReckonId,
    ) -> impl Future<Output = Result<Option<ReckonItemRecord>, SinkError>> + Send;
    fn invoice_record(
        &self,
        id: ReckonId,
    ) -> impl Future<Output = Result<Option<ReckonInvoiceRecord>, SinkError>> + Send;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentDraft {
    pub customer: ReckonId,
    pub invoice: ReckonId,
    pub amount: Decimal,
    pub date: NaiveDate,
    /// Carries the Cliniko invoice number, so a retried payment can be found.
    pub reference: String,
}
