//! Work shared out among the cores: reading many files, planning many kernels, making many
//! links. Nothing here touches the filesystem itself.

use std::sync::atomic::{AtomicUsize, Ordering};

/// One per core, at least one.
pub fn parallelism() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// `work` applied to each item, the items shared out among one thread per core as they come
/// free (files differ in size by orders of magnitude). The calling thread is one of them, so
/// the work gets done even where no thread can be started.
pub fn on_all_cores<'t, T: Sync, R: Send>(
    items: &'t [T],
    work: impl Fn(&'t T) -> R + Sync,
) -> Vec<R> {
    let threads = parallelism().min(items.len());
    if threads <= 1 {
        return items.iter().map(work).collect();
    }
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
    let mut done = on_threads(threads, |_| take_turns());
    done.sort_unstable_by_key(|(index, _)| *index);
    done.into_iter().map(|(_, result)| result).collect()
}

/// `work(thread)` for each of `threads` threads, the calling thread being thread 0; the results
/// in thread order. A thread that cannot be started has its work done on the calling thread,
/// after its own, so nothing is lost where the system refuses threads.
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
