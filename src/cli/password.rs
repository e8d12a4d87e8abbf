//! Where the password comes from: SNAP_PASSWORD, a file, a command, or a
//! prompt on a terminal. It is never put in argv, logs or messages.
//!
//! An empty password is refused wherever it comes from: `init` and
//! `key add` will not store one (it would let anyone open the
//! repository), and an empty one is never tried on a repository (an empty
//! `SNAP_PASSWORD=` or a `--password-command` that printed nothing is a
//! broken setup, said as such rather than as a wrong password).

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{bail, Context, Result};
use zeroize::Zeroizing;

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

/// Reads a password from a file (first line).
pub fn from_file(p: &Path) -> Result<Zeroizing<String>> {
    let s = Zeroizing::new(
        std::fs::read_to_string(p).with_context(|| format!("password file {}", p.display()))?,
    );
    Ok(Zeroizing::new(first_line(&s)))
}

/// The password of a new key (`key add --new-password-file`), refused when
/// empty.
pub fn new_from_file(p: &Path) -> Result<Zeroizing<String>> {
    let pw = from_file(p)?;
    if pw.is_empty() {
        bail!(
            "refusing an empty password: the first line of {} is empty (an empty password \
             would let anyone open the repository); put the new password on its first line",
            p.display()
        );
    }
    Ok(pw)
}

/// Finds the password, in the documented order; an empty one is an error
/// naming where it came from.
pub fn get(file: Option<&Path>, command: Option<&str>, confirm: bool) -> Result<Zeroizing<String>> {
    let (pw, from) = find(file, command, confirm)?;
    if pw.is_empty() {
        bail!("empty password {from}: snap never uses an empty password; give the repository's password");
    }
    Ok(pw)
}

/// The password and where it came from (for the message when it is empty).
fn find(
    file: Option<&Path>,
    command: Option<&str>,
    confirm: bool,
) -> Result<(Zeroizing<String>, String)> {
    if let Ok(p) = std::env::var("SNAP_PASSWORD") {
        return Ok((Zeroizing::new(p), "in SNAP_PASSWORD (set but empty)".into()));
    }
    if let Some(f) = file {
        return Ok((
            from_file(f)?,
            format!("in {} (its first line is empty)", f.display()),
        ));
    }
    if let Some(cmd) = command {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .stderr(std::process::Stdio::inherit())
            .output()
            .context("cannot run --password-command")?;
        if !out.status.success() {
            bail!("--password-command failed ({})", out.status);
        }
        let s = Zeroizing::new(String::from_utf8_lossy(&out.stdout).into_owned());
        return Ok((
            Zeroizing::new(first_line(&s)),
            "from --password-command (it printed an empty first line)".into(),
        ));
    }
    if std::io::stdin().is_terminal() {
        let p = Zeroizing::new(rpassword::prompt_password("repository password: ")?);
        if confirm {
            let again = Zeroizing::new(rpassword::prompt_password("repeat password: ")?);
            if *again != *p {
                bail!("passwords do not match");
            }
        }
        return Ok((p, "typed at the prompt".into()));
    }
    bail!("no password: set SNAP_PASSWORD, SNAP_PASSWORD_FILE / --password-file, or --password-command")
}
