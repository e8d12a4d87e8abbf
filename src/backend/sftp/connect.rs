//! Reaching an SFTP server: the SSH connection (russh) with its host key checked against a
//! `known_hosts` file, authentication (the SSH agent, or a key file), and
//! the `sftp` subsystem (russh-sftp) on top.
//!
//! Every failure here is one line naming the host and what to do: an
//! unknown or changed host key names the `known_hosts` file, a refused key
//! names the key.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, AuthResult, Handle};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh_sftp::client::RawSftpSession;

use super::url::{home_file, SftpOptions, SftpUrl};

/// Seconds to wait for the TCP connection and the SSH handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Seconds one SFTP request may take (reads and writes are pipelined, so a
/// request may wait behind a few MiB of others on a slow link).
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// What was wrong with the server's host key, for the error message.
#[derive(Debug, Clone)]
enum HostKeyProblem {
    Unknown { fingerprint: String },
    Changed { line: usize, fingerprint: String },
    Unreadable(String),
    Certificate,
}

/// The russh client handler: checks the host key, nothing else.
pub struct HostCheck {
    url: SftpUrl,
    known_hosts: PathBuf,
    problem: Arc<Mutex<Option<HostKeyProblem>>>,
}

impl client::Handler for HostCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key,
            PublicKeyOrCertificate::Certificate(_) => {
                *self.problem.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(HostKeyProblem::Certificate);
                return Ok(false);
            }
        };
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        let verdict = russh::keys::check_known_hosts_path(
            &self.url.host,
            self.url.port,
            key,
            &self.known_hosts,
        );
        let problem = match verdict {
            Ok(true) => return Ok(true),
            Ok(false) => HostKeyProblem::Unknown { fingerprint },
            Err(russh::keys::Error::KeyChanged { line }) => HostKeyProblem::Changed {
                line: file_line(&self.known_hosts, line),
                fingerprint,
            },
            Err(e) => HostKeyProblem::Unreadable(e.to_string()),
        };
        *self.problem.lock().unwrap_or_else(|p| p.into_inner()) = Some(problem);
        Ok(false)
    }
}

/// The line number in `file` of russh's `n`th entry: russh counts the
/// lines that do not start with `#` only.
fn file_line(file: &Path, n: usize) -> usize {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#'))
        .nth(n.saturating_sub(1))
        .map_or(n, |(i, _)| i + 1)
}

/// An open SFTP session and the SSH connection under it.
pub struct Connection {
    /// The SFTP requests.
    pub sftp: RawSftpSession,
    /// Extensions the server offers that the backend uses.
    pub ext: Extensions,
    /// The SSH connection (kept open; disconnected on drop of the backend).
    pub ssh: Handle<HostCheck>,
}

/// OpenSSH's SFTP extensions, as the server announced them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Extensions {
    /// `posix-rename@openssh.com`: rename over an existing file, atomically.
    pub posix_rename: bool,
    /// `hardlink@openssh.com`: link(2), which refuses an existing name.
    pub hardlink: bool,
    /// `fsync@openssh.com`: fsync(2) of an open file.
    pub fsync: bool,
    /// Largest read one request may ask for.
    pub read_len: u32,
    /// Largest write one request may carry.
    pub write_len: u32,
}

/// Connects, checks the host key, logs in and starts SFTP. Runs inside the
/// backend's tokio runtime. The error is one line without the URL (the
/// caller names it).
pub async fn connect(url: &SftpUrl, opts: &SftpOptions) -> Result<Connection, String> {
    let problem = Arc::new(Mutex::new(None));
    let handler = HostCheck {
        url: url.clone(),
        known_hosts: opts.known_hosts.clone(),
        problem: problem.clone(),
    };
    let config = Arc::new(client::Config {
        keepalive_interval: Some(Duration::from_secs(30)),
        nodelay: true,
        ..Default::default()
    });
    let hp = url.host_port();
    let addr = (url.host.as_str(), url.port);
    let connected = tokio::time::timeout(CONNECT_TIMEOUT, client::connect(config, addr, handler))
        .await
        .map_err(|_| format!("cannot connect to {hp}: timed out"))?;
    let mut ssh = match connected {
        Ok(h) => h,
        Err(e) => {
            let kh = opts.known_hosts.display();
            let found = problem.lock().unwrap_or_else(|p| p.into_inner()).take();
            return Err(match found {
                Some(HostKeyProblem::Unknown { fingerprint }) => format!(
                    "host key of {hp} ({fingerprint}) is not in {kh}: unknown host; check the fingerprint and add the key (e.g. ssh-keyscan{} {} >> {kh}), or name another file with -o sftp.known_hosts=FILE",
                    if url.port == 22 { String::new() } else { format!(" -p {}", url.port) },
                    url.host
                ),
                Some(HostKeyProblem::Changed { line, fingerprint }) => format!(
                    "host key of {hp} ({fingerprint}) does not match the one in {kh} line {line}: it changed, or someone is intercepting the connection; if the change is expected, remove that line"
                ),
                Some(HostKeyProblem::Unreadable(why)) => {
                    format!("cannot check the host key of {hp} against {kh}: {why}")
                }
                Some(HostKeyProblem::Certificate) => format!(
                    "{hp} offered a host certificate; snap checks plain host keys in {kh} only"
                ),
                None => format!("cannot connect to {hp}: {}", one_line(&e)),
            });
        }
    };
    authenticate(&mut ssh, url, opts).await?;
    let channel = ssh
        .channel_open_session()
        .await
        .map_err(|e| format!("{hp}: cannot open an SSH session channel: {}", one_line(&e)))?;
    channel.request_subsystem(true, "sftp").await.map_err(|e| {
        format!(
            "{hp}: the server refused the sftp subsystem: {}",
            one_line(&e)
        )
    })?;
    let cfg = russh_sftp::client::Config {
        request_timeout_secs: REQUEST_TIMEOUT_SECS,
        ..Default::default()
    };
    let mut sftp = RawSftpSession::new_with_config(channel.into_stream(), cfg);
    let version = sftp
        .init()
        .await
        .map_err(|e| format!("{hp}: SFTP did not start (is the sftp subsystem enabled?): {e}"))?;
    let has = |name: &str, v: &str| version.extensions.get(name).is_some_and(|x| x == v);
    let mut ext = Extensions {
        posix_rename: has("posix-rename@openssh.com", "1"),
        hardlink: has(russh_sftp::extensions::HARDLINK, "1"),
        fsync: has(russh_sftp::extensions::FSYNC, "1"),
        // What every server must accept (draft-ietf-secsh-filexfer-02).
        read_len: 32 * 1024,
        write_len: 32 * 1024,
    };
    if has(russh_sftp::extensions::LIMITS, "1") {
        if let Ok(l) = sftp.limits().await {
            let (read, write) = (l.max_read_len, l.max_write_len);
            sftp.set_limits(l.into());
            // Stay below russh-sftp's own incoming packet bound (256 KiB).
            let cap = |n: u64| n.clamp(1024, 255 * 1024) as u32;
            if read > 0 {
                ext.read_len = cap(read);
            }
            if write > 0 {
                ext.write_len = cap(write);
            }
        }
    }
    Ok(Connection { sftp, ext, ssh })
}

