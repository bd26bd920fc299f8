//! What the process does to itself so that secrets cannot leave it by accident.
//!
//! Every command may hold unsealed private keys or the key-encryption key in memory (`serve`
//! holds them for its whole life). A core dump would write them to disk in clear, readable by
//! whoever reads the dump directory, so the process makes itself non-dumpable
//! (`PR_SET_DUMPABLE`, which also keeps other processes of the same user from attaching with
//! ptrace or reading its memory through /proc) and sets its core size limit to zero, before it
//! reads anything secret. The systemd unit says the same with `LimitCORE=0`.

/// Why the process could not harden itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HardeningError {
    /// `prctl(PR_SET_DUMPABLE, 0)` failed.
    #[error("cannot turn core dumps off (prctl PR_SET_DUMPABLE): {0}")]
    Dumpable(std::io::Error),
    /// `setrlimit(RLIMIT_CORE, 0)` failed.
    #[error("cannot set the core size limit to 0 (setrlimit RLIMIT_CORE): {0}")]
    CoreLimit(std::io::Error),
}

/// Turns core dumps off for this process and its children.
pub fn forbid_core_dumps() -> Result<(), HardeningError> {
    use rustix::process::{
        DumpableBehavior, Resource, Rlimit, getrlimit, set_dumpable_behavior, setrlimit,
    };
    let zero = Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    // Under the systemd unit the limit is already 0 (LimitCORE=0), and its system call filter
    // (~@resources) does not allow setrlimit: only ask when there is something to change.
    let now = getrlimit(Resource::Core);
    if (now.current, now.maximum) != (zero.current, zero.maximum) {
        setrlimit(Resource::Core, zero).map_err(|e| HardeningError::CoreLimit(e.into()))?;
    }
    set_dumpable_behavior(DumpableBehavior::NotDumpable)
        .map_err(|e| HardeningError::Dumpable(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// After the call the process is not dumpable and may not write a core of any size (the
    /// test binary itself is hardened here; nothing else in it needs a core dump), and a
    /// second call, with the limit already 0, succeeds without asking to change it.
    #[test]
    fn core_dumps_are_off_after_hardening() {
        forbid_core_dumps().unwrap();
        assert_eq!(
            rustix::process::dumpable_behavior().unwrap(),
            rustix::process::DumpableBehavior::NotDumpable
        );
        let core = rustix::process::getrlimit(rustix::process::Resource::Core);
        assert_eq!((core.current, core.maximum), (Some(0), Some(0)));
        forbid_core_dumps().unwrap();
    }
}
