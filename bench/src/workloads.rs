//! Named segment questions used by the benches and by the cross-check against DuckDB
//! (`bench/peers/check_duckdb.py` holds the same questions in SQL, under the same names).

use memberdb::{PropFilter, Segment, TimeUnit, ValueExpr};

/// A named COUNT question.
pub struct Question {
    /// Name shared with the SQL side.
    pub name: &'static str,
    /// The segment.
    pub segment: Segment,
}

/// The COUNT questions, covering every rule of DESIGN section 3.
pub fn count_questions() -> Vec<Question> {
    let q = |name, segment| Question { name, segment };
    // SUM(amount OF purchase IN LAST 365 DAYS)
    let spend = || {
        Segment::value(
            ValueExpr::sum("amount")
                .of("purchase")
                .in_last(365, TimeUnit::Days),
        )
    };
    vec![
        q(
            "q1_two_tags_and_city",
            Segment::tag("vip")
                .and(!Segment::tag("churn_risk"))
                .and(Segment::attr("city").eq("Shanghai")),
        ),
        q(
            "q2_claimed_not_redeemed_city",
            Segment::did("claim_coupon")
                .and(!Segment::did("redeem_coupon"))
                .and(Segment::attr("city").eq("Shanghai")),
        ),
        q(
            "q3_purchase_30d_level_in",
            Segment::did("purchase")
                .in_last(30, TimeUnit::Days)
                .and(Segment::attr("level").is_in(["gold", "platinum"])),
        ),
        q(
            "q4_purchase_3_times_90d",
            Segment::did("purchase")
                .at_least(3)
                .in_last(90, TimeUnit::Days)
                .build(),
        ),
        q(
            "q5_amount_filter_points_between",
            Segment::did("purchase")
                .filter(PropFilter::prop("amount").ge(500))
                .in_last(365, TimeUnit::Days)
                .and(Segment::attr("points").between(1000, 5000)),
        ),
        q("not_gender_f", !Segment::attr("gender").eq("F")),
        q("gender_ne_f", Segment::attr("gender").ne("F")),
        q("gender_is_null", Segment::attr("gender").is_null()),
        q(
            "birthday_null_or_after_1990",
            Segment::attr("birthday")
                .is_null()
                .or(Segment::attr("birthday").ge("1990-01-01")),
        ),
        q(
            "birthday_before_timestamp",
            Segment::attr("birthday").lt("1990-06-15T12:00:00Z"),
        ),
        q(
            "birthday_le_timestamp",
            Segment::attr("birthday").le("1990-06-15T12:00:00Z"),
        ),
        q(
            "joined_since_timestamp",
            Segment::attr("joined_at").ge("2026-06-01T12:00:00Z"),
        ),
        q(
            "spend_and_subscribed",
            Segment::attr("lifetime_spend")
                .gt(1000.5)
                .and(Segment::attr("subscribed").eq(true)),
        ),
        q("not_subscribed_true", !Segment::attr("subscribed").eq(true)),
        q("points_gt_float", Segment::attr("points").gt(999.5)),
        q("city_lt_text", Segment::attr("city").lt("Dalian")),
        q(
            "purchase_at_most_2_first_half",
            Segment::did("purchase")
                .at_most(2)
                .since("2026-01-01")
                .before("2026-07-01")
                .build(),
        ),
        q(
            "claims_not_xmas_exactly_2",
            Segment::did("claim_coupon")
                .filter(!PropFilter::prop("coupon_id").eq("CP-XMAS-50"))
                .exactly(2)
                .build(),
        ),
        q(
            "purchase_store_or_big",
            Segment::did("purchase")
                .filter(
                    PropFilter::prop("store")
                        .eq("S001")
                        .or(PropFilter::prop("amount").gt(2000)),
                )
                .in_last(52, TimeUnit::Weeks)
                .build(),
        ),
        q(
            "scan_qr_last_36_hours",
            Segment::did("scan_qr").in_last(36, TimeUnit::Hours).build(),
        ),
        q(
            "scan_qr_at_least_2_last_36_hours",
            Segment::did("scan_qr")
                .at_least(2)
                .in_last(36, TimeUnit::Hours)
                .build(),
        ),
        q(
            "purchase_exactly_1_last_10_days",
            Segment::did("purchase")
                .exactly(1)
                .in_last(10, TimeUnit::Days)
                .build(),
        ),
        q("never_purchased", !Segment::did("purchase")),
        q(
            "wide_or_of_tags_not_vip",
            Segment::tag("foodie")
                .or(Segment::tag("pet_owner"))
                .or(Segment::tag("fitness"))
                .or(Segment::tag("摄影爱好者"))
                .or(Segment::tag("scalper_suspect"))
                .and(!Segment::tag("vip")),
        ),
        q(
            "phone_is_not_null_and_email_null",
            Segment::attr("phone")
                .is_not_null()
                .and(Segment::attr("email").is_null()),
        ),
        q("all_members", Segment::all()),
        // values computed per member (DESIGN section 9)
        q("value_spend_365d_ge_1000", spend().ge(1000)),
        q("value_spend_365d_lt_100", spend().lt(100)),
        q(
            "value_no_big_purchase_90d",
            Segment::value(
                ValueExpr::of("purchase")
                    .filter(PropFilter::prop("amount").ge(500))
                    .in_last(90, TimeUnit::Days),
            )
            .eq(0),
        ),
        q(
            "value_distinct_stores_ge_3",
            Segment::value(ValueExpr::count_distinct("store").of("purchase")).ge(3),
        ),
        q(
            "value_login_days_30d_ge_4",
            Segment::value(
                ValueExpr::of("login")
                    .distinct_days()
                    .in_last(30, TimeUnit::Days),
            )
            .ge(4),
        ),
        q(
            "value_avg_amount_ge_300",
            Segment::value(ValueExpr::avg("amount").of("purchase")).ge(300),
        ),
        q(
            "value_max_amount_30d_shanghai",
            Segment::value(
                ValueExpr::max("amount")
                    .of("purchase")
                    .in_last(30, TimeUnit::Days),
            )
            .gt(900)
            .and(Segment::attr("city").eq("Shanghai")),
        ),
        q(
            "value_min_store_is_s001",
            Segment::value(ValueExpr::min("store").of("scan_qr")).eq("S001"),
        ),
        q(
            "value_last_purchase_before_2026",
            Segment::value(ValueExpr::of("purchase").last_time()).lt("2026-01-01"),
        ),
        q(
            "value_recency_gt_180",
            Segment::value(ValueExpr::of("purchase").last_time().build().days_since()).gt(180),
        ),
        q(
            "value_recency_bucket_1",
            Segment::value(
                ValueExpr::of("purchase")
                    .last_time()
                    .build()
                    .days_since()
                    .bucket([30, 60, 90, 180, 365]),
            )
            .eq(1),
        ),
        q(
            "value_joined_21_to_120_days",
            Segment::value(ValueExpr::attr("joined_at").days_since()).between(21, 120),
        ),
        q(
            "value_first_follow_channel",
            Segment::value(ValueExpr::first("channel").of("follow")).eq("store_qr"),
        ),
        q(
            "value_last_redeem_store_is_null",
            Segment::value(ValueExpr::last("store").of("claim_coupon")).is_null(),
        ),
        q(
            "value_two_stores_within_any_day",
            Segment::value(
                ValueExpr::count_distinct("store")
                    .of("purchase")
                    .within_any(1, TimeUnit::Days),
            )
            .ge(2),
        ),
        q(
            "value_scalper_rule",
            Segment::value(
                ValueExpr::count_distinct("city")
                    .of("join_campaign")
                    .within_any(3, TimeUnit::Days),
            )
            .ge(2),
        ),
        q(
            "value_purchase_count_bucket",
            Segment::value(ValueExpr::of("purchase").build().bucket([1, 3, 6])).is_in([2, 3]),
        ),
    ]
}

