//! The layers, enforced: reads every file under `src/` (tests excluded) and fails on an import
//! that points up a layer, or on actix below the server layer. The layers are written here
//! once; docs/ARCHITECTURE.md shows the same table.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Bottom to top. A module may use the modules of lower layers, and its own; the server layer's
/// modules may also use each other.
const LAYERS: &[(&str, &[&str])] = &[
    ("foundation", &["domain", "error", "config", "metrics"]),
    ("store", &["store"]),
    ("log", &["events"]),
    ("rules", &["core"]),
    ("fan-out", &["realtime", "push"]),
    ("server", &["server", "main", "lib"]),
];

/// The server reaches the database through core. It may name the store's handle (to hold it and
/// pass it to core); only start-up (`server/app.rs`: connect, migrate, load the hub's picture)
/// calls the store itself.
const SERVER_MAY_NAME_FROM_STORE: &[&str] = &["Db"];
const SERVER_FILES_THAT_MAY_CALL_THE_STORE: &[&str] = &["server/app.rs"];

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
    paths_after(code, "crate::")
        .into_iter()
        .filter_map(|path| path.into_iter().next())
        .collect()
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
        // The binaries' own files and the build script are not the library's modules.
        .filter(|f| !f.starts_with(src.join("bin")) && *f != src.join("build.rs"))
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
    let server = layer_of("server").unwrap();
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
fn the_server_reaches_the_database_through_core() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut problems = Vec::new();
    for (file, module, _, _) in survey() {
        let rel = file.display().to_string();
        if module != "server" || SERVER_FILES_THAT_MAY_CALL_THE_STORE.contains(&rel.as_str()) {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(src.join(&file)).unwrap());
        for path in paths_after(&code, "crate::") {
            if path.first().map(String::as_str) != Some("store") {
                continue;
            }
            let named = path.get(1).map(String::as_str);
            if !named.is_some_and(|n| SERVER_MAY_NAME_FROM_STORE.contains(&n)) {
                problems.push(format!("{rel}: uses crate::{}", path.join("::")));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_survey_sees_an_upward_import() {
    // The checker itself: a `use crate::server::api` in core would be caught.
    let uses = crate_modules(&code_of("use crate::server::api::auth::Caller;\nfn f() {}"));
    assert!(uses.contains("server"));
    let grouped = crate_modules("use crate::{store, events::Kind};");
    assert!(grouped.contains("store") && grouped.contains("events"));
    assert!(layer_of("server") > layer_of("core"));
    let commented = crate_modules(&code_of("// crate::server::api is not used here"));
    assert!(commented.is_empty());
    assert!(names_crate("use actix_web::web;", "actix_web"));
    assert!(!names_crate("tokio_actix_web::x", "actix_web"));
}

/// The module path of a file under `src/`: `api/rooms.rs` → `[api, rooms]`, `api/mod.rs` and
/// `lib.rs` → their folder's.
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The file that defines the longest prefix of `path`, if any.
fn file_of(files: &BTreeSet<PathBuf>, path: &[String]) -> Option<PathBuf> {
    (1..=path.len()).rev().find_map(|n| {
        let base = path[..n].join("/");
        [format!("{base}.rs"), format!("{base}/mod.rs")]
            .into_iter()
            .map(PathBuf::from)
            .find(|f| files.contains(f))
    })
}

/// The paths a file names after `prefix` (`crate::`, `super::`), groups (`a::{b, c::d}`)
/// expanded to one path per member (a nested group counts as its prefix).
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = Vec::new();
    for (at, _) in code.match_indices(prefix) {
        if code[..at]
            .chars()
            .next_back()
            .is_some_and(|c| ident(c) || c == ':')
        {
            continue;
        }
        let rest = &code[at + prefix.len()..];
        let mut path = Vec::new();
        let mut tail = rest;
        loop {
            let name: String = tail.chars().take_while(|c| ident(*c)).collect();
            if name.is_empty() {
                break;
            }
            tail = &tail[name.len()..];
            path.push(name);
            match tail.strip_prefix("::") {
                Some(next) => tail = next,
                None => break,
            }
        }
        if let Some(group) = tail.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let item: Vec<String> = item
                    .trim()
                    .split("::")
                    .map(|seg| seg.chars().take_while(|c| ident(*c)).collect::<String>())
                    .take_while(|seg| !seg.is_empty() && seg != "self")
                    .collect();
                if !item.is_empty() {
                    out.push([path.clone(), item].concat());
                }
            }
        }
        out.push(path);
    }
    out
}

#[test]
fn no_two_source_files_depend_on_each_other_even_indirectly() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    rust_files(&src, &mut all);
    let files: BTreeSet<PathBuf> = all
        .iter()
        .map(|f| f.strip_prefix(&src).unwrap().to_path_buf())
        .filter(|f| !f.starts_with("bin") && !f.starts_with("web"))
        .collect();
    let mut edges: std::collections::BTreeMap<PathBuf, BTreeSet<PathBuf>> = Default::default();
    for file in &files {
        let code = code_of(&std::fs::read_to_string(src.join(file)).unwrap());
        let me = module_path(file);
        let parent = me[..me.len().saturating_sub(1)].to_vec();
        let mut targets: Vec<Vec<String>> = paths_after(&code, "crate::");
        targets.extend(
            paths_after(&code, "super::")
                .into_iter()
                .map(|p| [parent.clone(), p].concat()),
        );
        // A folder's mod.rs (and lib.rs) names its own children by bare paths (`rooms::create`).
        if file.ends_with("mod.rs") || file.ends_with("lib.rs") {
            targets.extend(
                paths_after(&code, "")
                    .into_iter()
                    .filter(|p| p.len() > 1)
                    .map(|p| [me.clone(), p].concat()),
            );
        }
        let deps = edges.entry(file.clone()).or_default();
        for target in targets {
            if let Some(dep) = file_of(&files, &target) {
                if dep != *file {
                    deps.insert(dep);
                }
            }
        }
    }
    // A depth-first search from each file: reaching it again is a cycle.
    for start in &files {
        let mut stack: Vec<(PathBuf, Vec<PathBuf>)> = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((at, trail)) = stack.pop() {
            for next in edges.get(&at).into_iter().flatten() {
                if next == start {
                    let names: Vec<String> =
                        trail.iter().map(|f| f.display().to_string()).collect();
                    panic!("a cycle: {} → {}", names.join(" → "), start.display());
                }
                if seen.insert(next.clone()) {
                    stack.push((next.clone(), [trail.clone(), vec![next.clone()]].concat()));
                }
            }
        }
    }
}

#[test]
fn the_cycle_check_resolves_paths_to_files() {
    let files: BTreeSet<PathBuf> = [
        "api/mod.rs",
        "api/auth.rs",
        "store/mod.rs",
        "store/rooms.rs",
    ]
    .into_iter()
    .map(PathBuf::from)
    .collect();
    let path = |p: &str| p.split("::").map(str::to_string).collect::<Vec<_>>();
    assert_eq!(
        file_of(&files, &path("api::auth::Caller")),
        Some("api/auth.rs".into())
    );
    assert_eq!(
        file_of(&files, &path("api::WithEvent")),
        Some("api/mod.rs".into())
    );
    assert_eq!(module_path(Path::new("api/mod.rs")), ["api"]);
    let found = paths_after("use crate::{store::rooms, api::auth::Caller};", "crate::");
    assert!(found.contains(&path("store::rooms")) && found.contains(&path("api::auth::Caller")));
}
