//! Telling someone how a run went: a command that gets the JSON summary on
//! stdin (`SNAP_JOB` and `SNAP_STATUS` in its environment), and a
//! healthchecks-style URL: a POST to `URL/start` when the run starts, to
//! `URL` when it succeeded and to `URL/fail` when it failed, the summary as
//! the body.
//!
//! A notification that fails never changes the job's outcome: it is
//! reported in the summary (and by the CLI as a warning).

use std::time::Duration;

use super::config::Cmd;
use super::exec::{self, Input};
use super::summary::Notification;

/// How long a ping may take.
pub const PING_TIMEOUT: Duration = Duration::from_secs(15);

/// Which ping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ping {
    /// The run started.
    Start,
    /// The run succeeded.
    Success,
    /// The run failed.
    Fail,
}

/// The URL a ping goes to.
pub fn ping_url(base: &str, ping: Ping) -> String {
    match ping {
        Ping::Start => format!("{base}/start"),
        Ping::Success => base.to_string(),
        Ping::Fail => format!("{base}/fail"),
    }
}

/// Runs the notification command with `summary` (JSON) on its stdin.
pub fn command(cmd: &Cmd, summary: &[u8], job: &str, status: &str) -> Notification {
    let env = [
        ("SNAP_JOB".to_string(), job.to_string()),
        ("SNAP_STATUS".to_string(), status.to_string()),
    ];
    let what = format!("notify.command `{}`", cmd.label());
    // Runs on the way out, also after a stop signal.
    match exec::run(cmd, &env, Input::Bytes(summary), false) {
        Ok(o) if o.ok => Notification {
            kind: "command".into(),
            ok: true,
            error: None,
        },
        Ok(o) => Notification {
            kind: "command".into(),
            ok: false,
            error: Some(o.failure(&what)),
        },
        Err(e) => Notification {
            kind: "command".into(),
            ok: false,
            error: Some(format!("{what}: {e}")),
        },
    }
}

/// POSTs `body` to the ping URL of `ping`.
pub fn ping(base: &str, ping: Ping, body: &[u8]) -> Notification {
    let url = ping_url(base, ping);
    let kind = match ping {
        Ping::Start => "url_start",
        Ping::Success | Ping::Fail => "url",
    };
    match post(&url, body) {
        Ok(()) => Notification {
            kind: kind.into(),
            ok: true,
            error: None,
        },
        Err(e) => Notification {
            kind: kind.into(),
            ok: false,
            error: Some(format!("notify.url: POST {}: {e}", redact(&url))),
        },
    }
}

/// The URL without a `user:password@` part, for messages.
fn redact(url: &str) -> String {
    crate::child::mask_command_line(&[url]).join("")
}

#[cfg(feature = "http-notify")]
fn post(url: &str, body: &[u8]) -> Result<(), String> {
    use std::sync::Arc;
    use ureq::tls::{RootCerts, TlsConfig, TlsProvider};
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .root_certs(RootCerts::PlatformVerifier)
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(PING_TIMEOUT))
        .tls_config(tls)
        .user_agent(concat!("snap/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(body)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(not(feature = "http-notify"))]
fn post(_url: &str, _body: &[u8]) -> Result<(), String> {
    Err("this snap was built without HTTP notifications (feature `http-notify`)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_urls() {
        assert_eq!(ping_url("https://hc/u", Ping::Start), "https://hc/u/start");
        assert_eq!(ping_url("https://hc/u", Ping::Success), "https://hc/u");
        assert_eq!(ping_url("https://hc/u", Ping::Fail), "https://hc/u/fail");
        assert_eq!(redact("https://a:secret@hc/u"), "https://a:***@hc/u");
    }
}
