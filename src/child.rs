//! Starting other programs (dump commands, `--to-command`,
//! `--password-command`): the one place that decides what a child process
//! inherits from snap, and how a command line is recorded.
//!
//! * Secrets snap holds are not passed on: its own password variables and
//!   the cloud credentials its object-store backend reads are removed from
//!   the child's environment ([`is_secret_var`]). Variables the child needs
//!   for itself (`PGPASSWORD`, `PGPASSFILE`, `MYSQL_PWD`) are the user's
//!   choice and stay.
//! * snap runs with a private umask (its repository objects and caches are
//!   0600/0700); a child gets the umask snap was started with.
//! * Command lines stored in a snapshot have their secrets masked
//!   ([`mask_command_line`]).
//! * What a child writes to its stderr is kept as a bounded tail for the
//!   error message ([`read_tail`]).

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Environment variables never passed to a child: snap's password sources
/// and the credentials of the object stores it talks to.
const SECRET_VARS: &[&str] = &[
    "SNAP_PASSWORD",
    "SNAP_PASSWORD_FILE",
    "SNAP_PASSWORD_COMMAND",
    "SNAP_FROM_PASSWORD",
    "SNAP_FROM_PASSWORD_FILE",
    "SNAP_FROM_PASSWORD_COMMAND",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_CLIENT_SECRET",
    "AZURE_STORAGE_CLIENT_SECRET",
    "GOOGLE_SERVICE_ACCOUNT",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
    "GOOGLE_SERVICE_ACCOUNT_PATH",
    "GOOGLE_APPLICATION_CREDENTIALS",
];

/// Whether a variable of snap's environment must not reach a child.
pub fn is_secret_var(name: &str) -> bool {
    SECRET_VARS.contains(&name)
}

/// umask snap was started with (`u32::MAX`: not changed by snap).
static ORIGINAL_UMASK: AtomicU32 = AtomicU32::new(u32::MAX);

/// Makes files snap creates private to its user (umask `mask`, e.g.
/// 0o077), remembering the original umask for child processes.
pub fn set_umask(mask: u32) {
    // SAFETY: umask only swaps the process's file mode creation mask.
    let old = unsafe { libc::umask(mask as libc::mode_t) } as u32;
    let _ = ORIGINAL_UMASK.compare_exchange(u32::MAX, old, Ordering::SeqCst, Ordering::SeqCst);
}

/// A command for `program`, with secrets scrubbed from its environment and
/// the user's umask.
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(program);
    for (k, _) in std::env::vars_os() {
        if k.to_str().is_some_and(is_secret_var) {
            c.env_remove(&k);
        }
    }
    let mask = ORIGINAL_UMASK.load(Ordering::SeqCst);
    if mask != u32::MAX {
        use std::os::unix::process::CommandExt;
        // SAFETY: umask is async-signal-safe; nothing else runs in pre_exec.
        unsafe {
            c.pre_exec(move || {
                libc::umask(mask as libc::mode_t);
                Ok(())
            });
        }
    }
    c
}

/// `sh -c LINE`, prepared like [`command`].
pub fn shell(line: &str) -> Command {
    let mut c = command("sh");
    c.arg("-c").arg(line);
    c
}

/// Whether an option or variable name says it holds a secret.
fn names_secret(name: &str) -> bool {
    let n = name.trim_start_matches('-').to_ascii_lowercase();
    [
        "password", "passwd", "secret", "token", "pwd", "apikey", "api-key", "api_key",
    ]
    .iter()
    .any(|s| n.contains(s))
}

/// Masks `user:PASSWORD@` in a URL anywhere in `word`.
fn mask_url(word: &str) -> String {
    let Some(i) = word.find("://") else {
        return word.to_string();
    };
    let after = &word[i + 3..];
    let auth_end = after.find(['/', '?', '#']).unwrap_or(after.len());
    if let Some(at) = after[..auth_end].rfind('@') {
        if let Some(colon) = after[..at].find(':') {
            return format!("{}{}:***{}", &word[..i + 3], &after[..colon], &after[at..]);
        }
    }
    word.to_string()
}

