//! A seeded generator of realistic member data, for the sample database, tests and
//! benchmarks.
//!
//! It writes `members.parquet`, `events.parquet` and `tags.parquet`. The same configuration
//! (members, days, seed, end) always gives the same rows: every block of members draws from
//! its own ChaCha8 stream seeded by `(seed, block)`.
//!
//! What it models: ~30 Chinese cities with a skewed distribution, ~200 stores tied to
//! cities, member levels, points with a long tail, birthdays, join dates over five years,
//! first-touch channels, phone / e-mail / OpenID / UnionID identifiers, 44 tags from under
//! 0.1% to over 30% density, and about ten events per member over the last `days` days with a
//! weekly and a seasonal rhythm: follow and register at the start, scans of store QR codes,
//! product views, carts, coupon claims and redemptions (a redemption always follows a claim
//! of the same coupon), purchases with an amount and a store, surveys, bookings, shares.
//! Scalper suspects claim the same coupon in several cities within two days.
//!
//! `identities.parquet` holds identity observations beyond the members' own identifier
//! attributes (DESIGN section 11), like the seeds': a second OpenID (a mini-program)
//! seen with a member's UnionID, fans of the official account who are not members yet
//! (an OpenID and a UnionID), some of whom later bind a phone (a member's: the fan and the
//! member are one person), a new phone typed by a member who has one, members registered
//! twice (a member id seen with another member's phone or e-mail), a store's shared phone
//! and a test e-mail given by several members.

mod vocab;

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType as ArrowType, Field, Schema, TimeUnit as ArrowUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};
use crate::value::{DAY_MICROS, HOUR_MICROS, Timestamp};
use vocab::*;

/// Members generated per block (one RNG stream and one batch per file per block).
const BLOCK: u64 = 32 * 1024;

/// The generator's version: it changes when the same seed gives other rows (2: campaign
/// sign-ups added; 3: store-QR journeys; 4: identity observations), so caches of
/// generated data can tell theirs apart.
pub const GENERATOR_VERSION: u32 = 4;

/// Mixed into a block's seed for the stream of campaign sign-ups.
const CAMPAIGN_SALT: u64 = 0x6361_6D70_6169_676E;

/// Mixed into a block's seed for the stream of store-QR journeys.
const JOURNEY_SALT: u64 = 0x6A6F_7572_6E65_7973;

/// Mixed into a block's seed for the stream of identity observations.
const IDENTITY_SALT: u64 = 0x6964_656E_7469_7479;

/// The phone a store types in for customers who give none (blocked in the sample's
/// declarations), and a test e-mail address staff use.
pub const SHARED_PHONE: &str = "13800138000";
/// See [`SHARED_PHONE`].
pub const TEST_EMAIL: &str = "test@example.com";

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenConfig {
    /// Number of members.
    pub members: u64,
    /// Events fall in the `days` days before `end`.
    pub days: u32,
    /// Seed of the random streams.
    pub seed: u64,
    /// The end of the event history (exclusive); pin it for reproducible data.
    pub end: Timestamp,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            members: 100_000,
            days: 365,
            seed: 42,
            end: today_midnight(),
        }
    }
}

/// Midnight UTC of today: the default end of the history.
pub fn today_midnight() -> Timestamp {
    let now = Timestamp::now().micros();
    Timestamp(now - now.rem_euclid(DAY_MICROS))
}

/// What was generated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GenSummary {
    /// Member rows.
    pub members: u64,
    /// Event rows.
    pub events: u64,
    /// (member, tag) rows.
    pub tags: u64,
    /// Identity observation rows.
    pub identities: u64,
}

struct Writers {
    members: ArrowWriter<File>,
    events: ArrowWriter<File>,
    tags: ArrowWriter<File>,
    identities: ArrowWriter<File>,
}

fn writer(dir: &Path, name: &str, schema: Arc<Schema>) -> Result<ArrowWriter<File>> {
    let path = dir.join(name);
    let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    ArrowWriter::try_new(file, schema, Some(props))
        .map_err(|e| Error::Internal(format!("parquet writer for {name}: {e}")))
}

