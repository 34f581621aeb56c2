//! Canary rows in an exported XLSX workbook (PROTOCOL.md §7.8): the first
//! sheet that holds a customer list (a phone or e-mail column) gets the
//! canaries of an approved export at random places among its rows; every
//! other part of the file is copied as it was, compressed bytes and all.
//!
//! Only plain data sheets are rewritten: rows and cells that name their
//! place (`r="B12"`), and nothing that refers to a place elsewhere (no
//! formula, merged cell, table, filter, link, drawing, validation,
//! conditional format or defined name), since moving rows would silently
//! break such a reference. Anything else is exported unchanged, without
//! canaries ([`prepare`] says why). Every buffer that holds the sheet's
//! text is zeroizing and sized or grown without leaving copies.

use std::io::{Cursor, Read, Seek, SeekFrom, Write};

use irm_client::canary::{ColumnKind, RandomSource, WipingBuffer, column_kinds};
use irm_core::protocol::Canary;
use zeroize::Zeroizing;

/// What in a sheet (or the workbook) refers to cells by place.
const REFERENCES: &[&str] = &[
    "<f>",
    "<f ",
    "<f/>",
    "<mergeCell",
    "<tablePart",
    "<autoFilter",
    "<hyperlink",
    "<drawing",
    "<legacyDrawing",
    "<dataValidation",
    "<conditionalFormatting",
];

/// A sheet ready to take canaries.
pub struct PreparedSheet {
    /// Its part in the archive (`xl/worksheets/sheet1.xml`).
    path: String,
    /// Its XML.
    xml: Zeroizing<String>,
    /// Where each `<row>` element lies in `xml`, with its number.
    rows: Vec<(std::ops::Range<usize>, u64)>,
    kinds: Vec<ColumnKind>,
}

impl std::fmt::Debug for PreparedSheet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The sheet's text is customer data: its place and size only.
        f.debug_struct("PreparedSheet")
            .field("path", &self.path)
            .field("rows", &self.rows.len())
            .finish_non_exhaustive()
    }
}

impl PreparedSheet {
    /// Data rows (the first row, the header, not counted).
    pub fn data_rows(&self) -> u64 {
        self.rows.len().saturating_sub(1) as u64
    }

    /// What each column holds.
    pub fn kinds(&self) -> &[ColumnKind] {
        &self.kinds
    }
}

fn io(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Reads one part of the archive into a zeroizing buffer.
fn part<R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
    name: &str,
) -> Result<Zeroizing<String>, String> {
    let mut file = archive.by_name(name).map_err(io)?;
    let mut buffer = WipingBuffer::with_capacity(file.size().min(1 << 30) as usize);
    std::io::copy(&mut file, &mut buffer).map_err(io)?;
    let bytes = buffer.into_inner();
    let text = std::str::from_utf8(&bytes).map_err(|_| format!("{name} is not UTF-8"))?;
    Ok(Zeroizing::new(text.to_owned()))
}

/// The value of attribute `name` in a start tag.
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let end = tag[start..].find('"')? + start;
    Some(&tag[start..end])
}

/// The elements `<NAME ...>...</NAME>` or `<NAME .../>` in `text[range]`,
/// as ranges of `text`.
fn elements(text: &str, range: std::ops::Range<usize>, name: &str) -> Vec<std::ops::Range<usize>> {
    let (open, close) = (format!("<{name}"), format!("</{name}>"));
    let mut out = Vec::new();
    let mut at = range.start;
    while let Some(found) = text[at..range.end].find(&open) {
        let start = at + found;
        let after = text.as_bytes().get(start + open.len()).copied();
        if !matches!(after, Some(b' ' | b'>' | b'/')) {
            at = start + open.len();
            continue;
        }
        let Some(tag_end) = text[start..range.end].find('>').map(|i| start + i + 1) else {
            break;
        };
        let end = if text[..tag_end].ends_with("/>") {
            tag_end
        } else {
            match text[tag_end..range.end].find(&close) {
                Some(i) => tag_end + i + close.len(),
                None => break,
            }
        };
        out.push(start..end);
        at = end;
    }
    out
}

/// Column letters of a cell reference (`AB12` → `AB`) and its index.
fn column_of(reference: &str) -> Option<(usize, &str)> {
    let letters = reference.trim_end_matches(|c: char| c.is_ascii_digit());
    if letters.is_empty() || !letters.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let index = letters
        .bytes()
        .fold(0usize, |n, b| n * 26 + usize::from(b - b'A' + 1));
    Some((index - 1, letters))
}

