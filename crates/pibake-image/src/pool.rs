//! One worker pool for every parallel loop: nodes of a build, chunks of an image.
//!
//! Workers take the next item from a shared counter, so uneven items balance
//! themselves, and results come back in item order whatever the timing, so parallel
//! output stays deterministic. A panic in one item is caught and reported as that
//! item's [`Lost`] result; it never silently drops the item or shifts the others.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};

/// An item whose work panicked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lost {
    /// The item's index.
    pub item: usize,
    /// The panic's message, when it had one.
    pub message: String,
}

/// Runs `work(worker, item)` for items `0..count` on up to `jobs` threads (at least
/// one); `worker` is the thread's index in `0..jobs`. Returns one result per item, in
/// item order.
pub fn run<T: Send>(
    count: usize,
    jobs: usize,
    work: impl Fn(usize, usize) -> T + Sync,
) -> Vec<Result<T, Lost>> {
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, Result<T, Lost>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..jobs.clamp(1, count.max(1)))
            .map(|w| {
                let (next, work) = (&next, &work);
                s.spawn(move || {
                    let mut out = Vec::new();
                    loop {
                        let item = next.fetch_add(1, Ordering::Relaxed);
                        if item >= count {
                            break out;
                        }
                        let r =
                            catch_unwind(AssertUnwindSafe(|| work(w, item))).map_err(|p| Lost {
                                item,
                                message: panic_message(p.as_ref()),
                            });
                        out.push((item, r));
                    }
                })
            })
            .collect();
        // A worker catches its items' panics, so joining cannot fail but for a panic
        // in the loop itself; its items are then reported lost below.
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    let mut out = Vec::with_capacity(count);
    let mut got = done.into_iter().peekable();
    for item in 0..count {
        match got.next_if(|(i, _)| *i == item) {
            Some((_, r)) => out.push(r),
            None => out.push(Err(Lost {
                item,
                message: "its worker thread stopped".into(),
            })),
        }
    }
    out
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_in_item_order_and_panics_reported() {
        let r = run(50, 4, |_, i| {
            if i == 17 {
                panic!("item seventeen");
            }
            i * 2
        });
        assert_eq!(r.len(), 50);
        for (i, x) in r.iter().enumerate() {
            match x {
                Ok(v) => assert_eq!(*v, i * 2),
                Err(l) => assert_eq!((l.item, l.message.as_str()), (17, "item seventeen")),
            }
        }
        assert!(r[17].is_err());
        assert!(run(0, 4, |_, i| i).is_empty());
    }
}
