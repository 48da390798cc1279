//! `search`: message search latency over `--search-messages` stored messages (default
//! 1,000,000), and what the search index costs the send path.
//!
//! Rooms are made through the API (`--search-rooms` of them, the searcher a member of
//! `--search-member-of`); the messages are written straight into the database (the server's own
//! SQLite file, or `--database-url`), spread evenly over the rooms, with words drawn from a
//! Zipf-distributed vocabulary of English-like and Korean words. The index is kept by the same
//! triggers (SQLite) or expression index (PostgreSQL) as a send's, so the seeding rate is itself
//! a measure of the index's write cost. Then one client searches, one query after another, over
//! HTTP: several kinds of two-word queries in the searcher's rooms, and a word that fills other
//! rooms but none of the searcher's (the worst case of the query shape). Last, the send rate
//! with the index, then with it dropped (the ceiling), in the same run.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use hubbub::domain::{Id, Time};
use hubbub::store::sql_types::{DbTime, DbUuid};
use hubbub::store::{DbConnection, Manager};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::api::{self, Bot};
use crate::send::{self, Load, Op};
use crate::server::Server;
use crate::stats::{us, Latency, Row};

/// The scale of a run.
pub struct Plan {
    pub messages: usize,
    pub rooms: usize,
    pub member_of: usize,
    pub queries: usize,
}

/// Words in the vocabulary.
const VOCABULARY: usize = 20_000;
/// Words per message, at most (at least 3).
const WORDS: usize = 10;
/// In one message of this many of the rooms the searcher is not in: the word they search for
/// in the worst case.
const FLOOD_EVERY: usize = 5;
const FLOOD: &str = "floodword";

/// A vocabulary: Korean words (2-3 syllables, half of them with a particle) and English-like
/// ones, in a random order, so that both are common and rare.
fn vocabulary(rng: &mut StdRng) -> Vec<String> {
    const PARTICLES: [&str; 8] = ["에서", "은", "는", "이", "가", "을", "를", "에"];
    const CONSONANTS: &[u8] = b"bcdfghjklmnprstvwz";
    const VOWELS: &[u8] = b"aeiou";
    let mut words: Vec<String> = Vec::with_capacity(VOCABULARY);
    let mut seen = std::collections::HashSet::new();
    while words.len() < VOCABULARY {
        let word = if rng.gen_bool(0.3) {
            let n = rng.gen_range(2..=3);
            let mut w: String = (0..n)
                .filter_map(|_| char::from_u32(0xAC00 + rng.gen_range(0..11_172)))
                .collect();
            if rng.gen_bool(0.5) {
                w.push_str(PARTICLES[rng.gen_range(0..PARTICLES.len())]);
            }
            w
        } else {
            let n = rng.gen_range(2..=4);
            (0..n)
                .flat_map(|_| {
                    [
                        CONSONANTS[rng.gen_range(0..CONSONANTS.len())] as char,
                        VOWELS[rng.gen_range(0..VOWELS.len())] as char,
                    ]
                })
                .collect()
        };
        if seen.insert(word.clone()) {
            words.push(word);
        }
    }
    words
}

/// Picks word ranks with probability ∝ 1/(rank+1) (Zipf, s = 1).
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: usize) -> Zipf {
        let mut total = 0.0;
        let cumulative = (0..n)
            .map(|r| {
                total += 1.0 / (r as f64 + 1.0);
                total
            })
            .collect();
        Zipf { cumulative }
    }

    fn pick(&self, rng: &mut StdRng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let x = rng.gen_range(0.0..total);
        self.cumulative.partition_point(|c| *c < x)
    }
}

/// The rooms: (room id, its owner), and which of them the searcher is in.
struct Rooms {
    searcher: Bot,
    rooms: Vec<(String, String)>,
    member_of: usize,
}

fn setup(base: &str, prefix: &str, plan: &Plan) -> Result<Rooms, String> {
    api::block(async {
        let bots = api::bots(base, &format!("{prefix}q"), 11, 8).await?;
        let searcher = bots[0].clone();
        let owners = &bots[1..];
        let mut rooms = Vec::with_capacity(plan.rooms);
        for i in 0..plan.rooms {
            let owner = &owners[i % owners.len()];
            let members = if i < plan.member_of {
                vec![searcher.id.clone()]
            } else {
                Vec::new()
            };
            let room = api::create_room(base, owner, &format!("search {i}"), &members).await?;
            rooms.push((room, owner.id.clone()));
        }
        Ok(Rooms {
            searcher,
            rooms,
            member_of: plan.member_of,
        })
    })
}

