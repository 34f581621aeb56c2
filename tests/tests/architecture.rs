//! The architecture of docs/ARCHITECTURE.md, checked: which crate may
//! depend on which (every kind of dependency, and transitively for the
//! library crates), and that no source file imports another in a circle.
//! A forbidden arrow or a new cycle fails here, naming it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The workspace's crates and the crates of ours each may depend on
/// (normal, dev or build dependency alike). `irm-e2e` (tests/) may depend on
/// everything; nothing may depend on it or on the key server.
const ALLOWED: &[(&str, &[&str])] = &[
    ("irm-core", &[]),
    ("irm-client", &["irm-core"]),
    ("irm-key-server", &["irm-core"]),
    ("irm-cli", &["irm-core", "irm-client"]),
    ("irm-ffi", &["irm-core", "irm-client"]),
    ("irm-viewer", &["irm-core", "irm-client"]),
    (
        "irm-e2e",
        &[
            "irm-core",
            "irm-client",
            "irm-key-server",
            "irm-cli",
            "irm-ffi",
            "irm-viewer",
        ],
    ),
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_owned()
}

fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .current_dir(repo())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

#[test]
fn crates_depend_only_along_the_allowed_arrows() {
    let metadata = metadata();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let members: BTreeSet<String> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["source"].is_null())
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        members,
        allowed.keys().map(|k| (*k).to_owned()).collect(),
        "a crate was added or renamed: give it its arrows here and in docs/ARCHITECTURE.md"
    );
    for package in metadata["packages"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap();
        let Some(may) = allowed.get(name) else {
            continue;
        };
        for dependency in package["dependencies"].as_array().unwrap() {
            let target = dependency["name"].as_str().unwrap();
            if members.contains(target) {
                let kind = dependency["kind"].as_str().unwrap_or("normal");
                assert!(
                    may.contains(&target),
                    "forbidden arrow: {name} -> {target} ({kind} dependency)"
                );
            }
        }
    }
}

/// What `cargo tree -p irm-ffi -e normal,dev` shows: the library crates'
/// whole dependency graphs, dev-dependencies included, hold no key server
/// (a client library must not carry one, even for its tests and benches).
#[test]
fn no_client_crate_pulls_in_the_key_server_even_transitively() {
    let metadata = metadata();
    let nodes = metadata["resolve"]["nodes"].as_array().unwrap();
    let id_of = |name: &str| -> String {
        metadata["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name && p["source"].is_null())
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let server = id_of("irm-key-server");
    for root in ["irm-core", "irm-client", "irm-cli", "irm-ffi", "irm-viewer"] {
        let mut seen = BTreeSet::new();
        let mut todo = vec![id_of(root)];
        while let Some(id) = todo.pop() {
            if !seen.insert(id.clone()) {
                continue;
            }
            assert_ne!(id, server, "{root} depends on the key server");
            let node = nodes.iter().find(|n| n["id"] == id.as_str()).unwrap();
            for dep in node["deps"].as_array().unwrap() {
                // Build dependencies do not end up in the crate; normal and
                // dev ones do (dev ones in its tests and benches).
                let counts = dep["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["kind"].as_str() != Some("build"));
                // Only the root's dev-dependencies count; a dependency's
                // own dev-dependencies are not built.
                let dev_only = dep["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|k| k["kind"].as_str() == Some("dev"));
                if counts && (!dev_only || id == id_of(root)) {
                    todo.push(dep["pkg"].as_str().unwrap().to_owned());
                }
            }
        }
    }
}

/// The source files of one crate, by module path (`store::txn`).
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    fn walk(dir: &Path, prefix: &str, out: &mut BTreeMap<String, PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                walk(&path, &join(prefix, &stem), out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let name = match stem.as_str() {
                    "lib" | "main" if prefix.is_empty() => String::new(),
                    "mod" => prefix.to_owned(),
                    _ => join(prefix, &stem),
                };
                out.insert(name, path);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(src, "", &mut out);
    out
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}::{name}")
    }
}

/// The files `text` (the file of module `this`) depends on: every path
/// outside `#[cfg(test)]` items, in `use` items and inline in code alike,
/// in the file or in its inline modules, resolved against the crate's
/// module paths to the longest one that is a file. A path to an item of the
/// crate root (`crate::Opener`, a re-export) counts as a dependency on the
/// root, which re-exports from every module, so it closes a circle: a
/// module names the module that owns what it uses. Paths into other crates
/// are left out.
fn imports(text: &str, this: &str, files: &BTreeMap<String, PathBuf>) -> BTreeSet<String> {
    let file = syn::parse_file(text).unwrap_or_else(|e| panic!("{this}: {e}"));
    let mut collector = Paths {
        scope: this.to_owned(),
        found: Vec::new(),
    };
    syn::visit::Visit::visit_file(&mut collector, &file);
    let mut out = BTreeSet::new();
    for (scope, segments) in collector.found {
        let Some(absolute) = absolute(&scope, &segments, files) else {
            continue;
        };
        let target = (0..=absolute.len())
            .rev()
            .map(|n| absolute[..n].join("::"))
            .find(|candidate| files.contains_key(candidate));
        if let Some(target) = target {
            if target != this {
                out.insert(target);
            }
        }
    }
    out
}

fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("cfg")
            && attr
                .parse_args::<syn::Meta>()
                .is_ok_and(|meta| meta.path().is_ident("test"))
    })
}