/// Masks the secrets in a command line given as words, for recording:
/// `--password=X` and `--password X` (and any option or `NAME=value`
/// assignment whose name says password, secret or token), mysql's `-pX`
/// (a number after `-p` is a port and stays), and `user:X@` in URLs.
pub fn mask_command_line<S: AsRef<str>>(words: &[S]) -> Vec<String> {
    let mut out = Vec::with_capacity(words.len());
    let mut mask_next = false;
    for w in words {
        let w = w.as_ref();
        if mask_next {
            mask_next = false;
            out.push("***".to_string());
            continue;
        }
        if let Some((name, value)) = w.split_once('=') {
            if !value.is_empty() && !name.contains("://") && names_secret(name) {
                out.push(format!("{name}=***"));
                continue;
            }
        }
        if w.starts_with("--") && names_secret(w) && !w.contains('=') {
            mask_next = true;
            out.push(w.to_string());
            continue;
        }
        if let Some(rest) = w.strip_prefix("-p") {
            if !w.starts_with("--") && !rest.is_empty() && !rest.bytes().all(|b| b.is_ascii_digit())
            {
                out.push("-p***".to_string());
                continue;
            }
        }
        out.push(mask_url(w));
    }
    out
}

/// Reads `r` to its end and returns its last `limit` bytes (memory stays
/// bounded by twice that), copying everything to `echo` as it comes if
/// given (a hook's output to snap's stderr).
pub fn read_tail(
    mut r: impl std::io::Read,
    limit: usize,
    mut echo: Option<&mut dyn std::io::Write>,
) -> Vec<u8> {
    let mut tail = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if let Some(w) = echo.as_mut() {
                    let _ = w.write_all(&buf[..n]);
                }
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > 2 * limit {
                    tail.drain(..tail.len() - limit);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if tail.len() > limit {
        tail.drain(..tail.len() - limit);
    }
    tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(line: &str) -> String {
        let words: Vec<&str> = line.split(' ').collect();
        mask_command_line(&words).join(" ")
    }

    #[test]
    fn secrets_are_masked() {
        assert_eq!(
            mask("mariadb-dump --password=hunter2 --all-databases"),
            "mariadb-dump --password=*** --all-databases"
        );
        assert_eq!(
            mask("mysqldump -uroot -phunter2 db"),
            "mysqldump -uroot -p*** db"
        );
        assert_eq!(mask("pg_dump -p5432 db"), "pg_dump -p5432 db");
        assert_eq!(mask("tool --password hunter2 x"), "tool --password *** x");
        assert_eq!(
            mask("PGPASSWORD=hunter2 pg_dump db"),
            "PGPASSWORD=*** pg_dump db"
        );
        assert_eq!(
            mask("MYSQL_PWD=x AWS_SECRET_ACCESS_KEY=y a"),
            "MYSQL_PWD=*** AWS_SECRET_ACCESS_KEY=*** a"
        );
        assert_eq!(
            mask("pg_dump --dbname=postgresql://app:hunter2@db:5432/app"),
            "pg_dump --dbname=postgresql://app:***@db:5432/app"
        );
        assert_eq!(mask("curl https://host/a:b@c"), "curl https://host/a:b@c");
        assert_eq!(mask("pg_dump --no-owner db"), "pg_dump --no-owner db");
        assert_eq!(mask("x --token=abc"), "x --token=***");
    }

    #[test]
    fn secret_variables() {
        assert!(is_secret_var("SNAP_PASSWORD"));
        assert!(is_secret_var("AWS_SECRET_ACCESS_KEY"));
        assert!(!is_secret_var("PGPASSWORD"));
        assert!(!is_secret_var("PATH"));
    }
}
