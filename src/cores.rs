//! Work shared out among the cores: reading many files, planning many kernels, making many
//! links. Nothing here touches the filesystem itself.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon_core::{ThreadPool, ThreadPoolBuilder};

/// One per core, at least one; read once per process (it reads cgroup files each time).
pub fn parallelism() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// The threads the reading and planning phases share, started on first use and kept for the
/// run; `None` where the system refuses threads.
fn pool() -> Option<&'static ThreadPool> {
    static POOL: OnceLock<Option<ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        ThreadPoolBuilder::new()
            .num_threads(parallelism())
            .thread_name(|index| format!("weak-modules-{index}"))
            .build()
            .ok()
    })
    .as_ref()
}

/// `work` applied to each item, the items shared out among the pool's threads in order as
/// they come free (files differ in size by orders of magnitude), the results in the items'
/// order. Where no thread can be started, the calling thread does it all.
pub fn on_all_cores<'t, T: Sync, R: Send>(
    items: &'t [T],
    work: impl Fn(&'t T) -> R + Sync,
) -> Vec<R> {
    let threads = parallelism().min(items.len());
    let pool = match pool() {
        Some(pool) if threads > 1 => pool,
        _ => return items.iter().map(work).collect(),
    };
    let next = AtomicUsize::new(0);
    let take_turns = || {
        let mut mine = Vec::new();
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(index) else {
                return mine;
            };
            mine.push((index, work(item)));
        }
    };
    let mut done: Vec<(usize, R)> = pool
        .broadcast(|_| take_turns())
        .into_iter()
        .flatten()
        .collect();
    done.sort_unstable_by_key(|(index, _)| *index);
    done.into_iter().map(|(_, result)| result).collect()
}

/// `work` done on a thread of the pool while the caller goes on, or done now where there is
/// no pool.
pub fn in_background(work: impl FnOnce() + Send + 'static) {
    match pool() {
        Some(pool) => pool.spawn(work),
        None => work(),
    }
}

/// `work(thread)` for each of `threads` threads, the calling thread being thread 0; the results
/// in thread order. Each share runs on a thread of its own started for it, so that a run makes
/// the same changes on the same threads every time (the crash tests count system calls per
/// thread). A thread that cannot be started has its work done on the calling thread, after its
/// own, so nothing is lost where the system refuses threads.
pub fn on_threads<R: Send>(threads: usize, work: impl Fn(usize) -> Vec<R> + Sync) -> Vec<R> {
    let work = &work;
    std::thread::scope(|scope| {
        let helpers: Vec<Result<_, usize>> = (1..threads)
            .map(|thread| {
                std::thread::Builder::new()
                    .spawn_scoped(scope, move || work(thread))
                    .map_err(|_| thread)
            })
            .collect();
        let mut done = work(0);
        for helper in helpers {
            done.extend(match helper {
                Ok(helper) => helper
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                Err(thread) => work(thread),
            });
        }
        done
    })
}
