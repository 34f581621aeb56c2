//! `irm admin audit report`: what happened in a stretch of the audit log,
//! for the people who answer for the data (issue #14, point 4).
//!
//! Cut in four, so that each part is tested alone:
//! - [`aggregate`]: the one pure function of the records, fed one record at
//!   a time ([`Aggregator::push`], so that a million records are never all
//!   in memory) and ending in a [`Report`];
//! - [`escape`]: the one way a string from people reaches HTML (text,
//!   attribute and SVG text alike) and the terminal;
//! - [`text`] and [`html`]: the renderers (JSON is the `Report`'s serde form);
//! - [`digest`]: one group's report for its data owner (`irm admin audit
//!   digest`), the same numbers over that group's files only.
//!
//! Where the records come from (pages from the key server, or an export
//! file read line by line) is `commands/report.rs`'s business; whether the
//! chain holds is `irm audit verify`'s: the report names the head and the
//! newest checkpoint so that the reader can tie one to the other.

pub(crate) mod aggregate;
pub(crate) mod digest;
pub(crate) mod escape;
pub(crate) mod html;
pub(crate) mod text;

pub(crate) use aggregate::{Aggregator, Report, Window};
