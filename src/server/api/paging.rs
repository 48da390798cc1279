//! The `limit` of a page, the same rule on every list: absent is the list's default, anything
//! but a whole number from 1 to its maximum is 400 `invalid_query`.

use crate::error::Error;

/// The page size `raw` asks for.
pub fn limit(raw: Option<&str>, default: i64, max: i64) -> Result<i64, Error> {
    match raw {
        None => Ok(default),
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                Error::bad_request(
                    "invalid_query",
                    format!("limit must be a number from 1 to {max}"),
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_is_the_default_or_a_number_within_the_maximum() {
        assert_eq!(limit(None, 20, 50).unwrap(), 20);
        assert_eq!(limit(Some("50"), 20, 50).unwrap(), 50);
        for bad in ["0", "51", "-1", "ten", ""] {
            assert!(limit(Some(bad), 20, 50).is_err(), "{bad}");
        }
    }
}
