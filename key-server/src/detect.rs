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

use std::collections::{HashMap, VecDeque};

/// What a rule does when it fires (the wire type, PROTOCOL.md §12.2).
pub use irm_core::protocol::DetectionAction as Action;
use irm_core::protocol::DetectionLimit;

/// Distinct files per person in a sliding window: more than `files` in
/// `window_secs` fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkRule {
    /// The most distinct files that do not fire.
    pub files: u32,
    /// The window.
    pub window_secs: u64,
    /// What happens.
    pub action: Action,
}

/// Refused grants per person in a sliding window: `denials` or more in
/// `window_secs` fires (an alert: someone probing what they may not open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DenialRule {
    /// How many refusals fire.
    pub denials: u32,
    /// The window.
    pub window_secs: u64,
}

/// The rules in force; `None` switches one off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Bulk access.
    pub bulk: Option<BulkRule>,
    /// Repeated refusals.
    pub denials: Option<DenialRule>,
}

impl Rules {
    /// `rule`'s setting as the wire and the store name it; `None` when it
    /// is off (or no such rule exists).
    pub fn setting(&self, rule: &str) -> Option<DetectionLimit> {
        match rule {
            "bulk_files" => self.bulk.map(|r| DetectionLimit {
                limit: r.files,
                window_secs: r.window_secs,
                action: r.action,
            }),
            "denials" => self.denials.map(|r| DetectionLimit {
                limit: r.denials,
                window_secs: r.window_secs,
                action: Action::Alert,
            }),
            _ => None,
        }
    }

    /// Puts `setting` in force for `rule` (checked before, with
    /// `irm_core::protocol::check_detection_setting`).
    pub fn set(&mut self, rule: &str, setting: Option<DetectionLimit>) {
        match rule {
            "bulk_files" => {
                self.bulk = setting.map(|l| BulkRule {
                    files: l.limit,
                    window_secs: l.window_secs,
                    action: l.action,
                });
            }
            "denials" => {
                self.denials = setting.map(|l| DenialRule {
                    denials: l.limit,
                    window_secs: l.window_secs,
                });
            }
            _ => {}
        }
    }
}

impl Default for Rules {
    /// A new server stops bulk access out of the box: more than 30 files in
    /// 5 minutes holds the person's grants; 10 refusals in 10 minutes alert.
    fn default() -> Self {
        Self {
            bulk: Some(BulkRule {
                files: 30,
                window_secs: 300,
                action: Action::StepUp,
            }),
            denials: Some(DenialRule {
                denials: 10,
                window_secs: 600,
            }),
        }
    }
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
    /// When each rule last fired, so one burst raises one alert.
    fired: HashMap<&'static str, u64>,
}

/// The counters of every person seen within the rules' windows.
#[derive(Debug, Default)]
pub struct Detector {
    rules: Rules,
    people: HashMap<String, Recent>,
}

impl Detector {
    /// A detector with `rules` and no history.
    pub fn new(rules: Rules) -> Self {
        Self {
            rules,
            people: HashMap::new(),
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
        if files <= rule.files as usize || fired_within(recent, "bulk_files", since) {
            return None;
        }
        recent.fired.insert("bulk_files", now);
        Some(Firing {
            rule: "bulk_files",
            action: rule.action,
            detail: format!(
                "files={files} window_secs={} limit={} action={}",
                rule.window_secs,
                rule.files,
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
        if denials < rule.denials as usize || fired_within(recent, "denials", since) {
            return None;
        }
        recent.fired.insert("denials", now);
        Some(Firing {
            rule: "denials",
            action: Action::Alert,
            detail: format!(
                "denials={denials} window_secs={} limit={} action=alert",
                rule.window_secs, rule.denials
            ),
        })
    }

    /// Replays a grant or refusal found in the audit log, counting it
    /// without firing (what it set off then is already recorded).
    pub fn replay(&mut self, user: &str, file: Option<&str>, granted: bool, at: u64) {
        let firing = match (granted, file) {
            (true, Some(file)) => self.grant(user, file, at),
            (false, _) => self.denial(user, at),
            (true, None) => None,
        };
        if let Some(firing) = firing
            && let Some(recent) = self.people.get_mut(user)
        {
            // Fired then, as the log says: one burst, one firing.
            recent.fired.insert(firing.rule, at);
        }
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

    /// The longest window of the rules in force (how far back to replay).
    pub fn window_secs(&self) -> u64 {
        let bulk = self.rules.bulk.map_or(0, |r| r.window_secs);
        let denials = self.rules.denials.map_or(0, |r| r.window_secs);
        bulk.max(denials)
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

fn fired_within(recent: &Recent, rule: &str, since: u64) -> bool {
    recent.fired.get(rule).is_some_and(|at| *at > since)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(files: u32, action: Action) -> Detector {
        Detector::new(Rules {
            bulk: Some(BulkRule {
                files,
                window_secs: 300,
                action,
            }),
            denials: Some(DenialRule {
                denials: 3,
                window_secs: 600,
            }),
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
        let mut off = Detector::new(Rules {
            bulk: None,
            denials: None,
        });
        for i in 0..100 {
            assert_eq!(off.grant("alice", &i.to_string(), 5), None);
            assert_eq!(off.denial("alice", 5), None);
        }
        assert_eq!(off.window_secs(), 0);
        assert_eq!(Detector::new(Rules::default()).window_secs(), 600);
    }
}
