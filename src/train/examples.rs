//! Training examples from gold files: majority labels per item, entity
//! spans with their types in a fixed order, and a seeded hold-out split.
//! (The encoder states tuned heads train on are made in `train::tuned`.)

use crate::error::{Error, Result};
use crate::eval::{coder_labels, majority, majority_spans};
use crate::formats::{self, GoldItem, LabelSet};
use crate::task::Task;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// What a training text is labeled with.
#[derive(Clone)]
pub enum Gold {
    /// Entity spans `(start, end, type index)`, code points, and the
    /// types the text's source does not annotate (see [`mask_unannotated`]).
    Spans {
        spans: Vec<(usize, usize, usize)>,
        unannotated: Vec<usize>,
    },
    Class(usize),
}

/// Texts with their gold.
pub type Items = Vec<(String, Gold)>;

/// Reads and checks gold files. `entities_only`: an NER head reads only
/// the entities, so other labels need no codebook and are dropped.
/// `report` gets each file's read summary.
pub fn read_gold(
    paths: &[PathBuf],
    opts: &formats::ReadOptions,
    labels: &LabelSet,
    entities_only: bool,
    report: &dyn Fn(&str),
) -> Result<Vec<GoldItem>> {
    let mut all = Vec::new();
    for p in paths {
        let (_, mut items, read) = formats::read_reported(p, opts)?;
        report(&read.line(p));
        if entities_only {
            for an in items.iter_mut().flat_map(|g| g.annotations.iter_mut()) {
                an.topic = None;
                an.stances.clear();
                an.holders.clear();
            }
        }
        formats::validate(&mut items, labels)?;
        all.extend(items);
    }
    Ok(all)
}

/// Texts and label indices of the items labeled for `task`, and how many
/// labeled items were left out (coder ties, labels not in `names`).
pub fn classes(
    items: &[GoldItem],
    task: &Task,
    names: &[String],
) -> (Vec<String>, Vec<usize>, usize) {
    let coders = formats::coders(items);
    let (mut texts, mut labels, mut skipped) = (Vec::new(), Vec::new(), 0);
    for g in items {
        let given = coder_labels(g, &coders, task);
        match majority(&given) {
            Some(l) => match names.iter().position(|n| n == l) {
                Some(i) => {
                    texts.push(g.text.clone());
                    labels.push(i);
                }
                None => skipped += 1,
            },
            // Ties; items not labeled for this task are not counted.
            None => skipped += usize::from(given.iter().any(Option::is_some)),
        }
    }
    (texts, labels, skipped)
}

/// Texts with their majority entity spans; `types` collects the entity
/// types in first-seen order.
pub fn entities(items: &[GoldItem], types: &mut Vec<String>) -> Items {
    items
        .iter()
        .filter_map(|g| {
            let spans = majority_spans(g)?;
            let spans = spans
                .into_iter()
                .map(|(s, e, t)| {
                    let k = match types.iter().position(|x| x == t) {
                        Some(k) => k,
                        None => {
                            types.push(t.to_string());
                            types.len() - 1
                        }
                    };
                    (s as usize, e as usize, k)
                })
                .collect();
            Some((
                g.text.clone(),
                Gold::Spans {
                    spans,
                    unannotated: vec![],
                },
            ))
        })
        .collect()
}

/// Marks, for the entity items of each file, the types of `n_types` that
/// the file has no span of (unless it has none at all): a source that does not annotate a type
/// (WikiANN has no MISC) must not teach that such spans are `O`, so
/// training masks those types out of its items' loss. Returns each file's
/// unannotated types.
pub fn mask_unannotated(files: &mut [&mut Items], n_types: usize) -> Vec<Vec<usize>> {
    files
        .iter_mut()
        .map(|items| {
            let marked = marked_types(items);
            // A file with no span at all says "no entities here", of any type.
            let missing: Vec<usize> = match marked.is_empty() {
                true => vec![],
                false => (0..n_types).filter(|k| !marked.contains(k)).collect(),
            };
            for (_, g) in items.iter_mut() {
                if let Gold::Spans { unannotated, .. } = g {
                    unannotated.clone_from(&missing);
                }
            }
            missing
        })
        .collect()
}

