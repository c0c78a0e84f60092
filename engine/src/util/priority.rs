//! Background work that yields the CPU: the checkpoint thread runs at a lower priority, so a
//! checkpoint of millions of members does not take the cores writers and readers wait for.

/// The nice value of background threads: the kernel then gives a thread of normal priority
/// about ten times its share when both want a core, and the background thread still
/// progresses under any load (unlike `SCHED_IDLE`, which could starve a checkpoint forever).
const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread's priority to [`BACKGROUND_NICE`]. On Linux the nice value
/// belongs to the thread, not the process. Best effort: where it cannot be changed, the
/// thread runs at normal priority.
pub(crate) fn lower_current_thread() {
    #[cfg(target_os = "linux")]
    {
        let _ = rustix::process::setpriority_process(None, BACKGROUND_NICE);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn lowers_only_the_calling_thread() {
        let before = rustix::process::getpriority_process(None).unwrap();
        let inside = std::thread::spawn(|| {
            super::lower_current_thread();
            rustix::process::getpriority_process(None).unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(inside, super::BACKGROUND_NICE.max(before));
        assert_eq!(rustix::process::getpriority_process(None).unwrap(), before);
    }
}
