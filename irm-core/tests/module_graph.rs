//! No two modules of irm-core depend on each other in a circle, directly or
//! through others. The graph is read from the source: every `crate::`,
//! `super::` and `self::` path outside comments and test modules (in `use`
//! lines and inline alike), and each module's `use` of its own submodules.
//! A path through the crate root's re-exports (`crate::Opener`) is refused
//! outright: the root re-exports every module, so such a path hides which
//! module is depended on and closes a circle through the root.
//!
//! Run with `--nocapture` to print the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A module path: `""` for the crate root, `"stream::open"` for
/// `src/stream/open.rs`.
type Module = String;

/// The module a source file defines, from its path under `src/`.
fn module_of(relative: &Path) -> Module {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let file = parts.pop().expect("a file name");
    match file.as_str() {
        "lib.rs" | "mod.rs" => {}
        name => parts.push(name.trim_end_matches(".rs").to_owned()),
    }
    parts.join("::")
}

fn parent(module: &str) -> Option<&str> {
    if module.is_empty() {
        None
    } else {
        Some(module.rsplit_once("::").map_or("", |(p, _)| p))
    }
}

fn join(base: &str, name: &str) -> Module {
    if base.is_empty() {
        name.to_owned()
    } else {
        format!("{base}::{name}")
    }
}

/// The code of a file that counts: comments removed, and nothing from a
/// `#[cfg(test)]` test module on (test modules stand at the end of a file,
/// and may use anything). Inside an inline module (`mod value { .. }`, found
/// by rustfmt's indentation), `super::` is the file's own module, so it is
/// rewritten to `self::`.
fn code_of(source: &str) -> String {
    let lines: Vec<&str> = source.lines().collect();
    let mut code = String::new();
    // The closing line of the inline module we are in, if any.
    let mut inline_end: Option<String> = None;
    for (i, raw) in lines.iter().enumerate() {
        let line = raw.trim();
        if line == "#[cfg(test)]"
            && lines
                .get(i + 1)
                .is_some_and(|next| next.trim_start().starts_with("mod tests"))
        {
            break;
        }
        if line.starts_with("//") {
            continue;
        }
        let indent = &raw[..raw.len() - raw.trim_start().len()];
        if inline_end.as_deref() == Some(*raw) {
            inline_end = None;
        } else if inline_end.is_none()
            && line.ends_with('{')
            && line
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub(super) ")
                .trim_start_matches("pub ")
                .starts_with("mod ")
        {
            inline_end = Some(format!("{indent}}}"));
        }
        // A trailing `// comment` after code.
        let without = match raw.find("// ") {
            Some(at) if !raw[..at].contains('"') => &raw[..at],
            _ => raw,
        };
        if inline_end.is_some() {
            code.push_str(&without.replace("super::", "self::"));
        } else {
            code.push_str(without);
        }
        code.push('\n');
    }
    code
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Every path in `code` that starts with `crate`, `super` or `self`, or with
/// one of `children` (the module's submodules, which it may name bare), as
/// its segments. A `{...}` group contributes each of its members.
fn paths_in(code: &str, children: &BTreeSet<String>) -> Vec<Vec<String>> {
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let starts_ident =
            is_ident(bytes[at]) && (at == 0 || !(is_ident(bytes[at - 1]) || bytes[at - 1] == b':'));
        if !starts_ident {
            at += 1;
            continue;
        }
        let start = at;
        while at < bytes.len() && is_ident(bytes[at]) {
            at += 1;
        }
        let first = &code[start..at];
        let anchored = matches!(first, "crate" | "super" | "self") || children.contains(first);
        if anchored && code[at..].starts_with("::") {
            at = use_tree(code, start, &[], &mut found);
        }
    }
    found
}