fn letters_of(mut index: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'A' + (index % 26) as u8);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The text of every `<t>` in an element (a shared string, an inline one).
fn texts(xml: &str, range: std::ops::Range<usize>) -> String {
    elements(xml, range, "t")
        .into_iter()
        .filter_map(|t| {
            let inner = &xml[t.clone()];
            let start = inner.find('>')? + 1;
            let end = inner.rfind("</t>")?;
            (start <= end).then(|| unescape(&inner[start..end]))
        })
        .collect()
}

/// A cell's text, for telling what its column holds.
fn cell_text(xml: &str, cell: std::ops::Range<usize>, shared: &[String]) -> String {
    let tag_end = xml[cell.clone()]
        .find('>')
        .map_or(cell.end, |i| cell.start + i);
    let kind = attribute(&xml[cell.start..tag_end], "t");
    if kind == Some("inlineStr") {
        return texts(xml, cell);
    }
    let value = elements(xml, cell, "v")
        .first()
        .map(|v| {
            let inner = &xml[v.clone()];
            let start = inner.find('>').map_or(0, |i| i + 1);
            unescape(inner[start..].trim_end_matches("</v>"))
        })
        .unwrap_or_default();
    match kind {
        Some("s") => value
            .parse::<usize>()
            .ok()
            .and_then(|i| shared.get(i).cloned())
            .unwrap_or_default(),
        _ => value,
    }
}

/// Finds the first sheet of the workbook that holds a customer list and can
/// take canaries; `Err` says why none can (the export then goes as it is).
pub fn prepare(original: &[u8]) -> Result<PreparedSheet, String> {
    let mut archive = zip::ZipArchive::new(Cursor::new(original)).map_err(io)?;
    let workbook = part(&mut archive, "xl/workbook.xml")?;
    if workbook.contains("<definedName") {
        return Err("the workbook defines names, which moved rows would break".into());
    }
    let rels = part(&mut archive, "xl/_rels/workbook.xml.rels")?;
    let shared: Vec<String> = match part(&mut archive, "xl/sharedStrings.xml") {
        Ok(xml) => elements(&xml, 0..xml.len(), "si")
            .into_iter()
            .map(|si| texts(&xml, si))
            .collect(),
        Err(_) => Vec::new(),
    };
    for sheet in elements(&workbook, 0..workbook.len(), "sheet") {
        let tag = &workbook[sheet];
        let Some(id) = attribute(tag, "r:id") else {
            continue;
        };
        let Some(target) = elements(&rels, 0..rels.len(), "Relationship")
            .into_iter()
            .map(|r| &rels[r])
            .find(|r| attribute(r, "Id") == Some(id))
            .and_then(|r| attribute(r, "Target"))
        else {
            continue;
        };
        let path = match target.strip_prefix('/') {
            Some(absolute) => absolute.to_owned(),
            None => format!("xl/{target}"),
        };
        let xml = part(&mut archive, &path)?;
        if let Some(kinds) = list_kinds(&xml, &shared) {
            if let Some(found) = REFERENCES.iter().find(|r| xml.contains(*r)) {
                return Err(format!(
                    "the list's sheet has {found}…>, which moved rows would break"
                ));
            }
            let Some(data) = xml.find("<sheetData>").map(|i| i + "<sheetData>".len()) else {
                return Err("the list's sheet has no rows".into());
            };
            let data_end = xml[data..]
                .find("</sheetData>")
                .map_or(xml.len(), |i| data + i);
            let mut rows = Vec::new();
            let mut last = 0;
            for row in elements(&xml, data..data_end, "row") {
                let number = attribute(&xml[row.clone()], "r")
                    .and_then(|r| r.parse::<u64>().ok())
                    .filter(|r| *r > last)
                    .ok_or("a row without its number")?;
                last = number;
                rows.push((row, number));
            }
            return Ok(PreparedSheet {
                path,
                xml,
                rows,
                kinds,
            });
        }
    }
    Err("no sheet holds phone numbers or e-mail addresses".into())
}