fn id(text: &str) -> Result<Id, String> {
    text.parse::<Id>().map_err(|_| format!("not an id: {text}"))
}

/// Writes `n` messages straight into the database, in transactions of 10,000: returns the
/// elapsed time. Their seqs are negative (older than every event, never colliding with one).
fn seed(
    conn: &mut DbConnection,
    rooms: &Rooms,
    words: &[String],
    n: usize,
    rng: &mut StdRng,
) -> Result<Duration, String> {
    #[derive(QueryableByName)]
    struct Lowest {
        #[diesel(sql_type = BigInt)]
        seq: i64,
    }
    let lowest = diesel::sql_query("SELECT COALESCE(MIN(seq), 0) AS seq FROM messages")
        .get_result::<Lowest>(conn)
        .map_err(|e| e.to_string())?
        .seq
        .min(0);
    let zipf = Zipf::new(words.len());
    let room_ids: Vec<(Id, Id)> = rooms
        .rooms
        .iter()
        .map(|(r, o)| Ok((id(r)?, id(o)?)))
        .collect::<Result<_, String>>()?;
    let start_time = Time::now();
    let per_statement = 500;
    let started = Instant::now();
    let mut i = 0;
    let mut locked = 0;
    while i < n {
        let chunk_end = (i + 10_000).min(n);
        let written = conn.transaction::<_, diesel::result::Error, _>(|conn| {
            let mut j = i;
            while j < chunk_end {
                let rows = (chunk_end - j).min(per_statement);
                let mut sql = String::from(
                    "INSERT INTO messages (id, room_id, seq, author_id, body, created_at) VALUES ",
                );
                for k in 0..rows {
                    let p = k * 6;
                    if k > 0 {
                        sql.push(',');
                    }
                    sql.push_str(&format!(
                        "(${}, ${}, ${}, ${}, ${}, ${})",
                        p + 1,
                        p + 2,
                        p + 3,
                        p + 4,
                        p + 5,
                        p + 6
                    ));
                }
                let mut rows_data = Vec::with_capacity(rows);
                for m in j..j + rows {
                    let room = m % room_ids.len();
                    let count = rng.gen_range(3..=WORDS);
                    let mut body: Vec<&str> =
                        (0..count).map(|_| words[zipf.pick(rng)].as_str()).collect();
                    if room >= rooms.member_of && (m / room_ids.len()).is_multiple_of(FLOOD_EVERY) {
                        body.push(FLOOD);
                    }
                    // Oldest first: message m is (n - m) ms before the start.
                    let at = Time(start_time.0 - chrono::Duration::milliseconds((n - m) as i64));
                    rows_data.push((
                        Id::new(),
                        room_ids[room].0,
                        lowest - (n - m) as i64,
                        room_ids[room].1,
                        body.join(" "),
                        at,
                    ));
                }
                match conn {
                    DbConnection::Sqlite(c) => {
                        let mut q = diesel::sql_query(sql.replace('$', "?")).into_boxed();
                        for r in rows_data {
                            q = q
                                .bind::<DbUuid, _>(r.0)
                                .bind::<DbUuid, _>(r.1)
                                .bind::<BigInt, _>(r.2)
                                .bind::<DbUuid, _>(r.3)
                                .bind::<Text, _>(r.4)
                                .bind::<DbTime, _>(r.5);
                        }
                        q.execute(c)?;
                    }
                    DbConnection::Postgresql(c) => {
                        let mut q = diesel::sql_query(sql).into_boxed();
                        for r in rows_data {
                            q = q
                                .bind::<DbUuid, _>(r.0)
                                .bind::<DbUuid, _>(r.1)
                                .bind::<BigInt, _>(r.2)
                                .bind::<DbUuid, _>(r.3)
                                .bind::<Text, _>(r.4)
                                .bind::<DbTime, _>(r.5);
                        }
                        q.execute(c)?;
                    }
                }
                j += rows;
            }
            Ok(())
        });
        match written {
            Ok(()) => {
                i = chunk_end;
                locked = 0;
            }
            // The server's writer holds the database's one write lock in turns with this
            // connection; on a busy machine it can keep it past the 10 s busy timeout. The chunk
            // rolled back: write it again.
            Err(e) if e.to_string().contains("database is locked") && locked < 10 => {
                locked += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => return Err(format!("seeding messages: {e}")),
        }
    }
    let elapsed = started.elapsed();
    let analyze = match conn {
        DbConnection::Sqlite(_) => "ANALYZE",
        DbConnection::Postgresql(_) => "ANALYZE messages",
    };
    diesel::sql_query(analyze)
        .execute(conn)
        .map_err(|e| e.to_string())?;
    Ok(elapsed)
}

/// A kind of query and its instances.
struct Kind {
    name: &'static str,
    queries: Vec<String>,
}

/// Two words drawn from ranks `from..to`, `n` times.
fn pairs(words: &[String], from: usize, to: usize, n: usize, rng: &mut StdRng) -> Vec<String> {
    (0..n)
        .map(|_| {
            let a = &words[rng.gen_range(from..to)];
            let b = &words[rng.gen_range(from..to)];
            format!("{a} {b}")
        })
        .collect()
}

fn kinds(words: &[String], n: usize, rng: &mut StdRng) -> Vec<Kind> {
    // A Korean word of the top 200 cut to its first two syllables, with a common English word.
    let korean: Vec<&String> = words[..2000]
        .iter()
        .filter(|w| w.chars().next().is_some_and(|c| c >= '\u{AC00}'))
        .collect();
    let english: Vec<&String> = words[..50].iter().filter(|w| w.is_ascii()).collect();
    let prefix_queries = (0..n)
        .map(|_| {
            let k: String = korean[rng.gen_range(0..korean.len().min(200))]
                .chars()
                .take(2)
                .collect();
            let e = english[rng.gen_range(0..english.len())];
            format!("{k} {e}")
        })
        .collect();
    vec![
        Kind {
            name: "two common words",
            queries: pairs(words, 0, 20, n, rng),
        },
        Kind {
            name: "two mid words",
            queries: pairs(words, 20, 500, n, rng),
        },
        Kind {
            name: "two rare words",
            queries: pairs(words, 2000, 20_000, n, rng),
        },
        Kind {
            name: "korean prefix + word",
            queries: prefix_queries,
        },
        Kind {
            name: "word only elsewhere",
            queries: (0..n).map(|_| FLOOD.to_string()).collect(),
        },
    ]
}

/// Runs every query of `kind` one after another as the searcher: a row.
fn measure(server: &Server, searcher: &Bot, kind: &Kind, total: usize) -> Row {
    let base = server.base.clone();
    let token = searcher.token.clone();
    let queries = kind.queries.clone();
    let (lat, hits, errors) = api::block(async move {
        let c = api::client(None);
        let (mut lat, mut hits, mut errors) = (Vec::new(), 0usize, 0u64);
        for q in queries {
            let url = format!(
                "{base}/api/v1/search/messages?q={}&limit=20",
                urlencoding(&q)
            );
            let t0 = Instant::now();
            let resp = c
                .get(url)
                .insert_header(("Authorization", format!("Bearer {token}")))
                .send()
                .await;
            match resp {
                Ok(mut r) if r.status().as_u16() == 200 => {
                    let body: serde_json::Value = r.json().limit(1 << 24).await.unwrap_or_default();
                    lat.push(us(t0.elapsed()));
                    hits += body["hits"].as_array().map_or(0, |h| h.len());
                }
                _ => errors += 1,
            }
        }
        (lat, hits, errors)
    });
    let mut row = Row::new(format!("search: {}", kind.name));
    let n = lat.len().max(1);
    row.latency = Some(Latency::of(lat));
    row.errors = errors;
    row.note = format!(
        "{:.1} hits/query (page of 20), over {total} messages",
        hits as f64 / n as f64
    );
    row.extra = json!({"hits_per_query": hits as f64 / n as f64, "messages": total});
    row
}

fn urlencoding(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Drops (`false`) or restores the index's write path: the triggers on SQLite (the FTS table
/// stays, so searches still run, on what was indexed), the GIN index on PostgreSQL.
fn index_writes(conn: &mut DbConnection, on: bool) -> Result<(), String> {
    let sql = match (&*conn, on) {
        (DbConnection::Sqlite(_), false) => {
            "DROP TRIGGER message_search_insert; DROP TRIGGER message_search_update; \
             DROP TRIGGER message_search_delete;"
        }
        (DbConnection::Sqlite(_), true) => {
            // As the migration has them; messages sent meanwhile are indexed too.
            "CREATE TRIGGER message_search_insert AFTER INSERT ON messages \
             WHEN new.deleted_at IS NULL AND new.body <> '' BEGIN \
             INSERT INTO message_search(rowid, body, room) \
             VALUES (new.seq, new.body, 'r' || lower(hex(new.room_id))); END; \
             CREATE TRIGGER message_search_update \
             AFTER UPDATE OF body, deleted_at, seq, room_id ON messages BEGIN \
             DELETE FROM message_search WHERE rowid = old.seq; \
             INSERT INTO message_search(rowid, body, room) \
             SELECT new.seq, new.body, 'r' || lower(hex(new.room_id)) \
             WHERE new.deleted_at IS NULL AND new.body <> ''; END; \
             CREATE TRIGGER message_search_delete AFTER DELETE ON messages BEGIN \
             DELETE FROM message_search WHERE rowid = old.seq; END; \
             INSERT INTO message_search(rowid, body, room) \
             SELECT seq, body, 'r' || lower(hex(room_id)) FROM messages \
             WHERE seq > 0 AND deleted_at IS NULL AND body <> '' \
             AND seq NOT IN (SELECT rowid FROM message_search);"
        }
        (DbConnection::Postgresql(_), false) => "DROP INDEX messages_search",
        (DbConnection::Postgresql(_), true) => {
            "CREATE INDEX messages_search ON messages \
             USING gin ((to_tsvector('simple'::regconfig, body) \
             || array_to_tsvector(ARRAY['#' || replace(room_id::text, '-', '')]))) \
             WHERE deleted_at IS NULL"
        }
    };
    use diesel::connection::SimpleConnection;
    conn.batch_execute(sql).map_err(|e| e.to_string())
}

/// The whole scenario: rows, and the lines to print after the table.
pub fn run(
    server: &Server,
    prefix: &str,
    plan: Plan,
    op: &Op,
    load: Load,
) -> Result<(Vec<Row>, Vec<String>), String> {
    let url = server
        .database_url()
        .ok_or("search needs the database: a server started here, or --database-url")?;
    let mut conn = Manager::new(&url)
        .open()
        .map_err(|e| format!("{url}: {e}"))?;
    let mut rng = StdRng::seed_from_u64(19);
    let words = vocabulary(&mut rng);
    let rooms = setup(&server.base, prefix, &plan)?;
    let seeded = seed(&mut conn, &rooms, &words, plan.messages, &mut rng)?;
    let mut rows = Vec::new();
    let mut seed_row = Row::new("seed messages (+index)");
    seed_row.rate = Some(plan.messages as f64 / seeded.as_secs_f64().max(1e-6));
    seed_row.note = format!(
        "{} messages into {} rooms, 10,000 per transaction, straight into the database; \
         the searcher is in {} rooms ({} messages)",
        plan.messages,
        plan.rooms,
        plan.member_of,
        plan.messages * plan.member_of / plan.rooms.max(1)
    );
    rows.push(seed_row);
    for kind in kinds(&words, plan.queries, &mut rng) {
        rows.push(measure(server, &rooms.searcher, &kind, plan.messages));
    }
    let (with, _) = send::run(server, "send max (search index)", op, load);
    index_writes(&mut conn, false)?;
    let (without, _) = send::run(server, "send max (no index)", op, load);
    index_writes(&mut conn, true)?;
    let line = match (with.rate, without.rate) {
        (Some(w), Some(c)) if c > 0.0 => format!(
            "send rate with the search index / without = {:.1} % ({w:.0} / {c:.0} per s)",
            w / c * 100.0
        ),
        _ => "send rate with the search index: not measured".into(),
    };
    rows.push(with);
    rows.push(without);
    Ok((rows, vec![line]))
}
