//! Drawing an export's canaries (PROTOCOL.md §7.8): invented but plausible
//! customers (name, katakana, postal code, address) and the contact values
//! that make a leaked list name its export when someone uses it, taken from
//! the operator's monitored pools (`[canaries]` in the config file) or,
//! without one, invented so that they reach no one. Randomness is the
//! operating system's; which candidates an export keeps (none that an
//! earlier export holds) is the store's (`store/trace.rs`).

use std::path::Path;

use irm_core::protocol::{Canary, contact_key};

use crate::store::CanaryOrder;

/// Family names: (kanji, katakana, romaji). Common ones, so that no row
/// stands out; the combinations are many and no real person is meant.
const FAMILY: &[(&str, &str, &str)] = &[
    ("佐藤", "サトウ", "sato"),
    ("鈴木", "スズキ", "suzuki"),
    ("高橋", "タカハシ", "takahashi"),
    ("田中", "タナカ", "tanaka"),
    ("伊藤", "イトウ", "ito"),
    ("渡辺", "ワタナベ", "watanabe"),
    ("山本", "ヤマモト", "yamamoto"),
    ("中村", "ナカムラ", "nakamura"),
    ("小林", "コバヤシ", "kobayashi"),
    ("加藤", "カトウ", "kato"),
    ("吉田", "ヨシダ", "yoshida"),
    ("山田", "ヤマダ", "yamada"),
    ("佐々木", "ササキ", "sasaki"),
    ("山口", "ヤマグチ", "yamaguchi"),
    ("松本", "マツモト", "matsumoto"),
    ("井上", "イノウエ", "inoue"),
    ("木村", "キムラ", "kimura"),
    ("林", "ハヤシ", "hayashi"),
    ("斎藤", "サイトウ", "saito"),
    ("清水", "シミズ", "shimizu"),
    ("山崎", "ヤマザキ", "yamazaki"),
    ("森", "モリ", "mori"),
    ("池田", "イケダ", "ikeda"),
    ("橋本", "ハシモト", "hashimoto"),
    ("阿部", "アベ", "abe"),
    ("石川", "イシカワ", "ishikawa"),
    ("前田", "マエダ", "maeda"),
    ("藤田", "フジタ", "fujita"),
    ("小川", "オガワ", "ogawa"),
    ("岡田", "オカダ", "okada"),
];

/// Given names: (kanji, katakana, romaji).
const GIVEN: &[(&str, &str, &str)] = &[
    ("美咲", "ミサキ", "misaki"),
    ("健太", "ケンタ", "kenta"),
    ("陽子", "ヨウコ", "yoko"),
    ("大輔", "ダイスケ", "daisuke"),
    ("恵", "メグミ", "megumi"),
    ("翔太", "ショウタ", "shota"),
    ("由美", "ユミ", "yumi"),
    ("拓也", "タクヤ", "takuya"),
    ("真由美", "マユミ", "mayumi"),
    ("誠", "マコト", "makoto"),
    ("直子", "ナオコ", "naoko"),
    ("和也", "カズヤ", "kazuya"),
    ("彩", "アヤ", "aya"),
    ("隆", "タカシ", "takashi"),
    ("智子", "トモコ", "tomoko"),
    ("浩二", "コウジ", "koji"),
    ("さくら", "サクラ", "sakura"),
    ("亮", "リョウ", "ryo"),
    ("裕子", "ユウコ", "yuko"),
    ("修", "オサム", "osamu"),
    ("香織", "カオリ", "kaori"),
    ("勇気", "ユウキ", "yuki"),
    ("明美", "アケミ", "akemi"),
    ("哲也", "テツヤ", "tetsuya"),
];

/// (prefecture and city, town names): addresses that exist as places;
/// the block numbers are drawn.
const PLACES: &[(&str, &[&str])] = &[
    ("東京都世田谷区", &["桜丘", "経堂", "代田", "太子堂"]),
    ("東京都練馬区", &["豊玉北", "石神井町", "光が丘"]),
    ("神奈川県横浜市港北区", &["日吉", "菊名", "大倉山"]),
    ("大阪府大阪市北区", &["天満", "中津", "梅田"]),
    ("愛知県名古屋市中区", &["栄", "大須", "丸の内"]),
    ("福岡県福岡市中央区", &["天神", "大名", "薬院"]),
    ("北海道札幌市中央区", &["北一条西", "南三条東", "宮の森"]),
    ("埼玉県さいたま市浦和区", &["高砂", "常盤", "岸町"]),
    ("千葉県船橋市", &["本町", "湊町", "夏見"]),
    ("兵庫県神戸市中央区", &["三宮町", "元町通", "北野町"]),
];