fn ts_type() -> ArrowType {
    ArrowType::Timestamp(ArrowUnit::Microsecond, Some("UTC".into()))
}

fn member_schema() -> Arc<Schema> {
    let s = |n: &str| Field::new(n, ArrowType::Utf8, true);
    Arc::new(Schema::new(vec![
        Field::new("member_id", ArrowType::Utf8, false),
        s("city"),
        s("home_store"),
        s("level"),
        Field::new("points", ArrowType::Int64, true),
        Field::new("lifetime_spend", ArrowType::Float64, true),
        s("gender"),
        Field::new("birthday", ArrowType::Date32, true),
        Field::new("joined_at", ts_type(), true),
        s("channel"),
        Field::new("subscribed", ArrowType::Boolean, true),
        s("phone"),
        s("email"),
        s("openid"),
        s("unionid"),
    ]))
}

fn event_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("member_id", ArrowType::Utf8, false),
        Field::new("event", ArrowType::Utf8, false),
        Field::new("ts", ts_type(), false),
        Field::new("amount", ArrowType::Float64, true),
        Field::new("store", ArrowType::Utf8, true),
        Field::new("city", ArrowType::Utf8, true),
        Field::new("coupon_id", ArrowType::Utf8, true),
        Field::new("channel", ArrowType::Utf8, true),
        Field::new("qr_code", ArrowType::Utf8, true),
        Field::new("campaign_id", ArrowType::Utf8, true),
    ]))
}

/// An observation per row: who, if known, then the identifiers seen together (the column
/// order is the order they are given in: a fan's profile is named after its OpenID).
fn identity_schema() -> Arc<Schema> {
    let s = |n: &str| Field::new(n, ArrowType::Utf8, true);
    Arc::new(Schema::new(vec![
        s("member_id"),
        s("openid"),
        s("unionid"),
        s("phone"),
        s("email"),
    ]))
}

fn tag_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("member_id", ArrowType::Utf8, false),
        Field::new("tag", ArrowType::Utf8, false),
    ]))
}

/// Generates the four files into `out` (created if needed). `progress` is called after
/// every block with the members done so far.
pub fn generate(
    config: &GenConfig,
    out: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<GenSummary> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let mut writers = Writers {
        members: writer(out, "members.parquet", member_schema())?,
        events: writer(out, "events.parquet", event_schema())?,
        tags: writer(out, "tags.parquet", tag_schema())?,
        identities: writer(out, "identities.parquet", identity_schema())?,
    };
    let mut summary = GenSummary::default();
    let mut start = 0;
    while start < config.members {
        let end = (start + BLOCK).min(config.members);
        let block = Block::generate(config, start, end);
        summary.members += end - start;
        summary.events += block.events.num_rows() as u64;
        summary.tags += block.tags.num_rows() as u64;
        summary.identities += block.identities.num_rows() as u64;
        let fail =
            |e: parquet::errors::ParquetError| Error::Internal(format!("parquet write: {e}"));
        writers.members.write(&block.members).map_err(fail)?;
        writers.events.write(&block.events).map_err(fail)?;
        writers.tags.write(&block.tags).map_err(fail)?;
        writers.identities.write(&block.identities).map_err(fail)?;
        progress(end);
        start = end;
    }
    for w in [
        writers.members,
        writers.events,
        writers.tags,
        writers.identities,
    ] {
        w.close()
            .map_err(|e| Error::Internal(format!("parquet close: {e}")))?;
    }
    Ok(summary)
}

struct Block {
    members: RecordBatch,
    events: RecordBatch,
    tags: RecordBatch,
    identities: RecordBatch,
}

/// A member's identifier attributes, as generated.
#[derive(Default)]
struct Ids {
    member: String,
    phone: Option<String>,
    email: Option<String>,
    openid: Option<String>,
    unionid: Option<String>,
}

/// A random mainland mobile number (not one of the members').
fn new_phone(rng: &mut ChaCha8Rng) -> String {
    format!(
        "1{}{:09}",
        [3, 5, 7, 8, 9][rng.random_range(0..5)],
        rng.random_range(0..1_000_000_000u64)
    )
}

