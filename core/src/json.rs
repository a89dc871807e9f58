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
}
