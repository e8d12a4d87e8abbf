//! Output piped into a reader that stops early (`snap ls latest | head`):
//! snap ends quietly with exit 0, it does not panic on the closed pipe.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::*;

#[test]
fn ls_into_a_reader_that_stops_early_exits_quietly() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..3000 {
        std::fs::write(src.join(format!("file-{i:05}")), i.to_string()).unwrap();
    }
    env.create(&[&src], &[]);
    for args in [&["ls", "latest"][..], &["ls", "latest", "--json"][..]] {
        let mut child = env
            .cmd()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        // The reader is gone; snap still has most of its output to write.
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {} {err}", out.status);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
