//! Working hours (PROTOCOL.md §12.3): a group's schedule as it travels, is
//! stored and is signed in an approval, and the one comparison that says
//! whether a change narrows it (at once) or widens it (approved). Time zones
//! are named here and resolved by the key server.

use serde::{Deserialize, Serialize};

/// The days of the week, in the order and spelling schedules use.
pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// The most holidays one schedule lists.
pub const MAX_HOLIDAYS: usize = 400;

/// One group's working hours: on `days`, from `start` to `end` (minutes
/// after midnight, local time in `time_zone`; `end` before `start` runs
/// past midnight into the next day), except on `holidays`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WorkingHours {
    /// An IANA time zone name (`Asia/Tokyo`).
    pub time_zone: String,
    /// Days the hours apply to, from [`WEEKDAYS`] (`mon`...).
    pub days: Vec<String>,
    /// `HH:MM-HH:MM`, 24-hour local time.
    pub hours: String,
    /// Dates off (`YYYY-MM-DD`, local), sorted.
    #[serde(default)]
    pub holidays: Vec<String>,
}

/// `PUT /v1/admin/working-hours/{group}`: `null` removes the group's schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetWorkingHoursRequest {
    /// The schedule, or `null`.
    pub schedule: Option<WorkingHours>,
}

/// A group's schedule as `GET /v1/admin/working-hours` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupWorkingHours {
    /// The group (`*`: everyone whose groups have none).
    pub group: String,
    /// Its schedule.
    pub schedule: WorkingHours,
    /// The same in its canonical text.
    pub text: String,
}

/// `HH:MM` as minutes after midnight.
fn minutes(text: &str) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// Whether `date` is a plausible `YYYY-MM-DD`.
fn is_date(date: &str) -> bool {
    let b = date.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        && (1..=12).contains(&date[5..7].parse::<u8>().unwrap_or(0))
        && (1..=31).contains(&date[8..10].parse::<u8>().unwrap_or(0))
}

impl WorkingHours {
    /// The start and end, minutes after midnight.
    pub fn span(&self) -> Option<(u16, u16)> {
        let (start, end) = self.hours.split_once('-')?;
        let (start, end) = (minutes(start)?, minutes(end)?);
        (start != end).then_some((start, end))
    }

    /// What is wrong with the schedule's form, if anything (the time zone's
    /// existence is the key server's to check). Days are put in week
    /// order and holidays sorted first by [`WorkingHours::normalised`].
    pub fn check(&self) -> Result<(), String> {
        let zone_ok = !self.time_zone.is_empty()
            && self.time_zone.len() <= 64
            && self
                .time_zone
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/_+-".contains(&b));
        if !zone_ok {
            return Err(format!(
                "time_zone {:?} is not a time zone name (Asia/Tokyo)",
                self.time_zone
            ));
        }
        if self.days.is_empty() || self.days.iter().any(|d| !WEEKDAYS.contains(&d.as_str())) {
            return Err(format!("days are one or more of {}", WEEKDAYS.join(", ")));
        }
        if self.span().is_none() {
            return Err("hours are HH:MM-HH:MM (24-hour, start and end differ)".into());
        }
        if self.holidays.len() > MAX_HOLIDAYS || self.holidays.iter().any(|d| !is_date(d)) {
            return Err(format!(
                "holidays are at most {MAX_HOLIDAYS} dates YYYY-MM-DD"
            ));
        }
        Ok(())
    }

    /// The same schedule with days in week order and holidays sorted, each
    /// once: two schedules that mean the same compare equal.
    pub fn normalised(&self) -> Self {
        let days = WEEKDAYS
            .iter()
            .filter(|d| self.days.iter().any(|x| x == *d))
            .map(|d| (*d).to_owned())
            .collect();
        let mut holidays = self.holidays.clone();
        holidays.sort();
        holidays.dedup();
        Self {
            time_zone: self.time_zone.clone(),
            days,
            hours: self.hours.clone(),
            holidays,
        }
    }

    /// The canonical text: `tz=ZONE days=mon,tue hours=HH:MM-HH:MM
    /// holidays=YYYY-MM-DD,...` (of the normalised schedule; the audit
    /// detail, the stored row and the line an approval signs).
    pub fn text(&self) -> String {
        let n = self.normalised();
        format!(
            "tz={} days={} hours={} holidays={}",
            n.time_zone,
            n.days.join(","),
            n.hours,
            n.holidays.join(",")
        )
    }

