//! Length-sorted batching under a token budget, and padding to tensors.
//!
//! Items are sorted by token length (ties by their key order, so the plan does
//! not depend on the order work arrived in) and cut into batches whose padded
//! size `padded length × count` stays within `--batch-tokens`.

use crate::tokenize::Encoded;
use tch::{Device, Kind, Tensor};

/// Padded length of an item: its length rounded up to a multiple of
/// [`BUCKET`]. A batch holds items of one bucket only, so every item is padded
/// to the same length whatever else shares its batch; that keeps float sums
/// over the sequence (attention, pooling) identical for any `--batch-tokens`.
pub fn padded_len(len: usize) -> usize {
    len.div_ceil(BUCKET).max(1) * BUCKET
}

pub const BUCKET: usize = 8;

/// Batches as lists of indices into `lens`.
pub fn plan(lens: &[usize], budget: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lens.len()).collect();
    order.sort_by_key(|&i| (lens[i], i));
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut cur: Vec<usize> = Vec::new();
    for i in order {
        let l = padded_len(lens[i]);
        let full = l * (cur.len() + 1) > budget;
        let other_bucket = cur.first().is_some_and(|&f| padded_len(lens[f]) != l);
        if !cur.is_empty() && (full || other_bucket) {
            out.push(std::mem::take(&mut cur));
        }
        cur.push(i);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

pub struct Padded {
    pub ids: Tensor,
    pub mask: Tensor,
    pub type_ids: Tensor,
}

/// Pads to the bucket length, never past `max_len` (the model's window).
pub fn pad(items: &[&Encoded], pad_id: i64, max_len: usize, device: Device) -> Padded {
    let b = items.len();
    let longest = items.iter().map(|e| e.len()).max().unwrap_or(0);
    let l = padded_len(longest).min(max_len.max(longest));
    let mut ids = vec![pad_id; b * l];
    let mut mask = vec![0i64; b * l];
    let mut types = vec![0i64; b * l];
    for (r, e) in items.iter().enumerate() {
        ids[r * l..r * l + e.len()].copy_from_slice(&e.ids);
        types[r * l..r * l + e.len()].copy_from_slice(&e.type_ids);
        mask[r * l..r * l + e.len()].fill(1);
    }
    let mk = |v: Vec<i64>| {
        Tensor::from_slice(&v)
            .view([b as i64, l as i64])
            .to_kind(Kind::Int64)
            .to_device(device)
    };
    Padded {
        ids: mk(ids),
        mask: mk(mask),
        type_ids: mk(types),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn plan_respects_budget_and_covers_all() {
        let lens = [5, 3, 9, 3, 7, 1];
        let p = super::plan(&lens, 24);
        let mut all: Vec<usize> = p.iter().flatten().copied().collect();
        all.sort();
        assert_eq!(all, vec![0, 1, 2, 3, 4, 5]);
        for b in &p {
            let longest = b.iter().map(|&i| super::padded_len(lens[i])).max().unwrap();
            assert!(b.len() == 1 || longest * b.len() <= 24, "{p:?}");
            let buckets: std::collections::HashSet<usize> =
                b.iter().map(|&i| super::padded_len(lens[i])).collect();
            assert_eq!(buckets.len(), 1, "one bucket per batch: {p:?}");
        }
        // An item over budget still gets its own batch.
        assert_eq!(super::plan(&[20], 12), vec![vec![0]]);
    }
}
