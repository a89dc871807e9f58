//! Schema migrations: each a pure function from one schema's stored
//! document (the form `store::assemble` gives, the state as one JSON
//! object) to the next one's, idempotent, run in order at start-up.
//!
//! What each schema added, and why its migration never widens a rule:
//!
//! | schema | added | migration |
//! |---|---|---|
//! | 1 | rules | — |
//! | 2 | credentials | none kept yet: an empty list, ids from 1 |
//! | 3 | each rule's `initiators` | same-site, the narrower policy |
//! | 4 | one storage key per rule and credential | the document is the same; the layout is written by the save |
//! | 5 | rules grouped, 64 to a storage key | the document is the same; the layout is written by the save |
//! | 6 | each group and credential kept as its JSON text, and an index of the rules in the head | the document is the same; the layout is written by the save, the index by the next whole read |
//!
//! A document without `schema` is read as schema 1, the first written. A
//! newer schema is left untouched and refused with a clear message: a
//! newer Tokenward wrote it, and an older one must not rewrite what it
//! does not understand. Sealed secrets stay sealed and in place: the
//! migrations add fields beside them and move nothing, so they run on a
//! locked state too.

use serde_json::{json, Value};

/// The schema this build writes.
pub const CURRENT: u32 = 6;

/// Why a document cannot be migrated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Written by a newer Tokenward.
    Newer(u32),
    /// Not a stored state (not an object).
    NotAState,
}

/// The schema a document says it is (1 when it says none).
pub fn schema_of(document: &Value) -> u64 {
    document.get("schema").and_then(Value::as_u64).unwrap_or(1)
}

/// Brings `document` to [`CURRENT`], one step at a time; a document at
/// [`CURRENT`] comes back as it was.
pub fn migrate(mut document: Value) -> Result<Value, Refusal> {
    if !document.is_object() {
        return Err(Refusal::NotAState);
    }
    let mut schema = schema_of(&document);
    if schema > u64::from(CURRENT) {
        return Err(Refusal::Newer(u32::try_from(schema).unwrap_or(u32::MAX)));
    }
    while schema < u64::from(CURRENT) {
        document = match schema {
            0 | 1 => to_2(document),
            2 => to_3(document),
            3 => to_4(document),
            4 => to_5(document),
            _ => to_6(document),
        };
        schema = schema_of(&document);
    }
    Ok(document)
}

fn set(document: &mut Value, key: &str, value: Value) {
    if let Some(object) = document.as_object_mut() {
        object.insert(key.to_owned(), value);
    }
}

/// Schema 2 added credentials: a schema 1 state has none.
pub fn to_2(mut document: Value) -> Value {
    if document.get("credentials").is_none_or(Value::is_null) {
        set(&mut document, "credentials", json!([]));
    }
    if document.get("nextCredentialId").is_none() {
        set(&mut document, "nextCredentialId", json!(1));
    }
    set(&mut document, "schema", json!(2));
    document
}

/// Schema 3 added who may make the browser send a rule's headers: a rule
/// from before reads as same-site, which only narrows.
pub fn to_3(mut document: Value) -> Value {
    if let Some(rules) = document.get_mut("rules").and_then(Value::as_array_mut) {
        for rule in rules.iter_mut().filter_map(Value::as_object_mut) {
            rule.entry("initiators")
                .or_insert_with(|| json!({"policy": "sameSite"}));
        }
    }
    set(&mut document, "schema", json!(3));
    document
}

/// Schema 4 keeps each rule and credential under a key of its own; the
/// document does not change, the next whole write lays it out.
pub fn to_4(mut document: Value) -> Value {
    set(&mut document, "schema", json!(4));
    document
}

/// Schema 5 keeps the rules in groups of 64 by id
/// ([`crate::store::RULES_PER_KEY`]); the document does not change, the
/// next whole write lays it out. An older Tokenward refuses it rather than
/// read a state whose rules it cannot find.
pub fn to_5(mut document: Value) -> Value {
    set(&mut document, "schema", json!(5));
    document
}

