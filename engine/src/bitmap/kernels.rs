//! Word-wise kernels over chunk bitsets: fused AND / AND NOT with a popcount, unions, and the
//! conversions between bitsets and sorted arrays.
//!
//! Each kernel is written once as plain Rust that LLVM vectorises, and compiled three times:
//! for the baseline x86-64, for AVX2 with the popcnt instruction, and for AVX-512 with its
//! vector popcount (VPOPCNTQ, eight words per instruction), the best the CPU has picked at
//! run time (the baseline has neither a vector popcount nor the popcnt instruction, and
//! counting is most of what these loops do). This module holds the engine's only `unsafe`:
//! the calls into those copies, made after the CPU was seen to have the features.

use super::chunks::{WORDS, Words};

/// Words processed per step: the accumulator stays in registers and L1.
const BLOCK: usize = 64;

/// True when the AVX2 + popcnt copies may run (checked once, then cached by std).
#[cfg(target_arch = "x86_64")]
fn avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("popcnt")
}

/// True when the AVX-512 copies (with the vector popcount) may run.
#[cfg(target_arch = "x86_64")]
fn avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
        && avx2()
}

/// Defines `pub(crate) fn $name` that runs `$imp` compiled for AVX-512 with the vector
/// popcount, or for AVX2 + popcnt, where the CPU has them, and as compiled for the baseline
/// otherwise.
macro_rules! dispatched {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $imp:ident) => {
        $(#[$doc])*
        pub(crate) fn $name($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vpopcntdq,avx2,popcnt")]
                fn fastest($($arg: $ty),*) -> $ret {
                    $imp($($arg),*)
                }
                #[target_feature(enable = "avx2,popcnt")]
                fn fast($($arg: $ty),*) -> $ret {
                    $imp($($arg),*)
                }
                if avx512() {
                    // SAFETY: `fastest` only enables AVX-512F, its vector popcount, AVX2
                    // and popcnt, and the CPU has them all (checked just above).
                    #[allow(unsafe_code)]
                    return unsafe { fastest($($arg),*) };
                }
                if avx2() {
                    // SAFETY: `fast` only enables AVX2 and popcnt, and the CPU has both
                    // (checked just above).
                    #[allow(unsafe_code)]
                    return unsafe { fast($($arg),*) };
                }
            }
            $imp($($arg),*)
        }
    };
}

dispatched! {
    /// `|pos[0] AND pos[1] ... AND NOT neg[0] ...|` in one pass, nothing written.
    /// `pos` must not be empty.
    fn and_count(pos: &[&Words], neg: &[&Words]) -> u32 = and_count_impl
}

dispatched! {
    /// `out = pos[0] AND ... AND NOT neg[0] ...` (all ones when `pos` is empty); returns the
    /// members of `out`.
    fn and_into(out: &mut Words, pos: &[&Words], neg: &[&Words]) -> u32 = and_into_impl
}

dispatched! {
    /// `out |= part` for every part; returns the members of `out`.
    fn or_into(out: &mut Words, parts: &[&Words]) -> u32 = or_into_impl
}

/// Members of a bitset.
#[inline(always)]
fn popcount_impl(words: &Words) -> u32 {
    words.iter().map(|w| w.count_ones()).sum()
}

#[inline(always)]
fn and_count_impl(pos: &[&Words], neg: &[&Words]) -> u32 {
    let mut total = 0u32;
    let mut acc = [0u64; BLOCK];
    for start in (0..WORDS).step_by(BLOCK) {
        combine_block(&mut acc, start, pos, neg);
        total += acc.iter().map(|w| w.count_ones()).sum::<u32>();
    }
    total
}

#[inline(always)]
fn and_into_impl(out: &mut Words, pos: &[&Words], neg: &[&Words]) -> u32 {
    let mut total = 0u32;
    let mut acc = [0u64; BLOCK];
    for start in (0..WORDS).step_by(BLOCK) {
        combine_block(&mut acc, start, pos, neg);
        total += acc.iter().map(|w| w.count_ones()).sum::<u32>();
        out[start..start + BLOCK].copy_from_slice(&acc);
    }
    total
}

