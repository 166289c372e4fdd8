//! Products and billable items → Reckon items: adopt by code or name, names unique across
//! both kinds.

use super::*;

impl<S, R, St> Syncer<S, R, St>
where
    S: ClinikoSource,
    R: ReckonSink,
    St: StateStore,
{
    /// Whether another product or billable item owns `name` in the cross-references (item
    /// names are unique in Reckon across products and services).
    pub(super) async fn item_name_owned_by_another(
        &self,
        kind: EntityKind,
        id: ClinikoId,
        name: &str,
    ) -> Result<bool, PipelineError> {
        for k in [EntityKind::Product, EntityKind::BillableItem] {
            if self
                .state
                .name_owner(k, name)
                .await?
                .is_some_and(|o| !(k == kind && o == id))
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether `name` belongs to another item, in the cross-references or in Reckon.
    pub(super) async fn item_name_taken(
        &self,
        kind: EntityKind,
        id: ClinikoId,
        mine: ReckonId,
        name: &str,
    ) -> Result<bool, PipelineError> {
        if self.item_name_owned_by_another(kind, id, name).await? {
            return Ok(true);
        }
        Ok(self
            .sink
            .find_item_by_name(name)
            .await?
            .is_some_and(|found| found.id != mine))
    }

    pub(super) async fn apply_product(&self, p: &Product) -> Result<Applied, PipelineError> {
        let taxes = self.taxes().await?;
        let draft = mapping::product_to_item(p, taxes, &self.mapping)?;
        self.apply_item(EntityKind::Product, p.id, p.updated_at, draft)
            .await
    }

    pub(super) async fn apply_billable_item(
        &self,
        b: &BillableItem,
    ) -> Result<Applied, PipelineError> {
        let taxes = self.taxes().await?;
        let draft = mapping::billable_item_to_item(b, taxes, &self.mapping)?;
        self.apply_item(EntityKind::BillableItem, b.id, b.updated_at, draft)
            .await
    }

    pub(super) async fn apply_item(
        &self,
        kind: EntityKind,
        id: ClinikoId,
        version: chrono::DateTime<Utc>,
        mut draft: ItemDraft,
    ) -> Result<Applied, PipelineError> {
        let (xref, stale) = self.stale(kind, id, version).await?;
        if stale {
            return Ok(Applied::new(
                Outcome::Skipped,
                xref.map(|x| x.reckon_id),
                "a newer version is already in Reckon",
            ));
        }
        if let Some(x) = xref {
            // Names follow Cliniko: a suffixed name stays while the base name is unchanged;
            // a rename in Cliniko renames the item (suffixed if the name is taken).
            let base = draft.name.clone();
            let suffixed = mapping::disambiguate_item(&base, draft.item_type, id);
            draft.name = match &x.reckon_name {
                Some(current) if *current == base || *current == suffixed => current.clone(),
                _ if self.item_name_taken(kind, id, x.reckon_id, &base).await? => suffixed,
                _ => base,
            };
            let hash = mapping::content_hash(&draft);
            if hash == x.content_hash {
                self.record_link(
                    kind,
                    id,
                    x.reckon_id,
                    version,
                    hash,
                    Some(draft.name),
                    x.adopted,
                )
                .await?;
                return Ok(Applied::new(
                    Outcome::Unchanged,
                    Some(x.reckon_id),
                    "no change",
                ));
            }
            self.sink.update_item(x.reckon_id, &draft).await?;
            self.record_link(
                kind,
                id,
                x.reckon_id,
                version,
                hash,
                Some(draft.name),
                x.adopted,
            )
            .await?;
            return Ok(Applied::new(
                Outcome::Updated,
                Some(x.reckon_id),
                "item updated",
            ));
        }

        if let Some(intent) = self.state.intent(kind, id).await?
            && let Some(found) = self.sink.find_item_by_name(&intent.marker).await?
            && self.item_owner(found.id).await?.is_none()
        {
            draft.name = intent.marker.clone();
            let hash = mapping::content_hash(&draft);
            self.sink.update_item(found.id, &draft).await?;
            self.record_link(
                kind,
                id,
                found.id,
                version,
                hash,
                Some(intent.marker),
                false,
            )
            .await?;
            return Ok(Applied::new(
                Outcome::Created,
                Some(found.id),
                "item found after an interrupted create",
            ));
        }

        // Adopt before create: an unlinked Reckon item of the same type with this sync's
        // own suffixed name, the same item code, or the same name. Item names are unique
        // in Reckon across products and services, so a same-named item of the other type
        // (or one another record owns) makes this one take the suffixed name instead.
        let base = draft.name.clone();
        let owned = self.item_name_owned_by_another(kind, id, &base).await?;
        if let Some((found, how)) = self.adoptable_item(id, &draft, owned).await? {
            let suffixed = mapping::disambiguate_item(&base, draft.item_type, id);
            draft.name = if found.name == base || found.name == suffixed {
                found.name.clone()
            } else if self.item_name_taken(kind, id, found.id, &base).await? {
                suffixed
            } else {
                base
            };
            let hash = mapping::content_hash(&draft);
            self.sink.update_item(found.id, &draft).await?;
            self.record_link(
                kind,
                id,
                found.id,
                version,
                hash,
                Some(draft.name.clone()),
                true,
            )
            .await?;
            return Ok(Applied::new(
                Outcome::Linked,
                Some(found.id),
                format!("linked by {how} to existing item {:?}", found.name),
            ));
        }
        let existing = self.sink.find_item_by_name(&base).await?;
        if owned || existing.is_some() {
            draft.name = mapping::disambiguate_item(&base, draft.item_type, id);
        }
        self.claim_create(Intent {
            kind,
            cliniko_id: id,
            marker: draft.name.clone(),
            started_at: Utc::now(),
            owner: self.owner.clone(),
        })
        .await?;
        let hash = mapping::content_hash(&draft);
        let rid = self.sink.create_item(&draft).await?;
        self.record_link(
            kind,
            id,
            rid,
            version,
            hash,
            Some(draft.name.clone()),
            false,
        )
        .await?;
        Ok(Applied::new(Outcome::Created, Some(rid), "item created"))
    }

    /// The Reckon item this product or billable item should be linked to instead of
    /// creating one, and how it was matched. Only an item of the same type that no record
    /// is linked to qualifies.
    pub(super) async fn adoptable_item(
        &self,
        id: ClinikoId,
        draft: &ItemDraft,
        base_owned: bool,
    ) -> Result<Option<(ReckonItem, &'static str)>, PipelineError> {
        let fits = |item: &ReckonItem| item.item_type == Some(draft.item_type);
        let suffixed = mapping::disambiguate_item(&draft.name, draft.item_type, id);
        if let Some(found) = self.sink.find_item_by_name(&suffixed).await?
            && fits(&found)
            && self.item_owner(found.id).await?.is_none()
        {
            return Ok(Some((found, "name")));
        }
        if let Some(code) = draft
            .item_code
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            let mut unlinked = Vec::new();
            for found in self.sink.find_items_by_code(code).await? {
                if fits(&found) && self.item_owner(found.id).await?.is_none() {
                    unlinked.push(found);
                }
            }
            // Two unlinked items with one code are ambiguous: go on by name.
            if unlinked.len() == 1 {
                return Ok(unlinked.pop().map(|f| (f, "item code")));
            }
        }
        if !base_owned
            && let Some(found) = self.sink.find_item_by_name(&draft.name).await?
            && fits(&found)
            && self.item_owner(found.id).await?.is_none()
        {
            return Ok(Some((found, "name and item type")));
        }
        Ok(None)
    }

    pub(super) async fn item_owner(
        &self,
        rid: ReckonId,
    ) -> Result<Option<CrossRef>, PipelineError> {
        for k in [EntityKind::Product, EntityKind::BillableItem] {
            if let Some(x) = self.state.cross_ref_by_reckon(k, rid).await? {
                return Ok(Some(x));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    #[tokio::test]
    async fn products_and_billable_items_become_items_of_their_type_once() {
        let s = syncer();
        let p = product(20, "Foam roller", Some("FR-1"), money(4500));
        let b = service(30, "Initial consult", money(9000));
        let product = s.apply(&Record::Product(p.clone())).await.expect("product");
        let service = s
            .apply(&Record::BillableItem(b.clone()))
            .await
            .expect("service");
        assert_eq!(
            (product.outcome, service.outcome),
            (Outcome::Created, Outcome::Created)
        );
        let pd = s
            .sink
            .item_draft(product.reckon_id.expect("id"))
            .expect("item");
        assert_eq!(
            (pd.item_type, pd.name.as_str(), pd.item_code.as_deref()),
            (ItemType::Product, "Foam roller", Some("FR-1"))
        );
        assert_eq!((pd.sale_price, pd.tax_code.as_str()), (money(4500), "GST"));
        assert_eq!(pd.income_account, "Sales");
        let sd = s
            .sink
            .item_draft(service.reckon_id.expect("id"))
            .expect("item");
        assert_eq!(sd.item_type, ItemType::Service);
        assert_eq!(sd.sale_price, money(9000));
        assert_eq!(sd.income_account, "Income");

        let writes = s.sink.writes();
        let again = s.apply(&Record::Product(p)).await.expect("again");
        assert_eq!(again.outcome, Outcome::Unchanged);
        assert_eq!(s.sink.writes(), writes);
        assert_eq!(s.sink.counts().1, 2);
    }

    #[tokio::test]
    async fn an_item_typed_into_the_book_with_the_same_code_is_adopted() {
        let s = syncer();
        let typed = s.sink.add_item(ItemDraft {
            name: "Roller (foam)".into(),
            item_code: Some("FR-1".into()),
            item_type: ItemType::Product,
            status: ActiveStatus::Active,
            sale_price: money(4000),
            tax_code: "GST".into(),
            income_account: "Sales".into(),
            description: None,
        });
        let applied = s
            .apply(&Record::Product(product(
                20,
                "Foam roller",
                Some("FR-1"),
                money(4500),
            )))
            .await
            .expect("apply");
        assert_eq!(applied.outcome, Outcome::Linked, "{}", applied.detail);
        assert_eq!(applied.reckon_id, Some(typed));
        assert_eq!(s.sink.counts().1, 1, "no second item");
        assert_eq!(
            s.sink.item_draft(typed).map(|i| i.sale_price),
            Some(money(4500)),
            "Cliniko's price now"
        );
    }

    #[tokio::test]
    async fn a_product_and_a_service_of_one_name_get_distinct_item_names() {
        let s = syncer();
        let p = s
            .apply(&Record::Product(product(20, "Massage", None, money(1000))))
            .await
            .expect("product");
        let b = s
            .apply(&Record::BillableItem(service(30, "Massage", money(8000))))
            .await
            .expect("service");
        let names = [p, b].map(|a| {
            s.sink
                .item_draft(a.reckon_id.expect("id"))
                .expect("item")
                .name
        });
        assert_eq!(names[0], "Massage");
        assert_ne!(names[1], names[0], "Reckon names are unique across types");
        assert!(names[1].starts_with("Massage ("), "{}", names[1]);
    }

    #[tokio::test]
    async fn an_item_with_its_own_account_is_written_to_it() {
        let mut s = syncer();
        s.mapping
            .item_accounts
            .insert("initial consult".into(), "Initial Consultations".into());
        s.mapping.item_accounts.insert("20".into(), "Retail".into());
        let own = s
            .apply(&Record::BillableItem(service(
                30,
                "Initial Consult",
                money(9000),
            )))
            .await
            .expect("service");
        let by_id = s
            .apply(&Record::Product(product(
                20,
                "Foam roller",
                None,
                money(4500),
            )))
            .await
            .expect("product");
        let other = s
            .apply(&Record::BillableItem(service(31, "Review", money(6000))))
            .await
            .expect("service");
        let account = |a: Applied| {
            s.sink
                .item_draft(a.reckon_id.expect("id"))
                .expect("item")
                .income_account
        };
        assert_eq!(account(own), "Initial Consultations");
        assert_eq!(account(by_id), "Retail");
        assert_eq!(account(other), "Income", "the services account");
    }
}