/// Reads the path or use tree at `at` (`a::b::C`, `a::{b, c::{D, E}}`,
/// `a::*`) below `prefix` into `found`, one entry per leaf; returns where it
/// ends.
fn use_tree(code: &str, mut at: usize, prefix: &[String], found: &mut Vec<Vec<String>>) -> usize {
    let bytes = code.as_bytes();
    let mut path = prefix.to_vec();
    loop {
        let start = at;
        while at < bytes.len() && (is_ident(bytes[at]) || bytes[at] == b'*') {
            at += 1;
        }
        if at > start {
            path.push(code[start..at].to_owned());
        }
        if !code[at..].starts_with("::") {
            found.push(path);
            return at;
        }
        at += 2;
        if code[at..].starts_with('{') {
            at += 1;
            loop {
                while at < bytes.len() && (bytes[at].is_ascii_whitespace() || bytes[at] == b',') {
                    at += 1;
                }
                if at >= bytes.len() || bytes[at] == b'}' {
                    return at + 1;
                }
                at = use_tree(code, at, &path, found);
                // Skip a rename (`as X`) up to the next member or the end.
                while at < bytes.len() && bytes[at] != b',' && bytes[at] != b'}' {
                    at += 1;
                }
            }
        }
    }
}

/// The module a path (from module `from`) depends on: the longest prefix of
/// it that names a module. `Err` for a path that only reaches the root.
fn target(from: &str, path: &[String], modules: &BTreeSet<Module>) -> Result<Module, String> {
    let mut base: Module = match path[0].as_str() {
        "crate" => String::new(),
        "self" => from.to_owned(),
        "super" => {
            // `super` in `a/mod.rs` (module `a`) is the root's scope.
            parent(from)
                .ok_or_else(|| format!("{from}: `super` at the crate root"))?
                .to_owned()
        }
        child => join(from, child),
    };
    let mut rest = &path[1..];
    while rest.first().is_some_and(|s| s == "super") {
        base = parent(&base)
            .ok_or_else(|| format!("{from}: `super` above the crate root"))?
            .to_owned();
        rest = &rest[1..];
    }
    let mut found = base.clone();
    let mut candidate = base;
    for segment in rest {
        candidate = join(&candidate, segment);
        if modules.contains(&candidate) {
            found = candidate.clone();
        } else {
            break;
        }
    }
    if found.is_empty() {
        return Err(format!(
            "{from}: `{}` goes through the crate root's re-exports; name the module that owns it",
            path.join("::")
        ));
    }
    Ok(found)
}

/// The module graph of the given `(path under src/, source)` files.
fn graph(files: &[(String, String)]) -> Result<BTreeMap<Module, BTreeSet<Module>>, Vec<String>> {
    let modules: BTreeSet<Module> = files
        .iter()
        .map(|(path, _)| module_of(Path::new(path)))
        .collect();
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    let mut problems = Vec::new();
    for (path, source) in files {
        let from = module_of(Path::new(path));
        let children: BTreeSet<String> = modules
            .iter()
            .filter(|m| parent(m) == Some(from.as_str()) && !m.is_empty())
            .map(|m| m.rsplit("::").next().unwrap_or(m).to_owned())
            .collect();
        let entry = edges.entry(from.clone()).or_default();
        for path in paths_in(&code_of(source), &children) {
            match target(&from, &path, &modules) {
                // The root may re-export anything; nothing may use it.
                Err(_) if from.is_empty() => {}
                Err(problem) => problems.push(problem),
                Ok(to) if to != from => {
                    entry.insert(to);
                }
                Ok(_) => {}
            }
        }
    }
    if problems.is_empty() {
        Ok(edges)
    } else {
        problems.sort();
        problems.dedup();
        Err(problems)
    }
}

