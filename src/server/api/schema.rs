//! What the OpenAPI document says each input may be: lengths, patterns, ranges and enums, built
//! from the constants and character predicates the validators themselves use, so the document
//! and the server can't disagree. `openapi::document` applies them to the generated document.
//!
//! Patterns are regular expressions a JSON Schema validator (ECMA-262) and Python's `re` (which
//! schemathesis generates from) read alike: character classes list the characters themselves.

use serde_json::{json, Value};

use crate::core::{accounts, admin, messages, push, reactions, reports, rooms, tokens};
use crate::domain::{
    allowed_in_bodies, allowed_in_notes, refused_in_names, DisplayName, Label, Note, NotifyLevel,
    Password, PushKind, Role, RoomName, Username,
};
use crate::server::stream::poll;

/// Builds the body of a regex character class from characters fed in ascending order: ranges of
/// the characters themselves (`\`, `]`, `[`, `^` and `-` escaped).
#[derive(Default)]
struct Class {
    out: String,
    run: Option<(char, char)>,
}

impl Class {
    fn add(&mut self, c: char) {
        match self.run {
            Some((from, to)) if u32::from(c) == u32::from(to) + 1 => self.run = Some((from, c)),
            _ => {
                self.flush();
                self.run = Some((c, c));
            }
        }
    }

    fn flush(&mut self) {
        let Some((from, to)) = self.run.take() else {
            return;
        };
        self.push(from);
        if to != from {
            if u32::from(to) > u32::from(from) + 1 {
                self.out.push('-');
            }
            self.push(to);
        }
    }

    fn push(&mut self, c: char) {
        if matches!(c, '\\' | ']' | '[' | '^' | '-') {
            self.out.push('\\');
        }
        self.out.push(c);
    }

    fn finish(mut self) -> String {
        self.flush();
        self.out
    }
}

/// The class of every character for which `pred` holds.
#[cfg(test)]
fn class(pred: impl Fn(char) -> bool) -> String {
    let mut class = Class::default();
    (0..=0x10FFFFu32)
        .filter_map(char::from_u32)
        .filter(|c| pred(*c))
        .for_each(|c| class.add(c));
    class.finish()
}

/// The character classes the patterns use, from the validators' predicates: one pass over all of
/// Unicode, once per process.
struct Classes {
    ws: String,
    control: String,
    name_refused: String,
    name_refused_or_ws: String,
    body_refused: String,
    body_refused_or_ws: String,
    emoji_refused: String,
    note_refused: String,
    note_refused_or_ws: String,
}

fn classes() -> &'static Classes {
    static CLASSES: std::sync::OnceLock<Classes> = std::sync::OnceLock::new();
    CLASSES.get_or_init(|| {
        let mut sets: [Class; 9] = Default::default();
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let ws = c.is_whitespace();
            let name_refused = refused_in_names(c).is_some();
            let body_refused = !allowed_in_bodies(c);
            let note_refused = !allowed_in_notes(c);
            let flags = [
                ws,
                c.is_control(),
                name_refused,
                name_refused || ws,
                body_refused,
                body_refused || ws,
                !reactions::allowed_in_emoji(c),
                note_refused,
                note_refused || ws,
            ];
            for (set, on) in sets.iter_mut().zip(flags) {
                if on {
                    set.add(c);
                }
            }
        }
        let [ws, control, name_refused, name_refused_or_ws, body_refused, body_refused_or_ws, emoji_refused, note_refused, note_refused_or_ws] =
            sets.map(Class::finish);
        Classes {
            ws,
            control,
            name_refused,
            name_refused_or_ws,
            body_refused,
            body_refused_or_ws,
            emoji_refused,
            note_refused,
            note_refused_or_ws,
        }
    })
}

/// Text shown to people (`human_text`): trimmed of whitespace, then 1 to `max` characters that
/// `refused_in_names` lets through.
fn name(max: usize) -> Value {
    let Classes {
        ws,
        name_refused: refused,
        name_refused_or_ws: refused_or_ws,
        ..
    } = classes();
    let inner = max.saturating_sub(2);
    json!({
        "pattern": format!(
            "^[{ws}]*[^{refused_or_ws}](?:[^{refused}]{{0,{inner}}}[^{refused_or_ws}])?[{ws}]*$"
        ),
        "description": format!(
            "1-{max} characters once trimmed; no control, invisible or text-direction characters"
        ),
    })
}

/// A username as typed: trimmed and lower-cased by the server.
fn username() -> Value {
    let ws = &classes().ws;
    let mut allowed = Class::default();
    (0..128u8)
        .map(char::from)
        .filter(|c| Username::allowed(c.to_ascii_lowercase()))
        .for_each(|c| allowed.add(c));
    let allowed = allowed.finish();
    json!({
        "pattern": format!(
            "^[{ws}]*[{allowed}]{{{},{}}}[{ws}]*$",
            Username::MIN_CHARS,
            Username::MAX_CHARS
        ),
        "description": "3-32 of a-z, 0-9, '_', '.', '-' (compared in lower case)",
    })
}

