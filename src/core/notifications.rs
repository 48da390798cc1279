//! A member's notification setting for a room: which of its messages reach their devices when
//! they are offline (push). `all` (the default), `mentions` (only messages that mention them)
//! or `none`; `muted_until` silences everything, mentions included, until then. The setting
//! is the member's alone: it goes to their own devices (`notifications.updated`) and ends with
//! their stay.

use chrono::{DateTime, SubsecRound, Utc};

pub use crate::core::event::NotificationSettings;
use crate::core::event::{self, Event};
use crate::core::views::Notifications;
use crate::domain::{Id, NotifyLevel, Time};
use crate::error::{Class, Error, Result};
use crate::events::{To, Writer};
use crate::store::{self, notifications::SettingRow};

/// Parses a setting as the client sent it: every invalid field reported at once.
pub fn parse(level: &str, muted_until: Option<&str>) -> Result<Notifications> {
    let level = NotifyLevel::parse(level)
        .ok_or_else(|| format!("must be one of {}", NotifyLevel::names().join(", ")));
    let muted_until = muted_until
        .map(|t| {
            DateTime::parse_from_rfc3339(t)
                // Microseconds, as the databases keep them: the answer is what a read gives.
                .map(|t| Time(t.with_timezone(&Utc).trunc_subsecs(6)))
        })
        .transpose()
        .map_err(|_| "must be an RFC 3339 time (2026-12-24T18:00:00Z) or null".to_string());
    match (level, muted_until) {
        (Ok(level), Ok(muted_until)) => Ok(Notifications { level, muted_until }),
        (level, muted_until) => {
            let mut error = Error::new(
                Class::Invalid,
                "validation_failed",
                "some fields are invalid",
            );
            if let Err(why) = level {
                error = error.and("level", why);
            }
            if let Err(why) = muted_until {
                error = error.and("muted_until", why);
            }
            Err(error)
        }
    }
}

/// Whether a member with this setting (`None`: no row, so `all`) is notified, at `now`, of a
/// message by someone else that does or doesn't mention them: `none`, or a `muted_until` still
/// ahead, silences everything, mentions included; `mentions` lets only mentions through. (The
/// author of a message is never notified of it, whatever their setting: the caller skips them.)
pub fn notifies(setting: Option<(NotifyLevel, Option<Time>)>, mentioned: bool, now: Time) -> bool {
    let Some((level, muted_until)) = setting else {
        return true;
    };
    if muted_until.is_some_and(|until| until > now) {
        return false;
    }
    match level {
        NotifyLevel::All => true,
        NotifyLevel::Mentions => mentioned,
        NotifyLevel::None => false,
    }
}

/// Sets the caller's notification setting for a room they are a member of (404 otherwise).
/// Returns the setting and, when it changed, the id of its `notifications.updated` event,
/// addressed to the caller only.
pub async fn set(
    writer: &Writer,
    user: Id,
    room: Id,
    setting: Notifications,
) -> Result<(NotificationSettings, Option<i64>)> {
    writer
        .run(move |batch| {
            store::rooms::membership(batch.conn(), room, user)?
                .ok_or_else(Error::room_not_found)?;
            let before = store::notifications::settings_of(batch.conn(), user, &[room])?
                .pop()
                .map(|row| Notifications {
                    level: row.level,
                    muted_until: row.muted_until,
                })
                .unwrap_or_default();
            let answer = NotificationSettings {
                room_id: room,
                level: setting.level,
                muted_until: setting.muted_until,
            };
            if before == setting {
                return Ok((answer, None));
            }
            store::notifications::set(
                batch.conn(),
                &SettingRow {
                    room_id: room,
                    user_id: user,
                    level: setting.level,
                    muted_until: setting.muted_until,
                },
            )?;
            let event = event::append(
                batch,
                &Event::NotificationsUpdated(answer.clone()),
                To::Users(&[user]),
                Time::now(),
            )?;
            Ok((answer, Some(event)))
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_or_a_mute_ahead_silences_mentions_too_and_mentions_lets_only_them_through() {
        let now = Time::now();
        let (later, earlier) = (
            Some(now + chrono::Duration::hours(1)),
            Some(now - chrono::Duration::hours(1)),
        );
        let cases = [
            (None, [true, true]),
            (Some((NotifyLevel::All, None)), [true, true]),
            (Some((NotifyLevel::Mentions, None)), [false, true]),
            (Some((NotifyLevel::None, None)), [false, false]),
            (Some((NotifyLevel::All, later)), [false, false]),
            (Some((NotifyLevel::All, earlier)), [true, true]),
            (Some((NotifyLevel::Mentions, earlier)), [false, true]),
        ];
        for (setting, [plain, mention]) in cases {
            assert_eq!(notifies(setting, false, now), plain, "{setting:?}, plain");
            assert_eq!(
                notifies(setting, true, now),
                mention,
                "{setting:?}, mention"
            );
        }
    }

    #[test]
    fn a_setting_parses_and_every_bad_field_is_named() {
        let muted = parse("mentions", Some("2026-12-24T19:00:00.1234567+01:00")).unwrap();
        assert_eq!(muted.level, NotifyLevel::Mentions);
        assert_eq!(
            muted.muted_until.map(|t| t.to_string()).as_deref(),
            Some("2026-12-24T18:00:00.123456Z")
        );
        assert_eq!(parse("all", None).unwrap(), Notifications::default());
        let both = parse("loud", Some("tomorrow")).unwrap_err();
        assert_eq!(both.code, "validation_failed");
        let fields = both.fields.unwrap();
        assert!(fields.contains_key("level") && fields.contains_key("muted_until"));
        let level = parse("ALL", None).unwrap_err().fields.unwrap();
        assert_eq!(level.keys().collect::<Vec<_>>(), ["level"]);
    }
}