/// A cycle in `edges`, as the modules along it, if there is one.
fn find_cycle(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Option<Vec<Module>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &Module,
        edges: &BTreeMap<Module, BTreeSet<Module>>,
        marks: &mut BTreeMap<Module, Mark>,
        stack: &mut Vec<Module>,
    ) -> Option<Vec<Module>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let at = stack.iter().position(|m| m == node).unwrap_or(0);
                let mut cycle = stack[at..].to_vec();
                cycle.push(node.clone());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.clone(), Mark::Open);
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, marks, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        marks.insert(node.clone(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in edges.keys() {
        if let Some(cycle) = visit(node, edges, &mut marks, &mut Vec::new()) {
            return Some(cycle);
        }
    }
    None
}

fn sources() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut pending = vec![src.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("reading src/") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(&src).expect("under src/");
                let source = std::fs::read_to_string(&path).expect("reading a source file");
                files.push((relative.to_string_lossy().into_owned(), source));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn irm_core_modules_form_no_cycle() {
    let edges = graph(&sources()).unwrap_or_else(|problems| {
        panic!("paths through the crate root:\n{}", problems.join("\n"))
    });
    for (from, to) in &edges {
        let name = if from.is_empty() { "(lib.rs)" } else { from };
        let to: Vec<&str> = to.iter().map(String::as_str).collect();
        println!("{name} -> {}", to.join(", "));
    }
    assert!(
        edges.len() >= 10,
        "only {} modules found: is the source tree where the test looks?",
        edges.len()
    );
    if let Some(cycle) = find_cycle(&edges) {
        panic!(
            "modules import each other in a circle: {}",
            cycle.join(" -> ")
        );
    }
}

/// The checker itself: it must see direct and indirect cycles, cycles
/// through a parent's re-export, grouped and inline paths, and paths
/// through the crate root, or the test above could never fail.
#[test]
fn the_checker_finds_what_it_must() {
    let files = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(p, s)| (p.to_string(), s.to_string()))
            .collect()
    };
    let cycle = |list: &[(&str, &str)]| find_cycle(&graph(&files(list)).expect("no root paths"));

    let acyclic = [
        ("lib.rs", "mod a; mod b; pub use a::A;"),
        ("a.rs", "use crate::b::B;\nfn f() { crate::b::g(); }"),
        ("b.rs", "use std::io;"),
    ];
    assert_eq!(cycle(&acyclic), None);

    let direct = [
        ("lib.rs", "mod a; mod b;"),
        ("a.rs", "use crate::{b::B, b::c};"),
        ("b.rs", "fn f() -> crate::a::A { todo!() }"),
    ];
    assert!(
        cycle(&direct).is_some(),
        "a <-> b through a group and an inline path"
    );

    let indirect = [
        ("lib.rs", "mod a; mod b; mod c;"),
        ("a.rs", "use crate::b::B;"),
        ("b.rs", "use crate::c::C;"),
        (
            "c.rs",
            "// use crate::a::A; is a comment\nuse crate::a::{x::{Y, Z}};",
        ),
    ];
    assert!(cycle(&indirect).is_some(), "a -> b -> c -> a");

    let through_parent = [
        ("lib.rs", "mod s;"),
        ("s/mod.rs", "mod open; mod seal; pub use open::Opener;"),
        ("s/open.rs", "use super::seal::x;"),
        ("s/seal.rs", "use super::Opener;"),
    ];
    assert!(
        cycle(&through_parent).is_some(),
        "s::seal -> s -> s::open through the parent's re-export"
    );

    let in_tests_only = [
        ("lib.rs", "mod a; mod b;"),
        ("a.rs", "use crate::b::B;"),
        (
            "b.rs",
            "fn f() {}\n#[cfg(test)]\nmod tests {\n    use crate::a::A;\n}",
        ),
    ];
    assert_eq!(cycle(&in_tests_only), None, "test modules do not count");

    let inline_module = [
        ("lib.rs", "mod a; mod b;"),
        (
            "a.rs",
            "use crate::b::B;\npub(crate) mod value {\n    use super::Cursor;\n}\nstruct Cursor;",
        ),
        ("b.rs", "fn f() {}"),
    ];
    assert_eq!(
        cycle(&inline_module),
        None,
        "super:: inside an inline module is the file's module"
    );

    let through_root = [
        ("lib.rs", "mod a; pub use a::A;"),
        ("a.rs", "use crate::A;"),
    ];
    assert!(graph(&files(&through_root)).is_err());
}
