//! No plaintext on disk: the real `irm-viewer` binary, in a real X window
//! (Xvfb) under `strace -f`, opens a sealed CSV from the real key server and
//! shows it. Every path it opened for writing, created, renamed or linked
//! is then read back: none may hold the file's plaintext, and the set of
//! written paths must be the few we expect (MACHINE-NOTES §2 and §7).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use irm_core::Rights;
use irm_e2e::stage::{ALICE_PASSPHRASE, Stage, eventually};
use irm_e2e::viewer_binary;

/// In no file the viewer writes, ever.
const MARKER: &str = "PLAINTEXT-MARKER-q7Zx3";

/// The system calls that create or change files by path (§7), plus `open`
/// and `creat` for completeness.
const TRACED: &str = "trace=open,openat,creat,rename,renameat,renameat2,link,linkat,\
                      symlink,symlinkat,mkdir,mkdirat,truncate,unlink,unlinkat";

/// The paths a traced line names as written: an open with a write flag or
/// O_CREAT, or any path-changing call (all its quoted paths).
fn written_paths(line: &str) -> Vec<String> {
    // "1234  openat(AT_FDCWD, "/p", O_RDWR|O_CREAT, 0600) = 3"
    let Some(call_start) = line.find(|c: char| c.is_ascii_alphabetic()) else {
        return Vec::new();
    };
    let call = &line[call_start..];
    let name = call.split('(').next().unwrap_or("");
    let quoted = quoted_strings(call);
    match name {
        "open" | "openat" => {
            let writes = ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"]
                .iter()
                .any(|flag| call.contains(flag));
            if writes {
                quoted.into_iter().take(1).collect()
            } else {
                Vec::new()
            }
        }
        "creat" | "rename" | "renameat" | "renameat2" | "link" | "linkat" | "symlink"
        | "symlinkat" | "mkdir" | "mkdirat" | "truncate" => quoted,
        _ => Vec::new(),
    }
}

/// The double-quoted strings of a strace line (paths; strace escapes `"`).
fn quoted_strings(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut s = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(next) = chars.next() {
                        s.push(next);
                    }
                }
                '"' => break,
                c => s.push(c),
            }
        }
        out.push(s);
    }
    out
}

/// The pids of the viewer processes with `needle` (the sealed file's
/// unique temporary path) among their arguments: the program itself or a
/// script run by a shell, not strace or xvfb-run, which carry it too.
fn viewer_pids(needle: &str) -> Vec<u32> {
    let Ok(proc_dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    proc_dir
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmd| {
                let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
                args.iter().take(2).any(|a| a.ends_with(b"irm-viewer"))
                    && args.contains(&needle.as_bytes())
            })
        })
        .collect()
}

/// One traced run of a viewer and what it left.
struct Traced {
    /// Its home (HOME, XDG directories, working directory).
    home: tempfile::TempDir,
    /// Every path it opened for writing, created, renamed, linked or truncated.
    written: BTreeSet<PathBuf>,
    /// Whether it said the document was shown.
    shown: bool,
    /// Its standard error.
    stderr: String,
}

