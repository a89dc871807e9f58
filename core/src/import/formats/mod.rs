//! The formats Tokenward reads, told apart by their shape. Each reader walks
//! the JSON by hand: a field of the wrong type is a problem of that entry,
//! named, and never a quote of its value.

mod headerly;
mod modheader;
mod requestly;
mod simplemodifyheaders;
mod tokenward;

use serde_json::{Map, Value};

use super::{Format, ImportError, Reading};
use crate::text;
use crate::text::Text;

/// Reads a file's JSON as `format`.
pub fn read(
    format: Format,
    value: Value,
    passphrase: Option<&str>,
) -> Result<Reading, ImportError> {
    match format {
        Format::Tokenward => tokenward::read(value, passphrase),
        Format::ModHeader => modheader::read(&value),
        Format::SimpleModifyHeaders => simplemodifyheaders::read(&value),
        Format::Requestly => requestly::read(&value),
        Format::Headerly => headerly::read(&value),
    }
}

/// Which format a file's JSON is.
pub fn detect(value: &Value) -> Option<Format> {
    match value {
        Value::Object(o) => {
            if o.get("format").and_then(Value::as_str) == Some(crate::protection::EXPORT_FORMAT)
                || (o.contains_key("kdf") && o.contains_key("ct"))
            {
                Some(Format::Tokenward)
            } else if o.contains_key("format_version") || o.contains_key("target_page") {
                Some(Format::SimpleModifyHeaders)
            } else if o.get("profiles").is_some_and(Value::is_array) {
                Some(Format::Headerly)
            } else if o.contains_key("ruleType") {
                Some(Format::Requestly)
            } else if o.contains_key("headers")
                && (o.contains_key("title") || o.contains_key("urlFilters"))
            {
                Some(Format::ModHeader)
            } else {
                None
            }
        }
        Value::Array(items) => {
            let first = items.iter().find_map(Value::as_object)?;
            if first.contains_key("ruleType") || first.contains_key("objectType") {
                Some(Format::Requestly)
            } else if first.contains_key("ruleActionType")
                || first.contains_key("requestHeaderModGroups")
            {
                Some(Format::Headerly)
            } else if first.contains_key("headers")
                || first.contains_key("respHeaders")
                || first.contains_key("title")
                || first.contains_key("filters")
            {
                Some(Format::ModHeader)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Fields of one JSON object, read leniently where absence has a meaning
/// and strictly where a wrong type would change one.
struct Fields<'a> {
    object: Option<&'a Map<String, Value>>,
}

impl<'a> Fields<'a> {
    fn of(value: &'a Value) -> Fields<'a> {
        Fields {
            object: value.as_object(),
        }
    }

    fn is_object(&self) -> bool {
        self.object.is_some()
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.object
            .and_then(|o| o.get(key))
            .filter(|v| !v.is_null())
    }

    /// A string field; a number is read as its digits; anything else is
    /// `Err` with the field's name.
    fn str(&self, key: &str) -> Result<Option<&'a str>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(key.to_owned()),
        }
    }

    fn bool_or(&self, key: &str, default: bool) -> Result<bool, String> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(key.to_owned()),
        }
    }

    fn array(&self, key: &str) -> Result<&'a [Value], String> {
        match self.get(key) {
            None => Ok(&[]),
            Some(Value::Array(a)) => Ok(a.as_slice()),
            Some(_) => Err(key.to_owned()),
        }
    }
}

/// "the field `name` is not what ModHeader writes".
fn bad_field(field: String) -> Text {
    text!("import_problem_type", field)
}

/// An entry's place in the file, for messages: `entry 3 “Dev”`.
fn entry_name(kind: Text, index: usize, title: &str) -> Text {
    let title: String = title.chars().take(60).collect();
    if title.trim().is_empty() {
        text!("import_from_untitled", kind, index + 1)
    } else {
        text!("import_from_titled", kind, index + 1, title)
    }
}