fn password() -> Value {
    let refused = &classes().control;
    json!({
        "minLength": Password::MIN_CHARS,
        "maxLength": Password::MAX_CHARS,
        "pattern": format!("^[^{refused}]*$"),
        "description": "8-1024 characters, no control characters; a new one must also be hard to guess (zxcvbn score 2 or more, the username counted as a known word)",
    })
}

fn message_body() -> Value {
    let Classes {
        body_refused: refused,
        body_refused_or_ws: refused_or_ws,
        ..
    } = classes();
    json!({
        "minLength": 1,
        "maxLength": crate::domain::MessageBody::MAX_CHARS,
        "pattern": format!("^[^{refused}]*[^{refused_or_ws}][^{refused}]*$"),
    })
}

/// A note for the admins (`Note`): trimmed, then 1-1000 characters, line breaks and tabs allowed.
fn note() -> Value {
    let Classes {
        ws,
        note_refused: refused,
        note_refused_or_ws: refused_or_ws,
        ..
    } = classes();
    let inner = Note::MAX_CHARS.saturating_sub(2);
    json!({
        "pattern": format!(
            "^[{ws}]*[^{refused_or_ws}](?:[^{refused}]{{0,{inner}}}[^{refused_or_ws}])?[{ws}]*$"
        ),
        "description": format!(
            "1-{} characters once trimmed; line breaks and tabs, but no other control character and no invisible or text-direction character",
            Note::MAX_CHARS
        ),
    })
}

/// A cursor: the decimal id of an event.
fn cursor() -> Value {
    json!({ "pattern": "^[0-9]{1,18}$" })
}

fn range(min: i64, max: i64) -> Value {
    json!({ "minimum": min, "maximum": max })
}

/// A property of a component schema: (schema, property, constraints).
fn properties() -> Vec<(&'static str, &'static str, Value)> {
    let scopes = json!({ "minItems": 1, "items": { "enum": ["read", "send"] } });
    vec![
        ("RegisterBody", "username", username()),
        ("RegisterBody", "password", password()),
        ("RegisterBody", "display_name", name(DisplayName::MAX_CHARS)),
        ("LoginBody", "username", json!({ "maxLength": 1024 })),
        (
            "LoginBody",
            "password",
            json!({ "maxLength": Password::MAX_CHARS }),
        ),
        (
            "PasswordBody",
            "current_password",
            json!({ "maxLength": Password::MAX_CHARS }),
        ),
        ("PasswordBody", "new_password", password()),
        ("ProfileBody", "display_name", name(DisplayName::MAX_CHARS)),
        ("BotBody", "username", username()),
        ("BotBody", "display_name", name(DisplayName::MAX_CHARS)),
        ("CreateBody", "name", name(RoomName::MAX_CHARS)),
        (
            "CreateBody",
            "member_ids",
            json!({ "maxItems": rooms::MAX_INITIAL_MEMBERS - 1 }),
        ),
        ("RenameBody", "name", name(RoomName::MAX_CHARS)),
        ("RoleBody", "role", json!({ "enum": Role::names() })),
        ("SendBody", "body", message_body()),
        (
            "SendBody",
            "attachment_ids",
            json!({ "maxItems": messages::MAX_ATTACHMENTS }),
        ),
        (
            "SendBody",
            "mention_ids",
            json!({ "maxItems": messages::MAX_MENTIONS }),
        ),
        ("EditBody", "body", message_body()),
        ("ReportBody", "reason", note()),
        ("ResolveBody", "resolution", note()),
        (
            "InviteBody",
            "uses",
            range(1, admin::MAX_INVITE_USES as i64),
        ),
        (
            "InviteBody",
            "expires_in",
            json!({ "pattern": "^[0-9]{1,8}[smhd]$" }),
        ),
        (
            "NotificationsBody",
            "level",
            json!({ "enum": NotifyLevel::names() }),
        ),
        (
            "NotificationsBody",
            "muted_until",
            json!({ "format": "date-time" }),
        ),
        ("TokenBody", "name", name(Label::MAX_CHARS)),
        ("TokenBody", "scopes", scopes),
        (
            "TokenBody",
            "expires_in_s",
            range(1, tokens::MAX_EXPIRES_IN_S),
        ),
        (
            "SubscribeBody",
            "kind",
            json!({ "enum": PushKind::names() }),
        ),
        (
            "SubscribeBody",
            "endpoint",
            json!({ "maxLength": push::MAX_ENDPOINT_BYTES, "format": "uri" }),
        ),
        (
            "SubscribeBody",
            "token",
            json!({ "pattern": format!("^[!-~]{{1,{}}}$", push::MAX_FCM_TOKEN_BYTES) }),
        ),
    ]
}

