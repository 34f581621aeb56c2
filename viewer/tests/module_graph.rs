//! The viewer's modules import each other without cycles: every path
//! `crate::name` in `src/` is an edge from the module of that file to
//! `name`, and the graph of those edges must have no cycle, direct or
//! through others. A cycle means two modules own each other's pieces
//! (once, `i18n` → `print` → `model` → `i18n`); the fix is to move the
//! shared piece to the module that owns it, not to import around it.
//!
//! The files of a directory module (`src/table/*.rs`) count as that module,
//! so `super::` inside them is not an edge. Comments are left out (an
//! intra-doc link is not an import); `main.rs` is the binary, which reaches
//! the library as `irm_viewer::`, and `lib.rs` only declares the modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The module a file under `src/` belongs to: `app.rs` is `app`,
/// `table/widget.rs` is `table`; `None` for the crate root and the binary.
fn module_of(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    match first.strip_suffix(".rs") {
        Some("lib" | "main") => None,
        Some(module) => Some(module.to_owned()),
        None => Some(first.to_owned()), // a directory module
    }
}

/// `text` without `//` comments (doc comments included) and without the
/// contents of string literals, so neither can make an edge.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_string = false;
        let mut escaped = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if in_string {
                match (escaped, c) {
                    (false, '\\') => escaped = true,
                    (false, '"') => {
                        in_string = false;
                        out.push('"');
                    }
                    _ => escaped = false,
                }
                continue;
            }
            match c {
                '/' if chars.peek() == Some(&'/') => break,
                '"' => {
                    in_string = true;
                    out.push('"');
                }
                // A char literal such as '"' must not open a string.
                '\'' => {
                    out.push(c);
                    let rest: String = chars.clone().take(3).collect();
                    if rest.starts_with("\"'") || rest.starts_with("\\\"'") {
                        for _ in 0..rest.find('\'').map_or(0, |i| i + 1) {
                            chars.next();
                        }
                    }
                }
                _ => out.push(c),
            }
        }
        out.push('\n');
    }
    out
}

/// The modules `code` names as `crate::name` or inside `crate::{a, b::c}`.
fn imported_modules(code: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.trim()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        // Not the tail of another path (`irm_viewer::crate` does not exist,
        // but `$crate::` and `xcrate::` must not count).
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of the group, up to its closing brace.
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.insert(ident(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            found.insert(ident(&item));
        } else {
            found.insert(ident(rest));
        }
    }
    found.retain(|name| !name.is_empty() && name != "self");
    found
}

/// The module graph of the crate whose sources are under `src`.
fn module_graph(src: &Path) -> Graph {
    let mut graph = Graph::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("src/ is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).expect("under src/");
            let Some(module) = module_of(relative) else {
                continue;
            };
            let text = std::fs::read_to_string(&path).expect("a source file");
            let edges = graph.entry(module.clone()).or_default();
            for imported in imported_modules(&code_only(&text)) {
                if imported != module {
                    edges.insert(imported);
                }
            }
        }
    }
    graph
}

/// A cycle in `graph` as the modules along it (first one repeated at the
/// end), if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        OnPath,
        Done,
    }
    fn visit(
        node: &str,
        graph: &Graph,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::OnPath) => {
                let start = path.iter().position(|n| n == node).expect("on the path");
                let mut cycle = path[start..].to_vec();
                cycle.push(node.to_owned());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_owned(), Mark::OnPath);
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, marks, path) {
                return Some(cycle);
            }
        }
        path.pop();
        marks.insert(node.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut marks, &mut Vec::new()))
}

#[test]
fn the_viewer_modules_import_each_other_without_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&src);
    // The reader sees what is there: a few edges that must exist.
    for (from, to) in [("app", "model"), ("worker", "print"), ("workbook", "table")] {
        assert!(
            graph.get(from).is_some_and(|e| e.contains(to)),
            "expected {from} -> {to} in {graph:#?}"
        );
    }
    assert!(graph.contains_key("table"), "table/ counts as one module");
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn the_reader_finds_grouped_imports_and_ignores_comments_and_strings() {
    let code = code_only(
        "use crate::i18n::{Lang, Msg};\n\
         use crate::{model::Model, print::{self, PrintError}};\n\
         /// See [`crate::worker`].\n\
         let s = \"crate::app\"; let q = '\"'; f(crate::fonts::IPA_GOTHIC); // crate::kind\n\
         use super::data::Table;\n",
    );
    assert_eq!(
        imported_modules(&code),
        BTreeSet::from(["fonts", "i18n", "model", "print"].map(String::from))
    );
}

#[test]
fn a_cycle_through_three_modules_is_found() {
    let graph: Graph = [
        ("i18n", &["print"][..]),
        ("print", &["model"]),
        ("model", &["i18n", "table"]),
        ("table", &[]),
    ]
    .into_iter()
    .map(|(from, to)| (from.to_owned(), to.iter().map(|t| t.to_string()).collect()))
    .collect();
    let cycle = find_cycle(&graph).expect("a cycle");
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 4, "{cycle:?}");
    let mut acyclic = graph.clone();
    acyclic.get_mut("model").expect("model").remove("i18n");
    assert_eq!(find_cycle(&acyclic), None);
}
