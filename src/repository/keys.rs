//! The key files of a repository (`keys/<id>`): which one opened it,
//! listing them, and removing one. Adding is in `open` (`add_key`).
//!
//! The key that opened the repository is never removed here: removing it
//! could remove the only password someone knows. Any other key can be
//! removed, so the repository always keeps at least the key in use.

use serde::Serialize;

use super::Repository;
use crate::backend::FileKind;
use crate::format::key::KeyFile;
use crate::pipeline::crypto::MasterKey;
use crate::{Error, Result};

/// One key file.
#[derive(Clone, Debug, Serialize)]
pub struct KeyInfo {
    /// Its name under `keys/` (the hash of its bytes).
    pub id: String,
    /// Whether it is the key this password opened.
    pub current: bool,
    /// Host that added it (informational; empty if unreadable).
    pub host: String,
    /// When it was added, RFC 3339 (empty if unreadable).
    pub created: String,
    /// False for a key file that does not read or parse.
    pub readable: bool,
}

impl Repository {
    /// The name of the key file that the password opened.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Every key file, the one in use marked.
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        let mut out = Vec::new();
        for (name, _) in self.backend.list(FileKind::Key)? {
            let parsed = self
                .backend
                .read(FileKind::Key, &name)
                .ok()
                .and_then(|b| KeyFile::parse(&b).ok());
            out.push(KeyInfo {
                current: name == self.key_id,
                host: parsed.as_ref().map(|k| k.host.clone()).unwrap_or_default(),
                created: parsed
                    .as_ref()
                    .map(|k| k.created.clone())
                    .unwrap_or_default(),
                readable: parsed.is_some(),
                id: name,
            });
        }
        out.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// The key file a hex prefix names.
    pub fn resolve_key(&self, prefix: &str) -> Result<String> {
        let lower = prefix.to_ascii_lowercase();
        if lower.is_empty() || !lower.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::Invalid(format!(
                "key {prefix:?}: not a hex key id (prefix); `snap key list` shows them"
            )));
        }
        let hits: Vec<String> = self
            .backend
            .list(FileKind::Key)?
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| n.starts_with(&lower))
            .collect();
        match hits.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(Error::Invalid(format!(
                "key {prefix:?}: no key has this id (`snap key list` shows them)"
            ))),
            _ => Err(Error::Invalid(format!(
                "key {prefix:?}: prefix matches several keys; give more characters"
            ))),
        }
    }

    /// Whether key file `id` opens with `password` to this repository's
    /// master key (checked against the config's MAC, as opening does).
    pub fn key_opens(&self, id: &str, password: &[u8]) -> Result<bool> {
        let bytes = self.backend.read(FileKind::Key, id)?;
        let kf = KeyFile::parse(&bytes).map_err(|why| Error::corrupt(format!("keys/{id}"), why))?;
        Ok(match MasterKey::unwrap(&kf, password, &self.config.id) {
            Ok(k) => k.config_mac(&self.config.mac_input()) == self.config.mac,
            Err(_) => false,
        })
    }

    /// Deletes key file `id`; refuses the key in use.
    pub fn remove_key(&self, id: &str) -> Result<()> {
        if id == self.key_id {
            return Err(Error::Invalid(format!(
                "key {} is the one this password opened: snap never removes the key in use \
                 (use `snap key passwd` to change this password, or open the repository with \
                 another password to remove this key)",
                &id[..id.len().min(8)]
            )));
        }
        Ok(self.backend.delete(FileKind::Key, id)?)
    }

    /// Deletes the key in use, after `replacement` (another key file) was
    /// checked to open the repository with `password` (`key passwd`).
    pub fn replace_current_key(&self, replacement: &str, password: &[u8]) -> Result<()> {
        if replacement == self.key_id || !self.key_opens(replacement, password)? {
            return Err(Error::Invalid(format!(
                "the new key {} does not open the repository; the old key was kept",
                &replacement[..replacement.len().min(8)]
            )));
        }
        Ok(self.backend.delete(FileKind::Key, &self.key_id)?)
    }
}
