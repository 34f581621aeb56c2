//! `ffi/include/irm.h` is what cbindgen (the pinned library version)
//! generates from the crate today. Regenerate with
//! `IRM_BLESS_HEADER=1 cargo test -p irm-ffi --test header`.

use std::path::Path;

#[test]
fn the_committed_header_is_what_cbindgen_generates() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("ffi/cbindgen.toml parses");
    let bindings = cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let generated = String::from_utf8(generated).expect("the header is UTF-8");

    let path = crate_dir.join("include/irm.h");
    if std::env::var_os("IRM_BLESS_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("writing ffi/include/irm.h");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "ffi/include/irm.h is out of date; regenerate it with \
         `IRM_BLESS_HEADER=1 cargo test -p irm-ffi --test header` and commit it"
    );
    for name in [
        "irm_client_open",
        "irm_client_open_explicit",
        "irm_seal_buffer_offline",
        "irm_last_error_message",
        "IRM_STATUS_DENIED_FILE_REVOKED = 307",
        "IRM_STATUS_PANIC = 900",
        "typedef struct irm_document irm_document;",
        "irm_document_text_encoding",
        "irm_document_text_utf8",
        "IRM_TEXT_UTF8 = 1",
        "IRM_TEXT_CP932 = 5",
        "} irm_text_encoding;",
    ] {
        assert!(generated.contains(name), "{name} is missing from irm.h");
    }
}