/// Identity observation rows of one block.
#[derive(Default)]
struct IdentityRows {
    member_id: StringBuilder,
    openid: StringBuilder,
    unionid: StringBuilder,
    phone: StringBuilder,
    email: StringBuilder,
}

/// One observation: a member id, if known, and `[openid, unionid, phone, email]`.
type Observation<'a> = (Option<&'a str>, [Option<&'a str>; 4]);

impl IdentityRows {
    fn push(&mut self, (member, [openid, unionid, phone, email]): Observation<'_>) {
        self.member_id.append_option(member);
        self.openid.append_option(openid);
        self.unionid.append_option(unionid);
        self.phone.append_option(phone);
        self.email.append_option(email);
    }

    /// The observations of a block's members (`ids`), drawn from `rng`: first what is seen
    /// member by member, then the later phone bindings of new fans and the duplicates.
    fn generate(rng: &mut ChaCha8Rng, ids: &[Ids]) -> RecordBatch {
        let mut rows = IdentityRows::default();
        let with_phone: Vec<&Ids> = ids.iter().filter(|m| m.phone.is_some()).collect();
        let random_phone = |rng: &mut ChaCha8Rng| -> Option<&str> {
            (!with_phone.is_empty())
                .then(|| {
                    with_phone[rng.random_range(0..with_phone.len())]
                        .phone
                        .as_deref()
                })
                .flatten()
        };
        let mut fans: Vec<String> = Vec::new();
        for m in ids {
            // A mini-program's OpenID seen with the member's UnionID.
            if let Some(unionid) = &m.unionid
                && rng.random_bool(0.3)
            {
                let openid = format!("o{:016x}", rng.random::<u64>());
                rows.push((None, [Some(&openid), Some(unionid), None, None]));
            }
            // A fan of the official account who is not a member yet.
            if rng.random_bool(0.05) {
                let openid = format!("o{:016x}", rng.random::<u64>());
                let unionid = format!("u{:016x}", rng.random::<u64>());
                rows.push((None, [Some(&openid), Some(&unionid), None, None]));
                fans.push(openid);
            }
            // The store's phone typed in for a customer who gave none, or the test e-mail.
            if let Some(openid) = &m.openid
                && rng.random_bool(0.004)
            {
                rows.push((None, [Some(openid), None, Some(SHARED_PHONE), None]));
            }
            if rng.random_bool(0.002) {
                rows.push((Some(&m.member), [None, None, None, Some(TEST_EMAIL)]));
            }
            // A new phone typed in the mini-program by a member who has one (`LIMIT 1`: the
            // OpenID is dropped and the new phone starts a profile of its own).
            if let (Some(openid), Some(_)) = (&m.openid, &m.phone)
                && rng.random_bool(0.01)
            {
                let phone = new_phone(rng);
                rows.push((None, [Some(openid), None, Some(&phone), None]));
            }
        }
        // Later: 40% of the fans bind a phone, half of them a member's (the same person).
        for openid in &fans {
            if rng.random_bool(0.4) {
                let own = new_phone(rng);
                let phone = if rng.random_bool(0.5) {
                    random_phone(rng).map(str::to_string).unwrap_or(own)
                } else {
                    own
                };
                rows.push((None, [Some(openid), None, Some(&phone), None]));
            }
        }
        // Members registered twice: a member id seen with another member's phone (merged
        // when it has no phone of its own; a family's shared phone merges people wrongly)
        // or e-mail (`LIMIT 2`).
        let with_email: Vec<&Ids> = ids.iter().filter(|m| m.email.is_some()).collect();
        for m in ids {
            if rng.random_bool(0.02)
                && let Some(phone) = random_phone(rng)
            {
                rows.push((Some(&m.member), [None, None, Some(phone), None]));
            }
            if !with_email.is_empty() && rng.random_bool(0.01) {
                let email = with_email[rng.random_range(0..with_email.len())]
                    .email
                    .as_deref();
                rows.push((Some(&m.member), [None, None, None, email]));
            }
        }
        rows.finish()
    }

    fn finish(mut self) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.member_id.finish()),
            Arc::new(self.openid.finish()),
            Arc::new(self.unionid.finish()),
            Arc::new(self.phone.finish()),
            Arc::new(self.email.finish()),
        ];
        RecordBatch::try_new(identity_schema(), columns).expect("columns match the schema")
    }
}