/// BREAKDOWN questions: name, segment, attribute.
pub fn breakdown_questions() -> Vec<(&'static str, Segment, &'static str)> {
    vec![
        (
            "q6_breakdown_claimed_not_redeemed_by_city",
            Segment::did("claim_coupon").and(!Segment::did("redeem_coupon")),
            "city",
        ),
        ("breakdown_vip_by_gender", Segment::tag("vip"), "gender"),
    ]
}

/// BREAKDOWN statements by several columns or by computed values: name, statement.
pub fn breakdown_statements() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "breakdown_recency_by_frequency",
            "BREAKDOWN DID purchase IN LAST 365 DAYS BY \
             BUCKET(DAYS SINCE LAST(purchase), 30, 90, 180), \
             BUCKET(COUNT(purchase IN LAST 365 DAYS), 2, 5)",
        ),
        (
            "breakdown_vip_by_gender_level",
            "BREAKDOWN TAG 'vip' BY gender, level",
        ),
        (
            "breakdown_all_by_spend",
            "BREAKDOWN ALL BY BUCKET(SUM(amount OF purchase IN LAST 365 DAYS), 500, 2000, 5000)",
        ),
    ]
}

/// The computed traits the trait questions read (DESIGN section 9's RFM and lifecycle, a
/// quantile with many ties) and a group of traits, as statements.
pub const TRAIT_DEFINITIONS: &str = "\
    DEFINE TRAIT ltv AS SUM(amount OF purchase IN LAST 365 DAYS); \
    DEFINE TRAIT r AS BUCKET(DAYS SINCE LAST(purchase), 30, 60, 90, 180, 365); \
    DEFINE TRAIT f AS BUCKET(COUNT(purchase IN LAST 365 DAYS), 2, 4); \
    DEFINE TRAIT m AS QUANTILE(3, ltv) OVER DID purchase IN LAST 365 DAYS; \
    DEFINE TRAIT q4 AS QUANTILE(4, COUNT(purchase IN LAST 365 DAYS) DESC) OVER ALL; \
    DEFINE TRAIT stage AS CASE \
        WHEN NOT DID purchase THEN 'prospect' \
        WHEN DAYS SINCE LAST(purchase) > 330 THEN 'churned' \
        WHEN DAYS SINCE LAST(purchase) > 240 THEN 'dormant' \
        WHEN COUNT(purchase) = 1 AND DAYS SINCE FIRST(purchase) <= 120 \
            THEN 'second_purchase_window' \
        ELSE 'habit' END; \
    DEFINE GROUP loyal AS m = 3 AND f >= 2";

