//! The storage schema: how the rule book is kept in `storage.local`.
//!
//! Stored state is versioned. A rule that no longer validates (written by an
//! older version with looser checks, or edited by hand) is kept aside,
//! verbatim, and written back unchanged: reading never loses data.
//!
//! The layout (schema 6) is sized to the edit: the **head** under
//! [`STATE_KEY`] holds everything but the rules and credentials, and the
//! list of their ids; the rules are grouped by id, [`RULES_PER_KEY`] to a
//! key (`rules:<id / 64>`, an array), each credential under
//! `credential:<id>`. A write ([`StoredWrite`]) is one `storage.local.set`
//! call, which the browser applies whole or not at all, and always includes
//! the head: the head is the commit. Saving one rule writes the head and
//! that rule's group; a change of mode or passphrase writes every key in
//! the same one call. Keys the head no longer needs are removed after the
//! set; if that is interrupted, they stay unread, and start-up tidies them.
//!
//! Why groups and not a key per rule (schema 4): Firefox keeps each key of
//! `storage.local` as a record of its own in IndexedDB, and pays per
//! record. 1,666 rules (5,000 browser rules) measured in Firefox ESR 153
//! from an extension page: written whole as 1,667 keys in 784 ms, as 28
//! groups of 64 in 89 ms, as one key in 62 ms; read back (every request
//! does) in 61, 17 and 17 ms. Chromium: 99, 80 and 79 ms to write, about
//! 40 ms to read in each layout. Writing one edited rule's group cost 4 to
//! 7 ms, where its own key cost 3. Groups keep an edit's write small and a
//! whole state to a few dozen keys. Up to schema 3 the head held the whole
//! state, and schema 4 kept a key per rule; both read as before, and
//! start-up (or the next save) writes them in this layout.
//!
//! Since schema 6 each group and each credential is kept as its JSON text,
//! a string, and the head holds an index of the rules ([`BookIndex`], also
//! text). Chromium converts a stored value node by node on every `get` and
//! `set` (V8 to `base::Value` and back, and to JSON on disk): measured from
//! the options page with 1,666 rules, reading the head with the index as
//! nested arrays (78 kB) took 30–57 ms and every key 60–90 ms, where a
//! string of the same length is one node. Schema 5's groups of JSON read as
//! before.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::compile::{TabRule, MAX_SITE_RULE_ID, TAB_RULE_BASE};
use crate::credential::{Credential, CredentialId, Credentials, Timestamp};
use crate::initiator::Initiators;
use crate::pattern::{ParseOptions, SitePattern};
use crate::protection::Protection;
use crate::reminder::Reminded;
use crate::rules::HeaderAction;
use crate::rules::{RuleBook, RuleDraft, RuleError, SiteRule, SiteRuleId};
use crate::text;
use crate::text::{Localize, Text};

/// The `storage.local` key of the head (see the module's documentation).
pub const STATE_KEY: &str = "state";
/// 2 added credentials; a schema 1 state reads as having none. 3 added each
/// rule's `initiators`; a rule without it reads as same-site, so the
/// migration only narrows who may use a header. An older Tokenward refuses
/// a schema 3 state rather than drop the policy and widen every rule. 4
/// moved the rules and credentials out of the head, a key each; an older
/// Tokenward refuses it rather than read a state without rules.
pub const SCHEMA_VERSION: u32 = crate::migration::CURRENT;

/// How many rules one storage key holds (by id: ids 64 to 127 share one).
pub const RULES_PER_KEY: SiteRuleId = 64;

/// The storage key of the group that holds site rule `id`.
pub fn rules_key(id: SiteRuleId) -> String {
    format!("rules:{}", id / RULES_PER_KEY)
}

/// The first schema that keeps the rules in groups.
const GROUPED_SINCE: u64 = 5;

/// The first schema that keeps each group and credential as its JSON text.
const TEXT_SINCE: u64 = 6;

/// The storage key of site rule `id` in schema 4, a key per rule; read,
/// never written.
pub fn schema_4_rule_key(id: SiteRuleId) -> String {
    format!("rule:{id}")
}

/// The storage key of credential `id`.
pub fn credential_key(id: CredentialId) -> String {
    format!("credential:{id}")
}

/// One write to `storage.local`: `set` in one call, applied whole or not at
/// all, then `remove`, the keys the new head no longer lists (tidying only:
/// an unlisted key is never read).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredWrite {
    pub set: serde_json::Map<String, Value>,
    pub remove: Vec<String>,
}

impl StoredWrite {
    /// A whole state, in [`State::encode`]'s form (its secrets sealed or
    /// not), as the head and a key per rule and credential.
    pub fn whole(mut document: Value) -> StoredWrite {
        let mut set = take_items(&mut document);
        set.insert(STATE_KEY.to_owned(), document);
        StoredWrite {
            set,
            remove: Vec::new(),
        }
    }

    /// `head` ([`State::encode_head`]) and the rules and credentials of
    /// `items` (a document in [`State::encode`]'s form holding only those
    /// that changed).
    pub fn head_and(head: Value, mut items: Value) -> StoredWrite {
        let mut set = take_items(&mut items);
        set.insert(STATE_KEY.to_owned(), head);
        StoredWrite {
            set,
            remove: Vec::new(),
        }
    }

    /// Also removes the keys of the rules and credentials `before` held and
    /// `after` does not: a group left empty, a credential gone, and, when
    /// `before` was read from an older layout, its keys.
    pub fn removing(mut self, before: &State, after: &State) -> StoredWrite {
        let kept: std::collections::BTreeSet<String> =
            after.book.rules().iter().map(|r| rules_key(r.id)).collect();
        for rule in before.book.rules() {
            let group = rules_key(rule.id);
            if !kept.contains(&group) && !self.remove.contains(&group) {
                self.remove.push(group);
            }
            if before.older_layout {
                self.remove.push(schema_4_rule_key(rule.id));
            }
        }
        for credential in before.credentials.all() {
            if after.credentials.get(credential.info.id).is_none() {
                self.remove.push(credential_key(credential.info.id));
            }
        }
        self.remove.retain(|key| !self.set.contains_key(key));
        self
    }
}

/// Takes the rules and credentials out of `document` (in [`State::encode`]'s
/// form), the rules into their groups and each credential under its key,
/// and lists their ids in it instead.
fn take_items(document: &mut Value) -> serde_json::Map<String, Value> {
    let mut set = serde_json::Map::new();
    for (field, ids) in [("rules", "ruleIds"), ("credentials", "credentialIds")] {
        let items = match document.get_mut(field).map(Value::take) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        let mut listed = Vec::with_capacity(items.len());
        for item in items {
            let Some(id) = item
                .get("id")
                .and_then(Value::as_u64)
                .and_then(|id| u32::try_from(id).ok())
            else {
                continue;
            };
            listed.push(id);
            if field == "rules" {
                let group = set
                    .entry(rules_key(id))
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(group) = group {
                    group.push(item);
                }
            } else {
                set.insert(credential_key(id), item);
            }
        }
        list_ids(document, field, ids, listed);
    }
    // Each kept as its JSON text (schema 6): Chromium converts every node
    // of a stored value on each `get` and `set`, a string is one.
    for value in set.values_mut() {
        *value = Value::String(value.to_string());
    }
    set
}

