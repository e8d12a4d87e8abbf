//! The `sftp://[user@]host[:port]/path` URL and the `-o sftp.*` options.

use std::path::PathBuf;

/// The parts of `sftp://[user@]host[:port]/path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SftpUrl {
    /// Login name (the local user's name when the URL has none).
    pub user: String,
    /// Host name or address (an IPv6 address without its brackets).
    pub host: String,
    /// TCP port (22 unless given).
    pub port: u16,
    /// Repository directory on the server. As in restic, one slash after the
    /// host starts a path relative to the login directory, two an absolute
    /// path: `sftp://h/repo` is `repo`, `sftp://h//srv/repo` is `/srv/repo`.
    pub path: String,
}

impl SftpUrl {
    /// Parses an `sftp://` URL; the error says what is wrong with it.
    pub fn parse(url: &str) -> Result<SftpUrl, String> {
        let rest = url
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case("sftp://"))
            .map(|_| &url[7..])
            .ok_or("not an sftp:// URL")?;
        let (auth, path) = rest
            .split_once('/')
            .ok_or("no repository path (sftp://user@host/path, or //path for an absolute one)")?;
        let path = path.trim_end_matches('/');
        if path.is_empty() || path == "/" {
            return Err(
                "no repository path (sftp://user@host/path, or //path for an absolute one)".into(),
            );
        }
        let (user, hostport) = match auth.rsplit_once('@') {
            Some((u, h)) if !u.is_empty() => (u.to_string(), h),
            Some(_) => return Err("empty user name before '@'".into()),
            None => (local_user(), auth),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, tail) = v6.split_once(']').ok_or("unclosed '[' in the host")?;
            (h, tail.strip_prefix(':'))
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err("no host name".into());
        }
        let port = match port {
            None => 22,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("bad port {p:?}"))?,
        };
        Ok(SftpUrl {
            user,
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }

    /// `host`, or `[host]:port` off port 22: the spelling of `known_hosts`
    /// and of messages.
    pub fn host_port(&self) -> String {
        if self.port == 22 {
            self.host.clone()
        } else {
            format!("[{}]:{}", self.host, self.port)
        }
    }
}

fn local_user() -> String {
    uzers::get_current_username()
        .and_then(|n| n.into_string().ok())
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "root".into())
}

pub(super) fn home_file(rel: &str) -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
        .join(rel)
}

/// The `-o sftp.*` options.
#[derive(Clone, Debug)]
pub struct SftpOptions {
    /// `sftp.known_hosts`: the file of trusted host keys
    /// (`$HOME/.ssh/known_hosts`).
    pub known_hosts: PathBuf,
    /// `sftp.identity`: the only private key to offer; without it, the
    /// agent's keys and then `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`.
    pub identity: Option<PathBuf>,
}

impl SftpOptions {
    /// Picks the `sftp.*` keys out of all `-o` pairs (the others are for
    /// other backends); an unknown `sftp.` key is an error.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<SftpOptions, String> {
        let mut o = SftpOptions {
            known_hosts: home_file(".ssh/known_hosts"),
            identity: None,
        };
        for (k, v) in pairs {
            match k.as_str() {
                "sftp.known_hosts" => o.known_hosts = PathBuf::from(v),
                "sftp.identity" => o.identity = Some(PathBuf::from(v)),
                k if k.starts_with("sftp.") => {
                    return Err(format!(
                        "unknown --option {k:?} (sftp takes sftp.known_hosts and sftp.identity)"
                    ))
                }
                _ => {}
            }
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn urls() {
        let u = SftpUrl::parse("sftp://alice@example.org:2222/backups/repo/").unwrap();
        assert_eq!(
            (u.user.as_str(), u.host.as_str(), u.port, u.path.as_str()),
            ("alice", "example.org", 2222, "backups/repo")
        );
        assert_eq!(u.host_port(), "[example.org]:2222");
        let u = SftpUrl::parse("sftp://bob@[::1]//srv/repo").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 22, "/srv/repo")
        );
        assert_eq!(u.host_port(), "::1");
        let u = SftpUrl::parse("sftp://h/r").unwrap();
        assert!(!u.user.is_empty());
        for bad in [
            "sftp://host",
            "sftp://host/",
            "sftp://host//",
            "sftp://@host/r",
            "sftp://host:x/r",
            "sftp://host:0/r",
            "sftp://[::1/r",
            "sftp:///r",
        ] {
            assert!(SftpUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn options() {
        let o = SftpOptions::from_pairs(&[
            ("sftp.identity".into(), "/k".into()),
            ("region".into(), "x".into()),
        ])
        .unwrap();
        assert_eq!(o.identity.as_deref(), Some(Path::new("/k")));
        assert!(o.known_hosts.ends_with(".ssh/known_hosts"));
        assert!(SftpOptions::from_pairs(&[("sftp.port".into(), "1".into())]).is_err());
    }
}
