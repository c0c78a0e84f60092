//! Physical limits the peer harness measures memberdb against: the fused word-wise count over
//! dense bitsets (a bit per member), whose time is the memory read of its inputs.

/// `|a AND b AND NOT not|` over dense bitsets of equal length, in one pass, with the widest
/// popcount the CPU has (AVX2, else the popcnt instruction, else a portable loop).
pub fn count_and_and_not(a: &[u64], b: &[u64], not: &[u64]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("popcnt")
        {
            // SAFETY: the CPU has AVX2 and popcnt (checked above), the features it enables.
            #[allow(unsafe_code)]
            return unsafe { count_avx2(a, b, not) };
        }
        if std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU has popcnt (checked above), the feature it enables.
            #[allow(unsafe_code)]
            return unsafe { count_popcnt(a, b, not) };
        }
    }
    count_portable(a, b, not)
}

#[inline(always)]
fn count_portable(a: &[u64], b: &[u64], not: &[u64]) -> u64 {
    a.iter()
        .zip(b)
        .zip(not)
        .map(|((a, b), n)| u64::from((a & b & !n).count_ones()))
        .sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
fn count_avx2(a: &[u64], b: &[u64], not: &[u64]) -> u64 {
    count_portable(a, b, not)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
fn count_popcnt(a: &[u64], b: &[u64], not: &[u64]) -> u64 {
    count_portable(a, b, not)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_a_naive_loop_counts() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let words = 1000;
        let (a, b, c): (Vec<u64>, Vec<u64>, Vec<u64>) = (0..words)
            .map(|_| (next(), next(), next()))
            .fold((vec![], vec![], vec![]), |mut v, (x, y, z)| {
                v.0.push(x);
                v.1.push(y);
                v.2.push(z);
                v
            });
        let naive: u64 = (0..words * 64)
            .filter(|&i| {
                let bit = |v: &[u64]| v[i / 64] >> (i % 64) & 1 == 1;
                bit(&a) && bit(&b) && !bit(&c)
            })
            .count() as u64;
        assert_eq!(count_and_and_not(&a, &b, &c), naive);
        assert_eq!(count_portable(&a, &b, &c), naive);
    }
}