/// Puts the list of ids `ids` in `head` where `field` held the things.
fn list_ids(head: &mut Value, field: &str, ids: &str, listed: Vec<u32>) {
    if let Some(head) = head.as_object_mut() {
        head.remove(field);
        head.insert(
            ids.to_owned(),
            Value::Array(listed.into_iter().map(Value::from).collect()),
        );
    }
}

/// What the head knows of each rule without its group: the id, the
/// canonical pattern (for the duplicate check) and the browser rules it
/// needs while enabled (for the limit check). With it, an edit loads the
/// head and the one group it changes ([`State::unloaded`]) and still checks
/// the whole book. Derived from the book on every write, so it never
/// disagrees with the groups this build wrote; a head without one (written
/// by an older build) sends the edit through a whole load.
///
/// Stored as one string, the JSON text of its entries, not as nested
/// arrays: Chromium converts every node of a stored value on each `get` and
/// `set`, and the index of 1,666 rules (5,000 browser rules) read as
/// arrays took 30–50 ms from an extension page, every edit; a string of
/// the same text is one node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BookIndex(Vec<IndexEntry>);

impl Serialize for BookIndex {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = serde_json::to_string(&self.0).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for BookIndex {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        serde_json::from_str(&text)
            .map(BookIndex)
            .map_err(serde::de::Error::custom)
    }
}

/// One rule in the [`BookIndex`]: `[id, pattern, rules, regexRules]` in
/// its text, the usage zero while disabled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry(SiteRuleId, String, usize, usize);

impl BookIndex {
    /// The index of `rules`, in their order.
    pub fn of<'a>(rules: impl IntoIterator<Item = &'a SiteRule>) -> BookIndex {
        BookIndex(
            rules
                .into_iter()
                .map(|rule| {
                    let used = if rule.enabled {
                        crate::compile::usage_of_one(&rule.pattern, &rule.initiators)
                    } else {
                        crate::compile::Usage::default()
                    };
                    IndexEntry(
                        rule.id,
                        rule.pattern.to_string(),
                        used.rules,
                        used.regex_rules,
                    )
                })
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn ids(&self) -> impl Iterator<Item = SiteRuleId> + '_ {
        self.0.iter().map(|entry| entry.0)
    }

    /// What the indexed rules need of the browser.
    pub fn usage(&self) -> crate::compile::Usage {
        self.0
            .iter()
            .map(|entry| crate::compile::Usage {
                rules: entry.2,
                regex_rules: entry.3,
            })
            .fold(
                crate::compile::Usage::default(),
                crate::compile::Usage::plus,
            )
    }

    /// The indexed rule on `pattern` (canonical, as `Display` prints it).
    pub fn on_pattern(&self, pattern: &str) -> Option<SiteRuleId> {
        self.0.iter().find(|entry| entry.1 == pattern).map(|e| e.0)
    }

    /// The indexed rules whose pattern contains one of the pages at
    /// `urls`, on or off, and any whose indexed pattern no longer parses
    /// (read whole, it might).
    pub fn covering(&self, urls: &[String]) -> Vec<SiteRuleId> {
        self.covering_specs(&page_specs(urls))
    }

    /// [`BookIndex::covering`] of pages already canonical ([`page_specs`]).
    fn covering_specs(&self, specs: &[String]) -> Vec<SiteRuleId> {
        let hosts: Vec<&str> = specs
            .iter()
            .filter_map(|spec| crate::pattern::written_host(spec))
            .collect();
        let options = crate::pattern::ParseOptions { allow_http: true };
        self.0
            .iter()
            // Most patterns name another host: told from their text, they
            // need no parse (3 ms natively for 1,666 rules, parsing all).
            .filter(|entry| match crate::pattern::written_host(&entry.1) {
                Some(written) => hosts
                    .iter()
                    .any(|host| crate::pattern::written_host_matches(written, host)),
                None => true,
            })
            .filter(|entry| match SitePattern::parse(&entry.1, options) {
                Ok(pattern) => specs.iter().any(|spec| pattern.matches_spec(spec)),
                Err(_) => true,
            })
            .map(|entry| entry.0)
            .collect()
    }

    /// This index and `other`'s entries, by id (ids are given in creation
    /// order, as the book keeps its rules).
    fn merged(&self, other: BookIndex) -> BookIndex {
        let mut entries: Vec<IndexEntry> = self.0.iter().cloned().chain(other.0).collect();
        entries.sort_by_key(|entry| entry.0);
        BookIndex(entries)
    }

    /// Without the entries of the rules `keep` says no to.
    fn retain(mut self, keep: impl Fn(SiteRuleId) -> bool) -> BookIndex {
        self.0.retain(|entry| keep(entry.0));
        self
    }
}

/// The pages at `urls` as patterns are matched against them
/// ([`SitePattern::matches_spec`]).
fn page_specs(urls: &[String]) -> Vec<String> {
    urls.iter()
        .filter_map(|url| crate::matcher::canonical(url))
        .collect()
}

/// How a read sized to its purpose is made, planned from the head alone:
/// a rule's edit (`service`'s `load_for_edit`) reads the group it writes,
/// the badges after it (`service::read_for_pages`) the groups of the rules
/// that cover the tabs' pages; what is not read is known from the head.
#[derive(Debug)]
pub struct ReadPlan {
    index: BookIndex,
    /// The keys of the groups read, sorted.
    groups: Vec<String>,
    /// The rule edited, or the id a new rule gets; `None` for a read for
    /// pages.
    edited: Option<SiteRuleId>,
    next_id: SiteRuleId,
    /// The credentials the head lists.
    credentials: Vec<CredentialId>,
}

impl ReadPlan {
    /// The plan for editing rule `edited` (`None`: making one), or `None`
    /// when this head cannot serve an edit alone: another schema, an older
    /// layout, no index, or an index that disagrees with the head's list.
    pub fn of(head: &Value, edited: Option<SiteRuleId>) -> Option<ReadPlan> {
        let mut plan = ReadPlan::from_head(head)?;
        let edited = edited.unwrap_or(plan.next_id);
        plan.groups = vec![rules_key(edited)];
        plan.edited = Some(edited);
        Some(plan)
    }

    /// The plan for what the pages at `urls` are sent (their badges): the
    /// groups of the rules whose pattern contains one of them, on or off,
    /// and of any whose indexed pattern no longer parses. `None` as for
    /// [`ReadPlan::of`].
    pub fn for_pages(head: &Value, urls: &[String]) -> Option<ReadPlan> {
        let mut plan = ReadPlan::from_head(head)?;
        let mut groups: Vec<String> = plan
            .index
            .covering(urls)
            .into_iter()
            .map(rules_key)
            .collect();
        groups.sort_unstable();
        groups.dedup();
        plan.groups = groups;
        Some(plan)
    }

