//! Detection on the grant path (PROTOCOL.md §12): the rules, and the
//! counters the writer keeps of each person's recent grants and denials.
//!
//! The writer thread owns one [`Detector`] and asks it about every grant
//! and denial it records, inside the same transaction, so a rule costs no
//! database round trip and its action (a hold, a suspension) commits with
//! the grant that set it off. Only signed requests reach the writer, so
//! only a person's own verified requests count towards them: nobody can
//! fail in a victim's name to lock them out. The counters are rebuilt
//! from the audit log when the server unseals ([`Detector::replay_grant`]),
//! so a restart forgets nothing the window still covers.

use std::collections::{HashMap, HashSet, VecDeque};

pub mod hours;

pub use hours::Schedule;

/// What a rule does when it fires (the wire type, PROTOCOL.md §12.2).
pub use irm_core::protocol::DetectionAction as Action;
use irm_core::protocol::DetectionLimit;

/// The rules in force; `None` switches one off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Bulk access: a person's grants cover more than `limit` distinct
    /// files within the window (`bulk_files`).
    pub bulk: Option<DetectionLimit>,
    /// Repeated refusals: `limit` or more of a person's grants refused
    /// within the window (`denials`; an alert: someone probing what they
    /// may not open).
    pub denials: Option<DetectionLimit>,
    /// Records taken: rows copied, printed or exported, as clients report
    /// them, more than `limit` in the window (`records_taken`).
    pub records: Option<DetectionLimit>,
    /// Devices in use at once: a person's grants and renewals from more
    /// than `limit` devices within the window (`devices`).
    pub devices: Option<DetectionLimit>,
    /// Networks: a person's grants and renewals from more than `limit`
    /// client networks (IPv4 /24, IPv6 /48) within the window (`networks`).
    pub networks: Option<DetectionLimit>,
    /// A person's own baseline: new grants in the current clock hour above
    /// `limit` times their median hourly count over the window (`baseline`),
    /// once half the window's history exists.
    pub baseline: Option<DetectionLimit>,
    /// Outside working hours: `limit` new grants or more outside the
    /// person's groups' working hours within the window (`off_hours`).
    pub off_hours: Option<DetectionLimit>,
    /// First access: `limit` or more scopes (a group's files, a
    /// classification) a person opens for the first time within the window,
    /// once their first access is older than the window (`first_access`).
    pub first_access: Option<DetectionLimit>,
    /// Peers: a person's distinct files, or rows taken, over the window
    /// (and three times it) above `limit` times the median of the other
    /// members of their groups (`peers`, checked hourly off the grant path).
    pub peers: Option<DetectionLimit>,
}

impl Rules {
    /// Every rule switched off.
    pub const OFF: Self = Self {
        bulk: None,
        denials: None,
        records: None,
        devices: None,
        networks: None,
        baseline: None,
        off_hours: None,
        first_access: None,
        peers: None,
    };

    /// `rule`'s setting as the wire and the store name it; `None` when it
    /// is off (or no such rule exists).
    pub fn setting(&self, rule: &str) -> Option<DetectionLimit> {
        match rule {
            "bulk_files" => self.bulk,
            "denials" => self.denials,
            "records_taken" => self.records,
            "devices" => self.devices,
            "networks" => self.networks,
            "baseline" => self.baseline,
            "off_hours" => self.off_hours,
            "first_access" => self.first_access,
            "peers" => self.peers,
            _ => None,
        }
    }

    /// Puts `setting` in force for `rule` (checked before, with
    /// `irm_core::protocol::check_detection_setting`).
    pub fn set(&mut self, rule: &str, setting: Option<DetectionLimit>) {
        match rule {
            "bulk_files" => self.bulk = setting,
            "denials" => self.denials = setting,
            "records_taken" => self.records = setting,
            "devices" => self.devices = setting,
            "networks" => self.networks = setting,
            "baseline" => self.baseline = setting,
            "off_hours" => self.off_hours = setting,
            "first_access" => self.first_access = setting,
            "peers" => self.peers = setting,
            _ => {}
        }
    }
}

impl Default for Rules {
    /// A new server stops bulk access out of the box: more than 30 files in
    /// 5 minutes holds the person's grants. Alerts: 10 refusals in 10
    /// minutes; more than 10,000 records taken in a day; two devices in use
    /// within 10 minutes; two networks within an hour; an hour's grants
    /// above ten times the person's median hour of the last 14 days.
    fn default() -> Self {
        Self {
            bulk: Some(DetectionLimit {
                limit: 30,
                window_secs: 300,
                action: Action::StepUp,
            }),
            denials: Some(DetectionLimit {
                limit: 10,
                window_secs: 600,
                action: Action::Alert,
            }),
            records: Some(DetectionLimit {
                limit: 10_000,
                window_secs: 86_400,
                action: Action::Alert,
            }),
            devices: Some(DetectionLimit {
                limit: 1,
                window_secs: 600,
                action: Action::Alert,
            }),
            networks: Some(DetectionLimit {
                limit: 1,
                window_secs: 3600,
                action: Action::Alert,
            }),
            baseline: Some(DetectionLimit {
                limit: 10,
                window_secs: 14 * 86_400,
                action: Action::Alert,
            }),
            off_hours: Some(DetectionLimit {
                limit: 1,
                window_secs: 3600,
                action: Action::Alert,
            }),
            first_access: Some(DetectionLimit {
                limit: 1,
                window_secs: 7 * 86_400,
                action: Action::Alert,
            }),
            peers: Some(DetectionLimit {
                limit: 5,
                window_secs: 30 * 86_400,
                action: Action::Alert,
            }),
        }
    }
}

