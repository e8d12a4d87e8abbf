//! A throw-away OpenSSH server for the SFTP tests: `/usr/sbin/sshd -D -e`
//! on 127.0.0.1 at a free port, with its own host key and an
//! `authorized_keys` of a fresh client key (both made by ssh-keygen in a
//! temp dir), `Subsystem sftp internal-sftp`. Killed when dropped.
//!
//! Beside it: a `home/` whose `.ssh/` holds a `known_hosts` naming the
//! server and the client key as `id_ed25519` (snap's defaults, with
//! `HOME` pointed there), and a second key the server does not know.
//!
//! Without /usr/sbin/sshd (Debian's `openssh-server`) the tests are skipped
//! loudly, unless `CI` is set: there they fail.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";

/// A running sshd and the files around it.
pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// The login name (the user running the tests).
    pub user: String,
    /// `HOME` for snap: `.ssh/known_hosts` and `.ssh/id_ed25519` inside.
    pub home: PathBuf,
    /// The client key the server accepts (also `home/.ssh/id_ed25519`).
    pub key: PathBuf,
    /// A key the server does not accept.
    pub other_key: PathBuf,
    /// `known_hosts` with the server's key.
    pub known_hosts: PathBuf,
    child: Child,
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "snap-test", "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen runs");
    assert!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts a server, or `None` (after a loud message) when sshd is missing
/// outside CI.
pub fn start() -> Option<Sshd> {
    if !Path::new(SSHD).exists() {
        let why = format!("{SSHD} is missing (apt-get install openssh-server)");
        if in_ci() {
            panic!("CI is set but the SFTP tests cannot run: {why}");
        }
        eprintln!(
            "\n################################################\n\
             SKIPPING SFTP TESTS: {why}\n\
             ################################################\n"
        );
        return None;
    }
    // sshd started as root wants its privilege separation directory.
    if unsafe { libc::geteuid() } == 0 {
        let _ = std::fs::create_dir_all("/run/sshd");
    }
    let dir = tempfile::Builder::new()
        .prefix("snap-sshd-")
        .tempdir()
        .unwrap();
    let d = dir.path();
    let host_key = d.join("host_key");
    let key = d.join("client_key");
    let other_key = d.join("other_key");
    for k in [&host_key, &key, &other_key] {
        keygen(k);
    }
    std::fs::copy(key.with_extension("pub"), d.join("authorized_keys")).unwrap();
    let home = d.join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    std::fs::copy(&key, home.join(".ssh/id_ed25519")).unwrap();
    let user = uzers::get_current_username()
        .and_then(|u| u.into_string().ok())
        .expect("a user name");
    let host_pub = std::fs::read_to_string(host_key.with_extension("pub")).unwrap();
    let host_pub: Vec<&str> = host_pub.split_whitespace().take(2).collect();
    let mut last_err = String::new();
    for _ in 0..5 {
        let port = free_port();
        let config = d.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile none\n\
                 AuthorizedKeysFile {ak}\nStrictModes no\nUsePAM no\nPermitRootLogin yes\n\
                 PubkeyAuthentication yes\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nAllowUsers {user}\n\
                 Subsystem sftp internal-sftp\nLogLevel ERROR\n",
                hk = host_key.display(),
                ak = d.join("authorized_keys").display(),
            ),
        )
        .unwrap();
        let known_hosts = d.join("known_hosts");
        std::fs::write(
            &known_hosts,
            format!("[127.0.0.1]:{port} {}\n", host_pub.join(" ")),
        )
        .unwrap();
        std::fs::copy(&known_hosts, home.join(".ssh/known_hosts")).unwrap();
        let mut child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("sshd.log")).unwrap())
            .spawn()
            .expect("sshd starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let err = std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default();
                last_err = format!("sshd exited ({status}): {err}");
                break;
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(Sshd {
                    dir,
                    port,
                    user,
                    home,
                    key,
                    other_key,
                    known_hosts,
                    child,
                });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                last_err = "sshd did not listen within 10 s".into();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("cannot start sshd: {last_err}");
}

impl Sshd {
    /// `sftp://user@127.0.0.1:PORT/` + `path` (absolute: two slashes).
    pub fn url(&self, path: &Path) -> String {
        format!(
            "sftp://{}@127.0.0.1:{}/{}",
            self.user,
            self.port,
            path.display()
        )
    }

    /// Backend options for opening the server from the test process.
    pub fn options(&self) -> Vec<(String, String)> {
        vec![
            (
                "sftp.known_hosts".into(),
                self.known_hosts.display().to_string(),
            ),
            ("sftp.identity".into(), self.key.display().to_string()),
        ]
    }

    /// Environment for `snap` runs: `HOME` with the defaults, no agent.
    pub fn vars(&self) -> Vec<(String, String)> {
        vec![
            ("HOME".into(), self.home.display().to_string()),
            ("SSH_AUTH_SOCK".into(), String::new()),
        ]
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
