//! Expiry reminders: a browser notification, once, 3 days and 1 day before
//! a token expires, unless the user turned them off.
//!
//! Sans IO: which reminders are due at a time, and when the next one is,
//! from the credentials and the record of those already shown (kept in the
//! stored state, so a restart does not repeat them).

use std::collections::BTreeMap;

use crate::credential::credential_label;
use crate::credential::{CredentialId, Credentials, Timestamp, DAY};
use crate::text;
use crate::text::Text;

/// Days before expiry at which a reminder is shown, most urgent last.
pub const THRESHOLDS: [u32; 2] = [3, 1];

/// For each credential, the thresholds already reminded of.
pub type Reminded = BTreeMap<CredentialId, Vec<u32>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reminder {
    pub credential: CredentialId,
    /// The threshold reached: 3 or 1.
    pub days: u32,
    /// The notification's stable id, so showing it twice replaces it.
    pub id: String,
    pub title: Text,
    pub message: Text,
}

fn reached(expires: Timestamp, days: u32, now: Timestamp) -> bool {
    expires > now && expires.0 - now.0 <= i64::from(days) * DAY
}

/// The reminders due at `now`: one per credential at most (the most urgent
/// threshold reached and not yet shown), and every threshold it passed
/// counts as shown, so a token first seen 12 hours before it expires gets
/// one reminder, not two.
pub fn due(
    credentials: &Credentials,
    reminded: &Reminded,
    now: Timestamp,
) -> Vec<(Reminder, Vec<u32>)> {
    let mut out = Vec::new();
    for c in credentials.all() {
        let Some(expires) = c.info.expires else {
            continue;
        };
        // Its token lasts minutes and is replaced before it expires: a
        // reminder would come with every token.
        if c.renews_itself() {
            continue;
        }
        let shown = reminded
            .get(&c.info.id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let passed: Vec<u32> = THRESHOLDS
            .iter()
            .copied()
            .filter(|d| reached(expires, *d, now))
            .collect();
        let Some(&days) = passed.iter().filter(|d| !shown.contains(d)).min() else {
            continue;
        };
        let left = expires.0 - now.0;
        let title = match ((left + 3599) / 3600, (left + DAY - 1) / DAY) {
            (..=1, _) => text!("reminder_title_within_the_hour"),
            (hours, _) if left < DAY => text!("reminder_title_hours", hours),
            (_, 1) => text!("reminder_title_one_day"),
            (_, days) => text!("reminder_title_days", days),
        };
        out.push((
            Reminder {
                credential: c.info.id,
                days,
                id: format!("expiry-{}-{days}", c.info.id),
                title,
                message: text!(
                    "reminder_message",
                    credential_label(&c.info),
                    expires.date()
                ),
            },
            passed,
        ));
    }
    out
}

/// When the next reminder falls due, after `now`.
pub fn next(credentials: &Credentials, reminded: &Reminded, now: Timestamp) -> Option<Timestamp> {
    credentials
        .all()
        .iter()
        .filter(|c| !c.renews_itself())
        .filter_map(|c| Some((c.info.id, c.info.expires?)))
        .flat_map(|(id, expires)| {
            THRESHOLDS.iter().filter_map(move |d| {
                let at = Timestamp(expires.0 - i64::from(*d) * DAY);
                let shown = reminded.get(&id).is_some_and(|s| s.contains(d));
                (at > now && !shown).then_some(at)
            })
        })
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::{Credential, CredentialKind, Endpoint};
    use crate::header::Secret;
    use crate::provider::Provider;
    use crate::text::english;

    const NOW: Timestamp = Timestamp(1_766_000_000);

    fn with_expiry(seconds_left: i64) -> Credentials {
        let mut credentials = Credentials::default();
        let mut c = Credential::new(
            0,
            Provider::Jina,
            Endpoint::parse(Provider::Jina, "").expect("endpoint"),
            CredentialKind::PersonalAccessToken,
            Secret::from_input("jina_secret").expect("secret"),
        );
        c.info.expires = Some(Timestamp(NOW.0 + seconds_left));
        c.info.name = "ci".into();
        credentials.add(c);
        credentials
    }

    #[test]
    fn three_days_then_one_day_once_each() {
        let credentials = with_expiry(5 * DAY);
        let mut reminded = Reminded::new();
        assert!(due(&credentials, &reminded, NOW).is_empty());
        assert_eq!(
            next(&credentials, &reminded, NOW),
            Some(Timestamp(NOW.0 + 2 * DAY))
        );

        let at = Timestamp(NOW.0 + 2 * DAY);
        let first = due(&credentials, &reminded, at);
        assert_eq!(first.len(), 1);
        let (reminder, passed) = &first[0];
        assert_eq!(
            (reminder.days, english(&reminder.title).as_str()),
            (3, "A token expires in 3 days")
        );
        let message = english(&reminder.message);
        assert!(message.contains("Jina AI"), "{message}");
        reminded.insert(reminder.credential, passed.clone());
        assert!(due(&credentials, &reminded, at).is_empty(), "once");
        assert_eq!(
            next(&credentials, &reminded, at),
            Some(Timestamp(NOW.0 + 4 * DAY))
        );

        let later = Timestamp(NOW.0 + 4 * DAY + 1);
        let second = due(&credentials, &reminded, later);
        assert_eq!(second[0].0.days, 1);
        assert_eq!(english(&second[0].0.title), "A token expires in 24 hours");
    }

    #[test]
    fn a_token_first_seen_late_gets_one_reminder() {
        let credentials = with_expiry(12 * 3600);
        let due_now = due(&credentials, &Reminded::new(), NOW);
        assert_eq!(due_now.len(), 1);
        assert_eq!(due_now[0].0.days, 1);
        assert_eq!(due_now[0].1, vec![3, 1]);
        assert_eq!(english(&due_now[0].0.title), "A token expires in 12 hours");
    }

    #[test]
    fn expired_and_lasting_tokens_get_none() {
        assert!(due(&with_expiry(-1), &Reminded::new(), NOW).is_empty());
        assert!(due(&with_expiry(30 * DAY), &Reminded::new(), NOW).is_empty());
        assert_eq!(next(&with_expiry(-1), &Reminded::new(), NOW), None);
    }
}