/// Area codes of the invented numbers (Tokyo, Osaka).
const AREAS: &[&str] = &["03", "06"];

/// The domain of invented e-mail addresses when no pool is configured:
/// `.invalid` is reserved never to exist (RFC 2606 §2, RFC 6761 §6.4), so
/// mail to it is delivered nowhere.
pub const UNREACHABLE_DOMAIN: &str = "mail.invalid";

/// Where an export's contact values come from (`[canaries]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CanaryPools {
    /// Phone numbers the operator answers and watches, one per export row
    /// ever (`phone_pool_file`, one a line).
    pub phones: Vec<String>,
    /// Mailboxes the operator watches (`email_pool_file`, one a line).
    pub emails: Vec<String>,
    /// A domain whose every address reaches the operator's catch-all
    /// mailbox (`email_domain`): each canary gets a fresh address in it.
    pub email_domain: Option<String>,
}

impl CanaryPools {
    /// Reads a pool file: one value a line, blank lines and `#` comments
    /// skipped; every value must be a phone number or an e-mail address.
    pub fn read_pool(path: &Path) -> Result<Vec<String>, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading the canary pool {}: {e}", path.display()))?;
        let mut out = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if contact_key(line).is_none() {
                return Err(format!(
                    "{} line {}: {line:?} is neither a phone number nor an e-mail address",
                    path.display(),
                    n + 1
                ));
            }
            out.push(line.to_owned());
        }
        Ok(out)
    }
}

/// Random numbers from the operating system.
struct OsRandom {
    buf: [u8; 256],
    used: usize,
}

impl OsRandom {
    fn new() -> Result<Self, getrandom::Error> {
        let mut buf = [0u8; 256];
        getrandom::fill(&mut buf)?;
        Ok(Self { buf, used: 0 })
    }

    fn next_u64(&mut self) -> Result<u64, getrandom::Error> {
        if self.used + 8 > self.buf.len() {
            getrandom::fill(&mut self.buf)?;
            self.used = 0;
        }
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&self.buf[self.used..self.used + 8]);
        self.used += 8;
        Ok(u64::from_le_bytes(bytes))
    }

    /// Uniform below `n` (`n` > 0; the bias of 2^64 mod n is negligible here).
    fn below(&mut self, n: usize) -> Result<usize, getrandom::Error> {
        Ok((self.next_u64()? % n as u64) as usize)
    }

    fn pick<'a, T>(&mut self, list: &'a [T]) -> Result<&'a T, getrandom::Error> {
        Ok(&list[self.below(list.len())?])
    }

    fn digits(&mut self, n: usize) -> Result<String, getrandom::Error> {
        (0..n)
            .map(|_| Ok(char::from(b'0' + self.below(10)? as u8)))
            .collect()
    }
}

/// Candidates beyond the count for values an earlier export already holds.
const SPARE: usize = 32;