/// One person's totals over a window, for the `peers` rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Distinct files granted.
    pub files: u64,
    /// Rows taken out (copies, prints, exports that said how many).
    pub rows: u64,
}

/// What the `peers` rule compares: every active person with their groups,
/// and each person's totals over each window asked for.
#[derive(Debug, Clone, Default)]
pub struct PeerInputs {
    /// (person, their groups).
    pub people: Vec<(String, Vec<String>)>,
    /// Per window, in the order asked: totals by person (absent: zero).
    pub totals: Vec<HashMap<String, Totals>>,
}

/// The fewest peers a comparison needs: with fewer, a median says little.
pub const MIN_PEERS: usize = 3;

/// The least a total must reach before it can stand out (so that 6 files
/// against peers' 1 is not news).
pub const PEER_FLOOR_FILES: u64 = 20;
/// The same for rows.
pub const PEER_FLOOR_ROWS: u64 = 1_000;

/// Who stands out from their peers (PROTOCOL.md §12): for each person in
/// `groups` (person, their groups), their totals in `totals` against the
/// median of everyone else who shares a group with them (absent from
/// `totals`: zero); `factor` times the median, and at least the floor,
/// is exceeded. The firings' details name what and by how much.
pub fn peer_outliers(
    groups: &[(String, Vec<String>)],
    totals: &HashMap<String, Totals>,
    factor: u32,
    window_days: u64,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (user, mine) in groups {
        let peers: Vec<Totals> = groups
            .iter()
            .filter(|(other, theirs)| other != user && theirs.iter().any(|g| mine.contains(g)))
            .map(|(other, _)| totals.get(other).copied().unwrap_or_default())
            .collect();
        if peers.len() < MIN_PEERS {
            continue;
        }
        let own = totals.get(user).copied().unwrap_or_default();
        let median = |f: fn(&Totals) -> u64| {
            let mut v: Vec<u64> = peers.iter().map(f).collect();
            v.sort_unstable();
            v[(v.len() - 1) / 2]
        };
        let factor = u64::from(factor);
        let (files, rows) = (median(|t| t.files), median(|t| t.rows));
        let what = if own.files > (factor * files).max(PEER_FLOOR_FILES) {
            Some(("files", own.files, files))
        } else if own.rows > (factor * rows).max(PEER_FLOOR_ROWS) {
            Some(("rows", own.rows, rows))
        } else {
            None
        };
        if let Some((what, n, median)) = what {
            out.push((
                user.clone(),
                format!(
                    "{what}={n} peer_median={median} peers={} factor={factor} window_days={window_days}",
                    peers.len()
                ),
            ));
        }
    }
    out
}

/// A rule that fired, for the audit record and its action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firing {
    /// `bulk_files` or `denials`.
    pub rule: &'static str,
    /// What to do.
    pub action: Action,
    /// What it saw, for the reviewers: `files=31 window_secs=300 action=step_up`.
    pub detail: String,
}

/// One person's recent activity.
#[derive(Debug, Default)]
struct Recent {
    /// Each file's newest grant (Unix seconds).
    files: HashMap<String, u64>,
    /// Refusals, oldest first.
    denials: VecDeque<u64>,
    /// Records taken (when, how many), oldest first, and their sum.
    taken: VecDeque<(u64, u64)>,
    taken_sum: u64,
    /// Each device's and each network's newest grant or renewal.
    devices: HashMap<String, u64>,
    networks: HashMap<String, u64>,
    /// New grants per clock hour (hour number, count), oldest first, over
    /// the baseline's window; and the first hour ever counted.
    hours: VecDeque<(u64, u32)>,
    first_hour: Option<u64>,
    /// The median of `hours` before the current hour, kept for that hour
    /// (recomputed when the hour turns, not on every grant).
    median: Option<(u64, Option<u32>)>,
    /// New grants outside working hours, oldest first.
    off_hours: VecDeque<u64>,
    /// First accesses to a scope within the window, oldest first.
    firsts: VecDeque<u64>,
    /// When each rule last fired, so one burst raises one alert.
    fired: HashMap<&'static str, u64>,
}

/// The counters of every person seen within the rules' windows.
#[derive(Debug, Default)]
pub struct Detector {
    rules: Rules,
    people: HashMap<String, Recent>,
    /// Working hours by group (`*`: everyone whose groups have none).
    schedules: HashMap<String, Schedule>,
    /// Every scope each person has opened, and when they first opened any
    /// (kept in the database too: it outlives every window).
    scopes: HashMap<String, (u64, HashSet<String>)>,
}

