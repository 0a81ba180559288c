//! Scheduling class of the operator's threads (control socket connections, metrics):
//! `SCHED_IDLE`, so that where they share a core with a busy-polling worker (xgw pinned to
//! one core), a long listing or a scrape loop takes only the CPU the worker leaves idle
//! instead of a fair share of it.

use std::io;

/// Put the calling thread in `SCHED_IDLE`.
///
/// # Errors
/// The kernel refused (it does not for an unprivileged lowering of priority).
pub fn set_current_thread_idle() -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `sched_setscheduler(0, ...)` changes only the calling thread's policy; `param`
    // is a valid, initialised `sched_param` that outlives the call (it is read, not kept).
    let r = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &raw const param) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_thread_can_lower_itself_to_idle() {
        std::thread::spawn(|| {
            super::set_current_thread_idle().unwrap();
            // /proc/thread-self/stat field 41 is the policy: 5 is SCHED_IDLE.
            let tid = std::fs::read_link("/proc/thread-self").unwrap();
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", tid.display())).unwrap();
            let after = stat.rsplit(')').next().unwrap();
            let policy: u32 = after.split_whitespace().nth(38).unwrap().parse().unwrap();
            assert_eq!(policy, 5, "{stat}");
        })
        .join()
        .unwrap();
    }
}
