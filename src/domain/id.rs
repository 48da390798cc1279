//! Identifiers and timestamps: the two value types every row and every JSON body carries.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use diesel::deserialize::FromSqlRow;
use diesel::expression::AsExpression;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use diesel::query_builder::QueryId;
use diesel::sql_types::SqlType;

/// A UUID column: `uuid` on PostgreSQL, a 16-byte BLOB on SQLite (read and written by
/// `store::sql_types`).
#[derive(Debug, Clone, Copy, Default, SqlType, QueryId)]
#[diesel(postgres_type(oid = 2950, array_oid = 2951))]
#[diesel(sqlite_type(name = "Binary"))]
pub struct DbUuid;

/// A UTC timestamp column: `timestamptz` on PostgreSQL, RFC 3339 text on SQLite (read and
/// written by `store::sql_types`).
#[derive(Debug, Clone, Copy, Default, SqlType, QueryId)]
#[diesel(postgres_type(oid = 1184, array_oid = 1185))]
#[diesel(sqlite_type(name = "Text"))]
pub struct DbTime;

/// The id of a user, room, message or session: a UUID, stored as a native UUID column.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    AsExpression,
    FromSqlRow,
)]
#[serde(transparent)]
#[diesel(sql_type = DbUuid)]
pub struct Id(pub Uuid);

impl Id {
    /// A new id. Version 7 (time-ordered) keeps index inserts local.
    pub fn new() -> Id {
        Id(Uuid::now_v7())
    }
}

impl Default for Id {
    fn default() -> Self {
        Id::new()
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for Id {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Id)
    }
}

/// A UTC instant with microsecond precision, written as RFC 3339 (`2026-11-23T18:43:39.123456Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, AsExpression, FromSqlRow)]
#[diesel(sql_type = DbTime)]
pub struct Time(pub DateTime<Utc>);

impl Time {
    /// Now, truncated to the microseconds both database backends keep.
    pub fn now() -> Time {
        Time(Utc::now().trunc_subsecs(6))
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Micros, true))
    }
}

impl Serialize for Time {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Time, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| Time(t.with_timezone(&Utc)))
            .map_err(serde::de::Error::custom)
    }
}

impl std::ops::Add<chrono::Duration> for Time {
    type Output = Time;
    fn add(self, d: chrono::Duration) -> Time {
        Time(self.0 + d)
    }
}

impl std::ops::Sub<chrono::Duration> for Time {
    type Output = Time;
    fn sub(self, d: chrono::Duration) -> Time {
        Time(self.0 - d)
    }
}

impl utoipa::PartialSchema for Id {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
            .into()
    }
}

impl utoipa::ToSchema for Id {}

impl utoipa::PartialSchema for Time {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some("RFC 3339, UTC, microseconds"))
            .into()
    }
}

impl utoipa::ToSchema for Time {}
