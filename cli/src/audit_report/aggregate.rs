//! The report's numbers: one pure function of the audit records
//! ([`Aggregator`], fed in `seq` order, then [`Aggregator::finish`]), with
//! no I/O, no clock and no rendering.
//!
//! Memory grows with what the report counts (people, days, the distinct
//! (person, file) pairs opened, as pairs of numbers), never with the number
//! of records: a million grants by twenty people over a month are
//! twenty-odd counters per day. Lists of single events, and the (person,
//! file) pairs shown, are capped at [`MAX_ROWS`] each (the pairs opened
//! most are kept), and what was left out is counted in
//! [`Report::omitted_rows`]; the totals count everything.
//!
//! What the records say is read from their fields and from the `key=value`
//! words of their detail, as the key server writes them (PROTOCOL.md §5,
//! §7.2, §7.3, §12); a record this module does not know is counted and
//! otherwise left alone, so a newer server's log still gives a report.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use irm_core::protocol::{AuditCheckpoint, AuditRecord};
use serde::Serialize;

/// At most this many rows in each list of single events.
pub(crate) const MAX_ROWS: usize = 10_000;

/// Which records the report is about: `since_ms <= at_ms < until_ms`, and,
/// with `user`, only those by or about that person; with `files`, only
/// those about one of these files and the acknowledgements of their alerts
/// (a group's digest: its data owner sees their group's files and nothing
/// of anyone else's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Window {
    /// Unix milliseconds, inclusive.
    pub(crate) since_ms: u64,
    /// Unix milliseconds, exclusive; `None`: up to the last record.
    pub(crate) until_ms: Option<u64>,
    /// Only this person's records (as actor, or named as `user=` in the detail).
    pub(crate) user: Option<String>,
    /// Only records about these files (ids as the records write them).
    #[serde(skip)]
    pub(crate) files: Option<BTreeSet<String>>,
}

impl Window {
    fn holds_time(&self, at_ms: u64) -> bool {
        at_ms >= self.since_ms && self.until_ms.is_none_or(|until| at_ms < until)
    }

    fn holds(&self, record: &AuditRecord) -> bool {
        self.holds_time(record.at_ms)
            && self
                .files
                .as_ref()
                .is_none_or(|files| record.file_id.as_ref().is_some_and(|id| files.contains(id)))
            && self.user.as_deref().is_none_or(|user| {
                record.actor_user.as_deref() == Some(user)
                    || record
                        .detail
                        .as_deref()
                        .and_then(|d| field(d, "user"))
                        .is_some_and(|u| u == user)
            })
    }
}

/// The last record read: what `irm audit verify --export` must find at the
/// end of the chain it checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Head {
    pub(crate) seq: u64,
    pub(crate) hash: String,
    pub(crate) at_ms: u64,
}

/// The totals the report leads with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Totals {
    /// Grants (opens), renewals not counted.
    pub(crate) grants: u64,
    /// Renewals of a grant (a file kept open).
    pub(crate) renewals: u64,
    /// People who opened at least one file.
    pub(crate) people: u64,
    /// Distinct files opened.
    pub(crate) files: u64,
    /// Refused requests of any kind.
    pub(crate) denials: u64,
    /// Take-outs done (`event.print`, `event.copy`, `event.export`, `event.program_read`).
    pub(crate) prints: u64,
    pub(crate) copies: u64,
    pub(crate) exports: u64,
    pub(crate) program_reads: u64,
    /// Rows taken out, where the events said how many.
    pub(crate) rows_taken: u64,
    /// Take-outs refused.
    pub(crate) take_outs_refused: u64,
    /// Take-outs approved by administrators (`file.export`, ...).
    pub(crate) approvals: u64,
    /// `detect.*` records.
    pub(crate) alerts: u64,
    /// `admin.alert.ack` records.
    pub(crate) acknowledgements: u64,
    /// Administrators' actions that change something (lists and reads not counted).
    pub(crate) admin_actions: u64,
    /// Devices enrolled.
    pub(crate) devices_enrolled: u64,
    /// Records of an action this report does not know.
    pub(crate) other: u64,
}

/// Opens by one person on one day (UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct DayOpens {
    pub(crate) day: String,
    pub(crate) user: String,
    pub(crate) grants: u64,
    pub(crate) renewals: u64,
    pub(crate) files: u64,
}

/// Opens of one file by one person over the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct FileOpens {
    pub(crate) user: String,
    pub(crate) file_id: String,
    pub(crate) grants: u64,
    pub(crate) renewals: u64,
}

/// One take-out: a print, copy, export or program read, done or refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct TakeOutRow {
    pub(crate) seq: u64,
    pub(crate) at_ms: u64,
    pub(crate) user: String,
    /// `print`, `copy`, `export`, `program_read`.
    pub(crate) how: String,
    pub(crate) file_id: Option<String>,
    /// `ok`, `denied`, `failed`.
    pub(crate) result: String,
    pub(crate) reason: Option<String>,
    pub(crate) rows: Option<u64>,
    /// The detail the client gave (a printer's name), as recorded.
    pub(crate) detail: Option<String>,
    /// It spent an approved take-out (`approved_print_spent`).
    pub(crate) approved: bool,
    /// The approval it spent, when one in the report matches (file, person, way).
    pub(crate) approved_by: Vec<String>,
}

