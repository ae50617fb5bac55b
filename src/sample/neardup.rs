//! Near-duplicate clusters for the diversity step of active sampling: one
//! syndicated story or a recurring stock line must not fill a labeling sheet.
//!
//! Texts are folded (NFKC, lowercase, anything not a letter or digit is a
//! space) and cut into word 3-shingles; a 32-value MinHash signature
//! estimates their Jaccard similarity. Locality-sensitive hashing (8 bands
//! of 4 values) finds candidates; a candidate joins the first text of its
//! band bucket when their signatures agree on at least [`THRESHOLD`] of the
//! values. Clusters are the connected components (union-find). The result
//! depends only on the texts and their order.

use std::collections::HashMap;
use unicode_normalization::UnicodeNormalization;

/// Estimated Jaccard similarity of shingles at or above which two texts are
/// near-duplicates (the same story lightly edited, a line with another name).
pub const THRESHOLD: f64 = 0.7;
const HASHES: usize = 32;
const BAND: usize = 4;

/// Cluster index of each text (clusters numbered by first member).
pub fn clusters(texts: &[&str]) -> Vec<usize> {
    let sigs: Vec<[u32; HASHES]> = texts.iter().map(|t| signature(t)).collect();
    let mut parent: Vec<usize> = (0..texts.len()).collect();
    for band in 0..HASHES / BAND {
        let mut first: HashMap<&[u32], usize> = HashMap::new();
        for (i, s) in sigs.iter().enumerate() {
            let key = &s[band * BAND..(band + 1) * BAND];
            match first.get(key) {
                Some(&j) if similarity(&sigs[i], &sigs[j]) >= THRESHOLD => {
                    let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                    // The smaller index is the root, so numbering is stable.
                    parent[a.max(b)] = a.min(b);
                }
                Some(_) => {}
                None => {
                    first.insert(key, i);
                }
            }
        }
    }
    let mut ids: HashMap<usize, usize> = HashMap::new();
    (0..texts.len())
        .map(|i| {
            let r = find(&mut parent, i);
            let next = ids.len();
            *ids.entry(r).or_insert(next)
        })
        .collect()
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

/// The share of equal MinHash values: an estimate of the Jaccard similarity.
fn similarity(a: &[u32; HASHES], b: &[u32; HASHES]) -> f64 {
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / HASHES as f64
}

/// MinHash of the folded text's word 3-shingles (the whole text when it
/// has fewer than three words).
fn signature(text: &str) -> [u32; HASHES] {
    let folded: String = text
        .nfkc()
        .flat_map(char::to_lowercase)
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    let words: Vec<&str> = folded.split_whitespace().collect();
    let shingles: Vec<String> = if words.len() < 3 {
        vec![words.join(" ")]
    } else {
        words.windows(3).map(|w| w.join(" ")).collect()
    };
    let mut sig = [u32::MAX; HASHES];
    for sh in &shingles {
        for (k, v) in sig.iter_mut().enumerate() {
            let h = xxhash_rust::xxh3::xxh3_64_with_seed(sh.as_bytes(), k as u64) as u32;
            *v = (*v).min(h);
        }
    }
    sig
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_duplicates_share_a_cluster_across_scripts() {
        let story = "Die Regierung in Kiew bat am Montag um weitere Lieferungen von Luftabwehrsystemen, \
                     nachdem russische Raketen mehrere Städte im Osten des Landes getroffen hatten.";
        let edited = format!("{story} (dpa)");
        let arabic = "قالت الحكومة الأوكرانية يوم الاثنين إنها تحتاج إلى مزيد من أنظمة الدفاع الجوي بعد أن ضربت الصواريخ عدة مدن في الشرق";
        let arabic_again = format!("  {arabic}!! ");
        let other = "Футбольный клуб «Шахтёр» выиграл матч со счётом 2:1 и вышел в следующий раунд турнира 🇺🇦.";
        let texts = [story, &edited, arabic, &arabic_again, other, "Read more"];
        let c = clusters(&texts);
        assert_eq!(c, vec![0, 0, 1, 1, 2, 3], "{c:?}");
    }

    #[test]
    fn combining_marks_fold_to_the_same_text() {
        // "é" precomposed and as "e" + U+0301: the same words after NFKC.
        let a = "Le président a visité la région touchée par les inondations hier soir.";
        let b = "Le pre\u{301}sident a visite\u{301} la re\u{301}gion touche\u{301}e par les inondations hier soir.";
        assert_eq!(clusters(&[a, b]), vec![0, 0]);
    }
}