/// Every path that starts from the crate (`crate::`, `super::`, `self::`,
/// or a name that may be a child module), with the module scope it was
/// written in.
struct Paths {
    scope: String,
    found: Vec<(String, Vec<String>)>,
}

impl<'ast> syn::visit::Visit<'ast> for Paths {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs = match item {
            syn::Item::Mod(m) => &m.attrs,
            syn::Item::Fn(f) => &f.attrs,
            syn::Item::Impl(i) => &i.attrs,
            syn::Item::Use(u) => &u.attrs,
            _ => return syn::visit::visit_item(self, item),
        };
        if !is_test_only(attrs) {
            syn::visit::visit_item(self, item);
        }
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if m.content.is_some() {
            let inner = join(&self.scope, &m.ident.to_string());
            let outer = std::mem::replace(&mut self.scope, inner);
            syn::visit::visit_item_mod(self, m);
            self.scope = outer;
        }
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let scope = self.scope.clone();
        flatten(&u.tree, Vec::new(), &mut |path| {
            self.found.push((scope.clone(), path))
        });
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if path.segments.len() > 1 && path.leading_colon.is_none() {
            let segments = path.segments.iter().map(|s| s.ident.to_string()).collect();
            self.found.push((self.scope.clone(), segments));
        }
        syn::visit::visit_path(self, path);
    }
}

fn flatten(tree: &syn::UseTree, prefix: Vec<String>, emit: &mut dyn FnMut(Vec<String>)) {
    let with = |name: String| {
        let mut path = prefix.clone();
        path.push(name);
        path
    };
    match tree {
        syn::UseTree::Path(p) => flatten(&p.tree, with(p.ident.to_string()), emit),
        syn::UseTree::Name(n) if n.ident == "self" => emit(prefix.clone()),
        syn::UseTree::Name(n) => emit(with(n.ident.to_string())),
        syn::UseTree::Rename(r) => emit(with(r.ident.to_string())),
        syn::UseTree::Glob(_) => emit(prefix.clone()),
        syn::UseTree::Group(g) => {
            for tree in &g.items {
                flatten(tree, prefix.clone(), emit);
            }
        }
    }
}

/// `segments` as a path from the crate root, or `None` for another crate.
fn absolute(
    scope: &str,
    segments: &[String],
    files: &BTreeMap<String, PathBuf>,
) -> Option<Vec<String>> {
    let mut base: Vec<String> = if scope.is_empty() {
        Vec::new()
    } else {
        scope.split("::").map(str::to_owned).collect()
    };
    let mut rest = segments;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        Some(first) => {
            // A child module of this scope, or another crate.
            let child = join(&base.join("::"), first);
            if !files
                .keys()
                .any(|m| *m == child || m.starts_with(&format!("{child}::")))
            {
                return None;
            }
        }
        None => return None,
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

/// A cycle in `graph`, if there is one, as the list of modules around it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_owned(), 1);
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next.as_str()) {
                Some(1) => {
                    let from = stack.iter().position(|n| n == next).unwrap();
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(cycle) = visit(next, graph, state, stack) {
                        return Some(cycle);
                    }
                }
            }
        }
        stack.pop();
        state.insert(node.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if !state.contains_key(node) {
            if let Some(cycle) = visit(node, graph, &mut state, &mut Vec::new()) {
                return Some(cycle);
            }
        }
    }
    None
}

