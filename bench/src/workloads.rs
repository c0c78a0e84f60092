//! Named segment questions used by the benches and by the cross-check against DuckDB
//! (`bench/peers/check_duckdb.py` holds the same questions in SQL, under the same names).

use memberdb::{PropFilter, Segment, TimeUnit};

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