/// Schema 6 keeps each group of rules and each credential as its JSON text
/// (`store`'s module documentation says why), and the head indexes the
/// rules; the document does not change, the next whole write lays it out.
/// An older Tokenward refuses it rather than read text where it looks for
/// rules, and take them for lost.
pub fn to_6(mut document: Value) -> Value {
    set(&mut document, "schema", json!(6));
    document
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One document of each schema ever written, as that version wrote it,
    /// and what it must become.
    fn fixtures() -> Vec<(&'static str, Value)> {
        let rule = json!({"id": 1, "label": "", "pattern": "https://a.example/", "allowHttp": false,
            "enabled": true, "headers": [{"op": "set", "name": "Authorization",
            "value": {"scheme": "bearer", "secret": "tok"}}]});
        let mut with_policy = rule.clone();
        with_policy["initiators"] = json!({"policy": "anySite"});
        vec![
            (
                "schema 1",
                json!({"schema": 1, "nextId": 2, "rules": [rule.clone()]}),
            ),
            ("no schema", json!({"nextId": 2, "rules": [rule.clone()]})),
            (
                "schema 2",
                json!({"schema": 2, "nextId": 2, "rules": [rule.clone()],
                "nextCredentialId": 4, "credentials": [{"id": 3, "provider": "jina",
                "endpoint": "https://api.jina.ai", "kind": {"type": "personalAccessToken"}, "secret": "jina_x"}]}),
            ),
            (
                "schema 3",
                json!({"schema": 3, "nextId": 2, "rules": [with_policy.clone()],
                "nextCredentialId": 1, "credentials": []}),
            ),
            (
                "schema 4",
                json!({"schema": 4, "nextId": 2, "rules": [with_policy.clone()],
                "nextCredentialId": 1, "credentials": [], "vault": {"mode": "convenience"}}),
            ),
            (
                "schema 5",
                json!({"schema": 5, "nextId": 2, "rules": [with_policy.clone()],
                "nextCredentialId": 1, "credentials": [], "vault": {"mode": "convenience"}}),
            ),
            (
                "schema 6",
                json!({"schema": 6, "nextId": 2, "rules": [with_policy],
                "nextCredentialId": 1, "credentials": [], "vault": {"mode": "convenience"}}),
            ),
        ]
    }

    #[test]
    fn every_schema_migrates_to_the_current_one_and_reads() {
        for (name, document) in fixtures() {
            let migrated = migrate(document.clone()).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(schema_of(&migrated), u64::from(CURRENT), "{name}");
            for rule in migrated["rules"].as_array().into_iter().flatten() {
                assert!(rule.get("initiators").is_some(), "{name}: {rule}");
            }
            assert!(migrated["credentials"].is_array(), "{name}");
            // The store reads the migrated document as it reads the old one.
            let old = crate::store::State::decode(Some(document)).expect("the old reads");
            let new = crate::store::State::decode(Some(migrated)).expect("the new reads");
            assert_eq!(old, new, "{name}");
        }
    }

    #[test]
    fn migrations_are_idempotent_and_keep_what_they_do_not_know() {
        for (name, document) in fixtures() {
            let once = migrate(document.clone()).expect("migrates");
            assert_eq!(migrate(once.clone()), Ok(once.clone()), "{name}: twice");
            // Each step on its own output changes nothing but the number.
            for step in [to_2, to_3, to_4, to_5, to_6] {
                let again = step(once.clone());
                let mut without = again.clone();
                without["schema"] = once["schema"].clone();
                assert_eq!(without, once, "{name}");
            }
        }
        let mut kept = json!({"schema": 1, "nextId": 1, "rules": [], "futureField": [1, 2]});
        kept = migrate(kept).expect("migrates");
        assert_eq!(kept["futureField"], json!([1, 2]));
    }

    #[test]
    fn a_policy_is_never_widened_and_a_newer_schema_is_left_alone() {
        let old = json!({"schema": 2, "nextId": 2, "rules": [{"id": 1, "pattern": "https://a.example/"}]});
        assert_eq!(
            migrate(old).expect("migrates")["rules"][0]["initiators"],
            json!({"policy": "sameSite"})
        );
        let newer = json!({"schema": 99, "rules": "whatever"});
        assert_eq!(migrate(newer), Err(Refusal::Newer(99)));
        assert_eq!(migrate(json!([1])), Err(Refusal::NotAState));
    }

    /// Sealed secrets are strings the migrations never touch: a locked
    /// state migrates.
    #[test]
    fn sealed_secrets_stay_in_place() {
        let sealed = json!({"v": 1, "cipher": "xchacha20poly1305", "nonce": "n", "ct": "c"});
        let document = json!({"schema": 2, "nextId": 2, "rules": [{"id": 1, "pattern": "https://a.example/",
            "enabled": true, "headers": [{"op": "set", "name": "Authorization",
            "value": {"scheme": "bearer", "secret": sealed.clone()}}]}]});
        let migrated = migrate(document).expect("migrates");
        assert_eq!(
            migrated["rules"][0]["headers"][0]["value"]["secret"],
            sealed
        );
    }
}
