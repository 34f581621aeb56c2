//! Working hours (PROTOCOL.md §12.3): a group's schedule resolved to its
//! time zone (from the system's tz database, so daylight saving and
//! changes of rule are the database's), and whether an instant is inside it.

use std::collections::HashSet;

use irm_core::protocol::{WEEKDAYS, WorkingHours};
use jiff::civil::Date;
use jiff::tz::TimeZone;

/// A schedule ready to answer "inside?" on the grant path.
#[derive(Debug, Clone)]
pub struct Schedule {
    hours: WorkingHours,
    zone: TimeZone,
    /// Monday first.
    days: [bool; 7],
    start: u16,
    end: u16,
    holidays: HashSet<Date>,
}

impl Schedule {
    /// Checks `hours` and resolves its time zone; the error says what is wrong.
    pub fn new(hours: &WorkingHours) -> Result<Self, String> {
        hours.check()?;
        let hours = hours.normalised();
        let zone = TimeZone::get(&hours.time_zone).map_err(|_| {
            format!(
                "time zone {:?} is not in this server's tz database: give an IANA name such as \
                 Asia/Tokyo (case matters), or install the zone data on the server (Debian: tzdata)",
                hours.time_zone
            )
        })?;
        let (start, end) = hours.span().ok_or("hours are HH:MM-HH:MM")?;
        let mut days = [false; 7];
        for (i, day) in WEEKDAYS.iter().enumerate() {
            days[i] = hours.days.iter().any(|d| d == day);
        }
        let holidays = hours
            .holidays
            .iter()
            .map(|d| {
                d.parse::<Date>()
                    .map_err(|_| format!("holiday {d} is not a date"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            hours,
            zone,
            days,
            start,
            end,
            holidays,
        })
    }

    /// The schedule as set.
    pub fn hours(&self) -> &WorkingHours {
        &self.hours
    }

    /// Whether the instant `unix_secs` is within the working hours.
    pub fn contains(&self, unix_secs: u64) -> bool {
        let Ok(instant) =
            jiff::Timestamp::from_second(i64::try_from(unix_secs).unwrap_or(i64::MAX))
        else {
            return false;
        };
        let local = instant.to_zoned(self.zone.clone());
        let date = local.date();
        let minute =
            u16::from(local.hour().unsigned_abs()) * 60 + u16::from(local.minute().unsigned_abs());
        let weekday = usize::from(local.weekday().to_monday_zero_offset().unsigned_abs());
        let working = |day: usize, date: Date| self.days[day] && !self.holidays.contains(&date);
        if self.start < self.end {
            return working(weekday, date) && (self.start..self.end).contains(&minute);
        }
        // A night shift: from `start` on a working day to `end` the next.
        let yesterday = date.yesterday().unwrap_or(date);
        (minute >= self.start && working(weekday, date))
            || (minute < self.end && working((weekday + 6) % 7, yesterday))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(local: &str, zone: &str) -> u64 {
        let zoned = format!("{local}[{zone}]").parse::<jiff::Zoned>().unwrap();
        u64::try_from(zoned.timestamp().as_second()).unwrap()
    }

    fn schedule(days: &[&str], hours: &str, holidays: &[&str]) -> Schedule {
        Schedule::new(&WorkingHours {
            time_zone: "Asia/Tokyo".into(),
            days: days.iter().map(|d| (*d).to_owned()).collect(),
            hours: hours.into(),
            holidays: holidays.iter().map(|d| (*d).to_owned()).collect(),
        })
        .unwrap()
    }

    #[test]
    fn office_hours_in_tokyo_with_a_holiday() {
        let s = schedule(
            &["mon", "tue", "wed", "thu", "fri"],
            "08:00-20:00",
            &["2026-12-31"],
        );
        // 2026-12-08 is a Tuesday.
        assert!(s.contains(at("2026-12-08T08:00", "Asia/Tokyo")));
        assert!(s.contains(at("2026-12-08T19:59", "Asia/Tokyo")));
        assert!(!s.contains(at("2026-12-08T20:00", "Asia/Tokyo")));
        assert!(!s.contains(at("2026-12-08T07:59", "Asia/Tokyo")));
        // 02:00 in Tokyo is 17:00 UTC the day before: the zone decides.
        assert!(!s.contains(at("2026-12-07T17:00", "UTC")));
        assert!(s.contains(at("2026-12-08T01:00", "UTC")));
        assert!(
            !s.contains(at("2026-12-12T10:00", "Asia/Tokyo")),
            "Saturday"
        );
        assert!(!s.contains(at("2026-12-31T10:00", "Asia/Tokyo")), "holiday");
    }

    #[test]
    fn a_night_shift_runs_past_midnight_into_the_next_day() {
        let s = schedule(&["fri"], "22:00-06:00", &[]);
        assert!(
            s.contains(at("2026-12-11T23:00", "Asia/Tokyo")),
            "Friday night"
        );
        assert!(
            s.contains(at("2026-12-12T05:59", "Asia/Tokyo")),
            "Saturday early"
        );
        assert!(!s.contains(at("2026-12-12T06:00", "Asia/Tokyo")));
        assert!(
            !s.contains(at("2026-12-12T23:00", "Asia/Tokyo")),
            "Saturday night"
        );
    }

    #[test]
    fn unknown_zones_are_refused() {
        let err = Schedule::new(&WorkingHours {
            time_zone: "Mars/Olympus_Mons".into(),
            days: vec!["mon".into()],
            hours: "08:00-20:00".into(),
            holidays: vec![],
        })
        .unwrap_err();
        assert!(err.contains("not in this server's tz database"), "{err}");
    }
}
