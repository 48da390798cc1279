//! Portable SQL types: a UUID and a UTC timestamp that are real column types on both backends.
//!
//! PostgreSQL stores them natively (`uuid`, `timestamptz`); SQLite stores a UUID as a 16-byte
//! BLOB and a timestamp as fixed-width RFC 3339 text (microseconds, `Z`), which sorts in time
//! order. Both backends keep microseconds only: `Time::now` truncates so they answer alike.

use chrono::{DateTime, Utc};
use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::pg::Pg;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::{self, HasSqlType};
use diesel::sqlite::Sqlite;
use uuid::Uuid;

use super::connection::MultiBackend;
use crate::domain::{Id, Time};

// The column types themselves are declared beside the values they hold (`domain::id`), so that
// `domain` needs nothing from this layer; how they are read and written is here.
pub use crate::domain::{DbTime, DbUuid};

macro_rules! multi_backend {
    ($rust:ty, $sql:ident) => {
        impl HasSqlType<$sql> for MultiBackend {
            fn metadata(lookup: &mut Self::MetadataLookup) -> Self::TypeMetadata {
                MultiBackend::lookup_sql_type::<$sql>(lookup)
            }
        }
        impl FromSql<$sql, MultiBackend> for $rust {
            fn from_sql(
                bytes: <MultiBackend as Backend>::RawValue<'_>,
            ) -> deserialize::Result<Self> {
                bytes.from_sql::<$rust, $sql>()
            }
        }
        impl ToSql<$sql, MultiBackend> for $rust {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, MultiBackend>) -> serialize::Result {
                out.set_value(($sql, self));
                Ok(IsNull::No)
            }
        }
    };
}

multi_backend!(Id, DbUuid);
multi_backend!(Time, DbTime);

impl ToSql<DbUuid, Pg> for Id {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        ToSql::<sql_types::Uuid, Pg>::to_sql(&self.0, out)
    }
}

impl FromSql<DbUuid, Pg> for Id {
    fn from_sql(bytes: <Pg as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        <Uuid as FromSql<sql_types::Uuid, Pg>>::from_sql(bytes).map(Id)
    }
}

impl ToSql<DbUuid, Sqlite> for Id {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.0.as_bytes().as_slice());
        Ok(IsNull::No)
    }
}

impl FromSql<DbUuid, Sqlite> for Id {
    fn from_sql(bytes: <Sqlite as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        let raw = <Vec<u8> as FromSql<sql_types::Binary, Sqlite>>::from_sql(bytes)?;
        Ok(Id(Uuid::from_slice(&raw)?))
    }
}

impl ToSql<DbTime, Pg> for Time {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        ToSql::<sql_types::Timestamptz, Pg>::to_sql(&self.0, out)
    }
}

impl FromSql<DbTime, Pg> for Time {
    fn from_sql(bytes: <Pg as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        <DateTime<Utc> as FromSql<sql_types::Timestamptz, Pg>>::from_sql(bytes).map(Time)
    }
}

impl ToSql<DbTime, Sqlite> for Time {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        // Fixed width (always six fractional digits) so that text order is time order.
        out.set_value(self.to_string());
        Ok(IsNull::No)
    }
}

impl FromSql<DbTime, Sqlite> for Time {
    fn from_sql(bytes: <Sqlite as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<sql_types::Text, Sqlite>>::from_sql(bytes)?;
        Ok(Time(
            DateTime::parse_from_rfc3339(&text)?.with_timezone(&Utc),
        ))
    }
}