/// Questions on the traits of [`TRAIT_DEFINITIONS`]: name and statement (a COUNT or a
/// BREAKDOWN).
pub fn trait_statements() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "trait_rfm",
            "BREAKDOWN DID purchase IN LAST 365 DAYS BY r, f, m",
        ),
        ("trait_stage", "BREAKDOWN ALL BY stage"),
        ("trait_q4", "BREAKDOWN ALL BY q4"),
        ("trait_ltv_ge_1000", "COUNT ltv >= 1000"),
        (
            "trait_dormant_shanghai",
            "COUNT stage = 'dormant' AND city = 'Shanghai'",
        ),
        ("trait_group_loyal", "COUNT IN GROUP loyal"),
        ("trait_loyal", "COUNT m = 3 AND f >= 2"),
    ]
}

/// Sequences (DESIGN section 10) as COUNT statements: name, statement. `answers` asks them
/// at *now* and 20 days before (events after it are then future-dated).
pub fn sequence_statements() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "seq_claim_then_redeem_7d_matching",
            "COUNT DID claim_coupon THEN redeem_coupon WITHIN 7 DAYS MATCHING coupon_id",
        ),
        (
            "seq_claim_30d_then_not_redeem_7d_matching",
            "COUNT DID claim_coupon IN LAST 30 DAYS THEN NOT redeem_coupon WITHIN 7 DAYS \
             MATCHING coupon_id",
        ),
        (
            "seq_claim_then_not_redeem_14d",
            "COUNT DID claim_coupon THEN NOT redeem_coupon WITHIN 14 DAYS",
        ),
        (
            "seq_claim_then_not_redeem_ever_matching",
            "COUNT DID claim_coupon THEN NOT redeem_coupon MATCHING coupon_id",
        ),
        // register is at follow + 0 to 47 hours: equal times never chain
        (
            "seq_follow_then_register_1h",
            "COUNT DID follow THEN register WITHIN 1 HOURS",
        ),
        (
            "seq_scan_then_purchase_same_store",
            "COUNT DID scan_qr THEN purchase WHERE amount >= 100 WITHIN 3 DAYS MATCHING store",
        ),
        // claims carry a store only when a scalper made them: NULL values never match
        (
            "seq_claim_then_not_redeem_same_store",
            "COUNT DID claim_coupon THEN NOT redeem_coupon WITHIN 7 DAYS MATCHING store \
             AND city = 'Shanghai'",
        ),
        (
            "seq_purchase_then_purchase_1d",
            "COUNT DID purchase THEN purchase WITHIN 1 DAYS",
        ),
    ]
}