#[inline(always)]
fn combine_block(acc: &mut [u64; BLOCK], start: usize, pos: &[&Words], neg: &[&Words]) {
    let range = start..start + BLOCK;
    match pos.split_first() {
        Some((first, rest)) => {
            acc.copy_from_slice(&first[range.clone()]);
            for p in rest {
                for (a, w) in acc.iter_mut().zip(&p[range.clone()]) {
                    *a &= w;
                }
            }
        }
        None => acc.fill(u64::MAX),
    }
    for n in neg {
        for (a, w) in acc.iter_mut().zip(&n[range.clone()]) {
            *a &= !w;
        }
    }
}

#[inline(always)]
fn or_into_impl(out: &mut Words, parts: &[&Words]) -> u32 {
    for p in parts {
        for (o, w) in out.iter_mut().zip(p.iter()) {
            *o |= w;
        }
    }
    popcount_impl(out)
}

/// Sets the bits of `values`.
pub(crate) fn set_bits(out: &mut Words, values: &[u16]) {
    // The bits of one word are gathered in a register and stored once: values come sorted
    // (array chunks), so a word's bits are neighbours, and setting each in memory would
    // wait on the store of the one before (about 1 ns a value instead of a third of that).
    let Some(&first) = values.first() else {
        return;
    };
    let mut index = usize::from(first >> 6);
    let mut word = 0u64;
    for &v in values {
        let i = usize::from(v >> 6);
        if i != index {
            out[index] |= word;
            index = i;
            word = 0;
        }
        word |= 1 << (v & 63);
    }
    out[index] |= word;
}

/// The `len` members of a bitset as a sorted array.
pub(crate) fn bits_to_array(words: &Words, len: usize) -> Vec<u16> {
    let mut out = Vec::with_capacity(len);
    for (i, &w) in words.iter().enumerate() {
        let mut w = w;
        while w != 0 {
            out.push((i as u16) << 6 | w.trailing_zeros() as u16);
            w &= w - 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(seed: u64) -> Box<Words> {
        let mut state = seed | 1;
        let mut w = Box::new([0u64; WORDS]);
        for x in w.iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *x = state;
        }
        w
    }

    fn bit(w: &Words, i: usize) -> bool {
        w[i / 64] >> (i % 64) & 1 == 1
    }

    #[test]
    fn fused_kernels_agree_with_bit_by_bit_loops() {
        let (a, b, c) = (words(1), words(2), words(3));
        let naive = (0..WORDS * 64)
            .filter(|&i| bit(&a, i) && bit(&b, i) && !bit(&c, i))
            .count() as u32;
        assert_eq!(and_count(&[&a, &b], &[&c]), naive);
        assert_eq!(and_count_impl(&[&a, &b], &[&c]), naive);
        let mut out = Box::new([0u64; WORDS]);
        assert_eq!(and_into(&mut out, &[&a, &b], &[&c]), naive);
        assert_eq!(popcount_impl(&out), naive);
        assert!((0..WORDS * 64).all(|i| bit(&out, i) == (bit(&a, i) && bit(&b, i) && !bit(&c, i))));
        // no positives: the complement of the negatives
        let not_c = (0..WORDS * 64).filter(|&i| !bit(&c, i)).count() as u32;
        assert_eq!(and_into(&mut out, &[], &[&c]), not_c);
        let mut union = Box::new([0u64; WORDS]);
        let either = (0..WORDS * 64)
            .filter(|&i| bit(&a, i) || bit(&c, i))
            .count() as u32;
        assert_eq!(or_into(&mut union, &[&a, &c]), either);
        let array = bits_to_array(&a, popcount_impl(&a) as usize);
        assert!(array.windows(2).all(|p| p[0] < p[1]));
        let mut back = Box::new([0u64; WORDS]);
        set_bits(&mut back, &array);
        assert_eq!(back, a);
    }
}
