//! "Did you mean": the closest known names to a misspelt one.

/// The known names closest to `name`, best first, at most three.
///
/// A name is close when its normalised Damerau-Levenshtein similarity is high, or when one
/// name contains the other (`coupon` for `claim_coupon`).
pub(crate) fn closest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let lower = name.to_lowercase();
    let mut scored: Vec<(f64, &str)> = known
        .into_iter()
        .filter_map(|candidate| {
            let cand_lower = candidate.to_lowercase();
            let mut score = strsim::normalized_damerau_levenshtein(&lower, &cand_lower);
            if !lower.is_empty() && (cand_lower.contains(&lower) || lower.contains(&cand_lower)) {
                score = score.max(0.75);
            }
            (score >= 0.5).then_some((score, candidate))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored
        .into_iter()
        .take(3)
        .map(|(_, s)| s.to_string())
        .collect()
}

/// `; did you mean 'x'?` for `suggestions` (nothing without any).
pub(crate) fn text(suggestions: &[String]) -> String {
    match suggestions {
        [] => String::new(),
        [one] => format!("; did you mean '{one}'?"),
        many => {
            let quoted: Vec<String> = many.iter().map(|s| format!("'{s}'")).collect();
            format!("; did you mean one of {}?", quoted.join(", "))
        }
    }
}

/// `; did you mean 'x'?` for the known names closest to `name`.
pub(crate) fn hint<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    text(&closest(name, known))
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn suggests_close_names_best_first() {
        let known = ["city", "country", "points", "level"];
        assert_eq!(closest("ctiy", known), vec!["city"]);
        assert_eq!(closest("point", known), vec!["points"]);
        assert!(closest("zzzzzz", known).is_empty());
    }

    #[test]
    fn substring_counts_as_close() {
        assert_eq!(
            closest("coupon", ["claim_coupon", "purchase"]),
            vec!["claim_coupon"]
        );
    }
}
