//! `snap key add|list|remove|passwd`: the passwords of a repository.

use anyhow::Result;

use super::args::KeyCommand;
use super::exit;
use super::output::Printer;
use super::password;
use crate::repository::{KdfStrength, Repository};

fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}

pub fn run(
    k: &KeyCommand,
    repo: &dyn Fn() -> Result<std::sync::Arc<Repository>>,
    p: &Printer,
) -> Result<i32> {
    match k {
        KeyCommand::Add { new_password_file } => {
            let new = password::from_file(new_password_file)?;
            let repo = repo()?;
            let id = repo.add_key(new.as_bytes(), KdfStrength::default())?;
            p.line(
                &format!("added key {}", short(&id)),
                &serde_json::json!({"key": id}),
            );
        }
        KeyCommand::List => {
            let keys = repo()?.list_keys()?;
            let mut text = vec![format!(" {:<8}  {:<25}  {}", "ID", "Created", "Host")];
            for k in &keys {
                text.push(format!(
                    "{}{:<8}  {:<25}  {}{}",
                    if k.current { "*" } else { " " },
                    short(&k.id),
                    k.created,
                    k.host,
                    if k.readable {
                        ""
                    } else {
                        "(unreadable key file)"
                    }
                ));
            }
            text.push(format!(
                "{} keys; * = the key this password opened",
                keys.len()
            ));
            p.line(&text.join("\n"), &serde_json::to_value(&keys)?);
        }
        KeyCommand::Remove { id } => {
            let repo = repo()?;
            let id = repo.resolve_key(id)?;
            repo.remove_key(&id)?;
            p.line(
                &format!("removed key {}", short(&id)),
                &serde_json::json!({"removed": id}),
            );
        }
        KeyCommand::Passwd { new_password_file } => {
            let new = password::from_file(new_password_file)?;
            let repo = repo()?;
            let old = repo.key_id().to_string();
            let added = repo.add_key(new.as_bytes(), KdfStrength::default())?;
            repo.replace_current_key(&added, new.as_bytes())?;
            p.line(
                &format!(
                    "password changed: added key {}, removed key {}",
                    short(&added),
                    short(&old)
                ),
                &serde_json::json!({"added": added, "removed": old}),
            );
        }
    }
    Ok(exit::OK)
}
