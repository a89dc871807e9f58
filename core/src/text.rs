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
///
/// Read by hand rather than `#[serde(untagged)]`: a string or a map is
/// known from the first token, where the derive buffers the value and
/// tries each variant in turn ([`crate::tagged`] says what that costs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Arg {
    /// Another message, said first in the same language.
    Text(Text),
    /// Words that are not ours: a host, a header name, a number, the
    /// provider's or the browser's own reason. Shown as they are.
    Data(String),
}

impl<'de> Deserialize<'de> for Arg {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ArgVisitor;
        impl<'de> serde::de::Visitor<'de> for ArgVisitor {
            type Value = Arg;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a message or a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Arg, E> {
                Ok(Arg::Data(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Arg, E> {
                Ok(Arg::Data(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Arg, A::Error> {
                Text::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Arg::Text)
            }
        }
        d.deserialize_any(ArgVisitor)
    }
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

/// A message as the browser words it, with each of its substitutions left
/// as a marker, so a page asks `i18n.getMessage` once per message name and
/// fills the substitutions itself: drawing 200 accounts asked it about
/// 2,000 times, a call that goes through the extension API's bindings each
/// time (the better part of the popup's drawing time in Firefox).
/// Substitutions are inserted as they are, never read for `$`, by the
/// browser and by [`Template::fill`] alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(String);

impl Template {
    /// What to pass `i18n.getMessage` as its substitutions: `$1` … `$9`
    /// (the browser takes nine at most), each as a marker no message holds.
    pub fn markers() -> Vec<String> {
        (1..=9).map(|n| format!("{MARKER}{n}")).collect()
    }

    /// The browser's answer for [`Template::markers`]; `None` for `""`,
    /// the answer for a name the catalogue lacks.
    pub fn from_answer(answer: String) -> Option<Template> {
        (!answer.is_empty()).then_some(Template(answer))
    }

    /// The message with `args` in place of `$1` … (a missing one is empty,
    /// as the browser makes it).
    pub fn fill(&self, args: &[String]) -> String {
        let mut out = String::with_capacity(self.0.len());
        let mut rest = self.0.as_str();
        while let Some(at) = rest.find(MARKER) {
            out.push_str(&rest[..at]);
            rest = &rest[at + MARKER.len_utf8()..];
            let mut digits = rest.chars();
            match digits.next().and_then(|d| d.to_digit(10)) {
                Some(n @ 1..=9) => {
                    out.push_str(args.get(n as usize - 1).map_or("", String::as_str));
                    rest = digits.as_str();
                }
                _ => out.push(MARKER),
            }
        }
        out.push_str(rest);
        out
    }
}

/// A private-use character: in no catalogue (a test below checks) and in
/// nothing the browser adds.
const MARKER: char = '\u{E000}';

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
    fn a_template_fills_as_the_browser_substitutes() {
        let catalogue = Catalogue::parse(
            r#"{
                "m": {"message": "$A$ and $B$, $A$ again ($$1), $C$.",
                      "placeholders": {"a": {"content": "$1"}, "b": {"content": "$2"},
                                       "c": {"content": "$3"}}}
            }"#,
        )
        .expect("test setup");
        // What the browser answers when given the markers.
        let answer = catalogue
            .say(&Text::new(
                "m",
                Template::markers().into_iter().map(Arg::Data).collect(),
            ))
            .expect("test setup");
        let template = Template::from_answer(answer).expect("test setup");
        let args = vec!["x$1".to_owned(), "y".to_owned()];
        assert_eq!(
            template.fill(&args),
            catalogue
                .say(&Text::new("m", args.iter().map(Arg::from).collect()))
                .expect("test setup"),
        );
        assert_eq!(template.fill(&args), "x$1 and y, x$1 again ($1), .");
        assert_eq!(Template::from_answer(String::new()), None);
    }

    #[test]
    fn no_catalogue_holds_the_template_marker() {
        for catalogue in [
            ENGLISH,
            include_str!("../../extension/_locales/de/messages.json"),
        ] {
            assert!(!catalogue.contains(MARKER));
        }
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
