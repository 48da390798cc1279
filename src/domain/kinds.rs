//! The closed sets of words the data holds: a member's role and a room's kind. Stored and sent
//! as their lower-case names (`"owner"`, `"direct"`); in the code, enums, so that a typo is a
//! compile error and a `match` names every case.

use std::fmt;

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::serialize::{self, ToSql};
use diesel::sql_types::Text;
use serde::{Deserialize, Serialize};

/// Declares an enum of words with its names, `as_str`, `parse`, `Display`, serde as the names,
/// and diesel's `Text` mapping on every backend whose `str`/`String` map to `Text`.
macro_rules! words {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, AsExpression,
            FromSqlRow, utoipa::ToSchema,
        )]
        #[serde(rename_all = "lowercase")]
        #[diesel(sql_type = Text)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }

            pub fn parse(word: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|v| v.as_str() == word)
            }

            /// The names, for messages and the OpenAPI document.
            pub fn names() -> Vec<&'static str> {
                $name::ALL.iter().map(|v| v.as_str()).collect()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl<DB: Backend> ToSql<Text, DB> for $name
        where
            str: ToSql<Text, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut serialize::Output<'b, '_, DB>) -> serialize::Result {
                self.as_str().to_sql(out)
            }
        }

        impl<DB: Backend> FromSql<Text, DB> for $name
        where
            String: FromSql<Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
                let word = String::from_sql(bytes)?;
                $name::parse(&word).ok_or_else(|| {
                    format!("{word:?} is not a {}", stringify!($name)).into()
                })
            }
        }
    };
}

words! {
    /// A member's role in a group room, highest first. In a direct room both members are
    /// `Member`.
    Role {
        /// Renames the room, manages members and roles; the last owner can't leave or step down.
        Owner = "owner",
        /// Manages plain members and deletes others' messages.
        Admin = "admin",
        Member = "member",
    }
}

words! {
    /// What a room is: named with any number of members, or the one room two users share.
    RoomKind {
        Group = "group",
        Direct = "direct",
    }
}

words! {
    /// Who an account is: a person, or a bot that one of them owns.
    UserKind {
        User = "user",
        Bot = "bot",
    }
}

words! {
    /// Where a friend request stands when it is shown.
    RequestStatus {
        Pending = "pending",
        /// It answered one the other user had already sent: they are friends now.
        Accepted = "accepted",
    }
}

words! {
    /// Which messages of a room notify a member's devices (push). Every room starts at `All`.
    NotifyLevel {
        All = "all",
        /// Only messages that mention them.
        Mentions = "mentions",
        /// Nothing, mentions included.
        None = "none",
    }
}

words! {
    /// Where a push subscription delivers: a browser's Web Push endpoint or a device's FCM token.
    PushKind {
        WebPush = "webpush",
        Fcm = "fcm",
    }
}

impl Role {
    /// Higher roles outrank lower ones (owner > admin > member).
    pub fn rank(self) -> u8 {
        match self {
            Role::Owner => 2,
            Role::Admin => 1,
            Role::Member => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_unknown_ones_are_refused() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(*role));
            assert_eq!(
                serde_json::to_value(role).unwrap(),
                serde_json::json!(role.as_str())
            );
        }
        assert_eq!(Role::parse("root"), None);
        assert_eq!(RoomKind::parse("direct"), Some(RoomKind::Direct));
        assert!(Role::Owner.rank() > Role::Admin.rank());
    }
}
