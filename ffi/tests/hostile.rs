//! Compiles `ffi/tests/hostile.c` against the libirm cargo just built
//! (`cc -Wall -Wextra -Werror`), runs it, and runs it again under
//! `valgrind --leak-check=full --error-exitcode=1` with `tests/valgrind.supp`
//! (one Rust standard-library allocation per foreign thread). Valgrind is
//! required: `scripts/test` installs it, and a missing valgrind fails the
//! test instead of passing it unchecked.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds libirm.so (`cargo test` does not always refresh the copy in
/// `target/<profile>`) and returns `target/<profile>`, where it is.
fn profile_dir() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "--quiet", "-p", "irm-ffi", "--lib"]);
    if !cfg!(debug_assertions) {
        build.arg("--release");
    }
    assert!(
        build.status().expect("cargo runs").success(),
        "building libirm failed"
    );
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test binary is in target/<profile>/deps")
        .to_owned()
}

/// Fails the test when valgrind is missing: a memory check that silently
/// does not run would pass for the wrong reason.
fn require_valgrind() {
    let installed = Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        installed,
        "valgrind is not installed, so libirm's memory checks cannot run; \
         install it (`apt-get install valgrind`, as scripts/test does)"
    );
}

#[test]
fn hostile_arguments_are_refused_without_memory_errors_or_leaks() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib_dir = profile_dir();
    assert!(
        lib_dir.join("libirm.so").exists(),
        "libirm.so is not in {}",
        lib_dir.display()
    );
    let out = tempfile::tempdir().expect("a scratch directory");
    let exe = out.path().join("hostile");
    let status = Command::new("cc")
        .args([
            "-D_GNU_SOURCE",
            "-std=c11",
            "-g",
            "-Wall",
            "-Wextra",
            "-Werror",
        ])
        .arg("-I")
        .arg(crate_dir.join("include"))
        .arg(crate_dir.join("tests/hostile.c"))
        .arg("-o")
        .arg(&exe)
        .arg("-L")
        .arg(&lib_dir)
        .arg("-lirm")
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .status()
        .expect("cc runs");
    assert!(status.success(), "hostile.c does not compile");

    let key = irm_core::KasSecretKey::generate()
        .expect("a key")
        .public_key()
        .to_text();
    let run = |mut cmd: Command| {
        let output = cmd.output().expect("the program runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stdout.contains(" passed, 0 failed"),
            "{}\nstdout: {stdout}\nstderr: {stderr}",
            output.status
        );
    };
    let mut direct = Command::new(&exe);
    direct.arg(&key);
    run(direct);

    require_valgrind();
    let mut valgrind = Command::new("valgrind");
    valgrind
        .args(["-q", "--leak-check=full", "--error-exitcode=1"])
        .arg(format!(
            "--suppressions={}",
            crate_dir.join("tests/valgrind.supp").display()
        ))
        .arg(&exe)
        .arg(&key);
    run(valgrind);
}
