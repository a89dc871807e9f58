//! Reading an internally tagged enum (`#[serde(tag = "…")]`) whose tag is
//! the first key, without serde's buffering.
//!
//! serde's derive reads an internally tagged, untagged or flattened value
//! by buffering all of it into its private `Content` tree and then reading
//! the variant again from that tree. Every type nested inside gets a second
//! `Deserialize` instantiated for the buffer, and the pages' module, which
//! reads every view through [`crate::message::Response`], carried about
//! 150 kB of such copies (`twiggy`: `serde::private::de::content`, before
//! `wasm-opt`).
//!
//! What these impls read is only what serde's own derive wrote, in this
//! extension, and the derive writes an internally tagged enum's tag first
//! (its `TaggedSerializer` emits the tag before the fields). So the reader
//! takes the first key as the tag and hands the rest of the same map to
//! the variant's own fields, streaming. A map whose first key is not the
//! tag is refused with a message naming it. So these impls are only for
//! what crosses from the background to the pages as JSON text: no stored
//! or user-written JSON reaches them (stored tagged types are read through
//! a `serde_json::Value`, in any order: `json::read_tagged`; [`Request`],
//! which tests write by hand, is externally tagged), and none is read
//! through a `serde_json::Value`, whose maps sort their keys.
//!
//! [`Request`]: crate::message::Request

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserialize, Deserializer, Error, IgnoredAny, MapAccess, Visitor};

/// An internally tagged enum read tag first.
pub(crate) trait TagFirst: Sized {
    /// The tag's key, as in `#[serde(tag = "…")]`.
    const TAG: &'static str;
    /// The enum's name, for messages.
    const NAME: &'static str;
    /// The variant named `tag`, from the rest of the map.
    fn variant<'de, A: MapAccess<'de>>(tag: &str, rest: Rest<A>) -> Result<Self, A::Error>;
}

/// `Deserialize::deserialize` for a [`TagFirst`] enum.
pub(crate) fn deserialize<'de, D: Deserializer<'de>, T: TagFirst>(d: D) -> Result<T, D::Error> {
    d.deserialize_map(TagFirstVisitor(PhantomData))
}

/// `impl Deserialize for $enum` through its [`TagFirst`] (a blanket impl
/// over `TagFirst` would implement a foreign trait for any type).
macro_rules! deserialize_tag_first {
    ($enum:ty) => {
        impl<'de> serde::Deserialize<'de> for $enum {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::tagged::deserialize(d)
            }
        }
    };
}
pub(crate) use deserialize_tag_first;

struct TagFirstVisitor<T>(PhantomData<T>);

impl<'de, T: TagFirst> Visitor<'de> for TagFirstVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a map whose first key is `{}` ({})", T::TAG, T::NAME)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        match map.next_key::<String>()? {
            Some(key) if key == T::TAG => {
                let tag = map.next_value::<String>()?;
                T::variant(&tag, Rest(map))
            }
            Some(_) => Err(A::Error::custom(format_args!(
                "{}: the first key must be `{}`",
                T::NAME,
                T::TAG
            ))),
            None => Err(A::Error::missing_field(T::TAG)),
        }
    }
}

/// The entries after the tag: the variant's fields.
#[derive(Debug)]
pub(crate) struct Rest<A>(A);

