//! Where settings come from: a TOML file (`--config FILE` or `HUBBUB_CONFIG`) whose keys are the
//! settings' names without the `HUBBUB_` prefix, in lower case (`listen = "0.0.0.0:8080"`), and
//! the `HUBBUB_*` environment variables, which override it. Every value is handed to
//! [`Settings`](super::Settings) as the text an environment variable would hold, so that a
//! setting is parsed, checked and documented once whichever way it came.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::{Known, Settings};

/// Where one value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Environment,
    File { path: PathBuf, line: usize },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Environment => f.write_str("the environment"),
            Origin::File { path, line } => write!(f, "{} line {line}", path.display()),
        }
    }
}

/// The values given, by variable name (`HUBBUB_LISTEN`), with where each came from.
#[derive(Debug, Default)]
pub struct Sources {
    values: BTreeMap<String, (String, Origin)>,
    file: Option<PathBuf>,
}

/// The file's key for a variable: `HUBBUB_LISTEN` → `listen`.
pub fn file_key(variable: &str) -> String {
    variable
        .strip_prefix("HUBBUB_")
        .unwrap_or(variable)
        .to_ascii_lowercase()
}

/// The line (from 1) of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

impl Sources {
    /// The file (if any) under the environment's `HUBBUB_*` variables.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Sources> {
        let mut sources = Sources::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the settings file {}", path.display()))?;
            sources.add_file(path, &text)?;
        }
        for (key, value) in env {
            if key.starts_with("HUBBUB_") && key != "HUBBUB_CONFIG" {
                sources.values.insert(key, (value, Origin::Environment));
            }
        }
        Ok(sources)
    }

    /// Reads a file's settings: a flat table of strings, whole numbers, booleans, or arrays of
    /// strings (a list setting such as `allowed_origins`).
    fn add_file(&mut self, path: &Path, text: &str) -> anyhow::Result<()> {
        let table: BTreeMap<String, toml::Spanned<toml::Value>> =
            toml::from_str(text).map_err(|e| {
                let at = e
                    .span()
                    .map(|s| format!(" line {}", line_of(text, s.start)))
                    .unwrap_or_default();
                anyhow::anyhow!("{}{at}: {}", path.display(), e.message())
            })?;
        for (key, spanned) in table {
            let line = line_of(text, spanned.span().start);
            let origin = Origin::File {
                path: path.to_path_buf(),
                line,
            };
            let value = match spanned.into_inner() {
                toml::Value::String(s) => s,
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Array(items) => {
                    let mut list = Vec::with_capacity(items.len());
                    for item in items {
                        match item {
                            toml::Value::String(s) => list.push(s),
                            other => bail!(
                                "`{key}` ({origin}): a list holds strings, not {}",
                                other.type_str()
                            ),
                        }
                    }
                    list.join(",")
                }
                other => bail!(
                    "`{key}` ({origin}): expected a string, a whole number, true/false or a \
                     list of strings, not {}",
                    other.type_str()
                ),
            };
            let variable = format!("HUBBUB_{}", key.to_ascii_uppercase());
            self.values.insert(variable, (value, origin));
        }
        self.file = Some(path.to_path_buf());
        Ok(())
    }

    /// The value of a variable, from the environment or else the file.
    pub fn get(&self, variable: &str) -> Option<String> {
        self.values.get(variable).map(|(v, _)| v.clone())
    }

    pub fn origin(&self, variable: &str) -> Option<&Origin> {
        self.values.get(variable).map(|(_, o)| o)
    }

    /// The settings, checked: a key of the file that names no setting is an error (a typo would
    /// otherwise be ignored), and an error about a value says where the value came from.
    pub fn settings(&self) -> anyhow::Result<(Settings, Vec<Known>)> {
        let known = Settings::known();
        let mut unknown: Vec<String> = self
            .values
            .iter()
            .filter(|(variable, (_, origin))| {
                matches!(origin, Origin::File { .. }) && !known.iter().any(|k| k.key == *variable)
            })
            .map(|(variable, (_, origin))| format!("`{}` ({origin})", file_key(variable)))
            .collect();
        if !unknown.is_empty() {
            unknown.sort();
            bail!(
                "unknown setting{} {}: the settings are in docs/operations.md",
                if unknown.len() == 1 { "" } else { "s" },
                unknown.join(", ")
            );
        }
        Settings::read(|key| self.get(key)).map_err(|e| self.locate(e))
    }

    /// The error, with where the setting it names came from.
    fn locate(&self, error: anyhow::Error) -> anyhow::Error {
        let text = format!("{error:#}");
        let named = self
            .values
            .iter()
            .filter(|(variable, _)| text.contains(variable.as_str()))
            .max_by_key(|(variable, _)| variable.len());
        match named {
            Some((variable, (_, Origin::File { path, line }))) => anyhow::anyhow!(
                "{text} (`{}` in {} line {line})",
                file_key(variable),
                path.display()
            ),
            Some((_, (_, Origin::Environment))) => {
                anyhow::anyhow!("{text} (from the environment)")
            }
            None => error,
        }
    }

    /// The file read, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(file: &str, env: &[(&str, &str)]) -> anyhow::Result<Sources> {
        let dir = std::env::temp_dir().join(format!("hubbub-config-{}", crate::domain::Id::new()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hubbub.toml");
        std::fs::write(&path, file).unwrap();
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let loaded = Sources::load(Some(&path), env);
        let _ = std::fs::remove_dir_all(&dir);
        loaded
    }

    #[test]
    fn the_file_sets_settings_and_the_environment_overrides_it() {
        let file = "# hubbub\nlisten = \"0.0.0.0:9000\"\nheartbeat_secs = 30\n\
                    allowed_origins = [\"https://a.example\", \"https://b.example\"]\n\
                    push_preview = true\nregistration = \"invite\"\n";
        let s = sources(file, &[("HUBBUB_REGISTRATION", "closed"), ("OTHER", "x")]).unwrap();
        let (settings, _) = s.settings().unwrap();
        assert_eq!(settings.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(settings.heartbeat.as_secs(), 30);
        assert_eq!(
            settings.allowed_origins,
            ["https://a.example", "https://b.example"]
        );
        assert!(settings.push.preview);
        assert_eq!(
            settings.registration,
            super::super::RegistrationMode::Closed,
            "the environment wins"
        );
        assert_eq!(s.origin("HUBBUB_REGISTRATION"), Some(&Origin::Environment));
        assert!(matches!(
            s.origin("HUBBUB_HEARTBEAT_SECS"),
            Some(Origin::File { line: 3, .. })
        ));
        assert_eq!(s.get("OTHER"), None, "only HUBBUB_ variables");
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_it_and_its_line() {
        let s = sources("listen = \"127.0.0.1:1\"\n\nlisen = \"x\"\n", &[]).unwrap();
        let err = s.settings().unwrap_err().to_string();
        assert!(err.contains("`lisen`") && err.contains("line 3"), "{err}");
    }

    #[test]
    fn a_bad_value_is_an_error_naming_the_key_and_where_it_came_from() {
        let s = sources("\nheartbeat_secs = \"soon\"\n", &[]).unwrap();
        let err = s.settings().unwrap_err().to_string();
        assert!(
            err.contains("HUBBUB_HEARTBEAT_SECS")
                && err.contains("`heartbeat_secs`")
                && err.contains("line 2"),
            "{err}"
        );
        let s = sources("", &[("HUBBUB_LISTEN", "nowhere")]).unwrap();
        let err = s.settings().unwrap_err().to_string();
        assert!(err.contains("from the environment"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_toml_or_holds_a_table_is_refused_with_its_line() {
        let err = sources("listen = \n", &[]).unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
        let err = sources("a = 1\n[push]\nworker = true\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`push`") && err.contains("line 2"), "{err}");
    }
}