/// A parameter of an operation: (operation id, parameter, constraints on its schema).
fn parameters() -> Vec<(&'static str, &'static str, Value)> {
    let refused = &classes().emoji_refused;
    let emoji = json!({
        "pattern": format!("^[^{refused}]{{1,{}}}$", reactions::MAX_EMOJI_CHARS),
    });
    let ws = &classes().ws;
    let key = json!({ "pattern": format!("^[!-~]{{1,{}}}$", messages::MAX_KEY_LEN) });
    vec![
        ("messages_history", "limit", range(1, messages::MAX_PAGE)),
        ("accounts_search", "limit", range(1, accounts::MAX_SEARCH)),
        (
            "accounts_search",
            "prefix",
            json!({ "pattern": format!("^[{ws}]*[A-Za-z0-9_.\\-]{{1,{}}}[{ws}]*$", Username::MAX_CHARS) }),
        ),
        (
            "accounts_search",
            "after",
            json!({ "pattern": "^[a-z0-9_.\\-]*$" }),
        ),
        ("poll_events", "since", cursor()),
        (
            "poll_events",
            "timeout",
            range(0, poll::MAX_TIMEOUT_S as i64),
        ),
        ("stream_connect", "since", cursor()),
        ("messages_react", "emoji", emoji.clone()),
        ("messages_unreact", "emoji", emoji),
        ("messages_send", "Idempotency-Key", key),
        (
            "admin_reports",
            "status",
            json!({ "enum": ["open", "resolved", "all"] }),
        ),
        ("admin_reports", "limit", range(1, reports::MAX_PAGE)),
        ("admin_users", "limit", range(1, admin::MAX_LIST)),
        (
            "search_messages",
            "limit",
            range(1, crate::core::search::MAX_PAGE),
        ),
        (
            "search_messages",
            "q",
            json!({ "minLength": crate::domain::search::MIN_TERM_CHARS, "maxLength": crate::domain::search::MAX_QUERY_CHARS }),
        ),
        (
            "admin_users",
            "q",
            json!({ "pattern": format!("^[{ws}]*[A-Za-z0-9_.\\-]{{0,{}}}[{ws}]*$", Username::MAX_CHARS) }),
        ),
        (
            "admin_users",
            "after",
            json!({ "pattern": format!("^[a-z0-9_.\\-]{{0,{}}}$", Username::MAX_CHARS) }),
        ),
    ]
}

fn merge(target: &mut Value, extra: &Value) {
    if let (Some(target), Some(extra)) = (target.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            match (target.get_mut(k), v) {
                (Some(t @ Value::Object(_)), Value::Object(_)) => merge(t, v),
                _ => {
                    target.insert(k.clone(), v.clone());
                }
            }
        }
    }
}

/// Applies every constraint to `doc` (the document as JSON). Panics if one names a schema,
/// property, operation or parameter the document lacks, so a rename can't silently drop it
/// (the unit test below runs this).
pub fn tighten(doc: &mut Value) {
    for (schema, property, extra) in properties() {
        let target = doc
            .pointer_mut(&format!(
                "/components/schemas/{schema}/properties/{property}"
            ))
            .unwrap_or_else(|| panic!("no property {schema}.{property} in the document"));
        merge(target, &extra);
    }
    let mut found = Vec::new();
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for operation in paths.values_mut().filter_map(Value::as_object_mut) {
            for op in operation.values_mut() {
                let id = op["operationId"].as_str().unwrap_or_default().to_string();
                let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
                    continue;
                };
                for param in params {
                    let name = param["name"].as_str().unwrap_or_default().to_string();
                    for (op_id, p, extra) in parameters() {
                        if op_id == id && p == name {
                            merge(&mut param["schema"], &extra);
                            found.push((op_id, p));
                        }
                    }
                }
            }
        }
    }
    for (op_id, p, _) in parameters() {
        assert!(
            found.contains(&(op_id, p)),
            "no parameter {p} of {op_id} in the document"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_list_ranges_and_escape_what_a_class_needs() {
        assert_eq!(class(|c| c.is_ascii_digit()), "0-9");
        assert_eq!(class(|c| matches!(c, 'a' | 'b' | '-' | ']')), "\\-\\]ab");
        assert_eq!(class(|c| matches!(c, 'x' | 'z')), "xz");
    }

    #[test]
    fn every_constraint_lands_in_the_document() {
        let mut doc =
            serde_json::to_value(crate::server::api::openapi::ApiDoc::generated()).unwrap();
        tighten(&mut doc);
        let role = &doc["components"]["schemas"]["RoleBody"]["properties"]["role"];
        assert_eq!(role["enum"], json!(["owner", "admin", "member"]));
    }
}

#[cfg(test)]
mod refs {
    /// Every `$ref` of the document names a schema it defines (a typed field's enum included).
    #[test]
    fn every_reference_resolves() {
        let doc = serde_json::to_value(crate::server::api::openapi::document()).unwrap();
        let mut refs = Vec::new();
        fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(map) => {
                    if let Some(r) = map.get("$ref").and_then(|r| r.as_str()) {
                        out.push(r.to_string());
                    }
                    map.values().for_each(|v| walk(v, out));
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        walk(&doc, &mut refs);
        for r in refs {
            let pointer = r.trim_start_matches('#');
            assert!(doc.pointer(pointer).is_some(), "{r} is not defined");
        }
        let role = &doc["components"]["schemas"]["Role"]["enum"];
        assert_eq!(role, &serde_json::json!(["owner", "admin", "member"]));
    }
}
