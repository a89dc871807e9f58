//! Words the user reads, by name.
//!
//! The core decides *what* to tell the user and says it as a [`Text`]: the
//! name of a message in `extension/_locales/<language>/messages.json` and
//! what to put in its placeholders. A page says it in the browser's language
//! with `i18n.getMessage` (`dom::say` in the `tokenward` crate). So a status, an error or a
//! label is chosen once, in the core, and worded once per language, in the
//! catalogues; no page writes words of its own.
//!
//! The `Display` impls of the error enums stay in English: they are for
//! logs and tests, never shown.
//!
//! [`Catalogue`] reads a catalogue natively, for the tests that hold every
//! catalogue complete and every name the code uses defined.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A message to show: its name in the catalogues and its substitutions, in
/// order (`$1` … `$9`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Text {
    pub key: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Arg>,
}

/// One substitution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Arg {
    /// Another message, said first in the same language.
    Text(Text),
    /// Words that are not ours: a host, a header name, a number, the
    /// provider's or the browser's own reason. Shown as they are.
    Data(String),
}

impl Text {
    pub fn new(key: &str, args: Vec<Arg>) -> Self {
        Text {
            key: key.to_owned(),
            args,
        }
    }
}

impl From<String> for Arg {
    fn from(value: String) -> Self {
        Arg::Data(value)
    }
}

impl From<&String> for Arg {
    fn from(value: &String) -> Self {
        Arg::Data(value.clone())
    }
}

impl From<&str> for Arg {
    fn from(value: &str) -> Self {
        Arg::Data(value.to_owned())
    }
}

impl From<Text> for Arg {
    fn from(value: Text) -> Self {
        Arg::Text(value)
    }
}

macro_rules! numbers_are_data {
    ($($t:ty),*) => {$(
        impl From<$t> for Arg {
            fn from(value: $t) -> Self {
                Arg::Data(value.to_string())
            }
        }
    )*};
}
numbers_are_data!(u8, u16, u32, u64, usize, i64);

/// `text!("name", arg, …)`: a [`Text`]. The tests find every name the code
/// uses by this macro, so always name a message through it, with a literal.
#[macro_export]
macro_rules! text {
    ($key:literal $(, $arg:expr)* $(,)?) => {
        $crate::text::Text::new($key, vec![$($crate::text::Arg::from($arg)),*])
    };
}

/// What the user is told about a value (an error, a state).
pub trait Localize {
    fn text(&self) -> Text;
}

/// One language's messages, as the browser reads them.
#[derive(Debug, Clone, Deserialize)]
pub struct Catalogue(pub BTreeMap<String, Message>);

#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    pub message: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub placeholders: BTreeMap<String, Placeholder>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Placeholder {
    pub content: String,
    #[serde(default)]
    pub example: Option<String>,
}

impl Catalogue {
    pub fn parse(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// The text in this language, as `i18n.getMessage` would give it
    /// (placeholders `$NAME$`, case-insensitive, whose content is `$n`; `$$`
    /// is a dollar sign). `None` for a name the catalogue lacks.
    pub fn say(&self, text: &Text) -> Option<String> {
        let message = self.0.get(&text.key)?;
        let args = text
            .args
            .iter()
            .map(|arg| match arg {
                Arg::Data(data) => Some(data.clone()),
                Arg::Text(inner) => self.say(inner),
            })
            .collect::<Option<Vec<_>>>()?;
        let placeholders: BTreeMap<String, String> = message
            .placeholders
            .iter()
            .map(|(name, p)| (name.to_ascii_lowercase(), substitute(&p.content, &args)))
            .collect();
        let mut out = String::new();
        let mut rest = message.message.as_str();
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            rest = &rest[at + 1..];
            if let Some(after) = rest.strip_prefix('$') {
                out.push('$');
                rest = after;
            } else if let Some(end) = rest.find('$') {
                let name = rest[..end].to_ascii_lowercase();
                match placeholders.get(&name) {
                    Some(value) => out.push_str(value),
                    None => {
                        out.push('$');
                        out.push_str(&rest[..=end]);
                    }
                }
                rest = &rest[end + 1..];
            } else {
                out.push('$');
            }
        }
        out.push_str(rest);
        Some(out)
    }

    /// The placeholders' positions a message uses (`$1` → 1), sorted.
    pub fn positions(message: &Message) -> Vec<usize> {
        let mut positions: Vec<usize> = message
            .placeholders
            .values()
            .filter_map(|p| p.content.strip_prefix('$')?.parse().ok())
            .collect();
        positions.sort_unstable();
        positions.dedup();
        positions
    }
}

/// The English catalogue, as shipped.
pub const ENGLISH: &str = include_str!("../../extension/_locales/en/messages.json");

/// A text in English, for native code and tests (the pages ask the
/// browser). A name the catalogue lacks comes back as `[name]`, so a test
/// comparing words fails on it.
#[cfg(any(test, not(target_arch = "wasm32")))]
pub fn english(text: &Text) -> String {
    use std::sync::OnceLock;
    static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
    let catalogue = CATALOGUE
        .get_or_init(|| Catalogue::parse(ENGLISH).expect("the English catalogue is valid JSON"));
    catalogue
        .say(text)
        .unwrap_or_else(|| format!("[{}]", text.key))
}

fn substitute(content: &str, args: &[String]) -> String {
    match content
        .strip_prefix('$')
        .and_then(|n| n.parse::<usize>().ok())
    {
        Some(n) if n >= 1 => args.get(n - 1).cloned().unwrap_or_default(),
        _ => content.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_a_message_with_its_placeholders_and_nested_texts() {
        let catalogue = Catalogue::parse(
            r#"{
                "outer": {"message": "Could not save: $WHY$ ($$5)",
                          "placeholders": {"why": {"content": "$1"}}},
                "inner": {"message": "$HOST$ refused $NAME$",
                          "placeholders": {"host": {"content": "$1"}, "name": {"content": "$2"}}}
            }"#,
        )
        .expect("test setup");
        let text = text!("outer", text!("inner", "api.example", "Authorization"));
        assert_eq!(
            catalogue.say(&text).as_deref(),
            Some("Could not save: api.example refused Authorization ($5)")
        );
        assert_eq!(catalogue.say(&text!("missing")), None);
        assert_eq!(catalogue.say(&text!("outer", text!("missing"))), None);
    }

    #[test]
    fn a_text_crosses_the_message_boundary_unchanged() {
        let text = text!("outer", text!("inner", "a", 3_usize), "b");
        let json = serde_json::to_string(&text).expect("test setup");
        assert_eq!(
            json,
            r#"{"key":"outer","args":[{"key":"inner","args":["a","3"]},"b"]}"#
        );
        assert_eq!(
            serde_json::from_str::<Text>(&json).expect("test setup"),
            text
        );
    }
}
