//! Where the password comes from: an explicit `--password-file` or
//! `--password-command`, SNAP_PASSWORD, SNAP_PASSWORD_FILE,
//! SNAP_PASSWORD_COMMAND, or a prompt on a terminal. It is never put in
//! argv, logs, messages or the environment of child processes.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{bail, Context, Result};
use zeroize::Zeroizing;

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

/// Reads a password from a file (first line); an empty one is an error,
/// never an attempt with the empty password.
pub fn from_file(p: &Path) -> Result<Zeroizing<String>> {
    let s = Zeroizing::new(
        std::fs::read_to_string(p).with_context(|| format!("password file {}", p.display()))?,
    );
    let pw = Zeroizing::new(first_line(&s));
    if pw.is_empty() {
        bail!(
            "password file {} has an empty first line: snap refuses an empty password \
             (it would let anyone open the repository); write the password on its first line",
            p.display()
        );
    }
    Ok(pw)
}

pub fn from_command(cmd: &str, what: &str) -> Result<Zeroizing<String>> {
    let out = crate::child::shell(cmd)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!("{what} failed ({})", out.status);
    }
    let s = Zeroizing::new(String::from_utf8_lossy(&out.stdout).into_owned());
    let pw = Zeroizing::new(first_line(&s));
    if pw.is_empty() {
        bail!("{what} printed no password (its first output line is empty)");
    }
    Ok(pw)
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Finds the password, in the documented order: an explicit
/// `--password-file` or `--password-command` on the command line first,
/// then `SNAP_PASSWORD`, `SNAP_PASSWORD_FILE`, `SNAP_PASSWORD_COMMAND`, then
/// a prompt on a terminal. An empty password from any source is refused.
pub fn get(file: Option<&Path>, command: Option<&str>, confirm: bool) -> Result<Zeroizing<String>> {
    if let Some(f) = file {
        return from_file(f);
    }
    if let Some(cmd) = command {
        return from_command(cmd, "--password-command");
    }
    if let Some(p) = env_var("SNAP_PASSWORD") {
        let p = Zeroizing::new(p);
        if p.is_empty() {
            bail!("SNAP_PASSWORD is set but empty: unset it or give the password");
        }
        return Ok(p);
    }
    if let Some(f) = std::env::var_os("SNAP_PASSWORD_FILE") {
        return from_file(Path::new(&f));
    }
    if let Some(cmd) = env_var("SNAP_PASSWORD_COMMAND") {
        return from_command(&cmd, "SNAP_PASSWORD_COMMAND");
    }
    if std::io::stdin().is_terminal() {
        let p = Zeroizing::new(rpassword::prompt_password("repository password: ")?);
        if confirm {
            let again = Zeroizing::new(rpassword::prompt_password("repeat password: ")?);
            if *again != *p {
                bail!("passwords do not match");
            }
        }
        if p.is_empty() {
            bail!("refusing an empty password");
        }
        return Ok(p);
    }
    bail!("no password: set SNAP_PASSWORD, SNAP_PASSWORD_FILE / --password-file, or --password-command")
}
