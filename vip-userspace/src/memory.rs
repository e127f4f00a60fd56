//! Giving the heap back after the daemon's one-off peaks.
//!
//! Loading the XDP object (ELF, BTF, relocations) and preparing the instances allocate
//! tens of MiB at start-up and on a reload, nearly all of it freed within the second.
//! glibc's allocator keeps freed memory in the heap unless it lies at the very top, so a
//! daemon measured afterwards carried about 20 MiB of resident, unused heap: more than
//! everything its instances hold (`tests/bench/src/scale.rs`, the "scale" item of
//! `tests/bench/results.md`, reports anonymous and file-backed memory apart).
//! `malloc_trim` returns the free pages of every arena to the kernel, wherever they lie.
//! On other C libraries this does nothing.

/// Returns the heap's free pages to the kernel; how long it took, for the log. It walks
/// every arena under its lock (about a millisecond for tens of MiB here), so the loop
/// calls it only where nothing is kept alive yet (start-up) and hands it to a worker
/// thread after a reload.
pub fn release_free_heap() -> std::time::Duration {
    let started = std::time::Instant::now();
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only touches the allocator's own free lists; no pointer is
    // passed and none is invalidated (only free chunks are released).
    unsafe {
        libc::malloc_trim(0);
    }
    started.elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resident anonymous memory of this process, KiB.
    fn rss_anon_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("RssAnon:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap()
    }

    #[test]
    #[cfg(target_env = "gnu")]
    fn freed_heap_in_the_middle_goes_back_to_the_kernel() {
        // 32 MiB in blocks below the mmap threshold (they live in the heap); every 64th
        // one and the last stay, as long-lived allocations made during a load do: the
        // holes between them are free memory that free() itself cannot give back (it
        // trims only the top of a heap).
        let mut blocks: Vec<Vec<u8>> = (0..1024).map(|_| vec![1u8; 32 * 1024]).collect();
        let mut i = 0;
        blocks.retain(|_| {
            i += 1;
            i % 64 == 0
        });
        let before = rss_anon_kib();
        release_free_heap();
        let after = rss_anon_kib();
        assert!(blocks.iter().all(|b| b[0] == 1));
        // Tests run on threads with arenas of their own, shared with other tests: ask
        // for most of the 32 MiB back, not all.
        assert!(
            before.saturating_sub(after) >= 16 * 1024,
            "RssAnon {before} KiB before the trim, {after} KiB after"
        );
    }
}