    fn from_head(head: &Value) -> Option<ReadPlan> {
        if crate::migration::schema_of(head) != u64::from(SCHEMA_VERSION)
            || head.get("rules").is_some()
        {
            return None;
        }
        let index: BookIndex = crate::json::read(head.get("index")?).ok()?;
        if !index.ids().eq(listed_ids(head, "ruleIds")) {
            return None;
        }
        // As `State::decode` reads it: past every id in use.
        let stored_next = head
            .get("nextId")
            .and_then(Value::as_u64)
            .and_then(|id| SiteRuleId::try_from(id).ok())
            .unwrap_or(1);
        let next_id = index
            .ids()
            .map(|id| id.saturating_add(1))
            .fold(stored_next.max(1), SiteRuleId::max);
        Some(ReadPlan {
            groups: Vec::new(),
            edited: None,
            next_id,
            credentials: listed_ids(head, "credentialIds"),
            index,
        })
    }

    /// The keys of the groups the plan reads.
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    /// The keys of the credentials `ids` the head lists (others are not
    /// stored), each once.
    pub fn credential_keys(
        &self,
        ids: impl IntoIterator<Item = CredentialId>,
    ) -> impl Iterator<Item = String> {
        let mut ids: Vec<CredentialId> = ids
            .into_iter()
            .filter(|id| self.credentials.contains(id))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter().map(credential_key)
    }

    /// The credentials the rules read take headers from, as `items` (the
    /// groups read) store them: the edited rule's alone for an edit.
    pub fn credentials_of_rules(&self, items: &Value) -> Vec<CredentialId> {
        self.groups
            .iter()
            .flat_map(|group| group_rules(items, group))
            .filter(|rule| match self.edited {
                Some(edited) => rule.get("id").and_then(Value::as_u64) == Some(u64::from(edited)),
                None => true,
            })
            .filter_map(|rule| rule.get("headers").and_then(Value::as_array).cloned())
            .flatten()
            .filter_map(|header| header.get("credential").and_then(Value::as_u64))
            .filter_map(|id| CredentialId::try_from(id).ok())
            .collect()
    }

    /// `items` (the head, the groups and the credentials read) as a state
    /// of its own for [`assemble`]: the head listing only what was read.
    pub fn partial_items(&self, items: &Value) -> Value {
        let mut partial = items.clone();
        let in_groups: Vec<SiteRuleId> = self
            .index
            .ids()
            .filter(|&id| self.reads_group_of(id))
            .collect();
        let (read, _) = self.credentials_read(items);
        if let Some(head) = partial.get_mut(STATE_KEY) {
            list_ids(head, "rules", "ruleIds", in_groups);
            list_ids(head, "credentials", "credentialIds", read);
        }
        partial
    }

    /// Records in `state` (read from [`ReadPlan::partial_items`]) the rules
    /// and credentials it does not hold, and the next rule id as the whole
    /// book has it.
    pub fn count_unloaded(&self, state: &mut State, items: &Value) {
        state.unloaded = self.index.clone().retain(|id| !self.reads_group_of(id));
        state.unloaded_credentials = self.credentials_read(items).1;
        state.book.next_id = state.book.next_id.max(self.next_id);
    }

    fn reads_group_of(&self, id: SiteRuleId) -> bool {
        self.groups.binary_search(&rules_key(id)).is_ok()
    }

    /// The credentials the head lists, as those `items` holds and those it
    /// does not.
    fn credentials_read(&self, items: &Value) -> (Vec<CredentialId>, Vec<CredentialId>) {
        self.credentials
            .iter()
            .partition(|&&id| items.get(credential_key(id)).is_some())
    }
}

/// Whether what `storage.local` holds is in the one-key layout of schema 3
/// and older, where the head is the whole state.
pub fn in_one_key_layout(items: &Value) -> bool {
    items
        .get(STATE_KEY)
        .and_then(|head| head.get("rules"))
        .is_some_and(Value::is_array)
}

/// Whether what `storage.local` holds is in a layout older than this
/// build's: one key (schema 3 and older) or a key per rule (schema 4).
pub fn in_older_layout(items: &Value) -> bool {
    in_one_key_layout(items)
        || items
            .get(STATE_KEY)
            .is_some_and(|head| crate::migration::schema_of(head) < TEXT_SINCE)
}

/// The ids a head lists under `ids`.
fn listed_ids(head: &Value, ids: &str) -> Vec<u32> {
    head.get(ids)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_u64)
        .filter_map(|id| u32::try_from(id).ok())
        .collect()
}

/// What the head lists, each with the key it was looked for under and its
/// stored form, if found: borrowed from the items when they hold it read
/// ([`read_texts`]), else read from its text.
type Found<'a> = Vec<(u32, String, Option<Cow<'a, Value>>)>;

/// Whether `key` is one of the keys a rule, a group of rules or a
/// credential is kept under (in this layout or schema 4's).
fn is_item_key(key: &str) -> bool {
    key.starts_with("rule:") || key.starts_with("rules:") || key.starts_with("credential:")
}

/// Reads, in place, the JSON text each group and credential is kept as
/// (schema 6), so that a whole load reads each once where [`upgrade`]'s
/// check and [`assemble`] each read them all: at 5,000 rules a pass over
/// the texts took 4–6 ms natively. A text that does not parse, or parses
/// to a string, stays as it was: [`stored_item`] reads it then as before.
/// Only for reading: what is written is encoded anew.
pub fn read_texts(items: &mut Value) {
    let Some(items) = items.as_object_mut() else {
        return;
    };
    for (key, value) in items.iter_mut() {
        if !is_item_key(key) {
            continue;
        }
        if let Value::String(text) = value {
            match serde_json::from_str::<Value>(text) {
                Ok(Value::String(_)) | Err(_) => {}
                Ok(read) => *value = read,
            }
        }
    }
}

/// A group or a credential as `storage.local` holds it, read: since schema
/// 6 the JSON text of it, before that the JSON itself. Text that does not
/// parse reads as not found, and is kept aside as such.
fn stored_item(value: &Value) -> Option<Cow<'_, Value>> {
    match value {
        Value::String(text) => serde_json::from_str(text).ok().map(Cow::Owned),
        other => Some(Cow::Borrowed(other)),
    }
}

/// The things `ids` lists, each kept under a key of its own (`key`).
fn find_keyed(items: &Value, ids: Vec<u32>, key: fn(u32) -> String) -> Found<'_> {
    ids.into_iter()
        .map(|id| {
            let key = key(id);
            let found = items.get(&key).and_then(stored_item);
            (id, key, found)
        })
        .collect()
}

/// Where each credential the head lists is kept, found.
fn find_credentials<'a>(items: &'a Value, head: &Value) -> Found<'a> {
    find_keyed(items, listed_ids(head, "credentialIds"), credential_key)
}

