//! Opening the repositories a configuration names: each with its own
//! object-store options, and its password from its own source (read by
//! the caller's [`Password`], so that the CLI stays the one place that
//! reads secrets).

use std::sync::Arc;

use zeroize::Zeroizing;

use super::config::RepositoryConfig;
use crate::backend::{self, Backend};
use crate::repository::Repository;
use crate::{Error, Result};

/// Gives the password of a configured repository.
pub type Password<'a> = dyn Fn(&RepositoryConfig) -> Result<Zeroizing<String>> + 'a;

/// The storage of `r`.
pub fn backend(r: &RepositoryConfig) -> Result<Box<dyn Backend>> {
    if backend::is_sftp_url(&r.location) {
        return backend::open_with(&r.location, &r.options);
    }
    if backend::object::is_object_url(&r.location) {
        #[cfg(feature = "object-store")]
        return Ok(Box::new(backend::object::ObjectBackend::open_with(
            &r.location,
            &r.options,
        )?));
        #[cfg(not(feature = "object-store"))]
        return Err(Error::Invalid(format!(
            "repository {}: {} needs a snap built with object-store support",
            r.name, r.location
        )));
    }
    if !r.options.is_empty() {
        return Err(Error::Invalid(format!(
            "repository {}: options are for object stores, not for the directory {}",
            r.name, r.location
        )));
    }
    Ok(Box::new(backend::local::LocalBackend::new(&r.location)))
}

/// Opens `r` (a missing repository is named before a password is asked for).
pub fn open(r: &RepositoryConfig, password: &Password<'_>) -> Result<Arc<Repository>> {
    let be = backend(r)?;
    let raw = Repository::check_format_version(be.as_ref())?;
    let pw = password(r)?;
    Ok(Arc::new(Repository::open_with_config(
        be,
        &raw,
        pw.as_bytes(),
    )?))
}
