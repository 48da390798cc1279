//! Text values with their rules. Each `parse` returns the reason a value is refused, which the
//! API reports per field.

/// A login name: 3–32 of `a-z 0-9 _ . -`, compared and stored in lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub const MIN_CHARS: usize = 3;
    pub const MAX_CHARS: usize = 32;

    pub fn parse(raw: &str) -> Result<Username, String> {
        let name = raw.trim().to_lowercase();
        let len = name.chars().count();
        if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&len) {
            return Err(format!(
                "must be {} to {} characters",
                Self::MIN_CHARS,
                Self::MAX_CHARS
            ));
        }
        if !name.chars().all(Username::allowed) {
            return Err("may contain only letters a-z, digits, '_', '.' and '-'".into());
        }
        Ok(Username(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `c` may appear in a (lower-cased) username.
    pub fn allowed(c: char) -> bool {
        c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-')
    }
}

/// A password as typed: 8–1024 characters. Never logged, never stored (only its argon2id hash).
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 1024;

    pub fn parse(raw: &str) -> Result<Password, String> {
        let len = raw.chars().count();
        if len < Self::MIN_CHARS {
            return Err(format!("must be at least {} characters", Self::MIN_CHARS));
        }
        if len > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        if raw.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Password(raw.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether a new password is hard enough to guess for `username`'s account: zxcvbn's
    /// estimate (over its first 100 characters, so at most a few milliseconds) must need more
    /// than 10^6 guesses, counting the username as a known word. The reason names what is weak.
    /// Login never asks this: an old password keeps working.
    pub fn check_strength(&self, username: &str) -> Result<(), String> {
        let estimate = zxcvbn::zxcvbn(&self.0, &[username]);
        if estimate.score() >= zxcvbn::Score::Two {
            return Ok(());
        }
        let feedback = estimate.feedback();
        let warning = feedback.and_then(|f| f.warning()).map(|w| w.to_string());
        let suggestion = feedback
            .and_then(|f| f.suggestions().first())
            .map(|s| s.to_string());
        let why = [warning, suggestion]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        Err(if why.is_empty() {
            "is too easy to guess".into()
        } else {
            format!("is too easy to guess: {why}")
        })
    }
}

/// Why a character may not appear in text shown to people, if it may not: control characters
/// (C0, DEL, C1: a NUL even breaks PostgreSQL's text type), and the invisible format characters
/// (Unicode category Cf: bidirectional overrides like U+202E, zero-width spaces, U+FEFF) and line
/// separators that let one name pass for another. The zero-width (non-)joiners stay: emoji
/// sequences and several scripts need them.
pub fn refused_in_names(c: char) -> Option<&'static str> {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    if c.is_control() {
        return Some("must not contain control characters");
    }
    match c.general_category() {
        GeneralCategory::Format if !matches!(c, '\u{200C}' | '\u{200D}') => {
            Some("must not contain invisible or text-direction characters")
        }
        GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator => {
            Some("must not contain line breaks")
        }
        _ => None,
    }
}

/// Text shown to people: trimmed, not empty, at most `max` characters, none of them refused by
/// `refused_in_names`.
fn human_text(raw: &str, max: usize) -> Result<String, String> {
    let text = raw.trim();
    if text.is_empty() {
        return Err("must not be empty".into());
    }
    if text.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if let Some(why) = text.chars().find_map(refused_in_names) {
        return Err(why.into());
    }
    Ok(text.to_string())
}

/// Whether `c` may appear in text where line breaks and tabs belong (a message): any character
/// but the controls other than those.
pub fn allowed_in_bodies(c: char) -> bool {
    !c.is_control() || matches!(c, '\n' | '\r' | '\t')
}

/// Checks text that a person typed where line breaks and tabs belong (a message): no other
/// control character (NUL, ESC, …).
fn no_controls_but_whitespace(text: &str) -> Result<(), String> {
    match text.chars().find(|c| !allowed_in_bodies(*c)) {
        Some('\0') => Err("must not contain NUL characters".into()),
        Some(_) => {
            Err("must not contain control characters other than line breaks and tabs".into())
        }
        None => Ok(()),
    }
}

/// A label only its owner sees (a token's name): 1–100 characters, the rules of shown text.
pub struct Label(String);

