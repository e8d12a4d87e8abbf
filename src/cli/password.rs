//! Where the password comes from: SNAP_PASSWORD, a file, a command, or a
//! prompt on a terminal. It is never put in argv, logs or messages.

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

/// Finds the password, in the documented order.
pub fn get(file: Option<&Path>, command: Option<&str>, confirm: bool) -> Result<Zeroizing<String>> {
    if let Ok(p) = std::env::var("SNAP_PASSWORD") {
        return Ok(Zeroizing::new(p));
    }
    if let Some(f) = file {
        return from_file(f);
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
        return Ok(Zeroizing::new(first_line(&s)));
    }
    if std::io::stdin().is_terminal() {
        let p = Zeroizing::new(rpassword::prompt_password("repository password: ")?);
        if confirm {
            let again = Zeroizing::new(rpassword::prompt_password("repeat password: ")?);
            if *again != *p {
                bail!("passwords do not match");
            }
        }
        return Ok(p);
    }
    bail!("no password: set SNAP_PASSWORD, SNAP_PASSWORD_FILE / --password-file, or --password-command")
}