impl Detector {
    /// A detector with `rules` and no history.
    pub fn new(rules: Rules) -> Self {
        Self {
            rules,
            people: HashMap::new(),
            schedules: HashMap::new(),
            scopes: HashMap::new(),
        }
    }

    /// Counts a grant (not a renewal) of `file` to `user` at `now`; the
    /// bulk rule, if this grant is the one that crosses it.
    pub fn grant(&mut self, user: &str, file: &str, now: u64) -> Option<Firing> {
        let rule = self.rules.bulk?;
        let recent = recent_of(&mut self.people, user);
        let since = now.saturating_sub(rule.window_secs);
        recent.files.retain(|_, at| *at > since);
        // On every grant: allocate a name only for a file not seen lately.
        match recent.files.get_mut(file) {
            Some(at) => *at = now,
            None => {
                recent.files.insert(file.to_owned(), now);
            }
        }
        let files = recent.files.len();
        if files <= rule.limit as usize || fired_within(recent, "bulk_files", since) {
            return None;
        }
        recent.fired.insert("bulk_files", now);
        Some(Firing {
            rule: "bulk_files",
            action: rule.action,
            detail: format!(
                "files={files} window_secs={} limit={} action={}",
                rule.window_secs,
                rule.limit,
                rule.action.as_str()
            ),
        })
    }

    /// Counts a refused grant of `user` at `now`; the denial rule, if this
    /// refusal is the one that reaches it.
    pub fn denial(&mut self, user: &str, now: u64) -> Option<Firing> {
        let rule = self.rules.denials?;
        let recent = recent_of(&mut self.people, user);
        let since = now.saturating_sub(rule.window_secs);
        while recent.denials.front().is_some_and(|at| *at <= since) {
            recent.denials.pop_front();
        }
        recent.denials.push_back(now);
        let denials = recent.denials.len();
        if denials < rule.limit as usize || fired_within(recent, "denials", since) {
            return None;
        }
        recent.fired.insert("denials", now);
        Some(Firing {
            rule: "denials",
            action: Action::Alert,
            detail: format!(
                "denials={denials} window_secs={} limit={} action=alert",
                rule.window_secs, rule.limit
            ),
        })
    }

    /// Notes a scope `user` first opened at `at`, read from the database.
    pub fn load_first_access(&mut self, user: &str, scope: &str, at: u64) {
        let (first, scopes) = self
            .scopes
            .entry(user.to_owned())
            .or_insert_with(|| (at, HashSet::new()));
        *first = (*first).min(at);
        scopes.insert(scope.to_owned());
    }

    /// Counts a grant (not a renewal) of `user`'s under `scopes` (the groups
    /// through which they receive the file, `group:NAME`, and its
    /// classification, `class:NAME`) at `now`: the scopes new to them, for
    /// the database, and the `first_access` rule if this reaches it. A
    /// person's first scopes fire nothing: everyone starts somewhere.
    pub fn first_access(
        &mut self,
        user: &str,
        scopes: &[String],
        now: u64,
    ) -> (Vec<String>, Option<Firing>) {
        if self.rules.first_access.is_none() {
            return (Vec::new(), None);
        }
        let (first, seen) = self
            .scopes
            .entry(user.to_owned())
            .or_insert_with(|| (now, HashSet::new()));
        let new: Vec<String> = scopes
            .iter()
            .filter(|s| !seen.contains(s.as_str()))
            .cloned()
            .collect();
        if new.is_empty() {
            return (new, None);
        }
        seen.extend(new.iter().cloned());
        let first = *first;
        let rule = self.rules.first_access.expect("checked above");
        if now.saturating_sub(first) < rule.window_secs {
            return (new, None);
        }
        let recent = recent_of(&mut self.people, user);
        let since = now.saturating_sub(rule.window_secs);
        while recent.firsts.front().is_some_and(|at| *at <= since) {
            recent.firsts.pop_front();
        }
        recent.firsts.push_back(now);
        let count = recent.firsts.len() as u64;
        let fired = if count < u64::from(rule.limit) {
            None
        } else {
            fire(recent, "first_access", "first_scopes", count, &rule, now).map(|mut f| {
                f.detail = format!("{} scope={}", f.detail, new.join(","));
                f
            })
        };
        (new, fired)
    }

    /// Sets (or with `None` removes) `group`'s working hours.
    pub fn set_schedule(&mut self, group: &str, schedule: Option<Schedule>) {
        match schedule {
            Some(s) => {
                self.schedules.insert(group.to_owned(), s);
            }
            None => {
                self.schedules.remove(group);
            }
        }
    }

    /// `group`'s working hours, if it has any.
    pub fn schedule(&self, group: &str) -> Option<&Schedule> {
        self.schedules.get(group)
    }

