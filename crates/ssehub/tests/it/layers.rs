//! The main crate's module layers point one way (ARCHITECTURE.md, "Module layers"): a file
//! may name modules of its own layer or of the layers below, never one above. The check
//! reads the sources: every `crate::<module>` a file names (in `use` lines, grouped
//! `use crate::{..}` imports and paths in code; comments aside) is looked up in `LAYERS`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Bottom first. Every module of `src/` must be in exactly one layer; `lib` is the crate
/// root (`lib.rs`), the wiring.
const LAYERS: &[(&str, &[&str])] = &[
    // Plain data and leaf mechanisms: no hub, no protocol.
    (
        "base",
        &[
            "config", "keys", "metrics", "outbox", "bridges", "routes", "tls", "form",
        ],
    ),
    // The protocol-free hub: fan-out, history, presence, limits, the stream body.
    ("hub", &["hub", "selection", "stream"]),
    // What both protocols share: topic selectors (URI templates, URL patterns) and the
    // hub's Mercure path; tokens and grants; opening a stream; `ApiError`; the publish rate
    // limit.
    ("edge", &["selector", "auth", "open", "error", "rate"]),
    // The protocols over the hub.
    ("protocols", &["http", "mercure"]),
    // Wiring: the accept loop, the background tasks, the demo, the fuzzing entry points.
    ("wiring", &["lib", "server", "coalesce", "demo", "fuzzing"]),
];

/// Layers whose modules may not name each other either: each protocol can be read and
/// changed alone; the wiring puts them together.
const APART: &[&str] = &["protocols"];

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The layer index of each module.
fn layer_of() -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for (rank, (_, modules)) in LAYERS.iter().enumerate() {
        for module in *modules {
            assert!(
                out.insert(*module, rank).is_none(),
                "{module} is in two layers"
            );
        }
    }
    out
}

/// Every `.rs` file under `dir`, with the top-level module it belongs to.
fn source_files(dir: &Path, module: Option<&str>, out: &mut Vec<(String, PathBuf)>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .expect("read src")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 name")
            .to_owned();
        let owner = module.map_or_else(|| name.clone(), str::to_owned);
        if path.is_dir() {
            source_files(&path, Some(&owner), out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((owner, path));
        }
    }
}

/// The names a root re-export stands for (`pub use config::{Config, ..}` in lib.rs makes
/// `crate::Config` a use of `config`).
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for statement in lib.split(';') {
        let statement = statement.trim();
        let Some(rest) = statement
            .lines()
            .find(|l| l.trim_start().starts_with("pub use "))
            .map(|_| &statement[statement.find("pub use ").expect("pub use") + 8..])
        else {
            continue;
        };
        let Some((module, names)) = rest.split_once("::") else {
            continue;
        };
        let names = names.trim().trim_start_matches('{').trim_end_matches('}');
        for name in names.split(',') {
            let name = name.trim();
            let name = name.rsplit(" as ").next().unwrap_or(name).trim();
            if !name.is_empty() {
                out.insert(name.to_owned(), module.trim().to_owned());
            }
        }
    }
    out
}

/// The top-level names a source file reaches through `crate::`; comment lines aside.
fn crate_uses(text: &str) -> Vec<String> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| -> String {
        s.trim()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        // `ssehub_core::`, `some_crate::` name other crates.
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let Some(group) = rest.strip_prefix('{') else {
            out.push(ident(rest));
            continue;
        };
        // `use crate::{a, b::{c, d}};`: the names at the group's top level.
        let mut depth = 0;
        let mut item_start = 0;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    out.push(ident(&group[item_start..i]));
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    out.push(ident(&group[item_start..i]));
                    item_start = i + 1;
                }
                _ => {}
            }
        }
    }
    out.retain(|name| !name.is_empty() && name != "self");
    out
}

/// Every edge from a file to a module of a higher layer, or to another module of its own
/// layer when that layer is one of `APART`.
fn upward_edges(files: &[(String, PathBuf, String)], lib: &str) -> Vec<String> {
    let layers = layer_of();
    let reexports = root_reexports(lib);
    let mut bad = Vec::new();
    for (module, path, text) in files {
        let Some(&from) = layers.get(module.as_str()) else {
            bad.push(format!(
                "{}: module {module} is in no layer (add it to LAYERS and ARCHITECTURE.md)",
                path.display()
            ));
            continue;
        };
        for used in crate_uses(text) {
            let target = reexports.get(&used).cloned().unwrap_or(used);
            let Some(&to) = layers.get(target.as_str()) else {
                continue;
            };
            let apart = to == from && target != *module && APART.contains(&LAYERS[to].0);
            if to > from || apart {
                bad.push(format!(
                    "{}: {module} ({}) uses crate::{target} ({})",
                    path.display(),
                    LAYERS[from].0,
                    LAYERS[to].0
                ));
            }
        }
    }
    bad
}

fn read_sources() -> (Vec<(String, PathBuf, String)>, String) {
    let mut files = Vec::new();
    source_files(&src_dir(), None, &mut files);
    let files: Vec<_> = files
        .into_iter()
        .map(|(module, path)| {
            let text = fs::read_to_string(&path).expect("read source");
            (module, path, text)
        })
        .collect();
    let lib = files
        .iter()
        .find(|(m, _, _)| m == "lib")
        .map(|(_, _, t)| t.clone())
        .expect("lib.rs");
    (files, lib)
}

#[test]
fn module_layers_point_one_way() {
    let (files, lib) = read_sources();
    let bad = upward_edges(&files, &lib);
    assert!(
        bad.is_empty(),
        "module edges against the layers:\n{}",
        bad.join("\n")
    );
}

/// The check itself catches the edges this layering removed (the hub calling into
/// `mercure`, the config naming `auth`'s verifier, `mercure` opening streams through
/// `http`) and grouped imports; a module naming itself or a lower layer is fine.
#[test]
fn the_layer_check_sees_upward_edges() {
    let lib = "pub use config::{Config, Dialect};\npub use hub::Hub;\n";
    let file = |module: &str, text: &str| {
        (
            module.to_owned(),
            PathBuf::from(format!("{module}.rs")),
            text.to_owned(),
        )
    };
    let old = [
        file(
            "hub",
            "use crate::config::Config;\nfn f() { crate::mercure::subscription_changed(); }\n",
        ),
        file("config", "use crate::auth::Verifier;\n"),
        file(
            "selection",
            "use crate::{\n    hub::Hub,\n    http::ApiError,\n};\n",
        ),
        file(
            "stream",
            "// crate::http in a comment is no use\nuse crate::Hub;\n",
        ),
        file("outbox", "use crate::Hub;\n"),
        file("mercure", "use crate::http::{open_selection, Cursor};\n"),
        file(
            "http",
            "use crate::http::error::ApiError;\nuse crate::open::Opened;\n",
        ),
    ];
    let bad = upward_edges(&old, lib);
    assert_eq!(bad.len(), 5, "{bad:#?}");
    assert!(bad[0].contains("hub (hub) uses crate::mercure (protocols)"));
    assert!(bad[1].contains("config (base) uses crate::auth (edge)"));
    assert!(bad[2].contains("selection (hub) uses crate::http (protocols)"));
    assert!(bad[3].contains("outbox (base) uses crate::hub (hub)"));
    assert!(bad[4].contains("mercure (protocols) uses crate::http (protocols)"));
}
