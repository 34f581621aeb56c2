//! The key server's tables in each backend's SQL dialect. They are written
//! twice on purpose (SQLite's types and triggers are not PostgreSQL's), side
//! by side here, and a test holds their tables and columns equal, so that
//! `Tables` reads the same rows from both.

/// Version 3 added `alert_acks` (PROTOCOL.md §12.1), version 4
/// `detection_rules` (§12.2), version 5 `first_access` (§12) and version 6
/// `canary_exports` and `canaries` (§7.8), which the schema itself creates:
/// a version 2 to 5 database needs nothing else.
///
/// What turns a version 1 database (before approvals) into this version,
/// besides the new tables the schema creates: the same for both dialects.
/// A server that ran before approvals keeps take-outs as they were (no
/// approval for exports, bulk copies or prints) until two administrators
/// change those rules; new servers require it.
pub(super) const UPGRADE_FROM_1: &str = "ALTER TABLE users ADD COLUMN code_origin TEXT; \
     INSERT INTO approval_rules (action, required) VALUES ('file.export', 0), ('file.copy', 0), ('file.print', 0);";

/// SQLite's schema (`sqlite.rs` runs it at every open).
pub(super) const SQLITE: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    roles TEXT NOT NULL,
    active INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    code_hash BLOB,
    code_expires_at INTEGER,
    code_failures INTEGER NOT NULL DEFAULT 0,
    code_origin TEXT
);
CREATE TABLE IF NOT EXISTS groups (name TEXT PRIMARY KEY, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS group_members (
    group_name TEXT NOT NULL REFERENCES groups(name),
    user_name TEXT NOT NULL REFERENCES users(name),
    PRIMARY KEY (group_name, user_name)
);
CREATE INDEX IF NOT EXISTS group_members_by_user ON group_members(user_name);
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users(name),
    name TEXT NOT NULL,
    public_key BLOB NOT NULL,
    signing_key BLOB NOT NULL,
    active INTEGER NOT NULL,
    enrolled_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS kas_keys (
    key_id TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    owner TEXT,
    file_name TEXT,
    policy_json TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    admin_expires_at INTEGER,
    restricted_rights INTEGER NOT NULL DEFAULT 0,
    first_seen_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS grants (
    id TEXT PRIMARY KEY,
    file_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    device_id TEXT NOT NULL,
    rights INTEGER NOT NULL,
    renew INTEGER NOT NULL,
    issued_at INTEGER NOT NULL,
    lease_expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY,
    action_json TEXT NOT NULL,
    action_hash TEXT NOT NULL,
    requester TEXT NOT NULL,
    requester_device TEXT NOT NULL,
    reason TEXT NOT NULL,
    required INTEGER NOT NULL,
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    code_first_hash BLOB
);
CREATE INDEX IF NOT EXISTS requests_pending ON requests(state, expires_at);
CREATE TABLE IF NOT EXISTS approvals (
    request_id TEXT NOT NULL REFERENCES requests(id),
    approver TEXT NOT NULL,
    device TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (request_id, approver)
);
CREATE TABLE IF NOT EXISTS notices (
    recipient_device TEXT NOT NULL,
    kind TEXT NOT NULL,
    at INTEGER NOT NULL,
    device_id TEXT NOT NULL,
    device_name TEXT NOT NULL,
    code_origin TEXT NOT NULL,
    PRIMARY KEY (recipient_device, kind, device_id)
);
CREATE TABLE IF NOT EXISTS take_outs (
    file_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    device_id TEXT NOT NULL,
    action TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (file_id, user_name, device_id, action)
);
CREATE TABLE IF NOT EXISTS approval_rules (action TEXT PRIMARY KEY, required INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS detection_rules (rule TEXT PRIMARY KEY, setting TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS first_access (
    user_name TEXT NOT NULL,
    scope TEXT NOT NULL,
    first_at INTEGER NOT NULL,
    PRIMARY KEY (user_name, scope)
);
CREATE TABLE IF NOT EXISTS holds (
    user_name TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    since INTEGER NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_acks (
    seq INTEGER PRIMARY KEY,
    acked_by TEXT NOT NULL,
    acked_at INTEGER NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS canary_exports (
    id TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL,
    file_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    device_id TEXT NOT NULL,
    request_id TEXT,
    approvers TEXT NOT NULL,
    row_count INTEGER NOT NULL,
    canary_count INTEGER NOT NULL,
    exported_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS canaries (
    value TEXT PRIMARY KEY,
    export_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS break_glass (
    slot TEXT PRIMARY KEY,
    code_hash BLOB NOT NULL,
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    origin TEXT NOT NULL,
    used_at INTEGER,
    used_by TEXT,
    used_request TEXT
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    actor_user TEXT,
    actor_device TEXT,
    action TEXT NOT NULL,
    file_id TEXT,
    result TEXT NOT NULL,
    reason TEXT,
    client_addr TEXT,
    detail TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
-- Defence in depth: the server never changes a record. Someone with the file
-- can drop these; the hash chain and signed checkpoints catch what they do next.
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"#;

/// SQLite's schema in PostgreSQL's types (`postgres.rs`). Text is compared
/// and ordered byte-wise (`COLLATE "C"` in the queries), as SQLite does, so
/// that listings come out in the same order on both.
pub(super) const POSTGRES: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    roles TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    code_hash BYTEA,
    code_expires_at BIGINT,
    code_failures BIGINT NOT NULL DEFAULT 0,
    code_origin TEXT
);
CREATE TABLE IF NOT EXISTS groups (name TEXT PRIMARY KEY, created_at BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS group_members (
    group_name TEXT NOT NULL REFERENCES groups(name),
    user_name TEXT NOT NULL REFERENCES users(name),
    PRIMARY KEY (group_name, user_name)
);
CREATE INDEX IF NOT EXISTS group_members_by_user ON group_members(user_name);
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users(name),
    name TEXT NOT NULL,
    public_key BYTEA NOT NULL,
    signing_key BYTEA NOT NULL,
    active BOOLEAN NOT NULL,
    enrolled_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS kas_keys (
    key_id TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    owner TEXT,
    file_name TEXT,
    policy_json TEXT NOT NULL,
    revoked BOOLEAN NOT NULL DEFAULT FALSE,
    admin_expires_at BIGINT,
    restricted_rights BIGINT NOT NULL DEFAULT 0,
    first_seen_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS grants (
    id TEXT PRIMARY KEY,
    file_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    device_id TEXT NOT NULL,
    rights BIGINT NOT NULL,
    renew BOOLEAN NOT NULL,
    issued_at BIGINT NOT NULL,
    lease_expires_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY,
    action_json TEXT NOT NULL,
    action_hash TEXT NOT NULL,
    requester TEXT NOT NULL,
    requester_device TEXT NOT NULL,
    reason TEXT NOT NULL,
    required BIGINT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    code_first_hash BYTEA
);
CREATE INDEX IF NOT EXISTS requests_pending ON requests(state, expires_at);
CREATE TABLE IF NOT EXISTS approvals (
    request_id TEXT NOT NULL REFERENCES requests(id),
    approver TEXT NOT NULL,
    device TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (request_id, approver)
);
CREATE TABLE IF NOT EXISTS notices (
    recipient_device TEXT NOT NULL,
    kind TEXT NOT NULL,
    at BIGINT NOT NULL,
    device_id TEXT NOT NULL,
    device_name TEXT NOT NULL,
    code_origin TEXT NOT NULL,
    PRIMARY KEY (recipient_device, kind, device_id)
);
CREATE TABLE IF NOT EXISTS take_outs (
    file_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    device_id TEXT NOT NULL,
    action TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (file_id, user_name, device_id, action)
);
CREATE TABLE IF NOT EXISTS approval_rules (action TEXT PRIMARY KEY, required BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS detection_rules (rule TEXT PRIMARY KEY, setting TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS first_access (
    user_name TEXT NOT NULL,
    scope TEXT NOT NULL,
    first_at BIGINT NOT NULL,
    PRIMARY KEY (user_name, scope)
);
CREATE TABLE IF NOT EXISTS holds (
    user_name TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    since BIGINT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_acks (
    seq BIGINT PRIMARY KEY,
    acked_by TEXT NOT NULL,
    acked_at BIGINT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS canary_exports (
    id TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL,
    file_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    device_id TEXT NOT NULL,
    request_id TEXT,
    approvers TEXT NOT NULL,
    row_count BIGINT NOT NULL,
    canary_count BIGINT NOT NULL,
    exported_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS canaries (
    value TEXT PRIMARY KEY,
    export_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS break_glass (
    slot TEXT PRIMARY KEY,
    code_hash BYTEA NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    origin TEXT NOT NULL,
    used_at BIGINT,
    used_by TEXT,
    used_request TEXT
);
CREATE TABLE IF NOT EXISTS audit (
    seq BIGINT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    actor_user TEXT,
    actor_device TEXT,
    action TEXT NOT NULL,
    file_id TEXT,
    result TEXT NOT NULL,
    reason TEXT,
    client_addr TEXT,
    detail TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
-- Defence in depth: the server never changes a record. The table's owner (and
-- a superuser) can drop or disable these; the hash chain and the signed
-- checkpoints catch what they do next.
CREATE OR REPLACE FUNCTION irm_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END
$$;
CREATE OR REPLACE TRIGGER audit_no_update BEFORE UPDATE ON audit
    FOR EACH ROW EXECUTE FUNCTION irm_audit_append_only();
CREATE OR REPLACE TRIGGER audit_no_delete BEFORE DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION irm_audit_append_only();
CREATE OR REPLACE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION irm_audit_append_only();
"#;

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    /// Each table's columns, in order, with whether they may be NULL
    /// (`NOT NULL` or a primary key say no).
    fn tables(schema: &str) -> BTreeMap<String, Vec<(String, bool)>> {
        let mut out = BTreeMap::new();
        let mut rest = schema;
        while let Some(at) = rest.find("CREATE TABLE IF NOT EXISTS ") {
            rest = &rest[at + "CREATE TABLE IF NOT EXISTS ".len()..];
            let (name, after) = rest.split_once(" (").expect("a column list");
            // The column list ends at the first `)` followed by `;`.
            let end = after.find(");").expect("the end of the column list");
            let columns = split_top_level(&after[..end])
                .into_iter()
                .map(str::trim)
                .filter(|c| !c.is_empty() && !c.starts_with("PRIMARY KEY ("))
                .map(|c| {
                    let column = c.split_whitespace().next().unwrap().to_owned();
                    let nullable = !(c.contains("NOT NULL") || c.contains("PRIMARY KEY"));
                    (column, nullable)
                })
                .collect();
            out.insert(name.to_owned(), columns);
            rest = &after[end..];
        }
        out
    }

    /// Splits at the commas outside parentheses.
    fn split_top_level(list: &str) -> Vec<&str> {
        let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
        for (i, c) in list.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(&list[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&list[start..]);
        parts
    }

    #[test]
    fn sqlite_and_postgresql_have_the_same_tables_and_columns() {
        let sqlite = tables(super::SQLITE);
        let postgres = tables(super::POSTGRES);
        assert_eq!(
            sqlite.keys().collect::<Vec<_>>(),
            [
                "alert_acks",
                "approval_rules",
                "approvals",
                "audit",
                "break_glass",
                "canaries",
                "canary_exports",
                "detection_rules",
                "devices",
                "files",
                "first_access",
                "grants",
                "group_members",
                "groups",
                "holds",
                "kas_keys",
                "meta",
                "notices",
                "requests",
                "take_outs",
                "users"
            ]
        );
        assert_eq!(sqlite, postgres);
        assert_eq!(sqlite["audit"].len(), 12);
    }
}
