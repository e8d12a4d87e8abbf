//! A job whose off-site copy is on a real S3 server on 127.0.0.1 (the
//! loopback server of tests/s3common): the repository's `options` from the
//! configuration, credentials from the environment, the new snapshot
//! synced, and restorable from the remote.

#[path = "s3common/mod.rs"]
mod common;

use common::*;

#[test]
fn a_job_syncs_its_snapshot_to_an_s3_remote() {
    let Some(s) = s3() else { return };
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let src = t.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.txt"), "to the cloud\n").unwrap();
    let local = t.path().join("repo");
    init(&cache, local.to_str().unwrap());
    std::fs::write(t.path().join("pw"), format!("{PASSWORD}\n")).unwrap();
    let url = s.url("job");
    let config = t.path().join("snap.toml");
    std::fs::write(
        &config,
        format!(
            "[repositories.local]\npath = {local:?}\npassword_file = {pw:?}\n\n\
             [repositories.offsite]\nurl = {url:?}\noptions = {{ endpoint = {ep:?}, allow_http = true, region = \"us-east-1\" }}\n\n\
             [jobs.app]\npaths = [{src:?}]\nrepository = \"local\"\nsync_to = [\"offsite\"]\n\
             dumps = [ {{ name = \"db.sql\", command = \"echo 'SELECT 1;'\" }} ]\n",
            local = local.display().to_string(),
            pw = t.path().join("pw").display().to_string(),
            ep = s.endpoint,
            src = src.display().to_string(),
        ),
    )
    .unwrap();
    // The endpoint comes from the configuration only.
    let mut run = snap(&cache);
    run.env_remove("SNAP_PASSWORD")
        .env_remove("AWS_ENDPOINT_URL")
        .args(["--json", "run", "app", "--config"])
        .arg(&config);
    let out = ok(&mut run);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["status"], "success", "{summary:#}");
    let sync = &summary["steps"][1];
    assert_eq!(sync["target"], "offsite");
    assert_eq!(sync["detail"]["snapshots_sent"], 1, "{sync:#}");
    assert_eq!(sync["detail"]["initialized"], true, "{sync:#}");

    // The remote copy restores the dump.
    let out = ok(snap(&cache).args(["--repo", &url, "dump", "latest", "db.sql"]));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "SELECT 1;\n");
}
