//! Reading JSON with as few of serde_json's readers as possible, for the
//! size of the wasm modules.
//!
//! Each way of reading is compiled again for every type read through it:
//! `serde_json::from_str::<T>` builds the text parser into `T`'s reader,
//! `from_slice` a second parser, and `from_value` (owned) and
//! `T::deserialize(&value)` (borrowed) two more readers per type. The
//! background read some types in three of these ways. Here there are two:
//! text is parsed into a [`Value`] by one parser, for every type
//! ([`parse`], [`parse_bytes`]), and a type is read from a borrowed
//! [`Value`] ([`read`]), which also spares the clone `from_value` needs
//! when the value is kept.
//!
//! Two readers stay streaming, for speed on the paths that carry thousands
//! of entries (about three times faster than through a [`Value`]): the
//! rules the browser holds, and a stored book's index. And the views the
//! pages read (`message::Response`) must stream: their tag comes first,
//! which a [`Value`]'s sorted map loses (`tagged`).

use serde::de::DeserializeOwned;
use serde_json::Value;

/// JSON text as a [`Value`].
pub fn parse(text: &str) -> Result<Value, serde_json::Error> {
    serde_json::from_str(text)
}

/// JSON bytes as a [`Value`], or `None` when they are not UTF-8 JSON.
pub fn parse_bytes(bytes: &[u8]) -> Option<Value> {
    parse(std::str::from_utf8(bytes).ok()?).ok()
}

/// A `T` from a [`Value`], which is left as it was.
pub fn read<T: DeserializeOwned>(value: &Value) -> Result<T, serde_json::Error> {
    T::deserialize(value)
}

/// A `T` from JSON text, through a [`Value`].
pub fn read_text<T: DeserializeOwned>(text: &str) -> Result<T, serde_json::Error> {
    read(&parse(text)?)
}

/// `Deserialize` for an internally tagged enum that storage keeps
/// (`#[serde(tag = "…")]` on its `Serialize`): the value is read into a
/// [`Value`], and `variant` gets the tag and the whole map, tag included,
/// which the variant's fields ignore. Any key order reads, as with the
/// derive. The derive buffers such a value into serde's private `Content`
/// tree instead and reads the variant again from there: a second reader of
/// every type nested in it, where the core reads stored state from a
/// [`Value`] already. The pages' views, written tag first, stream instead
/// (`tagged`).
pub(crate) fn read_tagged<'de, D, T>(
    d: D,
    tag: &'static str,
    variant: impl FnOnce(&str, &Value) -> Result<T, serde_json::Error>,
) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::{Deserialize, Error, Unexpected};
    let value = Value::deserialize(d)?;
    let name = match value.get(tag) {
        Some(Value::String(name)) => name,
        Some(_) => {
            return Err(D::Error::invalid_type(
                Unexpected::Other("a tag that is not a string"),
                &"a string",
            ))
        }
        None => return Err(D::Error::missing_field(tag)),
    };
    variant(name, &value).map_err(D::Error::custom)
}

/// For the tests of the types read with [`read_tagged`].
#[cfg(test)]
pub(crate) mod check {
    use super::*;
    use serde::Serialize;
    use std::fmt::Debug;

    /// JSON text of `value` with every map's keys in `Value`'s sorted
    /// order, or, with `reverse`, the other way round.
    fn text_in_order(value: &Value, reverse: bool) -> String {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                if reverse {
                    entries.reverse();
                }
                let fields: Vec<String> = entries
                    .into_iter()
                    .map(|(k, v)| {
                        format!("{}:{}", Value::String(k.clone()), text_in_order(v, reverse))
                    })
                    .collect();
                format!("{{{}}}", fields.join(","))
            }
            Value::Array(items) => {
                let items: Vec<String> = items.iter().map(|v| text_in_order(v, reverse)).collect();
                format!("[{}]", items.join(","))
            }
            other => other.to_string(),
        }
    }

    /// `value` reads back as itself, whatever the order of its keys,
    /// streaming from text (as the pages read views) and through a
    /// [`Value`] (as the background reads stored state), and with a key
    /// this version does not know.
    pub(crate) fn reads_back<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
        let written = serde_json::to_value(value).expect("serializes");
        for reverse in [false, true] {
            let text = text_in_order(&written, reverse);
            assert_eq!(
                &serde_json::from_str::<T>(&text).expect(&text),
                value,
                "{text}"
            );
            assert_eq!(&read_text::<T>(&text).expect(&text), value, "{text}");
        }
        if let Value::Object(mut map) = written {
            map.insert("fromALaterVersion".to_owned(), Value::Bool(true));
            assert_eq!(
                &read::<T>(&Value::Object(map)).expect("an extra key"),
                value
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_as_serde_json_does() {
        #[derive(Debug, PartialEq, serde::Deserialize)]
        struct Entry {
            name: String,
            #[serde(default)]
            count: u32,
        }
        let text = r#"[{"name":"a","count":2},{"name":"b"}]"#;
        let direct: Vec<Entry> = serde_json::from_str(text).expect("direct");
        assert_eq!(
            read_text::<Vec<Entry>>(text).expect("through a value"),
            direct
        );
        assert!(read_text::<Vec<Entry>>(r#"[{"count":2}]"#).is_err());
        assert!(read_text::<Vec<Entry>>("[").is_err());
        assert_eq!(
            parse_bytes(br#"{"a":1}"#),
            Some(serde_json::json!({"a": 1}))
        );
        assert_eq!(parse_bytes(b"\xff{}"), None);
        assert_eq!(parse_bytes(b"{"), None);
    }

    /// What `read_tagged` reads, and what it refuses, on a stand-in enum.
    #[derive(Debug, PartialEq, serde::Serialize)]
    #[serde(tag = "kind", rename_all = "camelCase")]
    enum Shape {
        Dot,
        Circle { radius: u32 },
    }

    impl<'de> serde::Deserialize<'de> for Shape {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            #[derive(serde::Deserialize)]
            struct Circle {
                radius: u32,
            }
            read_tagged(d, "kind", |tag, fields| match tag {
                "dot" => Ok(Shape::Dot),
                "circle" => Ok(Shape::Circle {
                    radius: read::<Circle>(fields)?.radius,
                }),
                _ => Err(serde::de::Error::unknown_variant(tag, &["dot", "circle"])),
            })
        }
    }

    #[test]
    fn a_tagged_value_reads_by_its_tag_wherever_it_stands() {
        check::reads_back(&Shape::Dot);
        check::reads_back(&Shape::Circle { radius: 3 });
        assert_eq!(
            read_text::<Shape>(r#"{"radius":3,"kind":"circle"}"#).ok(),
            Some(Shape::Circle { radius: 3 })
        );
        let refused = |text: &str| {
            let through_value = read_text::<Shape>(text).expect_err(text).to_string();
            let streaming = serde_json::from_str::<Shape>(text)
                .expect_err(text)
                .to_string();
            (through_value, streaming)
        };
        assert!(refused(r#"{"radius":3}"#)
            .0
            .contains("missing field `kind`"));
        assert!(refused(r#"{"kind":7}"#).0.contains("not a string"));
        assert!(refused(r#"{"kind":"square"}"#)
            .1
            .contains("unknown variant `square`"));
        assert!(refused(r#"{"kind":"circle"}"#)
            .0
            .contains("missing field `radius`"));
        assert!(refused(r#""dot""#).0.contains("missing field `kind`"));
    }
}