/// Funnels (DESIGN section 10): name, statement, asked like [`sequence_statements`].
pub fn funnel_statements() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "funnel_scan_follow_purchase",
            "FUNNEL scan_qr, follow, purchase WITHIN 14 DAYS IN LAST 90 DAYS",
        ),
        (
            "funnel_scan_purchase_by_qr_first_touch",
            "FUNNEL scan_qr, purchase WHERE amount > 0 WITHIN 7 DAYS IN LAST 60 DAYS \
             BY qr_code FIRST TOUCH",
        ),
        (
            "funnel_claim_redeem_purchase_by_city",
            "FUNNEL claim_coupon, redeem_coupon, purchase WITHIN 14 DAYS \
             FOR level IN ('gold', 'platinum') BY city",
        ),
        (
            "funnel_follow_register_purchase_last_touch",
            "FUNNEL follow, register, purchase, purchase WITHIN 30 DAYS SINCE '2025-06-01' \
             BY channel LAST TOUCH",
        ),
    ]
}

/// What a peer workload returns, and so how its answers are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerKind {
    /// A number of members.
    Count,
    /// Value / count lines.
    Breakdown,
    /// Found members with their fields, in order.
    Rows,
    /// Members per step of a funnel.
    Funnel,
}

/// One workload of the peer harness: the statement memberdb runs; the SQL of the same
/// question lives under the same name in `bench/peers/duckdb_peer.py`.
pub struct PeerWorkload {
    /// Q1..Q8.
    pub name: &'static str,
    /// The statement in the segment language.
    pub statement: String,
    /// What the statement returns.
    pub kind: AnswerKind,
    /// For a count of members whose float sum passes a threshold: the count of those whose
    /// sum lies within rounding of it. A peer that adds the same floats in another order
    /// (DuckDB's parallel `sum(amount)`) may put them on the other side; its answer may
    /// differ from memberdb's (which adds in time order) by at most that many.
    pub float_boundary: Option<&'static str>,
}

/// The members whose year's spend is within rounding of Q9's and Q11's threshold (1000).
const SPEND_BOUNDARY: &str =
    "COUNT SUM(amount OF purchase IN LAST 365 DAYS) BETWEEN 999.999999 AND 1000.000001";

/// The twenty tags of Q8's wide OR (the same list as `Q8_TAGS` in `duckdb_peer.py`).
pub const Q8_TAGS: [&str; 20] = [
    "foodie",
    "pet_owner",
    "fitness",
    "摄影爱好者",
    "scalper_suspect",
    "outdoor",
    "travel_lover",
    "beauty",
    "luxury",
    "student",
    "retiree",
    "night_owl",
    "referrer",
    "influencer",
    "complaint",
    "gift_buyer",
    "early_adopter",
    "anniversary",
    "big_ticket",
    "multi_city",
];

