//! Patients → Reckon customers: link by email or name on the first sync, keep names
//! unique in the book, mark merged-away and archived patients Inactive.

use super::*;

impl<S, R, St> Syncer<S, R, St>
where
    S: ClinikoSource,
    R: ReckonSink,
    St: StateStore,
{
    pub(super) async fn apply_patient(&self, p: &Patient) -> Result<Applied, PipelineError> {
        let kind = EntityKind::Patient;
        let (xref, stale) = self.stale(kind, p.id, p.updated_at).await?;
        if stale {
            return Ok(Applied::new(
                Outcome::Skipped,
                xref.map(|x| x.reckon_id),
                "a newer version is already in Reckon",
            ));
        }
        if let Some(x) = xref {
            let name = self.current_customer_name(p, &x).await?;
            let draft = mapping::customer_draft(p, &name, &self.mapping, x.adopted);
            let hash = mapping::content_hash(&draft);
            if hash == x.content_hash {
                self.record_link(
                    kind,
                    p.id,
                    x.reckon_id,
                    p.updated_at,
                    hash,
                    Some(name),
                    x.adopted,
                )
                .await?;
                return Ok(Applied::new(
                    Outcome::Unchanged,
                    Some(x.reckon_id),
                    "no change",
                ));
            }
            self.sink.update_customer(x.reckon_id, &draft).await?;
            self.record_link(
                kind,
                p.id,
                x.reckon_id,
                p.updated_at,
                hash,
                Some(name),
                x.adopted,
            )
            .await?;
            return Ok(Applied::new(
                Outcome::Updated,
                Some(x.reckon_id),
                "customer updated",
            ));
        }

        // A previous attempt may have created the customer and crashed before recording it.
        if let Some(intent) = self.state.intent(kind, p.id).await?
            && let Some(found) = self.sink.find_customer_by_name(&intent.marker).await?
            && self
                .state
                .cross_ref_by_reckon(kind, found.id)
                .await?
                .is_none()
        {
            let draft = mapping::patient_to_customer(p, &intent.marker, &self.mapping);
            let hash = mapping::content_hash(&draft);
            self.sink.update_customer(found.id, &draft).await?;
            self.record_link(
                kind,
                p.id,
                found.id,
                p.updated_at,
                hash,
                Some(intent.marker),
                false,
            )
            .await?;
            return Ok(Applied::new(
                Outcome::Created,
                Some(found.id),
                "customer found after an interrupted create",
            ));
        }

        let mut guard = self.customers.lock().await;
        let index = self.customer_index(&mut guard).await?;

        // Adopt before create, whatever state the sync starts from: an unlinked Reckon
        // customer with the patient's email, else with the patient's name. Its name then
        // follows Cliniko's, as for every linked customer.
        if let Some((existing, how)) = self.adoptable_customer(p, index).await? {
            let base = self.mapping.customers.name(p);
            let ours = self.mapping.customers.alternatives(&base, p);
            let name = if existing.name == base || ours.contains(&existing.name) {
                existing.name.clone()
            } else {
                let name = self
                    .free_customer_name(p, Some(existing.id), &base, index)
                    .await?;
                index.by_name.remove(&existing.name.to_lowercase());
                index.by_name.insert(name.to_lowercase(), existing.id);
                name
            };
            let draft = mapping::customer_draft(p, &name, &self.mapping, true);
            let hash = mapping::content_hash(&draft);
            self.sink.update_customer(existing.id, &draft).await?;
            self.record_link(
                kind,
                p.id,
                existing.id,
                p.updated_at,
                hash,
                Some(name),
                true,
            )
            .await?;
            return Ok(Applied::new(
                Outcome::Linked,
                Some(existing.id),
                format!("linked by {how} to existing customer {:?}", existing.name),
            ));
        }

        let base = self.mapping.customers.name(p);
        let name = self.free_customer_name(p, None, &base, index).await?;
        let draft = mapping::patient_to_customer(p, &name, &self.mapping);
        let hash = mapping::content_hash(&draft);
        self.claim_create(Intent {
            kind,
            cliniko_id: p.id,
            marker: name.clone(),
            started_at: Utc::now(),
            owner: self.owner.clone(),
        })
        .await?;
        let id = self.sink.create_customer(&draft).await?;
        index.add(ReckonCustomer {
            id,
            name: name.clone(),
            status: draft.status,
            email: draft.email.clone(),
        });
        drop(guard);
        self.record_link(
            kind,
            p.id,
            id,
            p.updated_at,
            hash,
            Some(name.clone()),
            false,
        )
        .await?;
        let detail = if name == base {
            "customer created".to_string()
        } else {
            format!("customer created as {name:?}: {base:?} belongs to another record")
        };
        Ok(Applied::new(Outcome::Created, Some(id), detail))
    }

    /// The Reckon customer this patient should be linked to instead of creating one, and
    /// how it was matched: an unlinked customer with the patient's email (the one with the
    /// patient's name when a family shares an email, else the only one), else an unlinked
    /// customer with the patient's name and no other email. The name this sync gives a
    /// namesake (`Name (id)`) is tried before the plain name, so two patients of one name
    /// are each adopted by their own customer in any order.
    pub(super) async fn adoptable_customer(
        &self,
        p: &Patient,
        index: &CustomerIndex,
    ) -> Result<Option<(ReckonCustomer, &'static str)>, PipelineError> {
        let emails: Vec<String> = [p.email.as_deref(), p.invoice_email.as_deref()]
            .into_iter()
            .flatten()
            .map(|e| e.trim().to_lowercase())
            .filter(|e| !e.is_empty())
            .collect();
        let base = self.mapping.customers.name(p);
        // The id form first (only this patient can have it), then the email form, then the
        // plain name: a name that is not the patient's alone must not win over one that is.
        let mut names: Vec<String> = self
            .mapping
            .customers
            .alternatives(&base, p)
            .iter()
            .rev()
            .map(|n| n.to_lowercase())
            .collect();
        names.push(base.to_lowercase());
        for email in &emails {
            let Some(candidates) = index.by_email.get(email) else {
                continue;
            };
            let mut unlinked = Vec::new();
            for c in candidates {
                if !self.customer_linked(c.id).await? {
                    unlinked.push(c);
                }
            }
            for name in &names {
                if let Some(same) = unlinked.iter().find(|c| c.name.to_lowercase() == *name) {
                    return Ok(Some(((*same).clone(), "email")));
                }
            }
            // A shared family email with several customers is ambiguous: go on by name.
            if let [only] = unlinked.as_slice() {
                return Ok(Some(((*only).clone(), "email")));
            }
        }
        for name in &names {
            let Some(found) = index.by_id_of_name(name) else {
                continue;
            };
            let other_email = found
                .email
                .as_deref()
                .map(|e| e.trim().to_lowercase())
                .is_some_and(|e| !e.is_empty() && !emails.contains(&e));
            if !other_email && !self.customer_linked(found.id).await? {
                return Ok(Some((found.clone(), "name")));
            }
        }
        Ok(None)
    }

    pub(super) async fn customer_linked(&self, id: ReckonId) -> Result<bool, PipelineError> {
        Ok(self
            .state
            .cross_ref_by_reckon(EntityKind::Patient, id)
            .await?
            .is_some())
    }

    /// The name a linked customer should have now. Names follow Cliniko: the name in
    /// Reckon is kept while it is still this patient's name (or its disambiguated form);
    /// after a rename in Cliniko (or for a customer linked by email under another name) it
    /// becomes the patient's current name, disambiguated if another customer has it.
    pub(super) async fn current_customer_name(
        &self,
        p: &Patient,
        x: &CrossRef,
    ) -> Result<String, PipelineError> {
        let base = self.mapping.customers.name(p);
        let alternatives = self.mapping.customers.alternatives(&base, p);
        let ours = |name: &str| name == base || alternatives.iter().any(|a| a == name);
        if let Some(current) = &x.reckon_name
            && ours(current)
        {
            return Ok(current.clone());
        }
        let mut guard = self.customers.lock().await;
        let index = self.customer_index(&mut guard).await?;
        // A link made by hand (`link`) records no name: the customer's own, if it is one of
        // the patient's forms, stays.
        if x.reckon_name.is_none()
            && let Some(c) = index.by_id.get(&x.reckon_id)
            && ours(&c.name)
        {
            return Ok(c.name.clone());
        }
        let name = self
            .free_customer_name(p, Some(x.reckon_id), &base, index)
            .await?;
        if let Some(old) = &x.reckon_name {
            index.by_name.remove(&old.to_lowercase());
        }
        index.by_name.insert(name.to_lowercase(), x.reckon_id);
        Ok(name)
    }

    /// The Reckon customer index, read once per process.
    pub(super) async fn customer_index<'a>(
        &self,
        guard: &'a mut Option<CustomerIndex>,
    ) -> Result<&'a mut CustomerIndex, PipelineError> {
        if guard.is_none() {
            let mut index = CustomerIndex::default();
            for c in self.sink.customers().await? {
                index.add(c);
            }
            *guard = Some(index);
        }
        guard
            .as_mut()
            .ok_or_else(|| PipelineError::Internal("customer index missing".into()))
    }

    /// `base`, or the first of its alternatives (`[customers] collision`) that no other
    /// customer has; `mine` is the customer this patient has (or is being linked to), whose
    /// own name is not "taken".
    pub(super) async fn free_customer_name(
        &self,
        p: &Patient,
        mine: Option<ReckonId>,
        base: &str,
        index: &CustomerIndex,
    ) -> Result<String, PipelineError> {
        let id = p.id;
        let taken = |name: &str| {
            index
                .by_name
                .get(&name.to_lowercase())
                .is_some_and(|holder| Some(*holder) != mine)
        };
        let owner = self.state.name_owner(EntityKind::Patient, base).await?;
        if !taken(base) && owner.is_none_or(|o| o == id) {
            return Ok(base.to_string());
        }
        let alternatives = self.mapping.customers.alternatives(base, p);
        let id_form = mapping::disambiguate(base, id);
        // The email form tells this patient apart only while no other customer has the
        // email (a family sharing one): otherwise it would not find the patient again.
        let email_shared = p
            .email
            .as_deref()
            .map(|e| e.trim().to_lowercase())
            .and_then(|e| index.by_email.get(&e))
            .is_some_and(|holders| holders.iter().any(|c| Some(c.id) != mine));
        for name in &alternatives {
            if *name != id_form && email_shared {
                continue;
            }
            let owner = self.state.name_owner(EntityKind::Patient, name).await?;
            if !taken(name) && owner.is_none_or(|o| o == id) {
                return Ok(name.clone());
            }
        }
        Err(PipelineError::Conflict(format!(
            "patient {id}: customer names {base:?} and {} are all taken in Reckon",
            alternatives
                .iter()
                .map(|n| format!("{n:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use crate::ports::ErrorClass;

    fn customer(name: &str, email: Option<&str>) -> CustomerDraft {
        CustomerDraft {
            name: name.into(),
            first_name: None,
            last_name: None,
            status: ActiveStatus::Active,
            email: email.map(String::from),
            addresses: vec![],
            phones: vec![],
            payment_terms: None,
        }
    }

    #[tokio::test]
    async fn a_new_patient_becomes_one_customer_and_an_unchanged_one_writes_nothing() {
        let s = syncer();
        let p = patient(7, "Ada", "Lovelace", Some("ada@example.com"));
        let first = s.apply(&Record::Patient(p.clone())).await.expect("apply");
        assert_eq!(first.outcome, Outcome::Created);
        let id = first.reckon_id.expect("a customer id");
        let draft = s.sink.customer_draft(id).expect("in the book");
        assert_eq!(draft.name, "Ada Lovelace");
        assert_eq!(draft.email.as_deref(), Some("ada@example.com"));
        let writes = s.sink.writes();

        let again = s.apply(&Record::Patient(p.clone())).await.expect("again");
        assert_eq!(again.outcome, Outcome::Unchanged);
        assert_eq!(again.reckon_id, Some(id));
        assert_eq!(s.sink.writes(), writes, "no write for unchanged content");

        let mut older = p;
        older.updated_at = day(1) - chrono::TimeDelta::days(1);
        let stale = s.apply(&Record::Patient(older)).await.expect("older");
        assert_eq!(stale.outcome, Outcome::Skipped);
        assert_eq!(s.sink.counts().0, 1, "still one customer");
    }

    #[tokio::test]
    async fn an_edit_updates_the_customer_and_archiving_makes_it_inactive() {
        let s = syncer();
        let mut p = patient(7, "Ada", "Lovelace", None);
        let id = s
            .apply(&Record::Patient(p.clone()))
            .await
            .expect("create")
            .reckon_id
            .expect("id");
        p.last_name = "King".into();
        p.email = Some("ada@king.example".into());
        p.updated_at = day(3);
        let edited = s.apply(&Record::Patient(p.clone())).await.expect("edit");
        assert_eq!(edited.outcome, Outcome::Updated);
        let draft = s.sink.customer_draft(id).expect("customer");
        assert_eq!(draft.name, "Ada King");
        assert_eq!(draft.email.as_deref(), Some("ada@king.example"));

        p.archived_at = Some(day(4));
        p.updated_at = day(4);
        s.apply(&Record::Patient(p)).await.expect("archive");
        let draft = s.sink.customer_draft(id).expect("customer");
        assert_eq!(draft.status, ActiveStatus::Inactive);
        assert_eq!(s.sink.counts().0, 1);
    }

    #[tokio::test]
    async fn a_customer_already_in_the_book_with_the_email_is_linked_not_duplicated() {
        let s = syncer();
        let typed = s
            .sink
            .add_customer(customer("A. Lovelace", Some("ADA@example.com")));
        let p = patient(7, "Ada", "Lovelace", Some("ada@example.com"));
        let applied = s.apply(&Record::Patient(p)).await.expect("apply");
        assert_eq!(applied.outcome, Outcome::Linked, "{}", applied.detail);
        assert_eq!(applied.reckon_id, Some(typed));
        assert_eq!(s.sink.counts().0, 1, "no second customer");
        assert_eq!(
            s.sink.customer_draft(typed).map(|c| c.name).as_deref(),
            Some("Ada Lovelace"),
            "its name follows Cliniko's"
        );
        let link = s
            .state
            .cross_ref(EntityKind::Patient, ClinikoId(7))
            .await
            .expect("state")
            .expect("linked");
        assert!(link.adopted);
    }

    #[tokio::test]
    async fn a_namesake_with_another_email_keeps_its_name_and_the_patient_gets_a_distinct_one() {
        let s = syncer();
        let other = s
            .sink
            .add_customer(customer("Ada Lovelace", Some("someone@else.example")));
        let p = patient(7, "Ada", "Lovelace", Some("ada@example.com"));
        let applied = s.apply(&Record::Patient(p)).await.expect("apply");
        assert_eq!(applied.outcome, Outcome::Created);
        let id = applied.reckon_id.expect("id");
        assert_ne!(id, other);
        let ours = s.sink.customer_draft(id).expect("ours").name;
        assert_eq!(
            ours, "Ada Lovelace (ada@example.com)",
            "unique in the book, and readable"
        );
        assert_eq!(
            s.sink.customer_draft(other).map(|c| c.name).as_deref(),
            Some("Ada Lovelace"),
            "the bookkeeper's customer is untouched"
        );
    }

    #[tokio::test]
    async fn an_outage_is_passing_and_a_revoked_connection_stops_the_tenant() {
        let s = syncer();
        let p = Record::Patient(patient(7, "Ada", "Lovelace", None));
        s.sink.set_fault(Some(ErrorClass::Retry));
        let outage = s.apply(&p).await.expect_err("Reckon down");
        assert!(outage.is_retryable() && !outage.stops_tenant(), "{outage}");
        s.sink.set_fault(Some(ErrorClass::StopTenant));
        let revoked = s.apply(&p).await.expect_err("Reckon revoked");
        assert!(
            revoked.stops_tenant() && !revoked.is_retryable(),
            "{revoked}"
        );
        s.sink.set_fault(None);
        let applied = s.apply(&p).await.expect("back");
        assert_eq!(applied.outcome, Outcome::Created);
        assert_eq!(s.sink.counts().0, 1);
    }

    #[tokio::test]
    async fn a_name_format_change_renames_the_customer_at_the_patients_next_change() {
        let mut s = syncer();
        let mut p = patient(7, "Ada", "Lovelace", Some("ada@example.com"));
        let id = s
            .apply(&Record::Patient(p.clone()))
            .await
            .expect("create")
            .reckon_id
            .expect("id");
        s.mapping.customers.name_format = crate::mapping::NameFormat::LastFirst;
        s.reset_caches();
        p.updated_at = day(3);
        let renamed = s.apply(&Record::Patient(p)).await.expect("rename");
        assert_eq!(renamed.outcome, Outcome::Updated);
        assert_eq!(
            s.sink.customer_draft(id).map(|c| c.name).as_deref(),
            Some("Lovelace, Ada")
        );
        assert_eq!(s.sink.counts().0, 1);
    }

    #[tokio::test]
    async fn namesakes_get_readable_names_and_are_found_again_after_the_state_is_lost() {
        let mut s = syncer();
        let family = |id| patient(id, "Jane", "Smith", Some("family@example.com"));
        let other = patient(3, "Jane", "Smith", Some("jane@elsewhere.example"));
        let mut ids = Vec::new();
        for p in [family(1), family(2), other.clone()] {
            let applied = s.apply(&Record::Patient(p)).await.expect("apply");
            assert_eq!(applied.outcome, Outcome::Created);
            ids.push(applied.reckon_id.expect("id"));
        }
        let names: Vec<String> = ids
            .iter()
            .map(|id| s.sink.customer_draft(*id).expect("customer").name)
            .collect();
        assert_eq!(names[0], "Jane Smith");
        // A shared family email would not tell the two apart again: the id form.
        assert_eq!(
            names[1],
            crate::mapping::disambiguate("Jane Smith", ClinikoId(2))
        );
        assert_eq!(names[2], "Jane Smith (jane@elsewhere.example)");

        // The state file is lost; the patients come again in another order.
        s.state = crate::adapters::sqlite::SqliteState::open_in_memory().expect("state");
        s.reset_caches();
        for (p, want) in [(family(1), ids[0]), (other, ids[2]), (family(2), ids[1])] {
            let id = p.id;
            let applied = s.apply(&Record::Patient(p)).await.expect("again");
            assert_eq!(
                applied.outcome,
                Outcome::Linked,
                "patient {id}: {}",
                applied.detail
            );
            assert_eq!(applied.reckon_id, Some(want), "patient {id}");
        }
        assert_eq!(s.sink.counts().0, 3, "no customer made twice");
    }
}