impl Traced {
    /// Runs `viewer FILE` in a fresh X server under strace, with a home of
    /// its own, until it says the document is shown; then ends it (SIGTERM
    /// to the viewer, after which strace and xvfb-run end with it).
    fn run(viewer: &Path, file: &Path, config_dir: &Path) -> Self {
        for tool in ["xvfb-run", "strace", "xauth"] {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|o| o.status.success());
            assert!(found, "{tool} is needed (scripts/test installs it)");
        }
        // A home of its own, so every per-user write lands where we can see it.
        let home = tempfile::TempDir::new().expect("a home directory");
        let xdg = |name: &str| {
            let dir = home.path().join(name);
            std::fs::create_dir_all(&dir).expect("an XDG directory");
            dir
        };
        let runtime = xdg("runtime");
        let mut mode = std::fs::metadata(&runtime)
            .expect("runtime dir")
            .permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut mode, 0o700);
        std::fs::set_permissions(&runtime, mode).expect("a private runtime directory");
        let trace = home.path().join("strace.log");
        // `--seccomp-bpf` stops the viewer only at the traced calls, not at
        // every system call of every render thread: the same lines, 2 s
        // instead of about 400 s under llvmpipe.
        let mut child = Command::new("xvfb-run")
            .args([
                "-a",
                "-s",
                "-screen 0 1280x800x24",
                "strace",
                "-f",
                "--seccomp-bpf",
                "-qq",
            ])
            .args(["-e", "signal=none", "-s", "4096", "-e", TRACED, "-o"])
            .arg(&trace)
            .arg(viewer)
            .arg(file)
            .current_dir(home.path())
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", xdg("config"))
            .env("XDG_CACHE_HOME", xdg("cache"))
            .env("XDG_DATA_HOME", xdg("data"))
            .env("XDG_STATE_HOME", xdg("state"))
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("IRM_CONFIG_DIR", config_dir)
            .env("IRM_PASSPHRASE", ALICE_PASSPHRASE)
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("xvfb-run starts");

        // The viewer says when the document is on screen (a count, no content).
        let (lines_tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr was piped");
        let reader = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                all.push_str(&line);
                all.push('\n');
                let _ = lines_tx.send(line);
            }
            all
        });
        let shown = loop {
            match lines.recv_timeout(Duration::from_secs(120)) {
                Ok(line) if line.contains("document shown: 2 rows") => break true,
                Ok(_) => {}
                Err(_) => break false,
            }
        };
        let needle = file.display().to_string();
        let mut pids = Vec::new();
        let found = eventually(Duration::from_secs(10), || {
            pids = viewer_pids(&needle);
            !pids.is_empty()
        });
        assert!(found || !shown, "the viewer process is found");
        for pid in &pids {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
        child.wait().expect("xvfb-run ends");
        let stderr = reader.join().expect("the stderr reader");

        let log = std::fs::read_to_string(&trace).expect("the strace log");
        assert!(
            log.lines().any(|l| l.contains("openat(")),
            "strace traced the viewer:\n{}",
            &log[..log.len().min(2000)]
        );
        let written = log
            .lines()
            .flat_map(written_paths)
            .map(|p| {
                let p = PathBuf::from(p);
                if p.is_relative() {
                    home.path().join(p)
                } else {
                    p
                }
            })
            .collect();
        Self {
            home,
            written,
            shown,
            stderr,
        }
    }

    /// The written files that hold the marker (read back after the run).
    fn holding_plaintext(&self) -> Vec<&PathBuf> {
        self.written
            .iter()
            .filter(|p| p.is_file() && !p.starts_with("/dev") && !p.starts_with("/proc"))
            .filter(|p| {
                std::fs::read(p)
                    .unwrap_or_default()
                    .windows(MARKER.len())
                    .any(|w| w == MARKER.as_bytes())
            })
            .collect()
    }

    /// The written paths other than the few expected: devices (GPU, tty,
    /// null), Mesa's shader cache in its own cache directory (compiled
    /// shaders, no document text: `holding_plaintext` reads them too),
    /// fontconfig's cache of the system's font list, which it rebuilds when
    /// the system cache is stale (a fresh machine; the system directory when
    /// run as root, else the one in its own cache directory or its legacy
    /// `~/.fontconfig`; font names and coverage only, read back all the
    /// same), and the runtime directory. So
    /// nothing in the home, the working directory, /tmp or next to the
    /// sealed file.
    /// Paths written other than caches, the runtime directory, and the
    /// audit witness in the person's configuration directory `config_dir`
    /// (the grant's signed checkpoint, PROTOCOL.md §9.2, written through a
    /// `.irm-*.tmp` file renamed into place).
    fn unexpected(&self, config_dir: &Path) -> Vec<&PathBuf> {
        let cache = self.home.path().join("cache");
        let runtime = self.home.path().join("runtime");
        let system_font_cache = Path::new("/var/cache/fontconfig");
        self.written
            .iter()
            .filter(|p| {
                let own_cache = p.strip_prefix(&cache).is_ok_and(|rest| {
                    rest.starts_with("mesa_shader_cache") || rest.starts_with("fontconfig")
                });
                let font_cache = (p.starts_with(system_font_cache)
                    || p.starts_with(self.home.path().join(".fontconfig")))
                    && p.file_name()
                        .is_some_and(|name| name.to_string_lossy().contains(".cache-"));
                let witness = p.parent() == Some(config_dir)
                    && p.file_name().is_some_and(|name| {
                        let name = name.to_string_lossy();
                        name == irm_client::WITNESS_FILE
                            || (name.starts_with(".irm-") && name.ends_with(".tmp"))
                    });
                !(p.starts_with("/dev")
                    || own_cache
                    || font_cache
                    || witness
                    || p.starts_with(&runtime))
            })
            .collect()
    }
}

