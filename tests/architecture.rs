//! The layers, enforced: reads every file under `src/` (tests excluded) and fails on an import
//! that points up a layer, or on actix below the server layer. The layers are written here
//! once; docs/ARCHITECTURE.md shows the same table.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Bottom to top. A module may use the modules of lower layers, and its own; the server layer's
/// modules may also use each other.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "foundation",
        &["domain", "error", "config", "metrics", "limits"],
    ),
    ("store", &["store"]),
    ("log", &["events"]),
    ("rules", &["core"]),
    ("fan-out", &["realtime"]),
    (
        "server",
        &["api", "stream", "upgrade", "state", "app", "main", "lib"],
    ),
];

/// Modules below the server layer may not use these crates.
const SERVER_ONLY_CRATES: &[&str] = &["actix", "actix_web", "actix_ws", "actix_http", "awc"];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, mods)| mods.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's code without its comments and its `#[cfg(test)]` module (the tests at the end).
fn code_of(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::<module>` a file names, as the modules it depends on.
fn crate_modules(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
        rest = after;
    }
    // `use crate::{a, b::c}` names several.
    let mut rest = code;
    while let Some(at) = rest.find("crate::{") {
        let after = &rest[at + "crate::{".len()..];
        let group = &after[..after.find('}').unwrap_or(after.len())];
        for item in group.split(',') {
            let name: String = item
                .trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
        rest = after;
    }
    out
}

/// Whether `code` names the crate `krate` (`krate::…` not preceded by an identifier character).
fn names_crate(code: &str, krate: &str) -> bool {
    let needle = format!("{krate}::");
    code.match_indices(&needle).any(|(at, _)| {
        !code[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
    })
}

/// (file, its module, the modules it uses, whether it names a server-only crate).
fn survey() -> Vec<(PathBuf, String, BTreeSet<String>, Option<String>)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files
        .into_iter()
        .filter(|f| !f.starts_with(src.join("bin")))
        .map(|file| {
            let rel = file.strip_prefix(&src).unwrap().to_path_buf();
            let first = rel.components().next().unwrap().as_os_str();
            let module = first.to_string_lossy().trim_end_matches(".rs").to_string();
            let code = code_of(&std::fs::read_to_string(&file).unwrap());
            let uses = crate_modules(&code);
            let server_crate = SERVER_ONLY_CRATES
                .iter()
                .find(|c| names_crate(&code, c))
                .map(|c| c.to_string());
            (rel, module, uses, server_crate)
        })
        .collect()
}

#[test]
fn every_module_has_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let is_module = |name: &str| src.join(name).is_dir() || src.join(format!("{name}.rs")).exists();
    for (file, module, uses, _) in survey() {
        assert!(
            layer_of(&module).is_some(),
            "{}: module `{module}` has no layer in LAYERS",
            file.display()
        );
        // `crate::X` may also name an item lib.rs re-exports; only modules need a layer.
        for used in uses.iter().filter(|u| is_module(u)) {
            assert!(
                layer_of(used).is_some(),
                "module `{used}` has no layer in LAYERS"
            );
        }
    }
}

#[test]
fn imports_only_point_down_and_actix_stays_in_the_server_layer() {
    let server = layer_of("api").unwrap();
    let mut problems = Vec::new();
    for (file, module, uses, server_crate) in survey() {
        let from = layer_of(&module).unwrap();
        for used in &uses {
            let Some(to) = layer_of(used) else { continue };
            let same_server_layer = from == server && to == server;
            if to > from || (to == from && *used != module && !same_server_layer) {
                problems.push(format!(
                    "{}: `{module}` ({}) uses `{used}` ({}), which is not below it",
                    file.display(),
                    LAYERS[from].0,
                    LAYERS[to].0
                ));
            }
        }
        if let Some(krate) = server_crate {
            if from < server {
                problems.push(format!(
                    "{}: `{krate}` below the server layer",
                    file.display()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_survey_sees_an_upward_import() {
    // The checker itself: a `use crate::api` in core would be caught.
    let uses = crate_modules(&code_of("use crate::api::auth::Caller;\nfn f() {}"));
    assert!(uses.contains("api"));
    let grouped = crate_modules("use crate::{store, events::Kind};");
    assert!(grouped.contains("store") && grouped.contains("events"));
    assert!(layer_of("api") > layer_of("core"));
    let commented = crate_modules(&code_of("// crate::api is not used here"));
    assert!(commented.is_empty());
    assert!(names_crate("use actix_web::web;", "actix_web"));
    assert!(!names_crate("tokio_actix_web::x", "actix_web"));
}
