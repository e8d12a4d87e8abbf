//! The `snap` binary: parse arguments, run, print the error once, exit.

fn main() {
    limit_malloc_arenas();
    std::process::exit(snap::cli::main());
}

/// glibc gives each thread that allocates its own arena, up to eight per
/// core, and an arena keeps what is freed into it. A backup's walkers (16
/// on 2 cores) each allocate chunks that the saver's workers free, so every
/// walker's arena ends up holding megabytes: peak RSS of a cold first
/// backup of 1.29 GB went from 80 to 130-160 MB when the walkers went from
/// 4 to 16, and back to 84-91 MB with one arena per core (no slower).
/// Called before any thread starts.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let arenas = i32::try_from(cores).unwrap_or(i32::MAX);
        // SAFETY: mallopt only sets an allocator parameter; no thread has
        // been started, and a refused value leaves glibc's default.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}
