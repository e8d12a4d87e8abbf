//! Who this process is, in terms another snap process can check: the
//! machine (`/etc/machine-id`), the boot (`/proc/sys/kernel/random/boot_id`),
//! the PID namespace (`/proc/self/ns/pid`) and the process's start time
//! (field 22 of `/proc/PID/stat`). A lock records these so that a reader
//! can prove its holder dead — not merely guess from a host name and a pid,
//! which containers with a fixed `--hostname`, cloned VMs and pods share.

use serde::{Deserialize, Serialize};

/// Identity of the process that wrote a lock. Empty strings mean unknown.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessIdentity {
    /// `/etc/machine-id` (or `/var/lib/dbus/machine-id`).
    #[serde(default)]
    pub machine_id: String,
    /// The kernel's boot id: changes at every boot.
    #[serde(default)]
    pub boot_id: String,
    /// The PID namespace (`pid:[4026531836]`): pids are comparable only inside one.
    #[serde(default)]
    pub pid_ns: String,
    /// Start time of the process in clock ticks after boot (`/proc/PID/stat`
    /// field 22): a reused pid has another one.
    #[serde(default)]
    pub start_ticks: u64,
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Start time (clock ticks after boot) of process `pid`, if it exists.
pub fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')')? + 1..];
    // Fields from 3 on; field 22 is the 20th of them.
    after.split_whitespace().nth(19)?.parse().ok()
}

impl ProcessIdentity {
    /// This process.
    pub fn current() -> ProcessIdentity {
        let mut machine_id = read_trimmed("/etc/machine-id");
        if machine_id.is_empty() {
            machine_id = read_trimmed("/var/lib/dbus/machine-id");
        }
        ProcessIdentity {
            machine_id,
            boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
            pid_ns: std::fs::read_link("/proc/self/ns/pid")
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
            start_ticks: start_ticks(std::process::id()).unwrap_or(0),
        }
    }

    /// Whether pids of `other` can be checked from here: same machine, same
    /// boot, same PID namespace, all known.
    pub fn pids_comparable(&self, other: &ProcessIdentity) -> bool {
        !self.machine_id.is_empty()
            && !self.boot_id.is_empty()
            && !self.pid_ns.is_empty()
            && self.machine_id == other.machine_id
            && self.boot_id == other.boot_id
            && self.pid_ns == other.pid_ns
    }

    /// Whether `other` ran on this machine during an earlier boot (so it is
    /// certainly not running now).
    pub fn earlier_boot_of_this_machine(&self, other: &ProcessIdentity) -> bool {
        !self.machine_id.is_empty()
            && self.machine_id == other.machine_id
            && !self.boot_id.is_empty()
            && !other.boot_id.is_empty()
            && self.boot_id != other.boot_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_comparable() {
        let me = ProcessIdentity::current();
        assert!(me.start_ticks > 0);
        assert_eq!(start_ticks(std::process::id()), Some(me.start_ticks));
        assert!(me.pids_comparable(&me) || me.machine_id.is_empty());
        let mut other = me.clone();
        other.pid_ns = "pid:[1]".into();
        assert!(!me.pids_comparable(&other));
        other = me.clone();
        other.boot_id = "another boot".into();
        assert!(me.earlier_boot_of_this_machine(&other) || me.machine_id.is_empty());
    }
}
