//! The tailer: the one reader of new events on this node. It wakes on this node's doorbell,
//! on the cross-node doorbell (Redis), or on a slow poll (a lost ring costs latency, never an
//! event), reads the events after its position once, and hands them to the hub in order. A
//! revocation reaches the credential cache first, then the hub, which closes the sockets.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytestring::ByteString;
use tokio::sync::{watch, Notify};

use crate::core::credentials::Credentials;
use crate::core::event::{Event, Kind};
use crate::domain::Id;
use crate::error::Result;
use crate::events;
use crate::realtime::hub::{Dispatch, Effect, Hub};
use crate::store::{self, events::EventRow, DbConnection, Dedicated};

/// Events read per query.
const PAGE: i64 = 1000;

/// Runs until `stop` turns true.
pub async fn run(
    mut db: Dedicated,
    hub: Arc<Hub>,
    credentials: Arc<Credentials>,
    mut doorbell: watch::Receiver<i64>,
    remote: Option<Arc<Notify>>,
    poll: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut failures = 0u32;
    loop {
        let position = hub.position();
        match db.run(move |conn| read(conn, position)).await {
            Ok((rows, audiences)) => {
                failures = 0;
                let full = rows.len() as i64 == PAGE;
                if !rows.is_empty() {
                    let batch: Vec<Dispatch> = rows
                        .iter()
                        .map(|row| to_dispatch(row, &audiences))
                        .collect();
                    for event in &batch {
                        if let Effect::Revoked(credential) = event.effect {
                            credentials.revoke(credential);
                        }
                    }
                    hub.dispatch(&batch);
                }
                if full {
                    continue; // more are waiting
                }
            }
            Err(e) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(60) {
                    tracing::warn!(error = %e, "tailer cannot read the event log; retrying");
                }
                if failures == 1 {
                    // The failed read dropped its connection (one the database may have closed
                    // when it restarted): try a new one at once rather than at the next ring.
                    continue;
                }
            }
        }
        let rung_remotely = async {
            match &remote {
                Some(ring) => ring.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = doorbell.changed() => if changed.is_err() { return },
            _ = rung_remotely => {}
            _ = tokio::time::sleep(poll) => {}
            _ = stop.changed() => return,
        }
    }
}

/// The users each audience-addressed event goes to, by event id.
pub type Audiences = HashMap<i64, Vec<Id>>;

/// The next page of events after `position`, and the audiences of those that have one.
fn read(conn: &mut DbConnection, position: i64) -> Result<(Vec<EventRow>, Audiences)> {
    let rows = store::events::range(conn, position, None, PAGE)?;
    let mut audiences = Audiences::new();
    if let (Some(last), true) = (rows.last(), rows.iter().any(|r| r.room_id.is_none())) {
        for (event, user) in store::events::audiences(conn, position, last.id)? {
            audiences.entry(event).or_default().push(user);
        }
    }
    Ok((rows, audiences))
}

/// What the hub needs of a row: its frame (serialized here, once) and its effect on membership.
pub fn to_dispatch(row: &EventRow, audiences: &Audiences) -> Dispatch {
    let kind = Kind::parse(&row.kind);
    // Only these kinds change what the hub holds: the others (most of the log, every message)
    // are not parsed at all.
    let effect = match kind {
        Some(
            kind @ (Kind::RoomCreated
            | Kind::MemberJoined
            | Kind::MemberLeft
            | Kind::CredentialRevoked),
        ) => match Event::parse(kind, &row.payload) {
            Ok(Event::RoomCreated(room)) => {
                Effect::Joined(room.members.iter().map(|m| m.user.id).collect())
            }
            Ok(Event::MemberJoined(member)) => Effect::Joined(vec![member.user_id]),
            Ok(Event::MemberLeft(member)) => Effect::Left(member.user_id),
            Ok(Event::CredentialRevoked(revoked)) => Effect::Revoked(revoked.credential_id),
            Ok(_) => Effect::None,
            Err(e) => {
                tracing::error!(event = row.id, kind = %row.kind, error = %e, "unreadable event payload");
                Effect::None
            }
        },
        _ => Effect::None,
    };
    Dispatch {
        id: row.id,
        room: row.room_id,
        audience: audiences.get(&row.id).cloned().unwrap_or_default(),
        // A kind from a newer node is passed on; internal ones are never framed.
        frame: kind
            .is_none_or(Kind::is_public)
            .then(|| ByteString::from(events::frame(row))),
        effect,
    }
}