/// Records taken out by one person.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Taker {
    pub(crate) user: String,
    pub(crate) prints: u64,
    pub(crate) copies: u64,
    pub(crate) exports: u64,
    pub(crate) program_reads: u64,
    pub(crate) rows: u64,
}

impl Taker {
    /// Take-outs of any way.
    pub(crate) fn events(&self) -> u64 {
        self.prints + self.copies + self.exports + self.program_reads
    }
}

/// A take-out approved by administrators (PROTOCOL.md §7.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ApprovalRow {
    pub(crate) seq: u64,
    pub(crate) at_ms: u64,
    /// `file.export`, `file.copy`, `file.print`, `file.program`.
    pub(crate) action: String,
    pub(crate) requester: Option<String>,
    pub(crate) file_id: Option<String>,
    pub(crate) request: Option<String>,
    pub(crate) approved_by: Vec<String>,
    pub(crate) reason: Option<String>,
    pub(crate) result: String,
}

/// Refusals of one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct DenialCount {
    pub(crate) reason: String,
    pub(crate) count: u64,
}

/// Refusals of one person, of one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct UserDenials {
    pub(crate) user: String,
    pub(crate) reason: String,
    pub(crate) count: u64,
}

/// A detection rule's firing (PROTOCOL.md §12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct AlertRow {
    pub(crate) seq: u64,
    pub(crate) at_ms: u64,
    /// The rule (`bulk_files`), from the action `detect.RULE`.
    pub(crate) rule: String,
    pub(crate) user: Option<String>,
    pub(crate) file_id: Option<String>,
    pub(crate) detail: Option<String>,
    /// The acknowledgement that names it, if any.
    pub(crate) acknowledged: Option<AckRow>,
}

/// An acknowledgement of an alert (`admin.alert.ack`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct AckRow {
    pub(crate) seq: u64,
    pub(crate) at_ms: u64,
    pub(crate) by: Option<String>,
    /// The alert's `seq`, when the detail names one.
    pub(crate) alert: Option<u64>,
    pub(crate) reason: Option<String>,
    pub(crate) result: String,
}

/// An administrator's action that changes something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct AdminRow {
    pub(crate) seq: u64,
    pub(crate) at_ms: u64,
    pub(crate) actor: Option<String>,
    pub(crate) action: String,
    pub(crate) result: String,
    /// The refusal's reason, for a refused action.
    pub(crate) refusal: Option<String>,
    /// What it was about (the detail without reason and approvers).
    pub(crate) target: Option<String>,
    pub(crate) reason: Option<String>,
    pub(crate) approved_by: Vec<String>,
}

/// A device enrolled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct EnrollRow {
    pub(crate) seq: u64,
    pub(crate) at_ms: u64,
    pub(crate) user: Option<String>,
    pub(crate) device_id: Option<String>,
    pub(crate) name: Option<String>,
}

/// Who could read a group's files during the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct GroupAccess {
    pub(crate) group: String,
    /// Everyone who was a member at some time in the window.
    pub(crate) members: Vec<String>,
}

/// The newest account review (`admin.review.done`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ReviewRow {
    pub(crate) seq: u64,
    pub(crate) at_ms: u64,
    pub(crate) by: Option<String>,
    pub(crate) reason: Option<String>,
}

/// The report: every number the renderers show, and nothing they compute.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Report {
    pub(crate) window: Window,
    /// Records read, in the window or not.
    pub(crate) records_read: u64,
    /// Records in the window.
    pub(crate) records_in_window: u64,
    /// The `seq` of the first record read.
    pub(crate) first_seq: Option<u64>,
    /// The last record read.
    pub(crate) head: Option<Head>,
    /// The newest checkpoint seen (the one with the highest count).
    pub(crate) checkpoint: Option<AuditCheckpoint>,
    pub(crate) totals: Totals,
    /// By day, then person.
    pub(crate) opens: Vec<DayOpens>,
    /// By person, then file.
    pub(crate) files_opened: Vec<FileOpens>,
    /// Grants by weekday (Monday first) and hour, UTC: `heat[weekday][hour]`.
    pub(crate) heat: Vec<Vec<u64>>,
    pub(crate) take_outs: Vec<TakeOutRow>,
    /// Most take-outs first.
    pub(crate) top_takers: Vec<Taker>,
    pub(crate) approvals: Vec<ApprovalRow>,
    /// Most first.
    pub(crate) denials: Vec<DenialCount>,
    pub(crate) denials_by_user: Vec<UserDenials>,
    pub(crate) alerts: Vec<AlertRow>,
    /// Acknowledgements that name no alert of the report.
    pub(crate) other_acks: Vec<AckRow>,
    pub(crate) admin_actions: Vec<AdminRow>,
    pub(crate) devices_enrolled: Vec<EnrollRow>,
    /// `None` when the records cannot say (they do not start at record 1).
    pub(crate) groups: Option<Vec<GroupAccess>>,
    /// Where `groups` comes from, in words.
    pub(crate) groups_source: String,
    /// The newest account review in the records read (in the window or not).
    pub(crate) last_review: Option<ReviewRow>,
    /// Rows left out of the lists above (past [`MAX_ROWS`] each).
    pub(crate) omitted_rows: u64,
}

/// A detail without the state ledger's section (` ledger: TOKEN ... seal=`,
/// PROTOCOL.md §11.3), which the server appends after everything else.
pub(crate) fn body(detail: &str) -> &str {
    detail.rfind(" ledger: ").map_or(detail, |at| &detail[..at])
}

