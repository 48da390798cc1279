//! The JSON body extractor. Unlike `web::Json`, it takes only an object (serde would read
//! `["a room"]` into a struct, field by field), and its errors name the field that doesn't fit,
//! never a Rust type.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use serde::de::DeserializeOwned;

use crate::error::Error;

/// A request body of type `T`, read from a JSON object (size and content type as `JsonConfig`
/// says, with its error handler).
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let value = web::Json::<serde_json::Value>::from_request(req, payload);
        Box::pin(async move {
            let web::Json(value) = value.await?;
            Ok(Json(parse(value)?))
        })
    }
}

/// `value` as a `T`: an object whose fields fit, or 400 `invalid_body` naming the field.
pub fn parse<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, Error> {
    if !value.is_object() {
        return Err(Error::bad_request(
            "invalid_body",
            "the body must be a JSON object",
        ));
    }
    let mut value = value;
    integral_floats_to_integers(&mut value);
    serde_path_to_error::deserialize(value).map_err(|err| {
        let message = plain(&err.inner().to_string());
        let path = err.path().to_string();
        // A missing or unknown field fails at the object itself; the message names it.
        let field = if path == "." {
            between_backticks(&message).unwrap_or_default()
        } else {
            path
        };
        if field.is_empty() {
            return Error::bad_request("invalid_body", format!("the body doesn't fit: {message}"));
        }
        Error::bad_request("invalid_body", format!("`{field}` doesn't fit: {message}"))
            .and(&field, message)
    })
}

/// JSON has one number type: `43.0` is the integer 43 to JSON Schema (and to JavaScript), but
/// serde refuses it for an integer field. Whole floats in the i64 range become integers.
fn integral_floats_to_integers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64() {
                if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 {
                    *value = serde_json::Value::from(f as i64);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        serde_json::Value::Object(map) => map.values_mut().for_each(integral_floats_to_integers),
        _ => {}
    }
}

/// serde's message without the Rust type it names (`expected struct SendBody` → `expected an
/// object`).
fn plain(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = ["struct ", "enum ", "tuple struct "]
        .iter()
        .filter_map(|kind| rest.find(kind).map(|i| (i, *kind)))
        .min()
    {
        let (i, kind) = at;
        out.push_str(&rest[..i]);
        out.push_str(if kind == "enum " {
            "one of the documented values"
        } else {
            "an object"
        });
        let after = &rest[i + kind.len()..];
        let name_len = after
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        rest = &after[name_len..];
    }
    out.push_str(rest);
    out
}

fn between_backticks(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        inner: Option<Inner>,
    }

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Inner {
        n: u8,
    }

    fn refused(value: serde_json::Value) -> Error {
        parse::<Body>(value).unwrap_err()
    }

    #[test]
    fn an_array_is_not_an_object() {
        let err = refused(json!(["a room"]));
        assert_eq!(
            (err.class, err.code),
            (crate::error::Class::BadRequest, "invalid_body")
        );
        assert!(err.message.contains("JSON object"), "{}", err.message);
        assert!(parse::<Body>(json!({"name": "a room"})).is_ok());
    }

    #[test]
    fn errors_name_the_field_and_no_rust_type() {
        for (value, field) in [
            (json!({}), "name"),
            (json!({"name": 5}), "name"),
            (json!({"name": "x", "inner": "y"}), "inner"),
            (json!({"name": "x", "inner": {"n": 300}}), "inner.n"),
        ] {
            let err = refused(value.clone());
            let fields = err.fields.clone().expect("fields");
            assert!(fields.contains_key(field), "{value}: {fields:?}");
            for text in [&err.message, &fields[field]] {
                assert!(
                    !text.contains("Body") && !text.contains("Inner"),
                    "{value}: {text}"
                );
            }
        }
    }

    #[test]
    fn a_whole_float_is_an_integer_as_in_json_schema() {
        #[derive(Deserialize)]
        struct Ttl {
            expires_in_s: i64,
        }
        let ttl: Ttl = parse(json!({ "expires_in_s": 43.0 })).unwrap();
        assert_eq!(ttl.expires_in_s, 43);
        assert!(parse::<Ttl>(json!({ "expires_in_s": 43.5 })).is_err());
    }

    #[test]
    fn plain_drops_type_names() {
        assert_eq!(
            plain("invalid type: string \"x\", expected struct Inner"),
            "invalid type: string \"x\", expected an object"
        );
        assert_eq!(plain("missing field `name`"), "missing field `name`");
    }
}