/// The rules of the group stored under `key`, read.
fn group_rules<'a>(items: &'a Value, key: &str) -> Vec<Cow<'a, Value>> {
    match items.get(key).and_then(stored_item) {
        Some(Cow::Borrowed(Value::Array(rules))) => rules.iter().map(Cow::Borrowed).collect(),
        Some(Cow::Owned(Value::Array(rules))) => rules.into_iter().map(Cow::Owned).collect(),
        _ => Vec::new(),
    }
}

/// Where each rule the head lists is kept, found: the key it was looked
/// for under (the group's, or schema 4's own key) and its stored form.
fn find_rules<'a>(items: &'a Value, head: &Value) -> Found<'a> {
    let listed = listed_ids(head, "ruleIds");
    if crate::migration::schema_of(head) < GROUPED_SINCE {
        return find_keyed(items, listed, schema_4_rule_key);
    }
    // Each group is read once, whatever number of its rules is listed.
    let mut by_id = std::collections::HashMap::new();
    let mut read = std::collections::HashSet::new();
    for &id in &listed {
        let key = rules_key(id);
        if read.insert(key.clone()) {
            for rule in group_rules(items, &key) {
                if let Some(id) = rule
                    .get("id")
                    .and_then(Value::as_u64)
                    .and_then(|id| u32::try_from(id).ok())
                {
                    by_id.entry(id).or_insert(rule);
                }
            }
        }
    }
    listed
        .into_iter()
        .map(|id| (id, rules_key(id), by_id.get(&id).cloned()))
        .collect()
}

/// Everything `storage.local` holds (`storage.local.get(null)`), as one
/// document in [`State::encode`]'s form: the head with its listed rules and
/// credentials put back in. `None` when no state is stored.
pub fn assemble(items: &Value) -> Option<Value> {
    let mut document = items.get(STATE_KEY)?.clone();
    if in_one_key_layout(items) {
        return Some(document);
    }
    let rules: Vec<Value> = find_rules(items, &document)
        .into_iter()
        .filter_map(|(_, _, rule)| rule.map(Cow::into_owned))
        .collect();
    let credentials: Vec<Value> = find_credentials(items, &document)
        .into_iter()
        .filter_map(|(_, _, credential)| credential.map(Cow::into_owned))
        .collect();
    if let Some(head) = document.as_object_mut() {
        head.remove("ruleIds");
        head.insert("rules".to_owned(), Value::Array(rules));
        head.remove("credentialIds");
        head.insert("credentials".to_owned(), Value::Array(credentials));
    }
    Some(document)
}

/// What start-up writes to bring stored state to this build's schema and
/// layout, if anything: an older schema migrated ([`crate::migration`]), an
/// older layout (one key, or a key per rule) written in groups, the keys an
/// interrupted tidy left unread removed, and a listed rule or credential
/// found missing recorded (kept aside as unreadable, so the options page
/// says so) rather than silently forgotten. Works on the stored JSON as it
/// is, sealed secrets and all, so it runs while the vault is locked. `None`
/// when the state is current and tidy, absent, or of a newer schema (left
/// untouched: reading it says why).
pub fn upgrade(items: &Value) -> Option<StoredWrite> {
    let head = items.get(STATE_KEY)?;
    let schema = crate::migration::schema_of(head);
    if schema > u64::from(SCHEMA_VERSION) {
        return None;
    }
    let one_key = in_one_key_layout(items);
    let (rules, credentials) = if one_key {
        (Vec::new(), Vec::new())
    } else {
        (find_rules(items, head), find_credentials(items, head))
    };
    let needed: std::collections::HashSet<&str> = rules
        .iter()
        .chain(&credentials)
        .map(|(_, key, _)| key.as_str())
        .collect();
    let orphans: Vec<String> = items
        .as_object()
        .into_iter()
        .flat_map(|o| o.keys())
        .filter(|k| is_item_key(k) && !needed.contains(k.as_str()))
        .cloned()
        .collect();
    let missing = |list: &Found<'_>| -> Vec<Value> {
        list.iter()
            .filter(|(_, _, found)| found.is_none())
            .map(|(id, key, _)| serde_json::json!({ "missingKey": key, "id": id }))
            .collect()
    };
    let (missing_rules, missing_credentials) = (missing(&rules), missing(&credentials));
    if schema == u64::from(SCHEMA_VERSION)
        && !one_key
        && orphans.is_empty()
        && missing_rules.is_empty()
        && missing_credentials.is_empty()
    {
        return None;
    }
    let mut document = crate::migration::migrate(assemble(items)?).ok()?;
    // What a whole write could not key by id (no id, or one taken twice) is
    // kept aside rather than dropped; a rule or credential the head listed
    // and storage lost is recorded as missing.
    for (field, aside, lost) in [
        ("rules", "unreadable", missing_rules),
        ("credentials", "unreadableCredentials", missing_credentials),
    ] {
        let mut seen = Vec::new();
        let mut kept = Vec::new();
        let mut set_aside: Vec<Value> = Vec::new();
        for item in document
            .get_mut(field)
            .map(Value::take)
            .and_then(|v| match v {
                Value::Array(a) => Some(a),
                _ => None,
            })
            .unwrap_or_default()
        {
            match item.get("id").and_then(Value::as_u64) {
                Some(id) if !seen.contains(&id) && u32::try_from(id).is_ok() => {
                    seen.push(id);
                    kept.push(item);
                }
                _ => set_aside.push(item),
            }
        }
        set_aside.extend(lost);
        if let Some(object) = document.as_object_mut() {
            object.insert(field.to_owned(), Value::Array(kept));
            if !set_aside.is_empty() {
                let list = object
                    .entry(aside.to_owned())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Some(list) = list.as_array_mut() {
                    list.extend(set_aside);
                }
            }
        }
    }
    let mut write = StoredWrite::whole(document);
    write.remove = items
        .as_object()
        .into_iter()
        .flat_map(|o| o.keys())
        .filter(|k| is_item_key(k) && !write.set.contains_key(k.as_str()))
        .cloned()
        .collect();
    Some(write)
}

/// The head again, its index made anew, when the one stored is missing or
/// disagrees with `state` (read whole from `items`): a head an older build
/// wrote, or a group changed from outside. The edits' sized loads trust
/// the index for their duplicate and limit checks, so a whole read puts it
/// right (`service::reconcile`). Only the index changes, in the stored JSON
/// as it is: it runs while the vault is locked too. `None` when the index
/// is right, or the layout is older (its upgrade writes it whole).
pub fn reindex(items: &Value, state: &State) -> Option<StoredWrite> {
    if state.older_layout || !state.is_whole() {
        return None;
    }
    let head = items.get(STATE_KEY)?;
    let index = serde_json::to_value(state.index()).ok()?;
    if head.get("index") == Some(&index) {
        return None;
    }
    let mut head = head.clone();
    head.as_object_mut()?.insert("index".to_owned(), index);
    let mut set = serde_json::Map::new();
    set.insert(STATE_KEY.to_owned(), head);
    Some(StoredWrite {
        set,
        remove: Vec::new(),
    })
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("the saved settings come from a newer Tokenward (schema {0}); update the extension, nothing was changed")]
    NewerSchema(u32),
    #[error("the saved settings are not readable ({0}); nothing was changed")]
    Unreadable(String),
}

