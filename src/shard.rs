//! Splitting a job across machines: article `id` belongs to shard
//! `u64::from_be_bytes(sha256(id)[0..8]) mod N`, so each article lands in
//! exactly one shard whatever the input order or how the input is split
//! into files, and anyone can recompute it (in Python:
//! `int.from_bytes(hashlib.sha256(id.encode()).digest()[:8], "big") % N`).

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    /// 0-based.
    pub index: u32,
    pub count: u32,
}

/// The shard of `id` among `count`.
pub fn shard_of(id: &str, count: u32) -> u32 {
    let h = Sha256::digest(id.as_bytes());
    let x = u64::from_be_bytes(h[..8].try_into().expect("8 bytes"));
    (x % u64::from(count.max(1))) as u32
}

impl Shard {
    /// `K/N` (0-based K), or `auto`: Slurm's `SLURM_ARRAY_TASK_ID` (less
    /// `SLURM_ARRAY_TASK_MIN`) of `SLURM_ARRAY_TASK_COUNT`, else Kubernetes'
    /// `JOB_COMPLETION_INDEX` of `shards` (`--shards N`).
    pub fn parse(spec: &str, shards: Option<u32>) -> Result<Shard> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let num = |what: &str, v: &str| -> Result<u32> {
            v.trim()
                .parse()
                .map_err(|_| Error::Config(format!("--shard: {what} `{v}` is not a whole number")))
        };
        let (index, count) = if spec == "auto" {
            if let Some(id) = env("SLURM_ARRAY_TASK_ID") {
                let count = env("SLURM_ARRAY_TASK_COUNT").ok_or_else(|| {
                    Error::Config(
                        "--shard auto: SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not"
                            .into(),
                    )
                })?;
                let min = env("SLURM_ARRAY_TASK_MIN")
                    .map_or(Ok(0), |m| num("SLURM_ARRAY_TASK_MIN", &m))?;
                let id = num("SLURM_ARRAY_TASK_ID", &id)?;
                let index = id.checked_sub(min).ok_or_else(|| {
                    Error::Config(format!(
                        "--shard auto: SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}"
                    ))
                })?;
                (index, num("SLURM_ARRAY_TASK_COUNT", &count)?)
            } else if let Some(i) = env("JOB_COMPLETION_INDEX") {
                let count = shards.ok_or_else(|| {
                    Error::Config(
                        "--shard auto with JOB_COMPLETION_INDEX (Kubernetes) needs --shards N (the Job's completions)"
                            .into(),
                    )
                })?;
                (num("JOB_COMPLETION_INDEX", &i)?, count)
            } else {
                return Err(Error::Config(
                    "--shard auto: neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is set"
                        .into(),
                ));
            }
        } else {
            let (k, n) = spec.split_once('/').ok_or_else(|| {
                Error::Config(format!(
                    "--shard `{spec}`: expected K/N (0-based K, e.g. 0/4) or auto"
                ))
            })?;
            (num("K", k)?, num("N", n)?)
        };
        if count == 0 || index >= count {
            return Err(Error::Config(format!(
                "--shard {index}/{count}: K must be in 0..N-1 and N at least 1"
            )));
        }
        Ok(Shard { index, count })
    }

    pub fn contains(&self, id: &str) -> bool {
        shard_of(id, self.count) == self.index
    }

    /// The shard's folder under the job's output folder.
    pub fn dir_name(&self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_lands_in_exactly_one_shard() {
        let ids: Vec<String> = (0..500).map(|i| format!("article-{i}-كييف")).collect();
        for n in [1, 2, 4, 7] {
            let shards: Vec<Shard> = (0..n).map(|k| Shard { index: k, count: n }).collect();
            let mut sizes = vec![0; n as usize];
            for id in &ids {
                let owners: Vec<&Shard> = shards.iter().filter(|s| s.contains(id)).collect();
                assert_eq!(owners.len(), 1, "{id} with N = {n}");
                sizes[owners[0].index as usize] += 1;
            }
            // A hash spreads 500 ids roughly evenly.
            assert!(
                sizes.iter().all(|&s| s * n as usize >= 500 / 2),
                "{sizes:?}"
            );
        }
    }

    #[test]
    fn parses_specs_and_refuses_bad_ones() {
        assert_eq!(
            Shard::parse("2/4", None).unwrap(),
            Shard { index: 2, count: 4 }
        );
        for bad in ["4/4", "1/0", "x/2", "3"] {
            let e = Shard::parse(bad, None).unwrap_err().to_string();
            assert!(e.contains("--shard"), "{bad}: {e}");
        }
    }
}