/// Logs in as `url.user` with the identity file of the options, or else
/// with the agent's keys and the usual key files.
async fn authenticate(
    ssh: &mut Handle<HostCheck>,
    url: &SftpUrl,
    opts: &SftpOptions,
) -> Result<(), String> {
    let who = format!("{}@{}", url.user, url.host_port());
    let rsa_hash = ssh.best_supported_rsa_hash().await.ok().flatten().flatten();
    if let Some(file) = &opts.identity {
        let key = load_key(file)?;
        let key = PrivateKeyWithHashAlg::new(Arc::new(key), rsa_hash);
        return match ssh.authenticate_publickey(url.user.clone(), key).await {
            Ok(AuthResult::Success) => Ok(()),
            Ok(AuthResult::Failure { .. }) => Err(format!(
                "{who}: the server refused the key {} (is its .pub in the server's authorized_keys?)",
                file.display()
            )),
            Err(e) => Err(format!("{who}: authentication failed: {}", one_line(&e))),
        };
    }
    let mut tried: Vec<String> = Vec::new();
    if std::env::var_os("SSH_AUTH_SOCK").is_some_and(|v| !v.is_empty()) {
        match russh::keys::agent::client::AgentClient::connect_env().await {
            Ok(mut agent) => {
                let ids = agent.request_identities().await.unwrap_or_default();
                let n = ids.len();
                for id in ids {
                    let russh::keys::agent::AgentIdentity::PublicKey { key, .. } = id else {
                        continue;
                    };
                    let hash = key.algorithm().is_rsa().then_some(rsa_hash).flatten();
                    match ssh
                        .authenticate_publickey_with(url.user.clone(), key, hash, &mut agent)
                        .await
                    {
                        Ok(AuthResult::Success) => return Ok(()),
                        Ok(AuthResult::Failure { .. }) => {}
                        Err(e) => {
                            return Err(format!(
                                "{who}: the SSH agent failed to sign: {}",
                                one_line(&e)
                            ))
                        }
                    }
                }
                tried.push(format!("{n} key(s) of the SSH agent"));
            }
            Err(e) => tried.push(format!("no SSH agent ({})", one_line(&e))),
        }
    }
    for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
        let file = home_file(&format!(".ssh/{name}"));
        if !file.exists() {
            continue;
        }
        let Ok(key) = russh::keys::load_secret_key(&file, None) else {
            tried.push(format!("{} (unreadable or encrypted)", file.display()));
            continue;
        };
        let key = PrivateKeyWithHashAlg::new(Arc::new(key), rsa_hash);
        if let Ok(AuthResult::Success) = ssh.authenticate_publickey(url.user.clone(), key).await {
            return Ok(());
        }
        tried.push(file.display().to_string());
    }
    let tried = if tried.is_empty() {
        "no SSH agent (SSH_AUTH_SOCK) and no key in ~/.ssh".to_string()
    } else {
        format!("tried {}", tried.join(", "))
    };
    Err(format!(
        "{who}: authentication failed ({tried}): load a key into ssh-agent, or give one with -o sftp.identity=FILE"
    ))
}

fn load_key(file: &Path) -> Result<russh::keys::PrivateKey, String> {
    russh::keys::load_secret_key(file, None).map_err(|e| match e {
        russh::keys::Error::KeyIsEncrypted => format!(
            "{}: the key is encrypted and snap cannot ask for its passphrase: add it to ssh-agent (ssh-add {}) and leave out -o sftp.identity",
            file.display(),
            file.display()
        ),
        e => format!("{}: cannot read the private key: {}", file.display(), one_line(&e)),
    })
}

/// An error and its causes on one line, without repeating a cause whose
/// text is already there.
pub(super) fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !t.is_empty() && !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_hosts_lines_count_comments() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("kh");
        std::fs::write(&f, "# a\nh1 k\n# b\n\nh2 k\n").unwrap();
        assert_eq!(file_line(&f, 1), 2);
        assert_eq!(file_line(&f, 3), 5);
        assert_eq!(file_line(&d.path().join("none"), 4), 4);
    }
}