    /// Counts a grant (not a renewal) of `user`'s, a member of `groups`, at
    /// `now` if it is outside working hours: those of any of their groups
    /// that has a schedule (inside one is inside), else the `*` schedule;
    /// nobody with neither is ever outside. The `off_hours` rule, if this
    /// grant reaches its limit.
    pub fn off_hours(&mut self, user: &str, groups: &[String], now: u64) -> Option<Firing> {
        let rule = self.rules.off_hours?;
        let mut schedules = groups
            .iter()
            .filter_map(|g| self.schedules.get(g))
            .peekable();
        let outside = if schedules.peek().is_some() {
            !schedules.any(|s| s.contains(now))
        } else {
            self.schedules.get("*").is_some_and(|s| !s.contains(now))
        };
        if !outside {
            return None;
        }
        let recent = recent_of(&mut self.people, user);
        let since = now.saturating_sub(rule.window_secs);
        while recent.off_hours.front().is_some_and(|at| *at <= since) {
            recent.off_hours.pop_front();
        }
        recent.off_hours.push_back(now);
        let count = recent.off_hours.len() as u64;
        if count < u64::from(rule.limit) {
            return None;
        }
        fire(recent, "off_hours", "grants_outside", count, &rule, now)
    }

    /// Counts a grant (not a renewal) of `user`'s at `now` towards their
    /// hourly baseline; the `baseline` rule, if this hour has gone past
    /// `limit` times their median hour.
    pub fn hourly(&mut self, user: &str, now: u64) -> Option<Firing> {
        let rule = self.rules.baseline?;
        let recent = recent_of(&mut self.people, user);
        let hour = now / 3600;
        let history_hours = rule.window_secs / 3600;
        while recent
            .hours
            .front()
            .is_some_and(|(h, _)| *h + history_hours < hour)
        {
            recent.hours.pop_front();
        }
        let this_hour = match recent.hours.back_mut() {
            Some((h, n)) if *h == hour => {
                *n += 1;
                *n
            }
            _ => {
                recent.hours.push_back((hour, 1));
                1
            }
        };
        let first = *recent.first_hour.get_or_insert(hour);
        // Half the window's history first: a new person has no baseline.
        if hour.saturating_sub(first) < history_hours / 2 {
            return None;
        }
        let median = match recent.median {
            Some((h, median)) if h == hour => median,
            _ => {
                let median = median_before(&recent.hours, hour);
                recent.median = Some((hour, median));
                median
            }
        };
        let median = median?;
        let limit = u64::from(rule.limit) * u64::from(median);
        if u64::from(this_hour) <= limit
            || recent
                .fired
                .get("baseline")
                .is_some_and(|at| at / 3600 == hour)
        {
            return None;
        }
        recent.fired.insert("baseline", now);
        Some(Firing {
            rule: "baseline",
            action: rule.action,
            detail: format!(
                "grants_this_hour={this_hour} median_hour={median} factor={} window_secs={} action={}",
                rule.limit,
                rule.window_secs,
                rule.action.as_str()
            ),
        })
    }

    /// Counts a grant or renewal of `user`'s from `device` and the client
    /// network `network` ([`network_of`] the address) at `now`; the
    /// `devices` and `networks` rules, if this one crosses them.
    pub fn in_use(
        &mut self,
        user: &str,
        device: &str,
        network: Option<&str>,
        now: u64,
    ) -> Vec<Firing> {
        let mut fired = Vec::new();
        let rules = self.rules;
        let recent = recent_of(&mut self.people, user);
        if let Some(rule) = rules.devices
            && let Some(count) = distinct(&mut recent.devices, device, now, &rule)
        {
            fired.extend(fire(recent, "devices", "devices", count, &rule, now));
        }
        if let (Some(rule), Some(network)) = (rules.networks, network)
            && let Some(count) = distinct(&mut recent.networks, network, now, &rule)
        {
            fired.extend(fire(recent, "networks", "networks", count, &rule, now));
        }
        fired
    }

    /// Counts `rows` records `user` took out (a copy, print or export the
    /// server allowed) at `now`; the `records_taken` rule, if this crosses it.
    pub fn taken(&mut self, user: &str, rows: u64, now: u64) -> Option<Firing> {
        let rule = self.rules.records?;
        let recent = recent_of(&mut self.people, user);
        let since = now.saturating_sub(rule.window_secs);
        while let Some(&(at, n)) = recent.taken.front()
            && at <= since
        {
            recent.taken.pop_front();
            recent.taken_sum -= n;
        }
        recent.taken.push_back((now, rows));
        recent.taken_sum += rows;
        if recent.taken_sum <= u64::from(rule.limit) {
            return None;
        }
        fire(
            recent,
            "records_taken",
            "records",
            recent.taken_sum,
            &rule,
            now,
        )
    }

    /// Replays a grant or renewal found in the audit log for the `devices`
    /// and `networks` rules, without firing.
    pub fn replay_in_use(&mut self, user: &str, device: &str, addr: Option<&str>, at: u64) {
        let network = addr.and_then(network_of);
        let fired = self.in_use(user, device, network.as_deref(), at);
        self.mark_fired(user, &fired, at);
    }

    /// Replays records taken found in the audit log, without firing.
    pub fn replay_taken(&mut self, user: &str, rows: u64, at: u64) {
        let fired: Vec<Firing> = self.taken(user, rows, at).into_iter().collect();
        self.mark_fired(user, &fired, at);
    }