impl Label {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Label, String> {
        human_text(raw, Self::MAX_CHARS).map(Label)
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// The name shown for a user: 1–64 characters.
#[derive(Debug, Clone)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(raw: &str) -> Result<DisplayName, String> {
        human_text(raw, Self::MAX_CHARS).map(DisplayName)
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A group room's name: 1–100 characters.
#[derive(Debug, Clone)]
pub struct RoomName(String);

impl RoomName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<RoomName, String> {
        human_text(raw, Self::MAX_CHARS).map(RoomName)
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A message's text: 1–4000 characters (Unicode scalar values), not blank, no control character
/// but line breaks and tabs.
/// Kept as sent (line breaks and indentation matter in chat), apart from that check.
#[derive(Debug, Clone)]
pub struct MessageBody(String);

impl MessageBody {
    pub const MAX_CHARS: usize = 4000;

    pub fn parse(raw: &str) -> Result<MessageBody, String> {
        if raw.trim().is_empty() {
            return Err("must not be blank".into());
        }
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        no_controls_but_whitespace(raw)?;
        Ok(MessageBody(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `c` may appear in a note for the admins (a report's reason, its resolution): what
/// `refused_in_names` lets through, plus line breaks and tabs.
pub fn allowed_in_notes(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\t') || refused_in_names(c).is_none()
}

/// A note for the admins (a report's reason, a resolution): trimmed, 1–1000 characters, line
/// breaks and tabs allowed, but no other control character and no invisible or text-direction
/// character (an admin must read what was written).
#[derive(Debug, Clone)]
pub struct Note(String);

impl Note {
    pub const MAX_CHARS: usize = 1000;

    pub fn parse(raw: &str) -> Result<Note, String> {
        let text = raw.trim();
        if text.is_empty() {
            return Err("must not be blank".into());
        }
        if text.chars().count() > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        if let Some(c) = text.chars().find(|c| !allowed_in_notes(*c)) {
            return Err(refused_in_names(c)
                .unwrap_or("must not contain control characters")
                .into());
        }
        Ok(Note(text.to_string()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lowercased_and_checked() {
        assert_eq!(Username::parse(" Alice ").unwrap().as_str(), "alice");
        assert!(Username::parse("al").is_err());
        assert!(Username::parse("a b c").is_err());
        assert!(Username::parse(&"x".repeat(33)).is_err());
    }

    #[test]
    fn names_refuse_controls_and_invisible_or_direction_characters() {
        for bad in [
            "a\0b",
            "a\u{1b}b",
            "a\u{85}b",
            "abc\u{202E}gpj.exe",
            "ad\u{200B}min",
            "\u{FEFF}x",
            "a\u{2028}b",
        ] {
            assert!(DisplayName::parse(bad).is_err(), "{bad:?}");
            assert!(RoomName::parse(bad).is_err(), "{bad:?}");
            assert!(Label::parse(bad).is_err(), "{bad:?}");
        }
        for good in ["Zoë", "👩\u{200D}💻 dev", "می\u{200C}خواهم", "日本語"] {
            assert!(DisplayName::parse(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn message_bodies_keep_line_breaks_and_tabs_but_no_other_control() {
        assert!(MessageBody::parse("line\r\n\tindented").is_ok());
        assert!(MessageBody::parse("nul\0").is_err());
        assert!(MessageBody::parse("esc\u{1b}[31m").is_err());
    }

    #[test]
    fn weak_passwords_and_the_username_are_refused_with_a_reason() {
        for (weak, user) in [
            ("12345678", "carol"),
            ("aaaaaaaa", "carol"),
            ("        ", "carol"),
            ("password1", "carol"),
            ("carolcarol", "carol"),
        ] {
            let why = Password::parse(weak)
                .unwrap()
                .check_strength(user)
                .unwrap_err();
            assert!(why.starts_with("is too easy to guess"), "{weak}: {why}");
        }
        for strong in ["correct horse", "pw-carol-secret", "bench-password-1"] {
            assert!(
                Password::parse(strong)
                    .unwrap()
                    .check_strength("carol")
                    .is_ok(),
                "{strong}"
            );
        }
    }

    #[test]
    fn notes_keep_line_breaks_but_refuse_controls_and_direction_characters() {
        assert_eq!(
            Note::parse(" spam\n\tlinks ").unwrap().into_inner(),
            "spam\n\tlinks"
        );
        assert!(Note::parse(" \n ").is_err());
        assert!(Note::parse("a\0b").is_err());
        assert!(Note::parse("abc\u{202E}def").is_err());
        assert!(Note::parse(&"é".repeat(1000)).is_ok());
        assert!(Note::parse(&"é".repeat(1001)).is_err());
    }

    #[test]
    fn message_bodies_count_characters_not_bytes() {
        assert!(MessageBody::parse(&"é".repeat(4000)).is_ok());
        assert!(MessageBody::parse(&"é".repeat(4001)).is_err());
        assert!(MessageBody::parse("  \n ").is_err());
    }
}