#[test]
fn no_source_file_imports_another_in_a_circle() {
    let mut checked = 0;
    for krate in [
        "irm-core",
        "client",
        "key-server",
        "cli",
        "ffi",
        "viewer",
        "tests",
    ] {
        let src = repo().join(krate).join("src");
        let files = modules(&src);
        let graph: BTreeMap<String, BTreeSet<String>> = files
            .iter()
            .map(|(module, path)| {
                let text = std::fs::read_to_string(path).unwrap();
                (module.clone(), imports(&text, module, &files))
            })
            .collect();
        checked += graph.len();
        if let Some(mut cycle) = find_cycle(&graph) {
            for module in &mut cycle {
                if module.is_empty() {
                    *module = "(the crate root)".into();
                }
            }
            panic!(
                "{krate}/src: the modules {} import each other in a circle; move the shared piece to the module that owns it",
                cycle.join(" -> ")
            );
        }
    }
    assert!(checked > 50, "only {checked} files found");
}

/// The checker itself finds circles: through a grouped import, through a
/// path written inline in code, and through the crate root's re-exports;
/// test modules do not count.
#[test]
fn the_cycle_check_finds_a_circle() {
    let files: BTreeMap<String, PathBuf> = ["", "a", "b", "c"]
        .iter()
        .map(|m| ((*m).to_owned(), PathBuf::new()))
        .collect();
    let graph = |sources: &[(&str, &str)]| -> BTreeMap<String, BTreeSet<String>> {
        sources
            .iter()
            .map(|(m, text)| ((*m).to_owned(), imports(text, m, &files)))
            .collect()
    };
    let grouped = graph(&[
        (
            "a",
            "use crate::b::Thing;\n#[cfg(test)]\nmod tests { use crate::c::Test; }",
        ),
        ("b", "use crate::{c::{self, Other}, x};"),
        (
            "c",
            "mod inner { pub(crate) use super::super::a::{\n    One,\n}; }",
        ),
    ]);
    assert_eq!(
        find_cycle(&grouped),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    let inline = graph(&[
        ("a", "fn f() { crate::b::g(); }"),
        ("b", "fn g() -> super::a::T { super::a::T::default() }"),
    ]);
    assert_eq!(
        find_cycle(&inline),
        Some(vec!["a".into(), "b".into(), "a".into()])
    );
    let through_root = graph(&[("", "pub use a::Thing;"), ("a", "use crate::Other;")]);
    assert!(find_cycle(&through_root).is_some());
    let tests_only = graph(&[
        ("a", "use crate::b::X;"),
        ("b", "#[cfg(test)]\nmod tests { use crate::a::Y; }"),
    ]);
    assert_eq!(find_cycle(&tests_only), None);
}

/// Issue #13: the README's key server keeps its data directory (keystore,
/// bootstrap share, database) in `irm-data/` inside the checkout, so git
/// must ignore it: secrets are never one `git add .` away from a commit.
#[test]
fn the_readme_data_directory_is_ignored_by_git() {
    // The README keeps its data directory outside the checkout; one made
    // inside it by habit (`--data-dir irm-data`) must still stay out of git.
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    assert!(
        readme.contains("--data-dir ~/irm-data"),
        "the README's data directory moved"
    );
    // Read, not asked of git: CI may check out without a repository.
    let ignore = std::fs::read_to_string(repo().join(".gitignore")).expect(".gitignore");
    assert!(
        ignore.lines().any(|l| matches!(
            l.trim(),
            "/irm-data/" | "irm-data/" | "/irm-data" | "irm-data"
        )),
        "irm-data/ is not in .gitignore"
    );
}