/// The kinds of a sheet's columns, if it is a list (a phone or e-mail column).
fn list_kinds(xml: &str, shared: &[String]) -> Option<Vec<ColumnKind>> {
    let data = xml.find("<sheetData>")?;
    let rows = elements(xml, data..xml.len(), "row");
    let texts_of = |row: &std::ops::Range<usize>| -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for cell in elements(xml, row.clone(), "c") {
            let tag_end = xml[cell.clone()]
                .find('>')
                .map_or(cell.end, |i| cell.start + i);
            let Some((column, _)) = attribute(&xml[cell.start..tag_end], "r").and_then(column_of)
            else {
                continue;
            };
            if column >= 1024 {
                continue;
            }
            if out.len() <= column {
                out.resize(column + 1, String::new());
            }
            out[column] = cell_text(xml, cell, shared);
        }
        out
    };
    let header = texts_of(rows.first()?);
    let sample: Vec<Vec<String>> = rows.iter().skip(1).take(50).map(texts_of).collect();
    let kinds = column_kinds(&header, &sample);
    kinds
        .iter()
        .any(|k| matches!(k, ColumnKind::Phone | ColumnKind::Email))
        .then_some(kinds)
}

/// `row` (a `<row>` element, or one `<c>`) with the row's own number
/// (`r="12"`) and every cell's (`r="B12"`) set to `number`. Only the start
/// tags of rows and cells are touched, never a cell's text.
fn renumbered(row: &str, number: u64) -> String {
    let mut out = String::with_capacity(row.len() + 16);
    let mut rest = row;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        let tail = &rest[lt..];
        let end = tail.find('>').map_or(tail.len(), |i| i + 1);
        let tag = &tail[..end];
        if tag.starts_with("<row ") || tag.starts_with("<c ") {
            match tag.find(" r=\"").and_then(|at| {
                let start = at + 4;
                tag[start..].find('"').map(|len| (start, start + len))
            }) {
                Some((start, stop)) => {
                    let letters = tag[start..stop].trim_end_matches(|c: char| c.is_ascii_digit());
                    out.push_str(&tag[..start]);
                    out.push_str(letters);
                    out.push_str(&number.to_string());
                    out.push_str(&tag[stop..]);
                }
                None => out.push_str(tag),
            }
        } else {
            out.push_str(tag);
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

impl PreparedSheet {
    /// The workbook with `canaries` at random places among the sheet's data
    /// rows: the sheet's part rewritten, every other part copied raw.
    pub fn with_canaries(
        &self,
        original: &[u8],
        canaries: &[Canary],
        rng: &mut impl RandomSource,
    ) -> Result<Zeroizing<Vec<u8>>, String> {
        let data = self.data_rows();
        let mut places: Vec<u64> = canaries.iter().map(|_| rng.below(data + 1)).collect();
        places.sort_unstable();
        let xml = self.xml.as_str();
        let (first, _) = self.rows.first().cloned().ok_or("the sheet has no rows")?;
        let mut sheet = Zeroizing::new(String::with_capacity(xml.len() + canaries.len() * 1024));
        sheet.push_str(&xml[..first.end]);
        let mut shift = 0u64;
        let mut next = places.iter().peekable();
        let mut canary = canaries.iter();
        let mut written_to = first.end;
        let mut last_number = self.rows[0].1;
        for (index, (row, number)) in self.rows.iter().enumerate().skip(1) {
            // What lies between rows (whitespace) is kept.
            sheet.push_str(&xml[written_to..row.start]);
            let data_index = index as u64 - 1;
            while next.next_if(|p| **p == data_index).is_some() {
                if let Some(c) = canary.next() {
                    self.write_row(&mut sheet, c, number + shift, rng);
                    shift += 1;
                }
            }
            sheet.push_str(&renumbered(&xml[row.clone()], number + shift));
            written_to = row.end;
            last_number = number + shift;
        }
        for c in canary {
            last_number += 1;
            self.write_row(&mut sheet, c, last_number, rng);
        }
        let tail = &xml[written_to..];
        sheet.push_str(tail);
        // The used range grows by the canaries.
        let sheet = match sheet.find("<dimension ref=\"") {
            Some(at) if shift > 0 || !canaries.is_empty() => {
                let start = at + "<dimension ref=\"".len();
                let end = sheet[start..].find('"').map_or(start, |i| start + i);
                let range = sheet[start..end].to_owned();
                match range.split_once(':') {
                    Some((from, to)) => {
                        let letters = to.trim_end_matches(|c: char| c.is_ascii_digit());
                        let mut out = Zeroizing::new(String::with_capacity(sheet.len() + 8));
                        out.push_str(&sheet[..start]);
                        out.push_str(&format!("{from}:{letters}{last_number}"));
                        out.push_str(&sheet[end..]);
                        out
                    }
                    None => sheet,
                }
            }
            _ => sheet,
        };
        rezip(original, &self.path, sheet.as_bytes())
    }

    /// One canary's `<row>`: its values as inline strings in the columns of
    /// their kinds, every other cell a real row's, moved to this row.
    fn write_row(
        &self,
        out: &mut String,
        canary: &Canary,
        number: u64,
        rng: &mut impl RandomSource,
    ) {
        let xml = self.xml.as_str();
        let data = self.data_rows();
        let donor = (data > 0).then(|| self.rows[1 + rng.below(data) as usize].0.clone());
        let mut donor_cells: Vec<(usize, std::ops::Range<usize>)> = Vec::new();
        let mut row_tag = format!("<row r=\"{number}\">");
        if let Some(donor) = &donor {
            // The donor's row attributes (height, style), renumbered.
            if let Some(end) = xml[donor.clone()].find('>') {
                let tag = &xml[donor.start..donor.start + end + 1];
                row_tag = renumbered(&tag.replace("/>", ">"), number);
            }
            for cell in elements(xml, donor.clone(), "c") {
                let tag_end = xml[cell.clone()]
                    .find('>')
                    .map_or(cell.end, |i| cell.start + i);
                if let Some((column, _)) =
                    attribute(&xml[cell.start..tag_end], "r").and_then(column_of)
                {
                    donor_cells.push((column, cell));
                }
            }
        }
        out.push_str(&row_tag);
        let (family, given) = canary.name.split_once(' ').unwrap_or((&canary.name, ""));
        let (family_kana, given_kana) = canary.kana.split_once(' ').unwrap_or((&canary.kana, ""));
        for (column, kind) in self.kinds.iter().enumerate() {
            let reference = format!("{}{number}", letters_of(column));
            let donor_cell = donor_cells
                .iter()
                .find(|(c, _)| *c == column)
                .map(|(_, r)| r.clone());
            let value = match kind {
                ColumnKind::Name => canary.name.clone(),
                ColumnKind::FamilyName => family.to_owned(),
                ColumnKind::GivenName => given.to_owned(),
                ColumnKind::Kana => canary.kana.clone(),
                ColumnKind::FamilyKana => family_kana.to_owned(),
                ColumnKind::GivenKana => given_kana.to_owned(),
                ColumnKind::Phone => canary.phone.clone(),
                ColumnKind::Email => canary.email.clone(),
                ColumnKind::Postal => canary.postal_code.clone(),
                ColumnKind::Address => canary.address.clone(),
                ColumnKind::Id | ColumnKind::Other => {
                    if let Some(cell) = donor_cell {
                        out.push_str(&renumbered(&xml[cell], number));
                    }
                    continue;
                }
            };
            let style = donor_cell
                .and_then(|cell| {
                    let tag_end = xml[cell.clone()]
                        .find('>')
                        .map_or(cell.end, |i| cell.start + i);
                    attribute(&xml[cell.start..tag_end], "s").map(str::to_owned)
                })
                .map(|s| format!(" s=\"{s}\""))
                .unwrap_or_default();
            out.push_str(&format!(
                "<c r=\"{reference}\"{style} t=\"inlineStr\"><is><t>{}</t></is></c>",
                escape(&value)
            ));
        }
        out.push_str("</row>");
    }
}

/// A seekable output that wipes every allocation it outgrows.
struct WipingCursor {
    buf: Zeroizing<Vec<u8>>,
    pos: usize,
}

impl Write for WipingCursor {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let end = self.pos + data.len();
        if end > self.buf.capacity() {
            let mut bigger = Zeroizing::new(Vec::with_capacity(end.max(self.buf.capacity() * 2)));
            bigger.extend_from_slice(&self.buf);
            self.buf = bigger;
        }
        if end > self.buf.len() {
            self.buf.resize(end, 0);
        }
        self.buf[self.pos..end].copy_from_slice(data);
        self.pos = end;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Seek for WipingCursor {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => i128::from(p),
            SeekFrom::End(d) => self.buf.len() as i128 + i128::from(d),
            SeekFrom::Current(d) => self.pos as i128 + i128::from(d),
        };
        self.pos = usize::try_from(pos).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
        })?;
        Ok(self.pos as u64)
    }
}

