//! A create-if-absent whose response is lost on the way back: the object
//! was written, the client retries and hears "already exists". snap must
//! recognise its own object (format-spec/07, L6) instead of leaving an
//! orphan lock or reporting a committed snapshot as failed.
//!
//! A small HTTP proxy on loopback sits between snap and the S3 server and
//! swallows the answer to the first PUT of a chosen kind of object.

mod s3common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use s3common::*;

/// Reads one HTTP request (headers and a Content-Length body).
fn read_request(r: &mut BufReader<TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let end = line == "\r\n";
        head.push_str(&line);
        if end {
            break;
        }
    }
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some((head, body))
}

/// Forwards each request on its own upstream connection; the answer to the
/// first `PUT` whose path contains `drop_path` is swallowed (the client's
/// connection is closed instead).
fn proxy(upstream: String, drop_path: &'static str) -> (String, Arc<AtomicBool>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", l.local_addr().unwrap());
    let dropped = Arc::new(AtomicBool::new(false));
    let d = dropped.clone();
    std::thread::spawn(move || {
        for client in l.incoming() {
            let Ok(client) = client else { return };
            let (up, d) = (upstream.clone(), d.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let mut client = client;
                if let Some((head, body)) = read_request(&mut reader) {
                    let first_line = head.lines().next().unwrap_or("").to_string();
                    let head: String = head
                        .split_inclusive("\r\n")
                        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
                        .collect::<String>()
                        .trim_end_matches("\r\n")
                        .to_string()
                        + "\r\nConnection: close\r\n\r\n";
                    let mut u = TcpStream::connect(&up).unwrap();
                    u.write_all(head.as_bytes()).unwrap();
                    u.write_all(&body).unwrap();
                    let mut resp = Vec::new();
                    let _ = u.read_to_end(&mut resp);
                    let is_target =
                        first_line.starts_with("PUT ") && first_line.contains(drop_path);
                    if is_target && !d.swap(true, Ordering::SeqCst) {
                        // Written upstream; the client never hears of it.
                        let _ = client.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                    let _ = client.write_all(&resp);
                    let _ = client.shutdown(std::net::Shutdown::Both);
                }
            });
        }
    });
    (addr, dropped)
}

fn run_with_lost_response(drop_path: &'static str) {
    let Some(s3) = s3() else { return };
    let upstream = s3
        .endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let repo = s3.url("lost-response");
    init(&cache, &repo);
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), b"some data that is backed up").unwrap();
    let (endpoint, dropped) = proxy(upstream, drop_path);
    let out = snap(&cache)
        .env("AWS_ENDPOINT_URL", &endpoint)
        .args(["--repo", &repo, "-o", &format!("endpoint={endpoint}")])
        .args(["-o", "retries=3", "create"])
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        dropped.load(Ordering::SeqCst),
        "the proxy saw no PUT of {drop_path}"
    );
    assert!(
        out.status.success(),
        "create failed after a lost response to its {drop_path} write:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Exactly one snapshot, no lock left behind, and it restores.
    let v: serde_json::Value = serde_json::from_slice(
        &ok(snap(&cache).args(["--repo", &repo, "snapshots", "--json"])).stdout,
    )
    .unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    let locks = ok(snap(&cache).args(["--repo", &repo, "unlock", "--json"]));
    let l: serde_json::Value = serde_json::from_slice(&locks.stdout).unwrap();
    assert!(
        l["locks"].as_array().unwrap().is_empty(),
        "orphan lock: {l}"
    );
    let to = tmp.path().join("out");
    ok(snap(&cache)
        .args(["--repo", &repo, "restore", "latest", "--to"])
        .arg(&to));
}

#[test]
fn lost_response_to_a_lock_write_leaves_no_orphan_lock() {
    run_with_lost_response("/locks/");
}

#[test]
fn lost_response_to_the_snapshot_write_is_not_reported_as_a_failure() {
    run_with_lost_response("/snapshots/");
}
