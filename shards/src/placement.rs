//! Where shards run: how many there are and which CPU each one is pinned to.
//!
//! The CPUs considered are those of the process's affinity mask (`sched_getaffinity`), so
//! `taskset -c 2-3 moq-relay` pins shard 0 to CPU 2 and shard 1 to CPU 3. Without an explicit
//! count the runtime starts one shard per allowed CPU, further limited by the cgroup CPU quota
//! (what `std::thread::available_parallelism` reports).

use crate::config::{RuntimeConfig, MAX_SHARDS};
use crate::error::RuntimeError;

/// The CPUs this process may run on, in increasing order.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            return (0..n).collect();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect()
    }
}

/// The resolved placement: one entry per shard, the CPU it is pinned to (`None` = unpinned).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardPlacement {
    /// `cpus[i]` is the CPU of shard `i`.
    pub cpus: Vec<Option<usize>>,
}

impl ShardPlacement {
    /// Resolves the shard count and the CPU of each shard from `config`.
    pub fn from_config(config: &RuntimeConfig) -> Result<ShardPlacement, RuntimeError> {
        Self::resolve(config.shards, config.pin, &allowed_cpus())
    }

    /// [`ShardPlacement::from_config`] with an explicit list of allowed CPUs (for tests).
    pub fn resolve(
        shards: Option<usize>,
        pin: bool,
        allowed: &[usize],
    ) -> Result<ShardPlacement, RuntimeError> {
        let available = allowed.len().max(1);
        let count = match shards {
            Some(0) => {
                return Err(RuntimeError::InvalidConfig(
                    "the shard count must be at least 1".into(),
                ))
            }
            Some(n) => n,
            None => {
                let quota = std::thread::available_parallelism().map_or(available, |n| n.get());
                quota.min(available).min(MAX_SHARDS)
            }
        };
        if count > MAX_SHARDS {
            return Err(RuntimeError::TooManyShards {
                requested: count,
                limit: MAX_SHARDS,
                reason: "the runtime's maximum",
            });
        }
        if pin && count > allowed.len() {
            return Err(RuntimeError::TooManyShards {
                requested: count,
                limit: allowed.len(),
                reason: "CPUs available for pinning; use fewer shards or disable pinning",
            });
        }
        let cpus = (0..count)
            .map(|i| if pin { Some(allowed[i]) } else { None })
            .collect();
        Ok(ShardPlacement { cpus })
    }

    /// Number of shards.
    pub fn count(&self) -> usize {
        self.cpus.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_to_the_allowed_cpus_in_order() {
        let p = ShardPlacement::resolve(Some(2), true, &[2, 5, 7]).unwrap();
        assert_eq!(p.cpus, vec![Some(2), Some(5)]);
        let p = ShardPlacement::resolve(Some(3), false, &[0]).unwrap();
        assert_eq!(p.cpus, vec![None, None, None]);
    }

    #[test]
    fn rejects_bad_counts() {
        assert!(matches!(
            ShardPlacement::resolve(Some(0), false, &[0]),
            Err(RuntimeError::InvalidConfig(_))
        ));
        assert!(matches!(
            ShardPlacement::resolve(Some(3), true, &[0, 1]),
            Err(RuntimeError::TooManyShards { limit: 2, .. })
        ));
        assert!(matches!(
            ShardPlacement::resolve(Some(257), false, &[0, 1]),
            Err(RuntimeError::TooManyShards { limit: 256, .. })
        ));
        let default = ShardPlacement::resolve(None, true, &[0, 1]).unwrap();
        assert!(default.count() >= 1 && default.count() <= 2);
    }
}