/// The entity types `items` mark at least one span of.
pub fn marked_types(items: &Items) -> BTreeSet<usize> {
    items
        .iter()
        .flat_map(|(_, g)| match g {
            Gold::Spans { spans, .. } => spans.iter().map(|sp| sp.2).collect(),
            Gold::Class(_) => vec![],
        })
        .collect()
}

/// Puts entity types in sorted order (so a head does not depend on file
/// order), renumbering the spans of `sets`; returns the sorted types.
pub fn sort_types(types: &[String], sets: &mut [&mut Items]) -> Vec<String> {
    let mut sorted = types.to_vec();
    sorted.sort();
    let remap: Vec<usize> = types
        .iter()
        .map(|t| sorted.iter().position(|s| s == t).expect("same set"))
        .collect();
    for items in sets.iter_mut() {
        for (_, gold) in items.iter_mut() {
            if let Gold::Spans { spans, unannotated } = gold {
                for sp in spans.iter_mut() {
                    sp.2 = remap[sp.2];
                }
                for k in unannotated.iter_mut() {
                    *k = remap[*k];
                }
                unannotated.sort_unstable();
            }
        }
    }
    sorted
}

/// A seeded share of `items` held out as dev: `(keep, dev)`.
pub fn holdout<T>(items: Vec<T>, share: f64, seed: u64) -> Result<(Vec<T>, Vec<T>)> {
    if !(share > 0.0 && share < 1.0) {
        return Err(Error::Config(format!(
            "--holdout needs a share between 0 and 1, got {share}"
        )));
    }
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let mut idx: Vec<usize> = (0..items.len()).collect();
    idx.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    let k = (items.len() as f64 * share).round() as usize;
    let dev_idx: BTreeSet<usize> = idx[..k].iter().copied().collect();
    let (mut keep, mut dev) = (vec![], vec![]);
    for (i, x) in items.into_iter().enumerate() {
        if dev_idx.contains(&i) {
            dev.push(x);
        } else {
            keep.push(x);
        }
    }
    Ok((keep, dev))
}

/// One file: its sha256; several: the sha256 of their sha256s in order.
pub fn data_sha256(files: &[PathBuf]) -> Result<String> {
    Ok(match files {
        [one] => crate::hash::sha256_file(one)?,
        many => {
            let hashes = many
                .iter()
                .map(|p| crate::hash::sha256_file(p))
                .collect::<Result<Vec<_>>>()?;
            crate::hash::sha256_bytes(hashes.join("\n").as_bytes())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(spans: &[(usize, usize, usize)]) -> (String, Gold) {
        let g = Gold::Spans {
            spans: spans.to_vec(),
            unannotated: vec![],
        };
        ("text".into(), g)
    }

    fn unannotated(items: &Items) -> Vec<Vec<usize>> {
        items
            .iter()
            .map(|(_, g)| match g {
                Gold::Spans { unannotated, .. } => unannotated.clone(),
                Gold::Class(_) => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn files_are_masked_for_the_types_they_never_mark() {
        // Types 0 PER, 1 LOC, 2 MISC: the first file marks all three over
        // its items, the second never marks MISC, the third marks nothing
        // (texts without entities, of any type).
        let mut a: Items = vec![item(&[(0, 1, 0)]), item(&[(1, 2, 1), (2, 3, 2)])];
        let mut b: Items = vec![item(&[(0, 1, 0)]), item(&[(0, 1, 1)])];
        let mut c: Items = vec![item(&[])];
        let missing = mask_unannotated(&mut [&mut a, &mut b, &mut c], 3);
        assert_eq!(missing, [vec![], vec![2], Vec::<usize>::new()]);
        assert_eq!(unannotated(&a), [Vec::<usize>::new(), vec![]]);
        assert_eq!(unannotated(&b), [vec![2], vec![2]]);
        // Sorting the types renumbers the masks with the spans.
        let types = ["PER", "LOC", "MISC"].map(String::from);
        let sorted = sort_types(&types, &mut [&mut b]);
        assert_eq!(sorted, ["LOC", "MISC", "PER"]);
        assert_eq!(unannotated(&b), [vec![1], vec![1]]);
    }
}