impl<'de, A: MapAccess<'de>> Rest<A> {
    /// A newtype variant's value, or a struct variant's fields read into a
    /// struct of the same fields.
    pub(crate) fn fields<T: Deserialize<'de>>(self) -> Result<T, A::Error> {
        T::deserialize(MapAccessDeserializer::new(self.0))
    }

    /// A unit variant: whatever else the map holds is ignored, as the
    /// derive does.
    pub(crate) fn unit(mut self) -> Result<(), A::Error> {
        while self.0.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::credential::{CredentialKind, Deployments, Provider, Timestamp};
    use crate::header::ValueScheme;
    use crate::import::Outcome;
    use crate::message::{CredentialView, NotSent, Response, RulesView, Sending};
    use crate::provider::site::{SiteSuggestion, SuggestedHeader};
    use crate::rules::RuleBook;
    use crate::text::{Arg, Text};

    /// Written by the derive, read back by the tag-first reader.
    fn round_trip<T>(value: T)
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let json = serde_json::to_string(&value).expect("a view serializes");
        match serde_json::from_str::<T>(&json) {
            Ok(back) => assert_eq!(back, value, "{json}"),
            Err(e) => panic!("{json}: {e}"),
        }
    }

    /// Why `json` is refused as a `T`.
    fn refusal<T: serde::de::DeserializeOwned + std::fmt::Debug>(json: &str) -> String {
        match serde_json::from_str::<T>(json) {
            Ok(read) => panic!("{json} read as {read:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn why() -> Text {
        Text::new(
            "error_x",
            vec![
                Arg::Data("a.example".into()),
                Arg::Text(Text::new("nested", vec![Arg::Data("1".into())])),
            ],
        )
    }

    #[test]
    fn every_variant_reads_back_as_it_was_written() {
        for sending in [
            Sending::Unsupported,
            Sending::Uncovered,
            Sending::Sent {
                partly: true,
                expires: Some(Timestamp(1_800_000_000)),
                expiring_soon: false,
            },
            Sending::Sent {
                partly: false,
                expires: None,
                expiring_soon: true,
            },
            Sending::NotSent {
                why: NotSent::PermissionMissing,
            },
        ] {
            round_trip(sending);
        }
        for outcome in [
            Outcome::New,
            Outcome::Changed {
                rule: 7,
                label: "Jina".into(),
            },
            Outcome::Unchanged { rule: 8 },
            Outcome::Refused { why: why() },
            Outcome::NotImported { why: why() },
            Outcome::Skipped,
        ] {
            round_trip(outcome);
        }
        let rules = RulesView {
            rules: Vec::new(),
            saved: Some(3),
            unreadable: 1,
            limit_warning: Some(why()),
            policy: None,
        };
        let credential = crate::provider::tests::credential(
            Provider::BentoCloud,
            CredentialKind::ApiToken {
                scopes: vec!["api".into()],
                deployments: Some(Deployments::All),
            },
            "tok-created-aaaaaaaa",
        );
        let suggestion = SiteSuggestion {
            pattern: "https://*.example".into(),
            header: SuggestedHeader {
                name: "Authorization".into(),
                scheme: ValueScheme::Bearer,
            },
            alternatives: Vec::new(),
        };
        for response in [
            Response::Rules(rules.clone()),
            Response::Created {
                credential: CredentialView::of(&credential, &RuleBook::default(), Timestamp(0)),
                secret: "tok-created-aaaaaaaa".into(),
            },
            Response::Suggestion {
                suggestion: Some(suggestion),
            },
            Response::Suggestion { suggestion: None },
            Response::Export {
                file_name: "tokenward.json".into(),
                document: "{}".into(),
            },
            Response::Imported {
                rules,
                added: 2,
                changed: 1,
            },
            Response::Error { message: why() },
        ] {
            round_trip(response);
        }
    }

    #[test]
    fn a_tag_not_first_or_unknown_is_refused_with_its_name() {
        let late = r#"{"partly":true,"state":"sent","expiringSoon":false}"#;
        let error = refusal::<Sending>(late);
        assert!(
            error.contains("Sending: the first key must be `state`"),
            "{error}"
        );

        let error = refusal::<Response>(r#"{"type":"teleport"}"#);
        assert!(error.contains("unknown variant `teleport`"), "{error}");

        let error = refusal::<Outcome>("{}");
        assert!(error.contains("missing field `kind`"), "{error}");

        // A variant's own field still has to be there.
        let error = refusal::<Outcome>(r#"{"kind":"changed","label":"x"}"#);
        assert!(error.contains("missing field `rule`"), "{error}");
    }
}