/// Event rows of one block, column by column.
#[derive(Default)]
struct EventRows {
    member_id: StringBuilder,
    event: StringBuilder,
    ts: TimestampMicrosecondBuilder,
    amount: Float64Builder,
    store: StringBuilder,
    city: StringBuilder,
    coupon_id: StringBuilder,
    channel: StringBuilder,
    qr_code: StringBuilder,
    campaign_id: StringBuilder,
}

struct EventProps<'a> {
    amount: Option<f64>,
    store: Option<usize>,
    coupon: Option<&'a str>,
    channel: Option<&'a str>,
    qr: Option<String>,
    campaign: Option<&'a str>,
}

const NO_PROPS: EventProps<'static> = EventProps {
    amount: None,
    store: None,
    coupon: None,
    channel: None,
    qr: None,
    campaign: None,
};

impl EventRows {
    fn push(&mut self, member: &str, event: &str, ts: i64, p: EventProps<'_>) {
        self.member_id.append_value(member);
        self.event.append_value(event);
        self.ts.append_value(ts);
        self.amount.append_option(p.amount);
        self.store.append_option(p.store.map(store_name));
        self.city
            .append_option(p.store.map(|s| CITIES[store_city(s)].0));
        self.coupon_id.append_option(p.coupon);
        self.channel.append_option(p.channel);
        self.qr_code.append_option(p.qr);
        self.campaign_id.append_option(p.campaign);
    }

    fn finish(mut self) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.member_id.finish()),
            Arc::new(self.event.finish()),
            Arc::new(self.ts.finish().with_timezone("UTC")),
            Arc::new(self.amount.finish()),
            Arc::new(self.store.finish()),
            Arc::new(self.city.finish()),
            Arc::new(self.coupon_id.finish()),
            Arc::new(self.channel.finish()),
            Arc::new(self.qr_code.finish()),
            Arc::new(self.campaign_id.finish()),
        ];
        RecordBatch::try_new(event_schema(), columns).expect("columns match the schema")
    }
}