impl Localize for StoreError {
    fn text(&self) -> Text {
        match self {
            StoreError::NewerSchema(schema) => text!("error_store_newer_schema", *schema),
            StoreError::Unreadable(reason) => text!("error_store_unreadable", reason),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredState {
    schema: u32,
    next_id: SiteRuleId,
    rules: Vec<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    unreadable: Vec<Value>,
    #[serde(default = "first_id")]
    next_credential_id: CredentialId,
    #[serde(default)]
    credentials: Vec<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    unreadable_credentials: Vec<Value>,
    /// How the secrets above are kept; absent in states written before the
    /// vault, which read as [`Protection::Unset`].
    #[serde(default)]
    vault: Protection,
    #[serde(default, skip_serializing_if = "Reminded::is_empty")]
    reminded: Reminded,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    reminders_off: bool,
    /// Every rule's [`IndexEntry`]; absent in heads written before it.
    /// Written only: a whole load derives it from the rules, and an edit's
    /// sized load reads it from the head itself ([`ReadPlan::of`]).
    #[serde(skip_deserializing)]
    index: BookIndex,
}

fn first_id() -> CredentialId {
    1
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredRule {
    id: SiteRuleId,
    #[serde(default)]
    label: String,
    pattern: String,
    #[serde(default)]
    allow_http: bool,
    enabled: bool,
    headers: Vec<HeaderAction>,
    /// Absent in schema 2 and earlier: such rules read as same-site.
    #[serde(default)]
    initiators: Initiators,
}

/// The stored state, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    pub book: RuleBook,
    /// Stored rules that did not validate, kept verbatim.
    pub unreadable: Vec<Value>,
    pub credentials: Credentials,
    /// Stored credentials that did not validate, kept verbatim.
    pub unreadable_credentials: Vec<Value>,
    pub protection: Protection,
    /// The expiry reminders already shown, by credential.
    pub reminded: Reminded,
    /// The user turned expiry reminders off.
    pub reminders_off: bool,
    /// Not stored: the state was read while the vault was locked, so its
    /// secrets are [`crate::protection::LOCKED_SECRET`] placeholders. Such
    /// a state is shown, never saved, and installs no header value.
    pub locked: bool,
    /// Not stored: what the administrator set through browser policy
    /// (`storage.managed`), read with the state.
    pub policy: crate::policy::Policy,
    /// Not stored: the state was read from an older layout (one key, schema
    /// 3 and older or a state written whole by hand or a test; or a key per
    /// rule, schema 4), so its next save must write all of it and remove
    /// the old keys. Set by the loader, which sees the layout.
    pub older_layout: bool,
    /// Not stored: the rules stored but not loaded, as the head's index
    /// lists them. Empty in a whole state; an edit loads only the group it
    /// changes ([`crate::service`]'s sized load), and its checks and its
    /// head count these too.
    pub unloaded: BookIndex,
    /// Not stored: the credentials stored but not loaded, by id (as
    /// `unloaded`, for an edit's sized load).
    pub unloaded_credentials: Vec<CredentialId>,
}

impl State {
    /// Decodes what `storage.local.get(STATE_KEY)` returned; `None` is a
    /// fresh install.
    pub fn decode(stored: Option<Value>) -> Result<State, StoreError> {
        let Some(value) = stored else {
            return Ok(State::default());
        };
        // Older schemas first become the current one, a pure step each
        // (`migration`); a newer one is refused untouched.
        let value = crate::migration::migrate(value).map_err(|refusal| match refusal {
            crate::migration::Refusal::Newer(schema) => StoreError::NewerSchema(schema),
            crate::migration::Refusal::NotAState => {
                StoreError::Unreadable("not a stored state".to_owned())
            }
        })?;
        // The rules and credentials move out as they are: read through
        // the derive, each `Value` in them would be built anew.
        let mut value = value;
        let mut take = |field: &str| match value.get_mut(field) {
            Some(Value::Array(list)) => std::mem::take(list),
            _ => Vec::new(),
        };
        let (rules, credentials) = (take("rules"), take("credentials"));
        let mut stored: StoredState =
            crate::json::read(&value).map_err(|e| StoreError::Unreadable(e.to_string()))?;
        stored.rules = rules;
        stored.credentials = credentials;
        let mut state = State {
            book: RuleBook {
                next_id: stored.next_id.max(1),
                rules: Vec::with_capacity(stored.rules.len()),
            },
            unreadable: stored.unreadable,
            credentials: Credentials {
                next_id: stored.next_credential_id.max(1),
                items: Vec::with_capacity(stored.credentials.len()),
            },
            unreadable_credentials: stored.unreadable_credentials,
            protection: stored.vault,
            reminded: stored.reminded,
            reminders_off: stored.reminders_off,
            locked: false,
            older_layout: false,
            policy: crate::policy::Policy::default(),
            unloaded: BookIndex::default(),
            unloaded_credentials: Vec::new(),
        };
        for raw in stored.credentials {
            match crate::json::read::<Credential>(&raw) {
                Ok(c) if state.credentials.get(c.info.id).is_none() => {
                    let next = &mut state.credentials.next_id;
                    *next = (*next).max(c.info.id.saturating_add(1));
                    state.credentials.items.push(c);
                }
                _ => state.unreadable_credentials.push(raw),
            }
        }
        for raw in stored.rules {
            match decode_rule(&raw) {
                Some(rule) if state.book.get(rule.id).is_none() => {
                    state.book.next_id = state.book.next_id.max(rule.id.saturating_add(1));
                    state.book.rules.push(rule);
                }
                _ => state.unreadable.push(raw),
            }
        }
        Ok(state)
    }

    /// The head alone, as [`StoredWrite::whole`] would write it: the ids of
    /// the rules and credentials instead of the things themselves.
    pub fn encode_head(&self) -> Value {
        let mut head = self.encode_with(Vec::new(), Vec::new());
        let rules = self.index().ids().collect();
        list_ids(&mut head, "rules", "ruleIds", rules);
        let mut credentials: Vec<CredentialId> =
            self.credentials.all().iter().map(|c| c.info.id).collect();
        if !self.unloaded_credentials.is_empty() {
            credentials.extend(&self.unloaded_credentials);
            credentials.sort_unstable();
        }
        list_ids(&mut head, "credentials", "credentialIds", credentials);
        head
    }

    /// Every stored rule's [`IndexEntry`]: those loaded, and those not.
    pub fn index(&self) -> BookIndex {
        let loaded = BookIndex::of(self.book.rules());
        if self.unloaded.is_empty() {
            loaded
        } else {
            self.unloaded.merged(loaded)
        }
    }

    /// Whether every stored rule and credential is loaded: only such a
    /// state may be shown, applied whole or written whole.
    pub fn is_whole(&self) -> bool {
        self.unloaded.is_empty() && self.unloaded_credentials.is_empty()
    }

    /// Whether this state says of the pages at `urls` what the whole state
    /// says: it is whole, or it holds every rule whose pattern contains one
    /// of them, with the credentials those rules take headers from. A
    /// rule's edit, sized to its group, usually does for the page the rule
    /// is for; its badges then need no read.
    pub fn tells_pages(&self, urls: &[String]) -> bool {
        if self.is_whole() {
            return true;
        }
        let specs = page_specs(urls);
        if !self.unloaded.covering_specs(&specs).is_empty() {
            return false;
        }
        self.book
            .rules()
            .iter()
            .filter(|rule| specs.iter().any(|spec| rule.pattern.matches_spec(spec)))
            .flat_map(|rule| &rule.headers)
            .all(|header| match header {
                HeaderAction::Set {
                    credential: Some(id),
                    ..
                } => !self.unloaded_credentials.contains(id),
                _ => true,
            })
    }

    /// What every enabled rule stored needs of the browser, loaded or not.
    pub fn usage(&self) -> crate::compile::Usage {
        crate::compile::usage(&self.book).plus(self.unloaded.usage())
    }

    /// [`RuleBook::save`], also refusing a pattern a rule not loaded uses.
    pub fn save_rule(&mut self, draft: &RuleDraft) -> Result<SiteRuleId, RuleError> {
        let mut book = self.book.clone();
        let saved = book.save(draft)?;
        let pattern = saved.pattern.to_string();
        if self.unloaded.on_pattern(&pattern).is_some() {
            return Err(RuleError::Duplicate(pattern));
        }
        let id = saved.id;
        self.book = book;
        Ok(id)
    }

    pub fn encode(&self) -> Value {
        let rules = self.book.rules().iter().map(encode_rule).collect();
        let credentials = self
            .credentials
            .all()
            .iter()
            .map(encode_credential)
            .collect();
        self.encode_with(rules, credentials)
    }

    /// The state with these rules and credentials, already encoded.
    fn encode_with(&self, rules: Vec<Value>, credentials: Vec<Value>) -> Value {
        let stored = StoredState {
            schema: SCHEMA_VERSION,
            next_id: self.book.next_id,
            rules,
            unreadable: self.unreadable.clone(),
            next_credential_id: self.credentials.next_id,
            credentials,
            unreadable_credentials: self.unreadable_credentials.clone(),
            vault: self.protection.clone(),
            reminded: self.reminded.clone(),
            reminders_off: self.reminders_off,
            index: self.index(),
        };
        serde_json::to_value(stored).unwrap_or(Value::Null)
    }
}

impl State {
    /// The rules as the browser should apply them at `now`: without the
    /// headers of expired or deleted credentials.
    pub fn rules_in_force(&self, now: Timestamp) -> RuleBook {
        let mut rules: Vec<SiteRule> = self
            .book
            .rules()
            .iter()
            .filter_map(|r| self.in_force(r, now))
            .collect();
        // The administrator's rules, each header from the user's own login;
        // none while locked (the logins' secrets are sealed then), and none
        // while a required passphrase is not set.
        if !self.locked && !self.protection_missing() {
            rules.extend(self.policy.rules_in_force(&self.credentials, now));
        }
        RuleBook {
            next_id: self.book.next_id,
            rules,
        }
    }

    /// The user's rules and the administrator's, as the views show them.
    pub fn book_with_managed(&self, now: Timestamp) -> RuleBook {
        let mut book = self.book.clone();
        if !self.locked {
            book.rules
                .extend(self.policy.rules_in_force(&self.credentials, now));
        }
        book
    }

    /// How long the vault may stay unlocked while the user is away: the
    /// user's choice, at most the administrator's `maxIdleMinutes`, which
    /// also applies when the user set none. `None` when not protected.
    pub fn idle_minutes(&self) -> Option<u32> {
        if !self.protection.is_protected() {
            return None;
        }
        match (self.protection.idle_minutes(), self.policy.max_idle_minutes) {
            (Some(own), Some(max)) => Some(own.min(max)),
            (own, max) => own.or(max),
        }
    }

    /// The administrator requires a passphrase and the tokens have none.
    pub fn protection_missing(&self) -> bool {
        self.policy.require_protection && !self.protection.is_protected()
    }

    /// Rule `id` as the browser should apply it now: one rule of
    /// [`State::rules_in_force`], computed alone.
    pub fn rule_in_force(&self, id: SiteRuleId, now: Timestamp) -> Option<SiteRule> {
        self.in_force(self.book.get(id)?, now)
    }

    fn in_force(&self, rule: &SiteRule, now: Timestamp) -> Option<SiteRule> {
        let rule = rule.in_force(|c| self.credentials.usable(c, now))?;
        if self.held_back_by_policy(&rule) {
            return None;
        }
        // Locked, every value is a placeholder: only the rules that set
        // nothing (removals) apply.
        (!(self.locked && sets_a_value(&rule))).then_some(rule)
    }

    /// Whether the administrator's policy keeps `rule` from the browser: a
    /// user's rule it does not allow (kept, not applied), or any rule that
    /// sends a token while the passphrase it requires is missing. The
    /// browser's rules, the options page and the popup all ask here.
    pub fn held_back_by_policy(&self, rule: &SiteRule) -> bool {
        let refused =
            !crate::policy::Policy::is_managed(rule.id) && self.policy.check_rule(rule).is_err();
        refused || (self.protection_missing() && sets_a_value(rule))
    }

    /// Rules that send a secret and wait for an unlock: enabled, with a
    /// header value, while the vault is locked.
    pub fn waiting_for_unlock(&self, now: Timestamp) -> Vec<&SiteRule> {
        if !self.locked {
            return Vec::new();
        }
        // A rule waits if an unlock would make it send something: it is on
        // and sets a header whose token is still good (an expired, refused
        // or deleted token stays unsent after an unlock too).
        self.book
            .rules()
            .iter()
            .filter(|r| {
                r.enabled
                    && r.headers.iter().any(|h| match h {
                        HeaderAction::Set {
                            credential: Some(id),
                            ..
                        } => self.credentials.usable(*id, now),
                        HeaderAction::Set {
                            credential: None, ..
                        } => true,
                        HeaderAction::Remove { .. } => false,
                    })
            })
            .collect()
    }
}

/// The rules for one tab only ("Use in this tab only"), kept in
/// `storage.session` under [`TAB_RULES_KEY`]: in memory, gone when the
/// browser closes, as their session rules are. Each rule has the same stored
/// form as the book's, plus its tab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TabRules {
    next_id: SiteRuleId,
    pub rules: Vec<TabRule>,
}

/// The `storage.session` key of [`TabRules`].
pub const TAB_RULES_KEY: &str = "tabRules";

impl Default for TabRules {
    fn default() -> Self {
        TabRules {
            next_id: TAB_RULE_BASE,
            rules: Vec::new(),
        }
    }
}

impl TabRules {
    /// Reads what `storage.session` holds; anything unreadable reads as no
    /// tab rule, which only ever stops a header.
    pub fn decode(stored: Option<&Value>) -> TabRules {
        let Some(value) = stored else {
            return TabRules::default();
        };
        let mut out = TabRules {
            next_id: value
                .get("nextId")
                .and_then(Value::as_u64)
                .and_then(|n| SiteRuleId::try_from(n).ok())
                .unwrap_or(TAB_RULE_BASE)
                .max(TAB_RULE_BASE),
            rules: Vec::new(),
        };
        for raw in value
            .get("rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let tab = raw
                .get("tab")
                .and_then(Value::as_i64)
                .and_then(|t| i32::try_from(t).ok());
            let rule = raw.get("rule").and_then(decode_rule);
            if let (Some(tab), Some(rule)) = (tab, rule) {
                if rule.id >= TAB_RULE_BASE && !out.rules.iter().any(|t| t.rule.id == rule.id) {
                    out.next_id = out.next_id.max(rule.id.saturating_add(1));
                    out.rules.push(TabRule { tab, rule });
                }
            }
        }
        out
    }

    pub fn encode(&self) -> Value {
        serde_json::json!({
            "nextId": self.next_id,
            "rules": self.rules.iter().map(|t| serde_json::json!({
                "tab": t.tab,
                "rule": encode_rule(&t.rule),
            })).collect::<Vec<_>>(),
        })
    }

    /// Adds a rule for `tab` from a draft, validated as the book validates
    /// its rules; two rules for one tab may not share a pattern. Returns the
    /// new rule's id.
    pub fn add(&mut self, tab: i32, draft: &RuleDraft) -> Result<SiteRuleId, RuleError> {
        // A tab rule is added or removed, never edited.
        if let Some(id) = draft.id {
            return Err(RuleError::NotFound(id));
        }
        let mut book = RuleBook {
            next_id: self.next_id,
            rules: self.of_tab(tab).cloned().collect(),
        };
        let rule = book.save(draft)?.clone();
        if rule.id > MAX_SITE_RULE_ID {
            return Err(RuleError::IdsExhausted);
        }
        self.next_id = book.next_id;
        let id = rule.id;
        self.rules.push(TabRule { tab, rule });
        Ok(id)
    }

    /// Removes one rule; `false` when it was not there.
    pub fn remove(&mut self, id: SiteRuleId) -> bool {
        let before = self.rules.len();
        self.rules.retain(|t| t.rule.id != id);
        self.rules.len() != before
    }

    /// Removes every rule of a closed tab; `false` when it had none.
    pub fn close_tab(&mut self, tab: i32) -> bool {
        let before = self.rules.len();
        self.rules.retain(|t| t.tab != tab);
        self.rules.len() != before
    }

    pub fn of_tab(&self, tab: i32) -> impl Iterator<Item = &SiteRule> {
        self.rules
            .iter()
            .filter(move |t| t.tab == tab)
            .map(|t| &t.rule)
    }
}

fn decode_rule(raw: &Value) -> Option<SiteRule> {
    let stored: StoredRule = crate::json::read(raw).ok()?;
    let pattern = SitePattern::parse(
        &stored.pattern,
        ParseOptions {
            allow_http: stored.allow_http,
        },
    )
    .ok()?;
    crate::rules::check_actions(&stored.headers).ok()?;
    Some(SiteRule {
        id: stored.id,
        label: stored.label,
        pattern,
        allow_http: stored.allow_http,
        enabled: stored.enabled,
        headers: stored.headers,
        initiators: stored.initiators,
    })
}

/// Whether `rule` sets a header value (rather than only removing headers).
fn sets_a_value(rule: &SiteRule) -> bool {
    rule.headers
        .iter()
        .any(|h| matches!(h, HeaderAction::Set { .. }))
}

/// A credential in its stored form, its secrets in the clear.
pub fn encode_credential(credential: &Credential) -> Value {
    serde_json::to_value(credential).unwrap_or(Value::Null)
}

/// A rule in its stored form, its secrets in the clear.
pub fn encode_rule(rule: &SiteRule) -> Value {
    let stored = StoredRule {
        id: rule.id,
        label: rule.label.clone(),
        pattern: rule.pattern.to_string(),
        allow_http: rule.allow_http,
        enabled: rule.enabled,
        headers: rule.headers.clone(),
        initiators: rule.initiators.clone(),
    };
    serde_json::to_value(stored).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::tests::draft;
    use serde_json::json;

    #[test]
    fn only_rules_an_unlock_would_send_wait_for_it() {
        use crate::credential::{Credential, CredentialKind, Endpoint};
        use crate::header::Secret;
        use crate::provider::Provider;
        let now = Timestamp(1_766_000_000);
        let mut state = State {
            locked: true,
            ..State::default()
        };
        let mut login = |expires: i64| {
            let mut c = Credential::new(
                0,
                Provider::HuggingFace,
                Endpoint::default_for(Provider::HuggingFace).expect("an endpoint"),
                CredentialKind::PersonalAccessToken,
                Secret::from_input("hf_token_1234").expect("a secret"),
            );
            c.info.expires = Some(Timestamp(now.0 + expires));
            state.credentials.add(c).expect("room for a credential")
        };
        let (good, old) = (login(86_400), login(-86_400));
        for (site, credential) in [
            ("https://good.example", Some(good)),
            ("https://old.example", Some(old)),
            ("https://pasted.example", None),
        ] {
            let mut d = draft(site, "tok");
            d.headers[0].credential = credential;
            assert!(state.book.save(&d).is_ok());
        }
        let mut off = draft("https://off.example", "tok");
        off.enabled = false;
        assert!(state.book.save(&off).is_ok());
        let waiting: Vec<String> = state
            .waiting_for_unlock(now)
            .iter()
            .map(|r| r.pattern.to_string())
            .collect();
        assert_eq!(
            waiting,
            ["https://good.example/", "https://pasted.example/"]
        );
        state.locked = false;
        assert!(state.waiting_for_unlock(now).is_empty());
    }

    /// A whole load reads the texts once ([`read_texts`]); what it reads
    /// must be what reading each text where it is used read, for the
    /// texts a build writes and for those nothing should: text that does
    /// not parse, text of a string, a listed group lost, an unlisted key.
    #[test]
    fn texts_read_once_read_as_before() {
        let mut state = State::default();
        for p in ["https://a.example", "https://b.example/v1"] {
            assert!(state.book.save(&draft(p, "tok")).is_ok());
        }
        let mut items = serde_json::Map::from_iter(StoredWrite::whole(state.encode()).set);
        let head = items.get_mut(STATE_KEY).expect("a head");
        head["ruleIds"] = json!([1, 2, 65, 130]);
        head["credentialIds"] = json!([1, 2, 3]);
        items.insert(rules_key(65), json!("[{\"id\": 65, \"pattern\""));
        items.insert(rules_key(130), json!("\"[]\""));
        items.insert(credential_key(1), json!("{not json"));
        items.insert(credential_key(2), json!("\"a string\""));
        items.insert(credential_key(3), json!({"id": 3, "already": "json"}));
        items.insert("rules:9999".to_owned(), json!("[]"));
        items.insert("other".to_owned(), json!("[1]"));
        let as_stored = Value::Object(items);
        let mut read = as_stored.clone();
        read_texts(&mut read);
        assert_ne!(read, as_stored, "the groups were read");
        assert_eq!(read["other"], json!("[1]"), "only our keys are read");
        assert_eq!(read[credential_key(1)], as_stored[credential_key(1)]);
        assert_eq!(read[credential_key(2)], as_stored[credential_key(2)]);
        assert_eq!(assemble(&read), assemble(&as_stored));
        assert!(assemble(&read).is_some());
        let (upgraded, before) = (upgrade(&read), upgrade(&as_stored));
        assert!(before.is_some(), "the lost and the stray are tidied");
        assert_eq!(
            upgraded.map(|w| (w.set, w.remove)),
            before.map(|w| (w.set, w.remove))
        );
        let decoded = |items: &Value| State::decode(assemble(items));
        assert_eq!(decoded(&read), decoded(&as_stored));
    }

    #[test]
    fn round_trips() {
        let mut state = State::default();
        for p in ["https://a.example", "http://localhost:3000/v1"] {
            assert!(state.book.save(&draft(p, "tok")).is_ok());
        }
        let encoded = state.encode();
        assert_eq!(State::decode(Some(encoded.clone())), Ok(state));
        assert_eq!(encoded["schema"], json!(SCHEMA_VERSION));
        assert_eq!(
            encoded["rules"][1],
            json!({
                "id": 2, "label": "", "pattern": "http://localhost:3000/v1/", "allowHttp": false, "enabled": true,
                "headers": [{"op": "set", "name": "Authorization", "value": {"scheme": "bearer", "secret": "tok"}}],
                "initiators": {"policy": "sameSite"}
            })
        );
    }

    #[test]
    fn schema_2_rules_migrate_to_same_site() {
        let stored = json!({"schema": 2, "nextId": 2, "rules": [
            {"id": 1, "pattern": "https://a.example/", "enabled": true,
             "headers": [{"op": "set", "name": "Authorization", "value": {"scheme": "bearer", "secret": "t"}}]}
        ]});
        let state = State::decode(Some(stored)).unwrap_or_default();
        assert_eq!(
            state
                .book
                .rules()
                .iter()
                .map(|r| r.initiators.clone())
                .collect::<Vec<_>>(),
            [Initiators::default()]
        );
        assert_eq!(Initiators::default(), Initiators::SameSite { also: vec![] });
        let again = state.encode();
        assert_eq!(again["schema"], json!(SCHEMA_VERSION));
        assert_eq!(
            State::decode(Some(again)).map(|s| s.book),
            Ok(state.book),
            "the migration is idempotent"
        );
    }

    #[test]
    fn a_rule_whose_policy_would_widen_is_kept_aside() {
        let hostile = json!({"id": 1, "pattern": "https://a.example/", "enabled": true,
            "headers": [{"op": "remove", "name": "X-A"}],
            "initiators": {"policy": "sameSite", "also": ["com"]}});
        let state = State::decode(Some(
            json!({"schema": 3, "nextId": 2, "rules": [hostile.clone()]}),
        ))
        .unwrap_or_default();
        assert!(state.book.rules().is_empty());
        assert_eq!(state.unreadable, [hostile]);
    }

    #[test]
    fn tab_rules_round_trip_and_stay_apart_from_the_book() {
        let mut tabs = TabRules::default();
        let first = tabs.add(7, &draft("https://a.example", "t"));
        assert_eq!(first, Ok(TAB_RULE_BASE));
        assert!(matches!(
            tabs.add(7, &draft("https://a.example", "t")),
            Err(RuleError::Duplicate(_))
        ));
        assert_eq!(
            tabs.add(8, &draft("https://a.example", "t")),
            Ok(TAB_RULE_BASE + 1)
        );
        assert!(tabs.add(8, &draft("*", "t")).is_err());
        let again = TabRules::decode(Some(&tabs.encode()));
        assert_eq!(again, tabs);
        assert!(tabs.close_tab(7) && !tabs.close_tab(7));
        assert_eq!(tabs.rules.len(), 1);
        assert!(tabs.remove(TAB_RULE_BASE + 1) && tabs.rules.is_empty());
        // A rule id outside the tab range, or garbage, is dropped.
        let hostile = json!({"nextId": 3, "rules": [
            {"tab": 1, "rule": {"id": 3, "pattern": "https://a.example/", "enabled": true,
              "headers": [{"op": "remove", "name": "X"}]}},
            {"tab": "x"}, 5
        ]});
        assert_eq!(TabRules::decode(Some(&hostile)), TabRules::default());
        assert_eq!(
            TabRules::decode(Some(&json!("garbage"))),
            TabRules::default()
        );
    }

    #[test]
    fn a_fresh_install_is_empty() {
        assert_eq!(State::decode(None), Ok(State::default()));
    }

    #[test]
    fn invalid_rules_are_kept_aside_not_lost() {
        // Of the current schema's form: a migration adds its fields to a
        // rule before it is read, and the rule is kept aside as migrated.
        let bad = json!({"id": 2, "pattern": "*", "enabled": true, "headers": [],
                         "initiators": {"policy": "sameSite"}});
        let stored = json!({
            "schema": 3, "nextId": 3,
            "rules": [
                {"id": 1, "pattern": "https://a.example/", "enabled": true,
                 "headers": [{"op": "remove", "name": "X-A"}]},
                bad
            ]
        });
        let state = State::decode(Some(stored)).unwrap_or_default();
        assert_eq!(state.book.rules().len(), 1);
        assert_eq!(state.unreadable, std::slice::from_ref(&bad));
        assert_eq!(
            state.encode()["unreadable"],
            json!([bad]),
            "written back verbatim"
        );
    }

    #[test]
    fn newer_or_garbage_state_is_refused() {
        assert_eq!(
            State::decode(Some(json!({"schema": 9, "nextId": 1, "rules": []}))),
            Err(StoreError::NewerSchema(9))
        );
        assert!(matches!(
            State::decode(Some(json!("garbage"))),
            Err(StoreError::Unreadable(_))
        ));
    }

    #[test]
    fn next_id_never_falls_behind_stored_ids() {
        let stored = json!({"schema": 1, "nextId": 1, "rules": [
            {"id": 5, "pattern": "https://a.example/", "enabled": true, "headers": [{"op": "remove", "name": "X-A"}]}
        ]});
        let mut state = State::decode(Some(stored)).unwrap_or_default();
        assert_eq!(
            state
                .book
                .save(&draft("https://b.example", "t"))
                .map(|r| r.id),
            Ok(6)
        );
    }
}
