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
/// every arena under its lock, and any thread that allocates meanwhile waits: the daemon
/// calls it once, after start-up, before the loop runs. A reload's peak is not trimmed
/// (the loop must never wait behind it).
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

/// Drops this process's resident pages of the embedded XDP objects (`objects.rs`): the
/// responder's ELF is 1.6 MB with its BTF and debug information, read once to load the
/// program and then resident as file-backed memory for the daemon's lifetime. They are
/// read-only file pages, so a later load (a reload that attaches a chained copy) reads
/// them back from the page cache.
pub fn release_object_pages() {
    for object in [crate::objects::RESPONDER, crate::objects::PASS] {
        drop_pages(object);
    }
}

/// `MADV_DONTNEED` over the whole pages inside `bytes`.
fn drop_pages(bytes: &'static [u8]) {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let Ok(page) = usize::try_from(page) else {
        return;
    };
    if page == 0 {
        return;
    }
    let start = (bytes.as_ptr() as usize).next_multiple_of(page);
    let end = (bytes.as_ptr() as usize + bytes.len()) / page * page;
    if end <= start {
        return;
    }
    // SAFETY: the range lies inside a static that is never written (a read-only,
    // file-backed mapping of the executable): dropping its pages changes no byte a
    // reader sees, the next read faults them in again from the file. Only whole pages
    // inside the static are touched, never a neighbour's.
    unsafe {
        libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
    }
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

    /// Resident pages of `bytes` (mincore), of the whole pages inside it.
    fn resident_pages(bytes: &[u8]) -> usize {
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let start = (bytes.as_ptr() as usize).next_multiple_of(page);
        let end = (bytes.as_ptr() as usize + bytes.len()) / page * page;
        let mut vec = vec![0u8; (end - start) / page];
        // SAFETY: `vec` has one byte per page of the range, as mincore requires.
        let r = unsafe { libc::mincore(start as *mut libc::c_void, end - start, vec.as_mut_ptr()) };
        assert_eq!(r, 0);
        vec.iter().filter(|b| **b & 1 == 1).count()
    }

    #[test]
    fn the_embedded_objects_leave_memory_and_read_back_unchanged() {
        let object = crate::objects::RESPONDER;
        let sum = |b: &[u8]| {
            b.iter()
                .fold(0u64, |a, x| a.wrapping_mul(31).wrapping_add(u64::from(*x)))
        };
        let before = sum(object);
        // mincore counts pages in the page cache, not this process's mapping; and
        // `RssFile` in /proc/self/status lags (per-CPU counters): the resident size of
        // the mapping that holds the object, from smaps, is exact.
        let mapped_kib = || -> u64 {
            let at = object.as_ptr() as usize;
            let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
            let mut inside = false;
            for l in smaps.lines() {
                if let Some((range, _)) = l.split_once(' ')
                    && let Some((a, b)) = range.split_once('-')
                    && let (Ok(a), Ok(b)) =
                        (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
                {
                    inside = a <= at && at < b;
                } else if inside && let Some(v) = l.strip_prefix("Rss:") {
                    return v.split_whitespace().next().unwrap().parse().unwrap();
                }
            }
            panic!("no mapping holds the object")
        };
        let resident = mapped_kib();
        release_object_pages();
        let dropped = resident.saturating_sub(mapped_kib());
        assert!(resident_pages(object) > 0, "still in the page cache");
        assert!(
            dropped as usize * 1024 >= object.len() / 2,
            "{dropped} KiB of file-backed memory dropped for a {}-byte object",
            object.len()
        );
        assert_eq!(sum(object), before, "the bytes read back are the same");
    }
}
