//! A message search's words (`SearchQuery`), and the snippet that shows where they matched.
//!
//! Both backends' indexes split a body into words (runs of letters, digits and marks of any
//! script) and a search word matches the words it begins: "서울" finds "서울에서", "hello" finds
//! "Hello,". The query is split the same way here, so what reaches the database is only words
//! (no operator or quote of either engine's syntax), and the snippet highlights what matched.

use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

/// The most characters a query may have.
pub const MAX_QUERY_CHARS: usize = 100;
/// The most distinct words a query may have (each is one more index lookup).
pub const MAX_TERMS: usize = 5;
/// The fewest characters a search word needs: shorter words are left out of the query (a
/// one-character prefix would match a large share of every index).
pub const MIN_TERM_CHARS: usize = 2;
/// About how many characters a snippet shows.
pub const SNIPPET_CHARS: usize = 160;

/// Whether `c` belongs to a word (letters, digits, marks, private use), as the indexes see it.
pub fn is_word_char(c: char) -> bool {
    matches!(
        c.general_category_group(),
        GeneralCategoryGroup::Letter | GeneralCategoryGroup::Number | GeneralCategoryGroup::Mark
    ) || c.general_category() == unicode_properties::GeneralCategory::PrivateUse
}

/// A valid search: 1 to [`MAX_TERMS`] distinct lower-case words of [`MIN_TERM_CHARS`] or more,
/// all of which a message must contain (each as the beginning of one of its words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    terms: Vec<String>,
}

impl SearchQuery {
    /// Parses the `q` a client sent; the error says what is wrong with it.
    pub fn parse(raw: &str) -> Result<SearchQuery, String> {
        if raw.chars().count() > MAX_QUERY_CHARS {
            return Err(format!("must be at most {MAX_QUERY_CHARS} characters"));
        }
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("must not be empty".into());
        }
        let mut terms: Vec<String> = Vec::new();
        for word in raw.split(|c: char| !is_word_char(c)) {
            if word.chars().count() < MIN_TERM_CHARS {
                continue;
            }
            let lower = word.to_lowercase();
            if !terms.contains(&lower) {
                terms.push(lower);
            }
        }
        if terms.is_empty() {
            return Err(format!(
                "needs a word of at least {MIN_TERM_CHARS} letters or digits"
            ));
        }
        if terms.len() > MAX_TERMS {
            return Err(format!("may have at most {MAX_TERMS} words"));
        }
        Ok(SearchQuery { terms })
    }

    /// The words, lower-case, each made of word characters only.
    pub fn terms(&self) -> &[String] {
        &self.terms
    }
}

/// A piece of a snippet: text, and whether it is (the matched start of) a search word.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Segment {
    pub text: String,
    /// true for the part of a word that a search word matched.
    pub hit: bool,
}