/// `original` with part `path` replaced by `content`; every other part is
/// copied compressed, as it was.
fn rezip(original: &[u8], path: &str, content: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut archive = zip::ZipArchive::new(Cursor::new(original)).map_err(io)?;
    let mut out = zip::ZipWriter::new(WipingCursor {
        buf: Zeroizing::new(Vec::with_capacity(
            original.len() + content.len() / 4 + 4096,
        )),
        pos: 0,
    });
    for index in 0..archive.len() {
        let file = archive.by_index_raw(index).map_err(io)?;
        if file.name() == path {
            drop(file);
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            out.start_file(path, options).map_err(io)?;
            out.write_all(content).map_err(io)?;
        } else {
            out.raw_copy_file(file).map_err(io)?;
        }
    }
    let cursor = out.finish().map_err(io)?;
    Ok(cursor.buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter(u64);

    impl RandomSource for Counter {
        fn next_u64(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 11
        }
    }

    fn canary(n: u32) -> Canary {
        Canary {
            name: "佐藤 美咲".into(),
            kana: "サトウ ミサキ".into(),
            phone: format!("03-0{n:03}-0000"),
            email: format!("misaki{n}@mail.invalid"),
            postal_code: "123-4567".into(),
            address: "東京都世田谷区桜丘2-14-7".into(),
        }
    }

    fn book(rows: usize, formula: bool) -> Vec<u8> {
        let mut book = rust_xlsxwriter::Workbook::new();
        let notes = book.add_worksheet();
        notes.write_string(0, 0, "メモ").unwrap();
        let sheet = book.add_worksheet();
        for (c, h) in ["顧客番号", "氏名", "電話番号", "メールアドレス", "区分"]
            .iter()
            .enumerate()
        {
            sheet.write_string(0, c as u16, *h).unwrap();
        }
        for r in 1..=rows as u32 {
            sheet.write_number(r, 0, f64::from(1000 + r)).unwrap();
            sheet.write_string(r, 1, format!("山田 太郎{r}")).unwrap();
            sheet
                .write_string(r, 2, format!("090-0000-{r:04}"))
                .unwrap();
            sheet
                .write_string(r, 3, format!("c{r}@example.jp"))
                .unwrap();
            sheet.write_string(r, 4, "一般").unwrap();
        }
        if formula {
            sheet.write_formula(1, 6, "=A2+1").unwrap();
        }
        book.save_to_buffer().unwrap()
    }

    fn read(bytes: &[u8], sheet: usize) -> Vec<Vec<String>> {
        use calamine::Reader;
        let mut wb = calamine::open_workbook_auto_from_rs(Cursor::new(bytes)).unwrap();
        let name = wb.sheet_names()[sheet].clone();
        let range = wb.worksheet_range(&name).unwrap();
        range
            .rows()
            .map(|r| r.iter().map(|c| c.to_string()).collect())
            .collect()
    }

    #[test]
    fn canaries_go_into_the_list_sheet_and_every_real_row_stays() {
        let original = book(40, false);
        let prepared = prepare(&original).unwrap();
        assert_eq!(prepared.data_rows(), 40);
        assert_eq!(prepared.kinds()[2], ColumnKind::Phone);
        let out = prepared
            .with_canaries(
                &original,
                &[canary(1), canary(2), canary(3)],
                &mut Counter(9),
            )
            .unwrap();
        let before = read(&original, 1);
        let after = read(&out, 1);
        assert_eq!(after.len(), before.len() + 3);
        assert_eq!(after[0], before[0], "the header first");
        for row in &before {
            assert!(after.contains(row), "{row:?}");
        }
        let added: Vec<&Vec<String>> = after.iter().filter(|r| !before.contains(r)).collect();
        assert_eq!(added.len(), 3);
        for row in added {
            assert_eq!(row[1], "佐藤 美咲");
            assert!(row[2].starts_with("03-0"), "{row:?}");
            assert!(row[3].ends_with("@mail.invalid"));
            assert_eq!(row[4], "一般", "copied from a real row");
        }
        assert_eq!(
            read(&out, 0),
            read(&original, 0),
            "the other sheet as it was"
        );
    }

    #[test]
    fn a_sheet_with_formulas_is_left_alone() {
        let original = book(5, true);
        assert!(prepare(&original).unwrap_err().contains("<f"));
    }

    #[test]
    fn references_are_renumbered() {
        assert_eq!(
            renumbered(
                r#"<row r="7" spans="1:2"><c r="A7" t="s"><v>1</v></c><c r="AB7"/></row>"#,
                9
            ),
            r#"<row r="9" spans="1:2"><c r="A9" t="s"><v>1</v></c><c r="AB9"/></row>"#
        );
        // A cell's text is never taken for a reference.
        assert_eq!(
            renumbered(r#"<c r="B7" t="inlineStr"><is><t>a r="B7"</t></is></c>"#, 8),
            r#"<c r="B8" t="inlineStr"><is><t>a r="B7"</t></is></c>"#
        );
        assert_eq!(column_of("AB12"), Some((27, "AB")));
        assert_eq!(letters_of(27), "AB");
        assert_eq!(letters_of(0), "A");
    }
}