    fn mark_fired(&mut self, user: &str, fired: &[Firing], at: u64) {
        if let Some(recent) = self.people.get_mut(user) {
            for firing in fired {
                recent.fired.insert(firing.rule, at);
            }
        }
    }

    /// Replays a grant or refusal found in the audit log, counting it
    /// without firing (what it set off then is already recorded).
    pub fn replay(&mut self, user: &str, file: Option<&str>, granted: bool, at: u64) {
        let mut fired = Vec::new();
        match (granted, file) {
            (true, Some(file)) => {
                fired.extend(self.grant(user, file, at));
                fired.extend(self.hourly(user, at));
            }
            (false, _) => fired.extend(self.denial(user, at)),
            (true, None) => {}
        }
        // Fired then, as the log says: one burst, one firing.
        self.mark_fired(user, &fired, at);
    }

    /// The rules in force.
    pub fn rules(&self) -> Rules {
        self.rules
    }

    /// Changes one rule, keeping every count (a tightened rule applies to
    /// what the window already holds).
    pub fn set_rule(&mut self, rule: &str, setting: Option<DetectionLimit>) {
        self.rules.set(rule, setting);
    }

    /// Forgets `user`'s counts: administrators released them, and the
    /// burst that held them must not hold them again at their next grant.
    pub fn forget(&mut self, user: &str) {
        self.people.remove(user);
    }

    /// The longest window of the rules rebuilt from the log (how far back
    /// to replay): `off_hours`, `first_access` and `peers` are not (the
    /// first two keep no history worth it or keep theirs in the database,
    /// the last reads the log itself).
    pub fn window_secs(&self) -> u64 {
        let r = &self.rules;
        [
            r.bulk, r.denials, r.records, r.devices, r.networks, r.baseline,
        ]
        .iter()
        .flatten()
        .map(|r| r.window_secs)
        .max()
        .unwrap_or(0)
    }
}

/// `user`'s counts, made on first sight (the name is copied only then:
/// this runs on every grant).
fn recent_of<'a>(people: &'a mut HashMap<String, Recent>, user: &str) -> &'a mut Recent {
    if !people.contains_key(user) {
        people.insert(user.to_owned(), Recent::default());
    }
    people.get_mut(user).expect("inserted above")
}

/// The median count of the active hours in `hours` before `hour` (the
/// lower middle of an even number); `None` without any.
fn median_before(hours: &VecDeque<(u64, u32)>, hour: u64) -> Option<u32> {
    let mut counts: Vec<u32> = hours
        .iter()
        .filter(|(h, _)| *h < hour)
        .map(|(_, n)| *n)
        .collect();
    if counts.is_empty() {
        return None;
    }
    counts.sort_unstable();
    Some(counts[(counts.len() - 1) / 2])
}

/// Notes `key` as seen at `now` in `seen`, forgetting what left the
/// window; the number of distinct keys when it is past the rule's limit.
fn distinct(
    seen: &mut HashMap<String, u64>,
    key: &str,
    now: u64,
    rule: &DetectionLimit,
) -> Option<u64> {
    let since = now.saturating_sub(rule.window_secs);
    seen.retain(|_, at| *at > since);
    match seen.get_mut(key) {
        Some(at) => *at = now,
        None => {
            seen.insert(key.to_owned(), now);
        }
    }
    let count = seen.len() as u64;
    (count > u64::from(rule.limit)).then_some(count)
}

/// The firing of `rule` with `count` (named `what` in the detail), unless
/// it fired within its window already: one burst, one firing.
fn fire(
    recent: &mut Recent,
    rule: &'static str,
    what: &str,
    count: u64,
    limit: &DetectionLimit,
    now: u64,
) -> Option<Firing> {
    if fired_within(recent, rule, now.saturating_sub(limit.window_secs)) {
        return None;
    }
    recent.fired.insert(rule, now);
    Some(Firing {
        rule,
        action: limit.action,
        detail: format!(
            "{what}={count} window_secs={} limit={} action={}",
            limit.window_secs,
            limit.limit,
            limit.action.as_str()
        ),
    })
}

/// The scopes a grant of a file under `policy` opens to a member of
/// `groups` from `network` (PROTOCOL.md §12, `first_access`): each of the
/// policy's groups they belong to, `group:NAME`; its classification,
/// `class:NAME`; and the network the request came from, `net:NETWORK`.
pub fn scopes_of(
    policy: &irm_core::Policy,
    groups: &[String],
    network: Option<&str>,
) -> Vec<String> {
    let mut scopes: Vec<String> = policy
        .grants
        .iter()
        .flat_map(|g| g.recipients.iter())
        .filter_map(|r| match r {
            irm_core::Recipient::Group(g) if groups.contains(g) => Some(format!("group:{g}")),
            _ => None,
        })
        .collect();
    if let Some(class) = &policy.classification {
        scopes.push(format!("class:{class}"));
    }
    if let Some(network) = network {
        scopes.push(format!("net:{network}"));
    }
    scopes.sort();
    scopes.dedup();
    scopes
}

