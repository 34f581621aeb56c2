//! The viewer's command line (issue #13): `--help` and `--version` answer
//! without a display (a winit error before), and a flag it does not know is
//! a usage error, not a file name.

use std::process::Command;

fn viewer(arg: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_irm-viewer"))
        .arg(arg)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .expect("irm-viewer runs")
}

#[test]
fn help_and_version_work_without_a_display_and_unknown_flags_are_refused() {
    for flag in ["--help", "-h"] {
        let out = viewer(flag);
        assert!(out.status.success(), "{flag}: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.starts_with("usage: irm-viewer [FILE.irm]"), "{text}");
        assert!(text.contains("IRM_CONFIG_DIR"), "{text}");
    }
    for flag in ["--version", "-V"] {
        let out = viewer(flag);
        assert!(out.status.success(), "{flag}: {out:?}");
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            format!("irm-viewer {}\n", env!("CARGO_PKG_VERSION"))
        );
    }
    let out = viewer("--bogus");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("usage: irm-viewer"));
}