/// The part of `body` around the first match, cut into segments: the start of each word that
/// begins with a search word is a hit. A cut end is marked with "…".
pub fn snippet(body: &str, query: &SearchQuery) -> Vec<Segment> {
    let chars: Vec<char> = body.chars().collect();
    // Hits as (start, end) character positions, in order.
    let mut hits: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !is_word_char(chars[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && is_word_char(chars[i]) {
            i += 1;
        }
        if let Some(len) = longest_prefix_match(&chars[start..i], query.terms()) {
            hits.push((start, start + len));
        }
    }
    let (from, to) = window(&chars, hits.first().map(|h| h.0));
    let mut out: Vec<Segment> = Vec::new();
    let mut push = |text: String, hit: bool| {
        if text.is_empty() {
            return;
        }
        match out.last_mut() {
            Some(last) if last.hit == hit => last.text.push_str(&text),
            _ => out.push(Segment { text, hit }),
        }
    };
    if from > 0 {
        push("…".into(), false);
    }
    let mut at = from;
    for (start, end) in hits {
        if end <= from || start >= to {
            continue;
        }
        let (start, end) = (start.max(from), end.min(to));
        push(chars[at..start].iter().collect(), false);
        push(chars[start..end].iter().collect(), true);
        at = end;
    }
    push(chars[at..to].iter().collect(), false);
    if to < chars.len() {
        push("…".into(), false);
    }
    out
}

/// How many characters of `word` the longest matching search word covers, if one matches.
fn longest_prefix_match(word: &[char], terms: &[String]) -> Option<usize> {
    let mut lower = String::new();
    let mut best = None;
    for (n, c) in word.iter().enumerate() {
        lower.extend(c.to_lowercase());
        if terms.contains(&lower) {
            best = Some(n + 1);
        }
        if !terms.iter().any(|t| t.starts_with(lower.as_str())) {
            break;
        }
    }
    best
}

/// The character range a snippet shows: the whole body when it is short, else about
/// [`SNIPPET_CHARS`] starting a little before the first hit, cut at spaces where there are.
fn window(chars: &[char], first_hit: Option<usize>) -> (usize, usize) {
    if chars.len() <= SNIPPET_CHARS {
        return (0, chars.len());
    }
    let lead = SNIPPET_CHARS / 4;
    let mut from = first_hit.unwrap_or(0).saturating_sub(lead);
    if from > 0 {
        // Start at a word's beginning if one is near.
        if let Some(space) = (from..first_hit.unwrap_or(from)).find(|&k| chars[k].is_whitespace()) {
            from = space + 1;
        }
    }
    let mut to = (from + SNIPPET_CHARS).min(chars.len());
    if to < chars.len() {
        if let Some(space) = (from + SNIPPET_CHARS / 2..to)
            .rev()
            .find(|&k| chars[k].is_whitespace())
        {
            to = space;
        }
    }
    (from, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(raw: &str) -> SearchQuery {
        SearchQuery::parse(raw).unwrap()
    }

    #[test]
    fn a_query_keeps_only_words_of_two_characters_or_more() {
        assert_eq!(q("Hello, WORLD!").terms(), ["hello", "world"]);
        assert_eq!(q("안녕 a 서울에서").terms(), ["안녕", "서울에서"]);
        // Operators and quotes of either engine are separators, not syntax.
        assert_eq!(
            q("\"foo\" OR bar* -baz:*").terms(),
            ["foo", "or", "bar", "baz"]
        );
        assert_eq!(q("hello hello").terms(), ["hello"]);
    }

    #[test]
    fn empty_short_long_or_wordy_queries_are_refused() {
        assert!(SearchQuery::parse("   ").is_err());
        assert!(SearchQuery::parse("a b c ! ?").is_err());
        assert!(SearchQuery::parse(&"a".repeat(MAX_QUERY_CHARS + 1)).is_err());
        assert!(SearchQuery::parse("one two three four five six").is_err());
        assert!(SearchQuery::parse("one two three four five").is_ok());
    }

    #[test]
    fn the_snippet_marks_the_matched_start_of_each_word() {
        let s = snippet("우리는 서울에서 만나요, Hello!", &q("서울 hello"));
        let hits: Vec<&str> = s
            .iter()
            .filter(|g| g.hit)
            .map(|g| g.text.as_str())
            .collect();
        assert_eq!(hits, ["서울", "Hello"]);
        let all: String = s.iter().map(|g| g.text.as_str()).collect();
        assert_eq!(all, "우리는 서울에서 만나요, Hello!");
    }

    #[test]
    fn a_long_body_is_cut_around_the_first_hit() {
        let body = format!("{} needle {}", "word ".repeat(100), "tail ".repeat(100));
        let s = snippet(&body, &q("needle"));
        assert_eq!(s.first().map(|g| g.text.starts_with('…')), Some(true));
        assert!(s.iter().any(|g| g.hit && g.text == "needle"));
        let len: usize = s.iter().map(|g| g.text.chars().count()).sum();
        assert!(len <= SNIPPET_CHARS + 2, "{len}");
    }
}