/// Picks an index by cumulative weights.
fn pick(rng: &mut ChaCha8Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.random_range(0.0..total);
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random_range(0.0..1.0);
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Relative activity on a day: weekends and shopping festivals are busier.
fn day_weight(day: i64) -> f64 {
    let weekday = (day + 3).rem_euclid(7); // 0 = Monday (1970-01-01 was a Thursday)
    let mut w = if weekday >= 5 { 1.35 } else { 1.0 };
    let date = crate::value::format_date(day as i32);
    let md = &date[5..];
    if ("11-01".."11-12").contains(&md) || ("12-15".."12-26").contains(&md) {
        w *= 1.8;
    } else if ("06-01".."06-19").contains(&md) {
        w *= 1.4;
    }
    w
}

impl Block {
    fn generate(config: &GenConfig, start: u64, end: u64) -> Block {
        let mut rng = ChaCha8Rng::seed_from_u64(
            config.seed ^ (start / BLOCK).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let city_weights: Vec<f64> = CITIES.iter().map(|c| c.1).collect();
        let level_weights: Vec<f64> = LEVELS.iter().map(|l| l.1).collect();
        let channel_weights: Vec<f64> = CHANNELS.iter().map(|c| c.1).collect();
        let event_weights: Vec<f64> = ACTIVITY.iter().map(|e| e.1).collect();
        // Campaign sign-ups draw from a stream of their own, so adding them left every
        // other row as it was.
        let mut campaign_rng = ChaCha8Rng::seed_from_u64(
            config.seed ^ (start / BLOCK).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ CAMPAIGN_SALT,
        );
        // Store-QR journeys too (a stream of their own).
        let mut journey_rng = ChaCha8Rng::seed_from_u64(
            config.seed ^ (start / BLOCK).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ JOURNEY_SALT,
        );
        let end_ts = config.end.micros();
        let history_start = end_ts - i64::from(config.days) * DAY_MICROS;
        let join_start = end_ts - i64::from(config.days.max(5 * 365)) * DAY_MICROS;

        let mut member_id = StringBuilder::new();
        let mut city = StringBuilder::new();
        let mut home_store = StringBuilder::new();
        let mut level = StringBuilder::new();
        let mut points = Int64Builder::new();
        let mut spend = Float64Builder::new();
        let mut gender = StringBuilder::new();
        let mut birthday = Date32Builder::new();
        let mut joined_at = TimestampMicrosecondBuilder::new();
        let mut channel = StringBuilder::new();
        let mut subscribed = BooleanBuilder::new();
        let mut phone = StringBuilder::new();
        let mut email = StringBuilder::new();
        let mut openid = StringBuilder::new();
        let mut unionid = StringBuilder::new();
        let mut tag_member = StringBuilder::new();
        let mut tag_name = StringBuilder::new();
        let mut events = EventRows::default();
        let mut ids: Vec<Ids> = Vec::with_capacity((end - start) as usize);

        for index in start..end {
            let id = format!("M{:08}", index + 1);
            let c = pick(&mut rng, &city_weights);
            let store = city_store(c, rng.random_range(0..64));
            let lvl = pick(&mut rng, &level_weights);
            let ch = pick(&mut rng, &channel_weights);
            let joined = rng.random_range(join_start..end_ts);
            let activity = 0.5 + lvl as f64 * 0.35;

            member_id.append_value(&id);
            city.append_value(CITIES[c].0);
            home_store.append_value(store_name(store));
            level.append_value(LEVELS[lvl].0);
            let pts = ((5.0 + lvl as f64 * 0.8 + 1.3 * normal(&mut rng)).exp()).min(5.0e6) as i64;
            points.append_value(pts);
            let spent = (6.0 + lvl as f64 * 0.9 + 1.2 * normal(&mut rng)).exp();
            spend.append_value((spent * 100.0).round() / 100.0);
            gender.append_option(match rng.random_range(0..100) {
                0..=54 => Some("F"),
                55..=89 => Some("M"),
                _ => None,
            });
            if rng.random_bool(0.95) {
                let age_days = rng.random_range(18 * 365..70 * 365);
                birthday.append_value(((end_ts / DAY_MICROS) - age_days) as i32);
            } else {
                birthday.append_null();
            }
            joined_at.append_value(joined);
            channel.append_value(CHANNELS[ch].0);
            if rng.random_bool(0.95) {
                subscribed.append_value(rng.random_bool(0.7));
            } else {
                subscribed.append_null();
            }
            let member_phone = rng.random_bool(0.85).then(|| {
                format!(
                    "1{}{:09}",
                    [3, 5, 7, 8, 9][index as usize % 5],
                    (index * 7_919 + 13) % 1_000_000_000
                )
            });
            phone.append_option(member_phone.as_deref());
            let member_email = rng
                .random_bool(0.4)
                .then(|| format!("user{}@example.com", index + 1));
            email.append_option(member_email.as_deref());
            let member_openid = rng
                .random_bool(0.7)
                .then(|| format!("o{:016x}", rng.random::<u64>()));
            openid.append_option(member_openid.as_deref());
            let member_unionid = rng
                .random_bool(0.5)
                .then(|| format!("u{:016x}", rng.random::<u64>()));
            unionid.append_option(member_unionid.as_deref());
            ids.push(Ids {
                member: id.clone(),
                phone: member_phone,
                email: member_email,
                openid: member_openid,
                unionid: member_unionid,
            });

            let mut scalper = false;
            for (tag, density) in TAGS {
                let boost = if *tag == "vip" { 1.0 + lvl as f64 } else { 1.0 };
                if rng.random_bool((density * boost).min(1.0)) {
                    tag_member.append_value(&id);
                    tag_name.append_value(tag);
                    scalper |= *tag == "scalper_suspect";
                }
            }

            // The event history of this member.
            let first = joined.max(history_start);
            if joined >= history_start {
                let follow_channel = Some(CHANNELS[ch].0);
                events.push(
                    &id,
                    "follow",
                    joined,
                    EventProps {
                        channel: follow_channel,
                        ..NO_PROPS
                    },
                );
                let reg = (joined + rng.random_range(0..48) * HOUR_MICROS).min(end_ts - 1);
                events.push(
                    &id,
                    "register",
                    reg,
                    EventProps {
                        channel: follow_channel,
                        ..NO_PROPS
                    },
                );
                if CHANNELS[ch].0 == "store_qr" {
                    // The store-QR journey: the home store's code scanned minutes before the
                    // follow, and for some a first purchase there within days.
                    let r = &mut journey_rng;
                    let qr = format!("QR-{}-{:02}", store_name(store), r.random_range(1..9));
                    let scanned = joined - r.random_range(1..30) * 60_000_000;
                    if scanned >= history_start {
                        events.push(
                            &id,
                            "scan_qr",
                            scanned,
                            EventProps {
                                store: Some(store),
                                qr: Some(qr),
                                ..NO_PROPS
                            },
                        );
                    }
                    if r.random_bool(0.3) {
                        let bought = joined + r.random_range(HOUR_MICROS..10 * DAY_MICROS);
                        let amount = ((4.5 + 0.8 * normal(r)).exp() * 100.0).round() / 100.0;
                        if bought < end_ts {
                            events.push(
                                &id,
                                "purchase",
                                bought,
                                EventProps {
                                    amount: Some(amount),
                                    store: Some(store),
                                    channel: Some("store"),
                                    ..NO_PROPS
                                },
                            );
                        }
                    }
                }
            }
            let span_share = (end_ts - first) as f64 / (end_ts - history_start).max(1) as f64;
            let mean = 13.0 * activity * span_share;
            let count = (-(rng.random_range(f64::EPSILON..1.0f64)).ln() * mean).round() as u32;
            for _ in 0..count {
                let ts = loop {
                    let t = rng.random_range(first..end_ts);
                    if rng.random_range(0.0..2.5) < day_weight(t.div_euclid(DAY_MICROS)) {
                        break t;
                    }
                };
                let kind = ACTIVITY[pick(&mut rng, &event_weights)].0;
                let at_store = if rng.random_bool(0.8) {
                    store
                } else {
                    rng.random_range(0..STORES)
                };
                match kind {
                    "purchase" => {
                        let amount = ((4.8 + lvl as f64 * 0.3 + 0.9 * normal(&mut rng)).exp()
                            * 100.0)
                            .round()
                            / 100.0;
                        let via = ["store", "mini_program", "tmall", "jd"][rng.random_range(0..4)];
                        events.push(
                            &id,
                            kind,
                            ts,
                            EventProps {
                                amount: Some(amount),
                                store: Some(at_store),
                                channel: Some(via),
                                ..NO_PROPS
                            },
                        );
                    }
                    "scan_qr" => {
                        let qr =
                            format!("QR-{}-{:02}", store_name(at_store), rng.random_range(1..9));
                        events.push(
                            &id,
                            kind,
                            ts,
                            EventProps {
                                store: Some(at_store),
                                qr: Some(qr),
                                ..NO_PROPS
                            },
                        );
                    }
                    "booking" => events.push(
                        &id,
                        kind,
                        ts,
                        EventProps {
                            store: Some(at_store),
                            ..NO_PROPS
                        },
                    ),
                    "claim_coupon" => {
                        let coupon = COUPONS[rng.random_range(0..COUPONS.len())];
                        events.push(
                            &id,
                            kind,
                            ts,
                            EventProps {
                                coupon: Some(coupon),
                                ..NO_PROPS
                            },
                        );
                        if rng.random_bool(0.4) {
                            let redeemed = ts + rng.random_range(HOUR_MICROS..14 * DAY_MICROS);
                            if redeemed < end_ts {
                                events.push(
                                    &id,
                                    "redeem_coupon",
                                    redeemed,
                                    EventProps {
                                        coupon: Some(coupon),
                                        store: Some(at_store),
                                        ..NO_PROPS
                                    },
                                );
                            }
                        }
                    }
                    other => events.push(&id, other, ts, NO_PROPS),
                }
            }
            if scalper && end_ts - 2 * DAY_MICROS > history_start {
                // the same coupon, several cities, within two days
                let coupon = COUPONS[rng.random_range(0..COUPONS.len())];
                let t0 = rng.random_range(history_start..end_ts - 2 * DAY_MICROS);
                for _ in 0..rng.random_range(3..7) {
                    let s = rng.random_range(0..STORES);
                    let t = t0 + rng.random_range(0..2 * DAY_MICROS);
                    events.push(
                        &id,
                        "claim_coupon",
                        t,
                        EventProps {
                            coupon: Some(coupon),
                            store: Some(s),
                            ..NO_PROPS
                        },
                    );
                }
            }
            // Campaign sign-ups: most members join none, some one or two, nearly always
            // at their home store (now and then on a trip); the scalper-tagged half the
            // time join one campaign in several cities within three days (the rule of
            // DESIGN section 9 finds them, and the odd traveller).
            let r = &mut campaign_rng;
            let join = |events: &mut EventRows, t: i64, s: usize, campaign: &str| {
                let props = EventProps {
                    store: Some(s),
                    campaign: Some(campaign),
                    ..NO_PROPS
                };
                events.push(&id, "join_campaign", t, props);
            };
            if first < end_ts && r.random_bool(0.12) {
                for _ in 0..r.random_range(1..3) {
                    let campaign = CAMPAIGNS[r.random_range(0..CAMPAIGNS.len())];
                    let t = r.random_range(first..end_ts);
                    let s = if r.random_bool(0.9) {
                        store
                    } else {
                        r.random_range(0..STORES)
                    };
                    join(&mut events, t, s, campaign);
                }
            }
            if scalper && end_ts - 3 * DAY_MICROS > history_start && r.random_bool(0.5) {
                let campaign = CAMPAIGNS[r.random_range(0..CAMPAIGNS.len())];
                let t0 = r.random_range(history_start..end_ts - 3 * DAY_MICROS);
                for _ in 0..r.random_range(3..6) {
                    let s = r.random_range(0..STORES);
                    let t = t0 + r.random_range(0..3 * DAY_MICROS);
                    join(&mut events, t, s, campaign);
                }
            }
        }

        let mut identity_rng = ChaCha8Rng::seed_from_u64(
            config.seed ^ (start / BLOCK).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ IDENTITY_SALT,
        );
        let identities = IdentityRows::generate(&mut identity_rng, &ids);

        let member_columns: Vec<ArrayRef> = vec![
            Arc::new(member_id.finish()),
            Arc::new(city.finish()),
            Arc::new(home_store.finish()),
            Arc::new(level.finish()),
            Arc::new(points.finish()),
            Arc::new(spend.finish()),
            Arc::new(gender.finish()),
            Arc::new(birthday.finish()),
            Arc::new(joined_at.finish().with_timezone("UTC")),
            Arc::new(channel.finish()),
            Arc::new(subscribed.finish()),
            Arc::new(phone.finish()),
            Arc::new(email.finish()),
            Arc::new(openid.finish()),
            Arc::new(unionid.finish()),
        ];
        Block {
            members: RecordBatch::try_new(member_schema(), member_columns)
                .expect("columns match the schema"),
            events: events.finish(),
            tags: RecordBatch::try_new(
                tag_schema(),
                vec![Arc::new(tag_member.finish()), Arc::new(tag_name.finish())],
            )
            .expect("columns match the schema"),
            identities,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_data() {
        let config = GenConfig {
            members: 300,
            days: 90,
            seed: 7,
            end: Timestamp(1_790_000_000_000_000),
        };
        let a = Block::generate(&config, 0, 300);
        let b = Block::generate(&config, 0, 300);
        assert_eq!(a.members, b.members);
        assert_eq!(a.events, b.events);
        assert_eq!(a.tags, b.tags);
        assert_eq!(a.identities, b.identities);
        assert!(
            a.identities.num_rows() > 30,
            "observations beyond the attributes"
        );
        assert!(a.events.num_rows() > 300, "about ten events per member");
        let other = Block::generate(&GenConfig { seed: 8, ..config }, 0, 300);
        assert_ne!(a.events, other.events);
    }
}