/// Statements run once before the peer workloads (the group of Q8, the traits of Q11..Q13).
pub const PEER_SETUP: &[&str] = &[
    "DEFINE GROUP xmas_claimers AS DID claim_coupon WHERE coupon_id = 'CP-XMAS-50'",
    TRAIT_DEFINITIONS,
];

/// The workloads of the benchmark issue, Q1..Q8, and of aggregates, Q9..Q10, as statements.
pub fn peer_workloads() -> Vec<PeerWorkload> {
    let w = |name, statement: &str, kind| PeerWorkload {
        name,
        statement: statement.to_string(),
        kind,
        float_boundary: None,
    };
    let spend = |w: PeerWorkload| PeerWorkload {
        float_boundary: Some(SPEND_BOUNDARY),
        ..w
    };
    let wide_or = Q8_TAGS
        .iter()
        .map(|t| format!("TAG '{t}'"))
        .collect::<Vec<_>>()
        .join(" OR ");
    vec![
        w(
            "Q1",
            "COUNT TAG 'vip' AND NOT TAG 'churn_risk' AND city = 'Shanghai'",
            AnswerKind::Count,
        ),
        w(
            "Q2",
            "COUNT DID claim_coupon AND NOT DID redeem_coupon AND city = 'Shanghai'",
            AnswerKind::Count,
        ),
        w(
            "Q3",
            "COUNT DID purchase IN LAST 30 DAYS AND level IN ('gold', 'platinum')",
            AnswerKind::Count,
        ),
        w(
            "Q4",
            "COUNT DID purchase AT LEAST 3 TIMES IN LAST 90 DAYS",
            AnswerKind::Count,
        ),
        w(
            "Q5",
            "COUNT DID purchase WHERE amount >= 500 IN LAST 365 DAYS \
             AND points BETWEEN 1000 AND 5000",
            AnswerKind::Count,
        ),
        w(
            "Q6",
            "BREAKDOWN DID claim_coupon AND NOT DID redeem_coupon BY city",
            AnswerKind::Breakdown,
        ),
        w(
            "Q7",
            "FIND DID purchase IN LAST 7 DAYS AND TAG 'vip' SHOW phone, city LIMIT 100",
            AnswerKind::Rows,
        ),
        w(
            "Q8",
            &format!("COUNT ({wide_or}) AND NOT IN GROUP xmas_claimers"),
            AnswerKind::Count,
        ),
        // aggregates (DESIGN section 9): spend in a year, the scalper rule
        spend(w(
            "Q9",
            "COUNT SUM(amount OF purchase IN LAST 365 DAYS) >= 1000",
            AnswerKind::Count,
        )),
        w(
            "Q10",
            "COUNT COUNT(DISTINCT city OF join_campaign WITHIN ANY 3 DAYS) >= 2",
            AnswerKind::Count,
        ),
        // maintained traits (TRAIT_DEFINITIONS): a predicate on a sum, on a stage, and RFM
        spend(w("Q11", "COUNT ltv >= 1000", AnswerKind::Count)),
        w("Q12", "COUNT stage = 'dormant'", AnswerKind::Count),
        w(
            "Q13",
            "BREAKDOWN DID purchase IN LAST 365 DAYS BY r, f, m",
            AnswerKind::Breakdown,
        ),
        // sequences and funnels (DESIGN section 10)
        w(
            "Q14",
            "FUNNEL scan_qr, follow, purchase WITHIN 14 DAYS IN LAST 90 DAYS",
            AnswerKind::Funnel,
        ),
        w(
            "Q15",
            "COUNT DID claim_coupon THEN NOT redeem_coupon WITHIN 7 DAYS MATCHING coupon_id",
            AnswerKind::Count,
        ),
    ]
}
