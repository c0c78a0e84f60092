//! The shape of segment and filter trees: how deep they nest, and the same tree made
//! shallower. Both are written once for [`Segment`] and [`PropFilter`] through [`Tree`].
//!
//! Nesting is measured without recursion, so a tree of any depth is measured safely before
//! anything recurses on it. Simplifying consumes the tree and grows the stack on the heap
//! where it is deep: definitions stored before NOTs counted as levels can be thousands deep.

use super::{PropFilter, Segment};

/// Stack kept free before a recursive step of [`simplified`], and the size of each stack
/// segment added on the heap when less is left.
const RED_ZONE: usize = 64 << 10;
const STACK_STEP: usize = 1 << 20;

/// A tree of `AND` / `OR` / `NOT` over leaves.
pub(super) trait Tree: Sized + std::ops::Not<Output = Self> {
    /// The children of an `AND`, `OR` or `NOT` node; none for a leaf.
    fn children(&self) -> &[Self];
    /// Levels inside a leaf (a `DID`'s `WHERE` filter).
    fn leaf_nesting(&self) -> usize {
        0
    }
    /// `Ok(x)` for `NOT x`, the node itself otherwise.
    fn negated(self) -> Result<Self, Self>;
    /// An `AND` / `OR` with simplified children, those of the same operator merged in; a
    /// leaf with its insides simplified.
    fn simplify_node(self) -> Self;
}

/// Levels of nesting: every node with children is one level over them.
pub(super) fn nesting<T: Tree>(root: &T) -> usize {
    let mut deepest = 0;
    let mut stack = Vec::with_capacity(16);
    stack.push((root, 0usize));
    while let Some((node, depth)) = stack.pop() {
        deepest = deepest.max(depth + node.leaf_nesting());
        stack.extend(node.children().iter().map(|c| (c, depth + 1)));
    }
    deepest
}

/// The same tree, shallower: `NOT NOT x` is `x`, an `AND` directly inside an `AND` (an `OR`
/// inside an `OR`) is merged into it.
pub(super) fn simplified<T: Tree>(node: T) -> T {
    stacker::maybe_grow(RED_ZONE, STACK_STEP, || match node.negated() {
        Ok(inner) => {
            let (mut negated, mut node) = (true, inner);
            loop {
                match node.negated() {
                    Ok(next) => {
                        negated = !negated;
                        node = next;
                    }
                    Err(other) => {
                        node = other;
                        break;
                    }
                }
            }
            let node = simplified(node);
            if negated { !node } else { node }
        }
        Err(node) => node.simplify_node(),
    })
}

/// Children simplified and handed to `merge`, which pushes each onto the list, or its
/// children where it has the parent's operator.
fn flatten<T: Tree>(children: Vec<T>, merge: impl Fn(T, &mut Vec<T>)) -> Vec<T> {
    let mut out = Vec::with_capacity(children.len());
    for child in children {
        merge(simplified(child), &mut out);
    }
    out
}

impl Tree for Segment {
    fn children(&self) -> &[Self] {
        match self {
            Segment::And(children) | Segment::Or(children) => children,
            Segment::Not(inner) => std::slice::from_ref(inner.as_ref()),
            _ => &[],
        }
    }

    fn leaf_nesting(&self) -> usize {
        match self {
            Segment::Did(did) => did.filter.as_ref().map_or(0, nesting),
            Segment::Sequence(s) => [&s.first.filter, &s.then_filter]
                .into_iter()
                .flatten()
                .map(nesting)
                .max()
                .unwrap_or(0),
            Segment::Value { value, .. } => value
                .aggregates()
                .iter()
                .filter_map(|a| a.filter.as_ref())
                .map(nesting)
                .max()
                .unwrap_or(0),
            _ => 0,
        }
    }

    fn negated(self) -> Result<Self, Self> {
        match self {
            Segment::Not(inner) => Ok(*inner),
            other => Err(other),
        }
    }

    fn simplify_node(self) -> Self {
        match self {
            Segment::And(children) => Segment::And(flatten(children, |s, out| match s {
                Segment::And(grand) => out.extend(grand),
                other => out.push(other),
            })),
            Segment::Or(children) => Segment::Or(flatten(children, |s, out| match s {
                Segment::Or(grand) => out.extend(grand),
                other => out.push(other),
            })),
            Segment::Did(mut did) => {
                did.filter = did.filter.map(simplified);
                Segment::Did(did)
            }
            Segment::Sequence(mut s) => {
                s.first.filter = s.first.filter.map(simplified);
                s.then_filter = s.then_filter.map(simplified);
                Segment::Sequence(s)
            }
            leaf => leaf,
        }
    }
}

impl Tree for PropFilter {
    fn children(&self) -> &[Self] {
        match self {
            PropFilter::And(children) | PropFilter::Or(children) => children,
            PropFilter::Not(inner) => std::slice::from_ref(inner.as_ref()),
            PropFilter::Prop { .. } => &[],
        }
    }

    fn negated(self) -> Result<Self, Self> {
        match self {
            PropFilter::Not(inner) => Ok(*inner),
            other => Err(other),
        }
    }

    fn simplify_node(self) -> Self {
        match self {
            PropFilter::And(children) => PropFilter::And(flatten(children, |f, out| match f {
                PropFilter::And(grand) => out.extend(grand),
                other => out.push(other),
            })),
            PropFilter::Or(children) => PropFilter::Or(flatten(children, |f, out| match f {
                PropFilter::Or(grand) => out.extend(grand),
                other => out.push(other),
            })),
            leaf => leaf,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_negations_go_and_same_operators_merge() {
        let s = !!(Segment::tag("a").and(Segment::tag("b").and(Segment::tag("c"))));
        let s = Segment::And(vec![s, Segment::And(vec![Segment::tag("d")])]);
        assert_eq!(nesting(&s), 5);
        let flat = simplified(s);
        assert_eq!(
            flat.to_string(),
            "TAG 'a' AND TAG 'b' AND TAG 'c' AND TAG 'd'"
        );
        assert_eq!(nesting(&flat), 1);
        let mut deep = Segment::tag("x");
        for _ in 0..100_001 {
            deep = !deep;
        }
        assert_eq!(nesting(&deep), 100_001);
        let shallow = simplified(deep);
        assert_eq!(shallow.to_string(), "NOT TAG 'x'");
    }
}