fn sealed_csv(stage: &Stage) -> PathBuf {
    let csv =
        format!("顧客番号,氏名,メモ\r\n1001,山田 太郎,{MARKER}\r\n1002,鈴木 花子,{MARKER} 二\r\n");
    let (file, _) = stage.seal_for_alice("customers.csv.irm", Rights::VIEW, csv.as_bytes());
    let sealed = std::fs::read(&file).expect("the sealed file");
    assert!(
        !sealed.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
        "the sealed file itself does not show the marker"
    );
    file
}

#[test]
fn the_viewer_writes_no_plaintext_to_disk() {
    let stage = Stage::new();
    let file = sealed_csv(&stage);
    let run = Traced::run(&viewer_binary(), &file, &stage.alice_config_dir());
    assert!(run.shown, "the viewer showed the document:\n{}", run.stderr);
    assert!(
        !run.stderr.contains(MARKER),
        "no plaintext in the viewer's log"
    );
    eprintln!("paths the viewer wrote: {:#?}", run.written);
    assert_eq!(
        run.holding_plaintext(),
        Vec::<&PathBuf>::new(),
        "files with plaintext"
    );
    let config_dir = stage.alice_config_dir();
    assert!(
        run.unexpected(&config_dir).is_empty(),
        "unexpected paths written: {:#?}\nall: {:#?}",
        run.unexpected(&config_dir),
        run.written
    );
    assert!(
        run.written
            .contains(&config_dir.join(irm_client::WITNESS_FILE)),
        "the grant's audit checkpoint is kept as a witness: {:#?}",
        run.written
    );
}

/// The check can fail: a stand-in "viewer" that saves the plaintext next
/// to the file, and renames a temporary copy into its home, is caught.
#[test]
fn a_viewer_that_leaks_plaintext_is_caught() {
    let stage = Stage::new();
    let file = sealed_csv(&stage);
    let bin = tempfile::TempDir::new().expect("a directory");
    let fake = bin.path().join("irm-viewer");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\n\
             printf '%s' '{MARKER}' > \"$1.csv\"\n\
             printf '%s' '{MARKER}' > tmp.part && mv tmp.part cache.txt\n\
             echo 'irm-viewer: document shown: 2 rows' >&2\n\
             while :; do sleep 0.1; done\n"
        ),
    )
    .expect("writing the stand-in");
    let mut mode = std::fs::metadata(&fake)
        .expect("the stand-in")
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut mode, 0o755);
    std::fs::set_permissions(&fake, mode).expect("making it executable");

    let run = Traced::run(&fake, &file, &stage.alice_config_dir());
    assert!(run.shown, "{}", run.stderr);
    let leaked: BTreeSet<PathBuf> = run.holding_plaintext().into_iter().cloned().collect();
    let next_to_file = PathBuf::from(format!("{}.csv", file.display()));
    let renamed = run.home.path().join("cache.txt");
    assert_eq!(
        leaked,
        BTreeSet::from([next_to_file.clone(), renamed.clone()])
    );
    let unexpected = run.unexpected(&stage.alice_config_dir());
    for path in [&next_to_file, &renamed, &run.home.path().join("tmp.part")] {
        assert!(unexpected.contains(&path), "{} is flagged", path.display());
    }
}

#[test]
fn strace_lines_are_read_for_written_paths() {
    let cases = [
        (
            r#"12  openat(AT_FDCWD, "/a/b", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 3"#,
            vec!["/a/b"],
        ),
        (
            r#"12  openat(AT_FDCWD, "/usr/lib/x.so", O_RDONLY|O_CLOEXEC) = 3"#,
            vec![],
        ),
        (
            r#"12  renameat2(AT_FDCWD, "/c/.tmp", AT_FDCWD, "/c/d", RENAME_NOREPLACE) = 0"#,
            vec!["/c/.tmp", "/c/d"],
        ),
        (
            r#"12  openat(AT_FDCWD, "/e \"q\"", O_RDWR <unfinished ...>"#,
            vec![r#"/e "q""#],
        ),
        (r#"12  mkdir("/f", 0700) = 0"#, vec!["/f"]),
    ];
    for (line, want) in cases {
        assert_eq!(written_paths(line), want, "{line}");
    }
}