/// The network a client address belongs to, as the `networks` rule counts
/// them: its IPv4 /24 or IPv6 /48 (`192.0.2.0/24`); `None` for anything
/// that is not an address.
pub fn network_of(addr: &str) -> Option<String> {
    use std::net::{IpAddr, SocketAddr};
    let ip = match addr.parse::<SocketAddr>() {
        Ok(socket) => socket.ip(),
        Err(_) => addr.parse::<IpAddr>().ok()?,
    };
    Some(match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    })
}

fn fired_within(recent: &Recent, rule: &str, since: u64) -> bool {
    recent.fired.get(rule).is_some_and(|at| *at > since)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(limit: u32, window_secs: u64) -> Option<DetectionLimit> {
        Some(DetectionLimit {
            limit,
            window_secs,
            action: Action::Alert,
        })
    }

    #[test]
    fn records_taken_sum_rows_in_the_window() {
        let mut d = Detector::new(Rules {
            records: limit(1000, 3600),
            ..Rules::default()
        });
        assert_eq!(d.taken("alice", 600, 10), None);
        assert_eq!(d.taken("alice", 400, 20), None, "1,000 is the limit itself");
        let fired = d.taken("alice", 1, 30).expect("1,001 rows fire");
        assert_eq!(fired.rule, "records_taken");
        assert!(
            fired
                .detail
                .starts_with("records=1001 window_secs=3600 limit=1000"),
            "{}",
            fired.detail
        );
        assert_eq!(d.taken("alice", 5000, 40), None, "one burst, one firing");
        // An hour after the burst, the window holds only what came since.
        assert_eq!(d.taken("alice", 999, 3641), None);
        assert!(d.taken("alice", 999, 3642).is_some());
        assert_eq!(d.taken("bob", 1000, 3642), None, "counted apart");
    }

    #[test]
    fn devices_and_networks_in_use_at_once() {
        let mut d = Detector::new(Rules {
            devices: limit(1, 600),
            networks: limit(1, 3600),
            ..Rules::default()
        });
        assert_eq!(d.in_use("alice", "d1", Some("192.0.2.0/24"), 0), vec![]);
        // The same device from another port of the same /24: nothing new.
        assert_eq!(d.in_use("alice", "d1", Some("192.0.2.0/24"), 10), vec![]);
        let fired = d.in_use("alice", "d2", Some("198.51.100.0/24"), 20);
        let rules: Vec<_> = fired.iter().map(|f| f.rule).collect();
        assert_eq!(rules, ["devices", "networks"], "{fired:?}");
        assert!(
            fired[0]
                .detail
                .starts_with("devices=2 window_secs=600 limit=1")
        );
        // A device left idle past the window no longer counts.
        let mut quiet = Detector::new(Rules {
            devices: limit(1, 600),
            networks: None,
            ..Rules::default()
        });
        quiet.in_use("bob", "d1", None, 1000);
        assert_eq!(quiet.in_use("bob", "d2", None, 1600), vec![]);
        // Replayed history counts, and what fired then does not fire again.
        let mut again = Detector::new(Rules {
            devices: limit(1, 600),
            networks: None,
            ..Rules::default()
        });
        again.replay_in_use("carol", "d1", None, 1000);
        again.replay_in_use("carol", "d2", None, 1005);
        assert_eq!(again.in_use("carol", "d3", None, 1010), vec![]);
    }

    #[test]
    fn an_hour_far_above_the_persons_own_median_fires_once_history_exists() {
        let mut d = Detector::new(Rules {
            baseline: Some(DetectionLimit {
                limit: 10,
                window_secs: 14 * 86_400,
                action: Action::Alert,
            }),
            ..Rules::default()
        });
        let day = 86_400;
        let t0 = 1_000 * day;
        // Six days of ordinary work: three files an hour, eight hours a day.
        for d_ in 0..6 {
            for h in 9..17 {
                for k in 0..3 {
                    let at = t0 + d_ * day + h * 3600 + k * 60;
                    assert_eq!(d.hourly("alice", at), None, "day {d_} hour {h}");
                }
            }
        }
        // Day 6 is not yet half of 14 days of history: no baseline yet.
        let early = t0 + 6 * day + 9 * 3600;
        for k in 0..100 {
            assert_eq!(d.hourly("alice", early + k), None);
        }
        // Day 8: 30 files in an hour is ten times the median (3): ordinary.
        let hour = t0 + 8 * day + 10 * 3600;
        for k in 0..30 {
            assert_eq!(d.hourly("alice", hour + k), None, "grant {k}");
        }
        let fired = d.hourly("alice", hour + 30).expect("the 31st fires");
        assert_eq!(fired.rule, "baseline");
        assert!(
            fired
                .detail
                .starts_with("grants_this_hour=31 median_hour=3 factor=10"),
            "{}",
            fired.detail
        );
        assert_eq!(d.hourly("alice", hour + 31), None, "once an hour");
        // A person with no history of their own is never compared.
        assert_eq!(d.hourly("bob", hour), None);
    }

    #[test]
    fn grants_outside_the_groups_hours_fire_and_any_groups_hours_will_do() {
        use irm_core::protocol::WorkingHours;
        let office = |zone: &str, span: &str| {
            Schedule::new(&WorkingHours {
                time_zone: zone.into(),
                days: ["mon", "tue", "wed", "thu", "fri"]
                    .map(String::from)
                    .to_vec(),
                hours: span.into(),
                holidays: vec![],
            })
            .unwrap()
        };
        let mut d = Detector::new(Rules {
            off_hours: limit(1, 3600),
            ..Rules::default()
        });
        d.set_schedule("support", Some(office("Asia/Tokyo", "08:00-20:00")));
        d.set_schedule("night", Some(office("Asia/Tokyo", "20:00-08:00")));
        // Tuesday 2026-12-08 12:00 in Tokyo is 03:00 UTC.
        let noon = 1_796_698_800;
        let support = ["support".to_owned()];
        assert_eq!(d.off_hours("alice", &support, noon), None);
        let fired = d
            .off_hours("alice", &support, noon + 10 * 3600)
            .expect("22:00 is outside");
        assert_eq!(fired.rule, "off_hours");
        assert!(
            fired
                .detail
                .starts_with("grants_outside=1 window_secs=3600 limit=1")
        );
        assert_eq!(
            d.off_hours("alice", &support, noon + 10 * 3600 + 60),
            None,
            "once an hour"
        );
        // Inside the hours of any of one's groups is inside.
        let both = ["support".to_owned(), "night".to_owned()];
        assert_eq!(d.off_hours("bob", &both, noon + 10 * 3600), None);
        // No schedule for one's groups and none for `*`: never outside.
        assert_eq!(
            d.off_hours("carol", &["sales".to_owned()], noon + 10 * 3600),
            None
        );
        d.set_schedule("*", Some(office("Asia/Tokyo", "09:00-17:00")));
        assert!(
            d.off_hours("carol", &["sales".to_owned()], noon + 10 * 3600)
                .is_some()
        );
    }

    #[test]
    fn a_settled_person_opening_a_new_groups_files_fires_and_newcomers_do_not() {
        let mut d = Detector::new(Rules {
            first_access: limit(1, 7 * 86_400),
            ..Rules::default()
        });
        let day = 86_400;
        let support = vec!["group:support".to_owned()];
        // A newcomer's first week: whatever they open is new, nothing fires.
        let (new, fired) = d.first_access("alice", &support, 1000 * day);
        assert_eq!((new, fired), (support.clone(), None));
        let sales = vec!["group:sales".to_owned(), "class:confidential".to_owned()];
        assert_eq!(d.first_access("alice", &sales, 1003 * day).1, None);
        // Settled: the same scopes are nothing new; a new one fires.
        assert_eq!(
            d.first_access("alice", &support, 1010 * day),
            (vec![], None)
        );
        let payroll = vec!["group:payroll".to_owned()];
        let (new, fired) = d.first_access("alice", &payroll, 1011 * day);
        assert_eq!(new, payroll);
        let fired = fired.expect("a settled person's first access to payroll");
        assert_eq!(fired.rule, "first_access");
        assert!(
            fired.detail.ends_with("scope=group:payroll"),
            "{}",
            fired.detail
        );
        // From the database after a restart: known scopes stay known.
        let mut again = Detector::new(Rules {
            first_access: limit(1, 7 * 86_400),
            ..Rules::default()
        });
        again.load_first_access("alice", "group:support", 1000 * day);
        assert_eq!(
            again.first_access("alice", &support, 1011 * day),
            (vec![], None)
        );
        assert!(
            again
                .first_access("alice", &payroll, 1011 * day)
                .1
                .is_some()
        );
    }

    #[test]
    fn one_who_takes_far_more_than_the_others_of_their_groups_stands_out() {
        let groups: Vec<(String, Vec<String>)> = [
            ("alice", &["support"][..]),
            ("bob", &["support"]),
            ("carol", &["support"]),
            ("dave", &["support", "sales"]),
            ("erin", &["sales"]),
        ]
        .iter()
        .map(|(u, g)| ((*u).to_owned(), g.iter().map(|g| (*g).to_owned()).collect()))
        .collect();
        let t = |files, rows| Totals { files, rows };
        let mut totals: HashMap<String, Totals> = [
            ("alice", t(60, 0)),
            ("bob", t(10, 200)),
            ("carol", t(12, 300)),
            ("dave", t(11, 5000)),
        ]
        .into_iter()
        .map(|(u, t)| (u.to_owned(), t))
        .collect();
        let out = peer_outliers(&groups, &totals, 5, 30);
        // alice: 60 files against a median of 11; dave: 5,000 rows against
        // a median of 0 (alice and erin, his sales peer, took none; the
        // floor of 1,000 rows applies); erin has one peer: too few.
        let named: Vec<&str> = out.iter().map(|(u, _)| u.as_str()).collect();
        assert_eq!(named, ["alice", "dave"], "{out:?}");
        assert_eq!(
            out[0].1,
            "files=60 peer_median=11 peers=3 factor=5 window_days=30"
        );
        assert!(
            out[1].1.starts_with("rows=5000 peer_median=0 peers=4"),
            "{}",
            out[1].1
        );
        // Under the floor nobody stands out, however quiet the peers.
        totals.insert("alice".into(), t(19, 0));
        totals.insert("dave".into(), t(11, 900));
        assert!(peer_outliers(&groups, &totals, 5, 30).is_empty());
    }

    #[test]
    fn a_grants_scopes_are_the_groups_it_comes_through_its_class_and_network() {
        let policy = irm_core::Policy::builder()
            .grant(irm_core::PolicyGrant::parse("@support, @payroll, alice=view").unwrap())
            .classification(Some("confidential"))
            .build()
            .unwrap();
        let scopes = scopes_of(&policy, &["support".to_owned()], Some("192.0.2.0/24"));
        assert_eq!(
            scopes,
            ["class:confidential", "group:support", "net:192.0.2.0/24"],
            "payroll is not hers; alice by name is no scope"
        );
        assert_eq!(scopes_of(&policy, &[], None), ["class:confidential"]);
    }

    #[test]
    fn networks_are_ipv4_24s_and_ipv6_48s() {
        assert_eq!(
            network_of("192.0.2.77:443").as_deref(),
            Some("192.0.2.0/24")
        );
        assert_eq!(network_of("192.0.2.77").as_deref(), Some("192.0.2.0/24"));
        assert_eq!(
            network_of("[2001:db8:1:2::5]:443").as_deref(),
            Some("2001:db8:1::/48")
        );
        assert_eq!(network_of("not an address"), None);
    }

    fn bulk(files: u32, action: Action) -> Detector {
        Detector::new(Rules {
            bulk: Some(DetectionLimit {
                limit: files,
                window_secs: 300,
                action,
            }),
            denials: Some(DetectionLimit {
                limit: 3,
                window_secs: 600,
                action: Action::Alert,
            }),
            ..Rules::default()
        })
    }

    #[test]
    fn the_file_past_the_limit_fires_once_per_burst() {
        let mut d = bulk(3, Action::StepUp);
        for (i, file) in ["a", "b", "c"].iter().enumerate() {
            assert_eq!(d.grant("alice", file, 1000 + i as u64), None);
        }
        // The same files again are no more files.
        assert_eq!(d.grant("alice", "a", 1010), None);
        let fired = d.grant("alice", "d", 1011).expect("the fourth file fires");
        assert_eq!(fired.rule, "bulk_files");
        assert_eq!(fired.action, Action::StepUp);
        assert!(
            fired.detail.starts_with("files=4 window_secs=300 limit=3"),
            "{}",
            fired.detail
        );
        assert_eq!(d.grant("alice", "e", 1012), None, "one burst, one firing");
        // Another person is counted apart.
        assert_eq!(d.grant("bob", "d", 1012), None);
    }

    #[test]
    fn files_leave_the_window_and_a_slow_reader_never_fires() {
        let mut d = bulk(3, Action::Alert);
        // One new file every two minutes for a day: never more than three in five minutes.
        for i in 0..720u64 {
            assert_eq!(
                d.grant("carol", &format!("f{i}"), i * 120),
                None,
                "file {i}"
            );
        }
    }

    #[test]
    fn refusals_alert_at_the_limit_and_replayed_history_does_not_fire_again() {
        let mut d = bulk(3, Action::StepUp);
        assert_eq!(d.denial("mallory", 10), None);
        assert_eq!(d.denial("mallory", 20), None);
        let fired = d.denial("mallory", 30).expect("the third refusal fires");
        assert_eq!((fired.rule, fired.action), ("denials", Action::Alert));

        // After a restart the log is replayed: the counts come back, the
        // firing it already recorded does not repeat, the next file fires.
        let mut again = bulk(3, Action::StepUp);
        for (i, file) in ["a", "b", "c", "d"].iter().enumerate() {
            again.replay("alice", Some(file), true, 1000 + i as u64);
        }
        assert_eq!(
            again.grant("alice", "e", 1005),
            None,
            "fired before the restart"
        );
        let mut fresh = bulk(3, Action::StepUp);
        for (i, file) in ["a", "b", "c"].iter().enumerate() {
            fresh.replay("alice", Some(file), true, 1000 + i as u64);
        }
        assert!(
            fresh.grant("alice", "d", 1004).is_some(),
            "counts survive the restart"
        );
    }

    #[test]
    fn released_people_start_afresh_and_switched_off_rules_never_fire() {
        let mut d = bulk(1, Action::StepUp);
        d.grant("alice", "a", 1);
        assert!(d.grant("alice", "b", 2).is_some());
        d.forget("alice");
        assert_eq!(d.grant("alice", "c", 3), None);
        let mut off = Detector::new(Rules::OFF);
        for i in 0..100 {
            assert_eq!(off.grant("alice", &i.to_string(), 5), None);
            assert_eq!(off.denial("alice", 5), None);
        }
        assert_eq!(off.window_secs(), 0);
        assert_eq!(off.in_use("alice", "d1", Some("192.0.2.0/24"), 5), vec![]);
        assert_eq!(off.taken("alice", 1_000_000, 5), None);
        assert_eq!(off.hourly("alice", 5), None);
        assert_eq!(Detector::new(Rules::default()).window_secs(), 14 * 86_400);
    }
}
