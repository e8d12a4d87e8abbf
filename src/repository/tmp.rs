//! Leftovers of interrupted runs in the staging directory.

use std::path::Path;

/// Removes staging files (`pack-<pid>-…`, `.w-<pid>-…`) whose process is
/// gone; a live concurrent writer's files are left alone. Returns how many
/// were removed.
pub fn clean_stale(staging: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(staging) else {
        return 0;
    };
    let mut removed = 0;
    for ent in rd.flatten() {
        let name = ent.file_name().to_string_lossy().into_owned();
        let pid = name
            .trim_start_matches('.')
            .split('-')
            .nth(1)
            .and_then(|p| p.parse::<i32>().ok());
        let Some(pid) = pid else { continue };
        if !process_alive(pid) && std::fs::remove_file(ent.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Whether a process with this pid exists on this machine.
pub fn process_alive(pid: i32) -> bool {
    if pid as u32 == std::process::id() {
        return true;
    }
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