    /// The schedule [`WorkingHours::text`] wrote, if `text` is one.
    pub fn parse(text: &str) -> Option<Self> {
        let mut words = text.split(' ');
        let mut field = |name: &str| words.next()?.strip_prefix(name)?.strip_prefix('=');
        let time_zone = field("tz")?.to_owned();
        let days = field("days")?.split(',').map(str::to_owned).collect();
        let hours = field("hours")?.to_owned();
        let holidays = match field("holidays")? {
            "" => Vec::new(),
            list => list.split(',').map(str::to_owned).collect(),
        };
        let schedule = Self {
            time_zone,
            days,
            hours,
            holidays,
        };
        (schedule.check().is_ok() && schedule.text() == text).then_some(schedule)
    }

    /// Whether replacing `self` by `to` only narrows the hours (more of the
    /// week outside them, so more alerts): the same time zone, no new day,
    /// hours within the old ones (neither running past midnight), no
    /// holiday dropped. Anything else widens, and is approved first.
    pub fn narrowed_by(&self, to: &Self) -> bool {
        let (from, to) = (self.normalised(), to.normalised());
        let (Some((a0, a1)), Some((b0, b1))) = (from.span(), to.span()) else {
            return false;
        };
        from.time_zone == to.time_zone
            && to.days.iter().all(|d| from.days.contains(d))
            && a0 < a1
            && b0 < b1
            && a0 <= b0
            && b1 <= a1
            && from.holidays.iter().all(|d| to.holidays.contains(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours(days: &[&str], span: &str, holidays: &[&str]) -> WorkingHours {
        WorkingHours {
            time_zone: "Asia/Tokyo".into(),
            days: days.iter().map(|d| (*d).to_owned()).collect(),
            hours: span.into(),
            holidays: holidays.iter().map(|d| (*d).to_owned()).collect(),
        }
    }

    #[test]
    fn the_text_is_canonical_and_round_trips() {
        let h = hours(
            &["fri", "mon", "mon"],
            "08:00-20:00",
            &["2027-01-01", "2026-12-31"],
        );
        assert_eq!(
            h.text(),
            "tz=Asia/Tokyo days=mon,fri hours=08:00-20:00 holidays=2026-12-31,2027-01-01"
        );
        assert_eq!(WorkingHours::parse(&h.text()), Some(h.normalised()));
        let none = hours(&["sat"], "22:00-06:00", &[]);
        assert_eq!(WorkingHours::parse(&none.text()), Some(none.clone()));
        for bad in [
            "",
            "tz=Asia/Tokyo days=mon hours=08:00-20:00",
            "tz=Asia/Tokyo days=fri,mon hours=08:00-20:00 holidays=",
            "tz=Asia/Tokyo days=mon hours=8:00-20:00 holidays=",
            "tz=Asia/Tokyo days=mon hours=08:00-08:00 holidays=",
            "tz=Asia/Tokyo days=mon hours=08:00-24:00 holidays=",
            "tz=Asia Tokyo days=mon hours=08:00-20:00 holidays=",
            "tz=Asia/Tokyo days=mon hours=08:00-20:00 holidays=2026-13-01",
        ] {
            assert_eq!(WorkingHours::parse(bad), None, "{bad:?}");
        }
    }

    /// The decision table of a schedule change: narrowing is at once.
    #[test]
    fn narrowing_keeps_zone_days_and_holidays_and_shrinks_the_hours() {
        let base = hours(
            &["mon", "tue", "wed", "thu", "fri"],
            "08:00-20:00",
            &["2026-12-31"],
        );
        let cases = [
            (
                hours(
                    &["mon", "tue", "wed", "thu", "fri"],
                    "08:00-20:00",
                    &["2026-12-31"],
                ),
                true,
            ),
            (
                hours(
                    &["mon", "tue"],
                    "09:00-18:00",
                    &["2026-12-31", "2027-01-01"],
                ),
                true,
            ),
            (
                hours(&["mon", "sat"], "09:00-18:00", &["2026-12-31"]),
                false,
            ),
            (hours(&["mon"], "07:00-18:00", &["2026-12-31"]), false),
            (hours(&["mon"], "09:00-21:00", &["2026-12-31"]), false),
            (hours(&["mon"], "09:00-18:00", &[]), false),
            (hours(&["mon"], "19:00-09:00", &["2026-12-31"]), false),
            (
                WorkingHours {
                    time_zone: "UTC".into(),
                    ..base.clone()
                },
                false,
            ),
        ];
        for (to, narrows) in cases {
            assert_eq!(base.narrowed_by(&to), narrows, "{}", to.text());
        }
    }
}
