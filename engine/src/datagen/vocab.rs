//! The vocabulary of the generator: cities, stores, levels, channels, tags, coupons, events.

/// Cities with relative weights (a skewed, roughly Zipf distribution).
pub(super) const CITIES: &[(&str, f64)] = &[
    ("Shanghai", 14.0),
    ("Beijing", 12.0),
    ("Shenzhen", 9.0),
    ("Guangzhou", 8.5),
    ("Chengdu", 6.0),
    ("Hangzhou", 5.5),
    ("Chongqing", 5.0),
    ("Wuhan", 4.5),
    ("Nanjing", 4.0),
    ("Suzhou", 3.8),
    ("Tianjin", 3.5),
    ("Xi'an", 3.2),
    ("Changsha", 2.8),
    ("Qingdao", 2.5),
    ("Zhengzhou", 2.3),
    ("Shenyang", 2.0),
    ("Dalian", 1.8),
    ("Dongguan", 1.7),
    ("Ningbo", 1.6),
    ("Xiamen", 1.5),
    ("Fuzhou", 1.3),
    ("Wuxi", 1.2),
    ("Hefei", 1.1),
    ("Kunming", 1.0),
    ("Harbin", 0.9),
    ("Jinan", 0.8),
    ("Foshan", 0.8),
    ("Changchun", 0.6),
    ("Wenzhou", 0.5),
    ("Shijiazhuang", 0.4),
];

/// Number of stores; store `s` is in city `store_city(s)`.
pub(super) const STORES: usize = 200;

/// The city of store `s`: stores are spread over cities roughly by city weight.
pub(super) fn store_city(s: usize) -> usize {
    // The first 60 stores go round the big cities, the rest round all cities.
    if s < 60 {
        s % 8
    } else {
        (s - 60) % CITIES.len()
    }
}

/// A store of city `c` (the `k`-th pick wraps around that city's stores).
pub(super) fn city_store(c: usize, k: usize) -> usize {
    let stores: Vec<usize> = (0..STORES).filter(|&s| store_city(s) == c).collect();
    stores[k % stores.len()]
}

pub(super) fn store_name(s: usize) -> &'static str {
    STORE_NAMES[s]
}

static STORE_NAMES: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    (1..=STORES)
        .map(|i| &*Box::leak(format!("S{i:03}").into_boxed_str()))
        .collect()
});

/// Levels with shares.
pub(super) const LEVELS: &[(&str, f64)] = &[
    ("bronze", 55.0),
    ("silver", 25.0),
    ("gold", 12.0),
    ("platinum", 6.0),
    ("diamond", 2.0),
];

/// First-touch channels with shares.
pub(super) const CHANNELS: &[(&str, f64)] = &[
    ("wechat", 35.0),
    ("mini_program", 25.0),
    ("store_qr", 15.0),
    ("web", 8.0),
    ("tmall", 10.0),
    ("jd", 7.0),
];

/// Everyday events with relative weights (follow / register / redeem come separately).
pub(super) const ACTIVITY: &[(&str, f64)] = &[
    ("view_product", 25.0),
    ("login", 15.0),
    ("purchase", 15.0),
    ("claim_coupon", 12.0),
    ("add_cart", 10.0),
    ("scan_qr", 8.0),
    ("share", 4.0),
    ("booking", 3.0),
    ("survey", 2.0),
];

/// Coupon campaigns.
/// Marketing campaigns members sign up for (`join_campaign`).
pub(super) const CAMPAIGNS: &[&str] = &["CMP-618", "CMP-1111", "CMP-SPRING", "CMP-MIDAUTUMN"];

pub(super) const COUPONS: &[&str] = &[
    "CP-XMAS-50",
    "CP-1111-100",
    "CP-618-30",
    "CP-NEWYEAR-20",
    "CP-VIP-200",
    "CP-BDAY-88",
    "CP-WELCOME-10",
    "CP-SPRING-15",
    "CP-WINBACK-40",
    "CP-STORE-25",
    "CP-TMALL-60",
    "CP-JD-60",
];

/// Tags with densities (share of members), from under 0.1% to over 30%.
pub(super) const TAGS: &[(&str, f64)] = &[
    ("vip", 0.04),
    ("churn_risk", 0.12),
    ("new_customer", 0.18),
    ("high_value", 0.05),
    ("coupon_sensitive", 0.31),
    ("price_sensitive", 0.27),
    ("photography_lover", 0.06),
    ("摄影爱好者", 0.03),
    ("mother_and_baby", 0.09),
    ("pet_owner", 0.11),
    ("fitness", 0.08),
    ("outdoor", 0.07),
    ("travel_lover", 0.10),
    ("foodie", 0.22),
    ("beauty", 0.15),
    ("luxury", 0.02),
    ("student", 0.06),
    ("white_collar", 0.33),
    ("retiree", 0.04),
    ("night_owl", 0.13),
    ("weekend_shopper", 0.25),
    ("app_user", 0.35),
    ("mini_program_user", 0.30),
    ("wechat_follower", 0.32),
    ("email_opt_in", 0.20),
    ("sms_opt_in", 0.28),
    ("survey_responder", 0.05),
    ("referrer", 0.03),
    ("influencer", 0.004),
    ("employee", 0.002),
    ("scalper_suspect", 0.0008),
    ("blacklist", 0.0005),
    ("complaint", 0.01),
    ("returned_goods", 0.04),
    ("gift_buyer", 0.09),
    ("early_adopter", 0.02),
    ("dormant", 0.16),
    ("reactivated", 0.03),
    ("birthday_month", 0.083),
    ("anniversary", 0.02),
    ("high_frequency", 0.07),
    ("big_ticket", 0.03),
    ("multi_city", 0.05),
    ("holiday_shopper", 0.14),
];