/// Draws `count` canaries for export `export_id` of `rows` rows.
pub fn draw(
    export_id: String,
    rows: u64,
    count: u32,
    pools: &CanaryPools,
) -> Result<CanaryOrder, getrandom::Error> {
    let mut rng = OsRandom::new()?;
    let count = count as usize;
    let mut identities = Vec::with_capacity(count);
    let mut romaji = Vec::with_capacity(count + SPARE);
    for _ in 0..count + SPARE {
        let family = rng.pick(FAMILY)?;
        let given = rng.pick(GIVEN)?;
        let (place, towns) = rng.pick(PLACES)?;
        let town = rng.pick(towns)?;
        romaji.push((given.2, family.2));
        if identities.len() < count {
            identities.push(Canary {
                name: format!("{} {}", family.0, given.0),
                kana: format!("{} {}", family.1, given.1),
                phone: String::new(),
                email: String::new(),
                postal_code: format!("{}-{}", rng.digits(3)?, rng.digits(4)?),
                address: format!(
                    "{place}{town}{}-{}-{}",
                    1 + rng.below(5)?,
                    1 + rng.below(30)?,
                    1 + rng.below(20)?
                ),
            });
        }
    }
    // The operator's pool first, in a random order; then invented values,
    // which the store falls back to when the pool is used up.
    let mut phones = shuffled(&mut rng, &pools.phones)?;
    for _ in 0..count + SPARE {
        phones.push(unreachable_phone(&mut rng)?);
    }
    let mut emails = shuffled(&mut rng, &pools.emails)?;
    let domain = pools.email_domain.as_deref().unwrap_or(UNREACHABLE_DOMAIN);
    for (given, family) in romaji {
        // Eight random characters keep each address unique to its export.
        let tag: String = (0..8)
            .map(|_| {
                Ok(char::from(
                    b"abcdefghijkmnpqrstuvwxyz23456789"[rng.below(32)?],
                ))
            })
            .collect::<Result<_, getrandom::Error>>()?;
        let sep = *rng.pick(&[".", "_", ""])?;
        emails.push(format!("{given}{sep}{family}.{tag}@{domain}"));
    }
    Ok(CanaryOrder {
        export_id,
        rows,
        identities,
        phones,
        emails,
        pooled: (pools.phones.len(), pools.emails.len()),
        emails_monitored: pools.email_domain.is_some(),
    })
}

/// A Japanese geographic number that reaches no one: the exchange code
/// after the area code never starts with 0 or 1 in the numbering plan
/// (those lead to carrier and special numbers), so `03-0xxx-xxxx` and
/// `06-1xxx-xxxx` are numbers no line has.
fn unreachable_phone(rng: &mut OsRandom) -> Result<String, getrandom::Error> {
    let area = rng.pick(AREAS)?;
    let first = rng.below(2)?;
    Ok(format!(
        "{area}-{first}{}-{}",
        rng.digits(3)?,
        rng.digits(4)?
    ))
}

fn shuffled(rng: &mut OsRandom, list: &[String]) -> Result<Vec<String>, getrandom::Error> {
    let mut out = list.to_vec();
    for i in (1..out.len()).rev() {
        let j = rng.below(i + 1)?;
        out.swap(i, j);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invented_values_are_plausible_unique_and_reach_no_one() {
        let order = draw("ab".repeat(16), 100_000, 460, &CanaryPools::default()).unwrap();
        assert_eq!(order.identities.len(), 460);
        assert!(order.phones.len() >= 460 && order.emails.len() >= 460);
        for phone in &order.phones {
            let key = contact_key(phone).unwrap();
            assert_eq!(key.len(), 10, "{phone}");
            assert!(matches!(&key[2..3], "0" | "1"), "{phone}");
        }
        for email in &order.emails {
            assert!(email.ends_with("@mail.invalid"), "{email}");
            assert!(contact_key(email).is_some());
        }
        let distinct: BTreeSet<&String> = order.emails.iter().collect();
        assert_eq!(distinct.len(), order.emails.len());
        // Every name and address encodes in CP932, as the lists it joins.
        for c in &order.identities {
            for text in [&c.name, &c.kana, &c.address] {
                let (_, _, unmappable) = encoding_rs::SHIFT_JIS.encode(text);
                assert!(!unmappable, "{text}");
            }
        }
    }

    #[test]
    fn the_pool_comes_first() {
        let pools = CanaryPools {
            phones: vec!["090-1111-2222".into(), "090-3333-4444".into()],
            emails: vec!["trap1@watch.example".into()],
            email_domain: Some("watch.example".into()),
        };
        let order = draw("cd".repeat(16), 10, 3, &pools).unwrap();
        let mut first: Vec<&String> = order.phones[..2].iter().collect();
        first.sort();
        assert_eq!(first, ["090-1111-2222", "090-3333-4444"]);
        assert_eq!(order.emails[0], "trap1@watch.example");
        assert!(order.emails[1].ends_with("@watch.example"));
    }

    use std::collections::BTreeSet;
}