/// The value of `key=` in a record's detail: the word after it, or for
/// `reason` (always last but for the ledger's section, and free text) the
/// rest of the detail.
pub(crate) fn field<'a>(detail: &'a str, key: &str) -> Option<&'a str> {
    let detail = body(detail);
    let mut at = 0;
    while let Some(found) = detail[at..].find(key) {
        let start = at + found;
        let after = start + key.len();
        let boundary = start == 0 || detail.as_bytes()[start - 1] == b' ';
        if boundary && detail.as_bytes().get(after) == Some(&b'=') {
            let value = &detail[after + 1..];
            return Some(if key == "reason" {
                value
            } else {
                value.split(' ').next().unwrap_or("")
            });
        }
        at = after;
    }
    None
}

/// The detail without its ` reason=...` and `approved_by=` words: what the
/// action was about.
fn target_of(detail: &str) -> Option<String> {
    let detail = body(detail);
    let before_reason = match detail.find(" reason=") {
        Some(i) => &detail[..i],
        None if detail.starts_with("reason=") => "",
        None => detail,
    };
    let words: Vec<&str> = before_reason
        .split(' ')
        .filter(|w| !w.is_empty() && !w.starts_with("approved_by=") && !w.starts_with("request="))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

fn list(detail: Option<&str>, key: &str) -> Vec<String> {
    detail
        .and_then(|d| field(d, key))
        .map(|v| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Days since 1970-01-01 as a civil date (proleptic Gregorian, UTC), after
/// Howard Hinnant's `civil_from_days`.
pub(crate) fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

const MS_PER_DAY: u64 = 86_400_000;

/// `2027-01-31` for a time in Unix milliseconds (UTC).
pub(crate) fn day_of(at_ms: u64) -> String {
    let (y, m, d) = civil(i64::try_from(at_ms / MS_PER_DAY).unwrap_or(0));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Monday = 0 .. Sunday = 6, and the hour, UTC.
fn weekday_hour(at_ms: u64) -> (usize, usize) {
    let days = at_ms / MS_PER_DAY;
    // 1970-01-01 was a Thursday (3 with Monday = 0).
    let weekday = ((days + 3) % 7) as usize;
    let hour = ((at_ms % MS_PER_DAY) / 3_600_000) as usize;
    (weekday, hour)
}

/// Group membership as the records tell it, from record 1 on.
#[derive(Default)]
struct Memberships {
    /// Members now (as of the record read last).
    current: BTreeMap<String, BTreeSet<String>>,
    /// Everyone who was a member at some time in the window.
    in_window: BTreeMap<String, BTreeSet<String>>,
    /// Whether the window has started (members at its start count).
    window_started: bool,
}

impl Memberships {
    fn start_window(&mut self) {
        if !self.window_started {
            self.window_started = true;
            for (group, members) in &self.current {
                self.in_window
                    .entry(group.clone())
                    .or_default()
                    .extend(members.iter().cloned());
            }
        }
    }

    fn join(&mut self, group: &str, user: &str) {
        self.current
            .entry(group.to_owned())
            .or_default()
            .insert(user.to_owned());
        if self.window_started {
            self.in_window
                .entry(group.to_owned())
                .or_default()
                .insert(user.to_owned());
        }
    }

    fn create(&mut self, group: &str) {
        self.current.entry(group.to_owned()).or_default();
        if self.window_started {
            self.in_window.entry(group.to_owned()).or_default();
        }
    }

    fn leave(&mut self, group: &str, user: &str) {
        if let Some(members) = self.current.get_mut(group) {
            members.remove(user);
        }
    }
}

/// Strings numbered in the order first seen, so that a million (person,
/// file) pairs are pairs of numbers, each name kept once.
#[derive(Default)]
struct Interner {
    index: HashMap<String, u32>,
    names: Vec<String>,
}

impl Interner {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.index.get(name) {
            return id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(name.to_owned());
        self.index.insert(name.to_owned(), id);
        id
    }
}

/// Builds a [`Report`] one record at a time.
pub(crate) struct Aggregator {
    report: Report,
    /// (day, user) -> (grants, renewals, distinct files).
    days: BTreeMap<(String, String), (u64, u64, HashSet<u32>)>,
    /// (person, file), as numbers of `names` and `file_ids` -> (grants, renewals).
    files: HashMap<(u32, u32), (u64, u64)>,
    names: Interner,
    file_ids: Interner,
    people: BTreeSet<String>,
    heat: [[u64; 24]; 7],
    takers: HashMap<String, Taker>,
    denials: BTreeMap<String, u64>,
    denials_by_user: BTreeMap<(String, String), u64>,
    /// Alert `seq` -> its index in `report.alerts`.
    alert_index: HashMap<u64, usize>,
    memberships: Memberships,
    /// Whether the records start at record 1 (so group membership is known).
    from_genesis: Option<bool>,
}

impl Aggregator {
    /// Starts a report of `window`.
    pub(crate) fn new(window: Window) -> Self {
        Self {
            report: Report {
                window,
                ..Report::default()
            },
            days: BTreeMap::new(),
            files: HashMap::new(),
            names: Interner::default(),
            file_ids: Interner::default(),
            people: BTreeSet::new(),
            heat: [[0; 24]; 7],
            takers: HashMap::new(),
            denials: BTreeMap::new(),
            denials_by_user: BTreeMap::new(),
            alert_index: HashMap::new(),
            memberships: Memberships::default(),
            from_genesis: None,
        }
    }

    /// A checkpoint read beside the records: the newest is kept.
    pub(crate) fn checkpoint(&mut self, checkpoint: AuditCheckpoint) {
        if self
            .report
            .checkpoint
            .as_ref()
            .is_none_or(|newest| checkpoint.count > newest.count)
        {
            self.report.checkpoint = Some(checkpoint);
        }
    }

    /// Whether a list still has room; counts the row left out if not.
    fn room(omitted: &mut u64, len: usize) -> bool {
        if len < MAX_ROWS {
            true
        } else {
            *omitted += 1;
            false
        }
    }

    /// An account review read apart from the records (it may be older
    /// than the window): kept if it is the newest seen.
    pub(crate) fn note_review(&mut self, r: &AuditRecord) {
        if r.action == "admin.review.done" && r.result == "ok" {
            note_review(&mut self.report.last_review, r);
        }
    }

    /// The next record, in `seq` order.
    pub(crate) fn push(&mut self, r: &AuditRecord) {
        let report = &mut self.report;
        report.records_read += 1;
        report.first_seq.get_or_insert(r.seq);
        self.from_genesis.get_or_insert(r.seq == 1);
        report.head = Some(Head {
            seq: r.seq,
            hash: r.hash.clone(),
            at_ms: r.at_ms,
        });
        let ok = r.result == "ok";
        let detail = r.detail.as_deref();
        // Membership and reviews are followed over the whole log: who was
        // in a group when the window opened depends on what came before.
        if r.at_ms >= report.window.since_ms {
            self.memberships.start_window();
        }
        if ok {
            match r.action.as_str() {
                "admin.group.create" => {
                    if let Some(group) = detail.and_then(|d| field(d, "group")) {
                        self.memberships.create(group);
                    }
                }
                "admin.user.create" => {
                    if let Some(user) = detail.and_then(|d| field(d, "user")) {
                        for group in list(detail, "groups") {
                            self.memberships.join(&group, user);
                        }
                    }
                }
                "admin.group.add_member" | "admin.group.remove_member" => {
                    if let (Some(group), Some(user)) = (
                        detail.and_then(|d| field(d, "group")),
                        detail.and_then(|d| field(d, "user")),
                    ) {
                        if r.action.ends_with("add_member") {
                            self.memberships.join(group, user);
                        } else {
                            self.memberships.leave(group, user);
                        }
                    }
                }
                "admin.review.done" => note_review(&mut report.last_review, r),
                _ => {}
            }
        }
        // An acknowledgement names its alert only in its detail: with a
        // file scope it belongs to the report when its alert does.
        let acks_kept_alert = report.window.files.is_some()
            && r.action == "admin.alert.ack"
            && report.window.holds_time(r.at_ms)
            && acked_alert(detail).is_some_and(|seq| self.alert_index.contains_key(&seq));
        if !report.window.holds(r) && !acks_kept_alert {
            return;
        }
        report.records_in_window += 1;
        let totals = &mut report.totals;
        let user = r.actor_user.clone().unwrap_or_else(|| "-".to_owned());
        let denied = r.result == "denied";
        if denied {
            totals.denials += 1;
            let reason = r.reason.clone().unwrap_or_else(|| "-".to_owned());
            *self.denials.entry(reason.clone()).or_default() += 1;
            *self
                .denials_by_user
                .entry((user.clone(), reason))
                .or_default() += 1;
        }
        let action = r.action.as_str();
        match action {
            "grant" | "renew" if ok => {
                let renew = action == "renew";
                let file = r.file_id.clone().unwrap_or_default();
                let day = self
                    .days
                    .entry((day_of(r.at_ms), user.clone()))
                    .or_default();
                let file = self.file_ids.id(&file);
                let opens = self.files.entry((self.names.id(&user), file)).or_default();
                if renew {
                    totals.renewals += 1;
                    day.1 += 1;
                    opens.1 += 1;
                } else {
                    totals.grants += 1;
                    day.0 += 1;
                    opens.0 += 1;
                    let (weekday, hour) = weekday_hour(r.at_ms);
                    self.heat[weekday][hour] += 1;
                }
                day.2.insert(file);
                self.people.insert(user);
            }
            "grant" | "renew" => {}
            _ if action.starts_with("event.") && action != "event.close" => {
                let how = &action["event.".len()..];
                let rows = detail
                    .and_then(|d| field(d, "rows"))
                    .and_then(|n| n.parse().ok());
                let approved = detail.is_some_and(|d| body(d).ends_with("_spent"));
                if ok {
                    let taker = self.takers.entry(user.clone()).or_insert_with(|| Taker {
                        user: user.clone(),
                        ..Taker::default()
                    });
                    let count = match how {
                        "print" => (&mut totals.prints, &mut taker.prints),
                        "copy" => (&mut totals.copies, &mut taker.copies),
                        "export" => (&mut totals.exports, &mut taker.exports),
                        _ => (&mut totals.program_reads, &mut taker.program_reads),
                    };
                    *count.0 += 1;
                    *count.1 += 1;
                    taker.rows += rows.unwrap_or(0);
                    totals.rows_taken += rows.unwrap_or(0);
                } else {
                    totals.take_outs_refused += 1;
                }
                // The approval it spent: the newest of this file, person and way.
                let approved_by = if approved {
                    report
                        .approvals
                        .iter()
                        .rev()
                        .find(|a| {
                            a.file_id == r.file_id
                                && a.requester.as_deref() == r.actor_user.as_deref()
                                && a.action.strip_prefix("file.") == Some(how_kind(how))
                        })
                        .map(|a| a.approved_by.clone())
                        .unwrap_or_default()
                } else {
                    Vec::new()
                };
                if Self::room(&mut report.omitted_rows, report.take_outs.len()) {
                    // The client's own words, without the server's words around them.
                    let client_detail = detail.map(|d| {
                        body(d)
                            .split(' ')
                            .filter(|w| {
                                !w.starts_with("grant=")
                                    && !w.starts_with("rows=")
                                    && !w.ends_with("_spent")
                            })
                            .collect::<Vec<_>>()
                            .join(" ")
                    });
                    report.take_outs.push(TakeOutRow {
                        seq: r.seq,
                        at_ms: r.at_ms,
                        user,
                        how: how.to_owned(),
                        file_id: r.file_id.clone(),
                        result: r.result.clone(),
                        reason: r.reason.clone(),
                        rows,
                        detail: client_detail.filter(|d| !d.is_empty()),
                        approved,
                        approved_by,
                    });
                }
            }
            "file.export" | "file.copy" | "file.print" | "file.program" => {
                if ok {
                    totals.approvals += 1;
                }
                if Self::room(&mut report.omitted_rows, report.approvals.len()) {
                    report.approvals.push(ApprovalRow {
                        seq: r.seq,
                        at_ms: r.at_ms,
                        action: r.action.clone(),
                        requester: r.actor_user.clone(),
                        file_id: r.file_id.clone(),
                        request: detail.and_then(|d| field(d, "request")).map(str::to_owned),
                        approved_by: list(detail, "approved_by"),
                        reason: detail.and_then(|d| field(d, "reason")).map(str::to_owned),
                        result: r.result.clone(),
                    });
                }
            }
            _ if action.starts_with("detect.") => {
                totals.alerts += 1;
                if Self::room(&mut report.omitted_rows, report.alerts.len()) {
                    self.alert_index.insert(r.seq, report.alerts.len());
                    report.alerts.push(AlertRow {
                        seq: r.seq,
                        at_ms: r.at_ms,
                        rule: action["detect.".len()..].to_owned(),
                        user: r.actor_user.clone(),
                        file_id: r.file_id.clone(),
                        detail: detail.map(|d| body(d).to_owned()),
                        acknowledged: None,
                    });
                }
            }
            "admin.alert.ack" => {
                totals.acknowledgements += 1;
                let alert = acked_alert(detail);
                let ack = AckRow {
                    seq: r.seq,
                    at_ms: r.at_ms,
                    by: r.actor_user.clone(),
                    alert,
                    reason: detail.and_then(|d| field(d, "reason")).map(str::to_owned),
                    result: r.result.clone(),
                };
                match alert.and_then(|seq| self.alert_index.get(&seq)) {
                    Some(&i) if ok => report.alerts[i].acknowledged = Some(ack),
                    _ => {
                        if Self::room(&mut report.omitted_rows, report.other_acks.len()) {
                            report.other_acks.push(ack);
                        }
                    }
                }
            }
            "enroll" if ok => {
                totals.devices_enrolled += 1;
                if Self::room(&mut report.omitted_rows, report.devices_enrolled.len()) {
                    report.devices_enrolled.push(EnrollRow {
                        seq: r.seq,
                        at_ms: r.at_ms,
                        user: r.actor_user.clone(),
                        device_id: r.actor_device.clone(),
                        name: detail.and_then(|d| field(d, "name")).map(str::to_owned),
                    });
                }
            }
            _ if is_admin_change(action) => {
                totals.admin_actions += 1;
                if Self::room(&mut report.omitted_rows, report.admin_actions.len()) {
                    report.admin_actions.push(AdminRow {
                        seq: r.seq,
                        at_ms: r.at_ms,
                        actor: r.actor_user.clone(),
                        action: r.action.clone(),
                        result: r.result.clone(),
                        refusal: r.reason.clone(),
                        target: detail.and_then(target_of),
                        reason: detail.and_then(|d| field(d, "reason")).map(str::to_owned),
                        approved_by: list(detail, "approved_by"),
                    });
                }
            }
            "event.close" | "enroll" | "file.register" | "audit.read" | "audit.verify"
            | "audit.checkpoint" | "state.baseline" => {}
            _ if action.starts_with("admin.") => {}
            _ => totals.other += 1,
        }
    }

    /// The report, with its lists sorted and the group answer given:
    /// `directory` is the membership the admin API tells now, used when the
    /// records do not start at record 1.
    pub(crate) fn finish(mut self, directory: Option<Vec<GroupAccess>>) -> Report {
        let mut report = self.report;
        report.totals.people = self.people.len() as u64;
        report.totals.files = self.file_ids.names.len() as u64;
        report.opens = self
            .days
            .into_iter()
            .map(|((day, user), (grants, renewals, files))| DayOpens {
                day,
                user,
                grants,
                renewals,
                files: files.len() as u64,
            })
            .collect();
        let mut files: Vec<((u32, u32), (u64, u64))> = self.files.into_iter().collect();
        if files.len() > MAX_ROWS {
            // The pairs opened most; the totals count the rest.
            files
                .sort_unstable_by(|a, b| (b.1.0 + b.1.1).cmp(&(a.1.0 + a.1.1)).then(a.0.cmp(&b.0)));
            report.omitted_rows += (files.len() - MAX_ROWS) as u64;
            files.truncate(MAX_ROWS);
        }
        let (names, file_ids) = (&self.names.names, &self.file_ids.names);
        report.files_opened = files
            .into_iter()
            .map(|((user, file), (grants, renewals))| FileOpens {
                user: names[user as usize].clone(),
                file_id: file_ids[file as usize].clone(),
                grants,
                renewals,
            })
            .collect();
        report
            .files_opened
            .sort_unstable_by(|a, b| (&a.user, &a.file_id).cmp(&(&b.user, &b.file_id)));
        report.heat = self.heat.iter().map(|row| row.to_vec()).collect();
        let mut takers: Vec<Taker> = self.takers.into_values().collect();
        takers.sort_by(|a, b| {
            (b.events(), b.rows)
                .cmp(&(a.events(), a.rows))
                .then_with(|| a.user.cmp(&b.user))
        });
        report.top_takers = takers;
        let mut denials: Vec<DenialCount> = self
            .denials
            .into_iter()
            .map(|(reason, count)| DenialCount { reason, count })
            .collect();
        denials.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
        report.denials = denials;
        report.denials_by_user = self
            .denials_by_user
            .into_iter()
            .map(|((user, reason), count)| UserDenials {
                user,
                reason,
                count,
            })
            .collect();
        // A window that starts after the last record still saw the
        // membership as it stands.
        self.memberships.start_window();
        let from_genesis = self.from_genesis.unwrap_or(false);
        (report.groups, report.groups_source) = if from_genesis {
            (
                Some(
                    self.memberships
                        .in_window
                        .into_iter()
                        .map(|(group, members)| GroupAccess {
                            group,
                            members: members.into_iter().collect(),
                        })
                        .collect(),
                ),
                "the audit log from record 1: everyone who was a member at some time in the window"
                    .to_owned(),
            )
        } else if let Some(groups) = directory {
            (
                Some(groups),
                "the key server's admin API: the members now, not over the window".to_owned(),
            )
        } else {
            (
                None,
                format!(
                    "not derivable: the records start at {}, not at record 1 (export the whole chain)",
                    report.first_seq.unwrap_or(0)
                ),
            )
        };
        report
    }
}

fn note_review(last: &mut Option<ReviewRow>, r: &AuditRecord) {
    if last.as_ref().is_none_or(|seen| seen.seq < r.seq) {
        *last = Some(ReviewRow {
            seq: r.seq,
            at_ms: r.at_ms,
            by: r.actor_user.clone(),
            reason: r
                .detail
                .as_deref()
                .and_then(|d| field(d, "reason"))
                .map(str::to_owned),
        });
    }
}

/// The alert an acknowledgement names: being built beside this (issue
/// #14), by its seq, under whichever of these words the server uses.
fn acked_alert(detail: Option<&str>) -> Option<u64> {
    ["alert", "alert_seq", "seq"]
        .iter()
        .find_map(|k| detail.and_then(|d| field(d, k)))
        .and_then(|v| v.parse::<u64>().ok())
}

/// The word in a take-out approval's action for a usage event's way.
fn how_kind(how: &str) -> &str {
    match how {
        "program_read" => "program",
        other => other,
    }
}

/// Whether an `admin.*` action changes something (lists and shows do not).
fn is_admin_change(action: &str) -> bool {
    action.starts_with("admin.")
        && !action.ends_with(".list")
        && !action.ends_with(".show")
        && action != "admin.alert.ack"
}

/// The report of `records` in `window`: [`Aggregator`] in one call.
#[cfg(test)]
pub(crate) fn aggregate<'a>(
    window: Window,
    records: impl IntoIterator<Item = &'a AuditRecord>,
) -> Report {
    let mut aggregator = Aggregator::new(window);
    for record in records {
        aggregator.push(record);
    }
    aggregator.finish(None)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// 2026-12-07 (a Monday) 09:00 UTC.
    pub(crate) const MONDAY_9: u64 = 1_796_634_000_000;

    pub(crate) fn rec(seq: u64, at_ms: u64, user: &str, action: &str) -> AuditRecord {
        AuditRecord {
            seq,
            at_ms,
            actor_user: Some(user.to_owned()),
            actor_device: Some("d".repeat(32)),
            action: action.to_owned(),
            file_id: None,
            result: "ok".to_owned(),
            reason: None,
            client_addr: None,
            detail: None,
            prev_hash: "0".repeat(64),
            hash: format!("{seq:064x}"),
        }
    }

    pub(crate) fn with(
        mut r: AuditRecord,
        file: Option<&str>,
        result: &str,
        reason: Option<&str>,
        detail: Option<&str>,
    ) -> AuditRecord {
        r.file_id = file.map(str::to_owned);
        r.result = result.to_owned();
        r.reason = reason.map(str::to_owned);
        r.detail = detail.map(str::to_owned);
        r
    }

    /// A small day: two people open files, a refusal, an approved print, an
    /// alert and its acknowledgement, administrators at work.
    pub(crate) fn a_day() -> Vec<AuditRecord> {
        let h = 3_600_000;
        let f1 = Some("aa".repeat(16));
        let f2 = Some("bb".repeat(16));
        let f1 = f1.as_deref();
        let f2 = f2.as_deref();
        vec![
            rec(1, MONDAY_9 - 48 * h, "root", "server.init"),
            with(
                rec(2, MONDAY_9 - 47 * h, "root", "admin.group.create"),
                None,
                "ok",
                None,
                Some("group=support"),
            ),
            with(
                rec(3, MONDAY_9 - 46 * h, "root", "admin.user.create"),
                None,
                "ok",
                None,
                Some(
                    "user=alice roles=user groups=support request=r1 approved_by=bob reason=new hire",
                ),
            ),
            with(
                rec(4, MONDAY_9 - 45 * h, "root", "admin.user.create"),
                None,
                "ok",
                None,
                Some("user=carol roles=user groups=support,sales request=r2 approved_by=bob"),
            ),
            with(
                rec(5, MONDAY_9 - 44 * h, "root", "admin.group.remove_member"),
                None,
                "ok",
                None,
                Some("group=sales user=carol reason=moved"),
            ),
            with(
                rec(6, MONDAY_9, "alice", "enroll"),
                None,
                "ok",
                None,
                Some("device=dd name=laptop issued_by=root"),
            ),
            with(
                rec(7, MONDAY_9 + 60_000, "alice", "grant"),
                f1,
                "ok",
                None,
                Some("grant=g1 rights=view lease_expires_at=1"),
            ),
            with(
                rec(8, MONDAY_9 + 120_000, "alice", "renew"),
                f1,
                "ok",
                None,
                Some("grant=g2 rights=view lease_expires_at=1"),
            ),
            with(
                rec(9, MONDAY_9 + 180_000, "alice", "grant"),
                f2,
                "ok",
                None,
                Some("grant=g3"),
            ),
            with(
                rec(10, MONDAY_9 + h, "carol", "grant"),
                f1,
                "ok",
                None,
                Some("grant=g4"),
            ),
            with(
                rec(11, MONDAY_9 + h, "mallory", "grant"),
                f1,
                "denied",
                Some("not_recipient"),
                None,
            ),
            with(
                rec(12, MONDAY_9 + 2 * h, "alice", "file.print"),
                f1,
                "ok",
                None,
                Some("user=alice device=dd request=r3 approved_by=bob,root reason=TICKET-1"),
            ),
            with(
                rec(13, MONDAY_9 + 2 * h + 1, "alice", "event.print"),
                f1,
                "ok",
                None,
                Some("grant=g1 printer-3 rows=120 approved_print_spent"),
            ),
            with(
                rec(14, MONDAY_9 + 2 * h + 2, "carol", "event.copy"),
                f1,
                "denied",
                Some("export_approval_required"),
                Some("grant=g4 rows=5000"),
            ),
            with(
                rec(15, MONDAY_9 + 2 * h + 3, "carol", "detect.take_out_refused"),
                f1,
                "ok",
                None,
                Some("how=copy action=alert"),
            ),
            with(
                rec(16, MONDAY_9 + 3 * h, "bob", "admin.alert.ack"),
                None,
                "ok",
                None,
                Some("alert=15 reason=talked to carol"),
            ),
            with(
                rec(17, MONDAY_9 + 3 * h, "bob", "admin.user.list"),
                None,
                "ok",
                None,
                None,
            ),
            with(
                rec(18, MONDAY_9 + 3 * h, "bob", "admin.file.revoke"),
                f2,
                "ok",
                None,
                Some("reason=leaked"),
            ),
            with(
                rec(19, MONDAY_9 + 4 * h, "bob", "admin.review.done"),
                None,
                "ok",
                None,
                Some("reason=Q4 review"),
            ),
            with(
                rec(20, MONDAY_9 + 30 * h, "alice", "grant"),
                f1,
                "ok",
                None,
                Some("grant=g5"),
            ),
        ]
    }

    #[test]
    fn a_day_adds_up() {
        let day = a_day();
        let report = aggregate(
            Window {
                since_ms: MONDAY_9,
                until_ms: Some(MONDAY_9 + 24 * 3_600_000),
                user: None,
                files: None,
            },
            &day,
        );
        let t = &report.totals;
        assert_eq!((t.grants, t.renewals, t.people, t.files), (3, 1, 2, 2));
        assert_eq!(
            (t.denials, t.prints, t.copies, t.take_outs_refused),
            (2, 1, 0, 1)
        );
        assert_eq!(
            (t.rows_taken, t.approvals, t.alerts, t.acknowledgements),
            (120, 1, 1, 1)
        );
        assert_eq!((t.admin_actions, t.devices_enrolled), (2, 1));
        assert_eq!(report.records_read, 20);
        assert_eq!(report.records_in_window, 14);
        assert_eq!(report.head.as_ref().map(|h| h.seq), Some(20));

        assert_eq!(
            report.opens,
            vec![
                DayOpens {
                    day: "2026-12-07".into(),
                    user: "alice".into(),
                    grants: 2,
                    renewals: 1,
                    files: 2
                },
                DayOpens {
                    day: "2026-12-07".into(),
                    user: "carol".into(),
                    grants: 1,
                    renewals: 0,
                    files: 1
                },
            ]
        );
        assert_eq!(report.heat[0][9], 2, "Monday 09:00");
        assert_eq!(report.heat[0][10], 1);
        assert_eq!(report.heat.iter().flatten().sum::<u64>(), 3);

        let print = &report.take_outs[0];
        assert_eq!(
            (print.how.as_str(), print.rows, print.approved),
            ("print", Some(120), true)
        );
        assert_eq!(print.approved_by, ["bob", "root"]);
        assert_eq!(print.detail.as_deref(), Some("printer-3"));
        assert_eq!(report.approvals[0].reason.as_deref(), Some("TICKET-1"));
        assert_eq!(report.top_takers[0].user, "alice");

        assert_eq!(
            report.denials[0],
            DenialCount {
                reason: "export_approval_required".into(),
                count: 1
            }
        );
        assert_eq!(report.denials.len(), 2);

        let alert = &report.alerts[0];
        assert_eq!(alert.rule, "take_out_refused");
        let ack = alert.acknowledged.as_ref().expect("acknowledged");
        assert_eq!(
            (ack.by.as_deref(), ack.reason.as_deref()),
            (Some("bob"), Some("talked to carol"))
        );
        assert!(report.other_acks.is_empty());

        let revoke = report
            .admin_actions
            .iter()
            .find(|a| a.action == "admin.file.revoke")
            .unwrap();
        assert_eq!(revoke.reason.as_deref(), Some("leaked"));
        assert_eq!(report.devices_enrolled[0].name.as_deref(), Some("laptop"));

        let groups = report.groups.as_ref().expect("from record 1");
        assert_eq!(groups.len(), 2);
        assert_eq!(
            groups[0],
            GroupAccess {
                group: "sales".into(),
                members: vec![]
            }
        );
        assert_eq!(groups[1].members, ["alice", "carol"]);
        let review = report.last_review.as_ref().unwrap();
        assert_eq!(
            (review.by.as_deref(), review.reason.as_deref()),
            (Some("bob"), Some("Q4 review"))
        );
    }

    #[test]
    fn one_person_and_a_range_without_its_start() {
        let day = a_day();
        let report = aggregate(
            Window {
                since_ms: 0,
                until_ms: None,
                user: Some("carol".into()),
                files: None,
            },
            day.iter().skip(5),
        );
        assert_eq!(report.totals.grants, 1);
        assert_eq!(report.totals.alerts, 1);
        assert_eq!(report.totals.take_outs_refused, 1);
        assert!(report.groups.is_none(), "{}", report.groups_source);
        assert!(
            report.groups_source.contains("start at 6"),
            "{}",
            report.groups_source
        );
        // The acknowledgement is bob's, about carol's alert: not in her records.
        assert_eq!(report.totals.acknowledgements, 0);
    }

    #[test]
    fn details_are_read_word_by_word_and_reason_to_the_end() {
        let d = "user=alice device=dd request=r3 approved_by=bob,root reason=a b user=x";
        assert_eq!(field(d, "user"), Some("alice"));
        assert_eq!(field(d, "approved_by"), Some("bob,root"));
        assert_eq!(field(d, "reason"), Some("a b user=x"));
        assert_eq!(field(d, "vice"), None);
        assert_eq!(field("grant=g rows=5", "rows"), Some("5"));
        let sealed =
            "group=s user=a approved_by=b reason=why not ledger: state=member/s/a#00 seal=11";
        assert_eq!(field(sealed, "reason"), Some("why not"));
        assert_eq!(field(sealed, "seal"), None);
        assert_eq!(field(" ledger: state=file/x#00 seal=1", "seal"), None);
        assert_eq!(target_of(d).as_deref(), Some("user=alice device=dd"));
    }

    #[test]
    fn dates_are_utc_civil_dates() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(MONDAY_9), "2026-12-07");
        assert_eq!(day_of(951_782_400_000), "2000-02-29");
        assert_eq!(weekday_hour(MONDAY_9), (0, 9));
        assert_eq!(weekday_hour(0), (3, 0));
    }

    #[test]
    fn long_lists_are_capped_and_counted() {
        let records: Vec<AuditRecord> = (1..=(MAX_ROWS as u64 + 5))
            .map(|seq| rec(seq, MONDAY_9, "eve", "detect.bulk_files"))
            .collect();
        let report = aggregate(Window::default(), &records);
        assert_eq!(report.alerts.len(), MAX_ROWS);
        assert_eq!(report.totals.alerts, MAX_ROWS as u64 + 5);
        assert_eq!(report.omitted_rows, 5);

        // Distinct (person, file) pairs: the most opened are kept.
        let mut records: Vec<AuditRecord> = (1..=(MAX_ROWS as u64 + 5))
            .map(|seq| {
                let file = format!("{seq:032x}");
                with(
                    rec(seq, MONDAY_9, "eve", "grant"),
                    Some(&file),
                    "ok",
                    None,
                    None,
                )
            })
            .collect();
        let again = with(
            rec(0, MONDAY_9, "eve", "grant"),
            records[9].file_id.clone().as_deref(),
            "ok",
            None,
            None,
        );
        records.push(AuditRecord {
            seq: MAX_ROWS as u64 + 6,
            ..again
        });
        let report = aggregate(Window::default(), &records);
        assert_eq!(report.totals.files, MAX_ROWS as u64 + 5);
        assert_eq!(report.totals.grants, MAX_ROWS as u64 + 6);
        assert_eq!(report.files_opened.len(), MAX_ROWS);
        assert_eq!(report.omitted_rows, 5);
        assert!(
            report
                .files_opened
                .iter()
                .any(|f| f.grants == 2 && f.file_id == format!("{:032x}", 10))
        );
    }
}
