//! XLSX and legacy XLS workbooks: every sheet read with `calamine` from the
//! in-memory plaintext (a `Cursor`, never a temp file) into a [`Table`],
//! so that a sheet is shown, filtered, sorted and exported like a CSV file.
//!
//! The cell text is copied into each table's zeroizing buffer and
//! calamine's own cell strings are wiped once copied. What calamine keeps
//! internally while reading (the zip reader's inflate buffers, the shared
//! strings table) is freed without wiping: that is outside our control
//! short of a wiping global allocator.

use std::fmt::Write as _;
use std::io::Cursor;

use calamine::{Data, Reader};
use zeroize::Zeroize;

use crate::table::{Table, TableBuilder};

/// One sheet: its name and its cells (the first row as the header).
pub struct Sheet {
    /// The sheet's tab name.
    pub name: String,
    /// The sheet's used range, from its first row and column.
    pub table: Table,
}

/// The sheets of a workbook, in the order the file lists them.
pub struct Workbook {
    /// Never empty: a workbook without sheets does not parse.
    pub sheets: Vec<Sheet>,
}

impl std::fmt::Debug for Workbook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Sheet names can be data ("山田様"), so only the count.
        f.debug_struct("Workbook")
            .field("sheets", &self.sheets.len())
            .finish()
    }
}

/// Why a workbook cannot be shown.
#[derive(Debug)]
pub struct WorkbookError(String);

impl std::fmt::Display for WorkbookError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not a readable XLSX or XLS workbook: {}", self.0)
    }
}

impl std::error::Error for WorkbookError {}

impl Workbook {
    /// Reads every sheet of an XLSX or XLS file held in memory.
    pub fn parse(bytes: &[u8]) -> Result<Self, WorkbookError> {
        let mut book = calamine::open_workbook_auto_from_rs(Cursor::new(bytes))
            .map_err(|e| WorkbookError(e.to_string()))?;
        let mut sheets = Vec::new();
        for name in book.sheet_names() {
            let mut range = book
                .worksheet_range(&name)
                .map_err(|e| WorkbookError(format!("sheet {name:?}: {e}")))?;
            let table = sheet_table(&range);
            wipe(&mut range);
            let table = table.ok_or_else(|| {
                WorkbookError(format!("sheet {name:?} holds more text than a table can"))
            })?;
            sheets.push(Sheet { name, table });
        }
        if sheets.is_empty() {
            return Err(WorkbookError("it has no sheets".into()));
        }
        Ok(Self { sheets })
    }
}

/// The cells of `range` as a table (`None` past [`crate::table::MAX_TABLE_TEXT`]); dates as "2026-11-23" or
/// "2026-11-23 09:30:00", numbers as Rust prints them.
fn sheet_table(range: &calamine::Range<Data>) -> Option<Table> {
    let text_len: usize = range
        .cells()
        .map(|(_, _, cell)| match cell {
            Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.len(),
            Data::Empty => 0,
            _ => 19,
        })
        .sum();
    let mut table = TableBuilder::with_capacity(text_len);
    for row in range.rows() {
        for cell in row {
            // Text past MAX_TABLE_TEXT is left out; `overflowed` says so below.
            let _ = write_cell(&mut table, cell);
            table.end_cell();
        }
        table.end_row();
    }
    (!table.overflowed()).then(|| table.finish(','))
}

fn write_cell(out: &mut TableBuilder, cell: &Data) -> std::fmt::Result {
    match cell {
        Data::DateTime(dt) if dt.is_datetime() => {
            let (y, mo, d, h, mi, s, _) = dt.to_ymd_hms_milli();
            if (h, mi, s) == (0, 0, 0) {
                write!(out, "{y:04}-{mo:02}-{d:02}")
            } else {
                write!(out, "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
            }
        }
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => write!(out, "{}", *f as i64),
        other => write!(out, "{other}"),
    }
}

/// Wipes calamine's copies of the cell text once they are in our buffer.
fn wipe(range: &mut calamine::Range<Data>) {
    for r in 0..range.height() {
        for cell in &mut range[r] {
            if let Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) = cell {
                s.zeroize();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A two-sheet XLSX with Japanese text, numbers and a date.
    fn two_sheet_xlsx() -> Vec<u8> {
        use rust_xlsxwriter::{ExcelDateTime, Format, Workbook as XlsxBook};
        let mut book = XlsxBook::new();
        let customers = book.add_worksheet();
        customers.set_name("顧客").unwrap();
        for (c, h) in ["顧客番号", "氏名", "契約日", "残高"].iter().enumerate() {
            customers.write_string(0, c as u16, *h).unwrap();
        }
        customers.write_number(1, 0, 1001).unwrap();
        customers.write_string(1, 1, "山田 太郎").unwrap();
        let date = ExcelDateTime::from_ymd(2026, 11, 23).unwrap();
        let fmt = Format::new().set_num_format("yyyy-mm-dd");
        customers
            .write_datetime_with_format(1, 2, &date, &fmt)
            .unwrap();
        customers.write_number(1, 3, 12345.5).unwrap();
        customers.write_number(2, 0, 1002).unwrap();
        customers.write_string(2, 1, "鈴木 花子").unwrap();
        let calls = book.add_worksheet();
        calls.set_name("対応履歴").unwrap();
        calls.write_string(0, 0, "日時").unwrap();
        calls.write_string(0, 1, "内容").unwrap();
        calls.write_string(1, 0, "11/23").unwrap();
        calls.write_string(1, 1, "住所変更の依頼").unwrap();
        book.save_to_buffer().unwrap()
    }

    fn rows(t: &Table) -> Vec<Vec<&str>> {
        (0..t.row_count()).map(|r| t.row(r).collect()).collect()
    }

    #[test]
    fn every_sheet_becomes_a_table() {
        let book = Workbook::parse(&two_sheet_xlsx()).unwrap();
        let names: Vec<_> = book.sheets.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["顧客", "対応履歴"]);
        assert_eq!(
            rows(&book.sheets[0].table),
            vec![
                vec!["顧客番号", "氏名", "契約日", "残高"],
                vec!["1001", "山田 太郎", "2026-11-23", "12345.5"],
                vec!["1002", "鈴木 花子", "", ""],
            ]
        );
        assert_eq!(
            rows(&book.sheets[1].table),
            vec![vec!["日時", "内容"], vec!["11/23", "住所変更の依頼"]]
        );
    }

    #[test]
    fn damaged_workbooks_are_errors_not_panics() {
        let good = two_sheet_xlsx();
        let bad: [&[u8]; 4] = [
            b"",
            b"PK\x03\x04 not really a zip",
            b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1 not really OLE",
            &good[..good.len() / 2],
        ];
        for bytes in bad {
            assert!(Workbook::parse(bytes).is_err(), "{} bytes", bytes.len());
        }
    }
}
