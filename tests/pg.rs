//! Database dumps against a real PostgreSQL (Debian's `postgresql`
//! package): a private cluster on a Unix socket in a temp dir, dumped into
//! snapshots with `--from-command`, restored with `--to-command` and with
//! `snap dump | psql`, and failing dumps (wrong database, killed, timed
//! out) that must commit nothing.
//!
//! Without PostgreSQL binaries the tests skip loudly, unless `CI` is set:
//! then they fail.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const SNAP: &str = env!("CARGO_BIN_EXE_snap");
const PASSWORD: &str = "pg test password";

fn pg_bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| rd.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    // Highest major version first.
    dirs.sort_by_key(|d| {
        let v = d
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str());
        std::cmp::Reverse(v.and_then(|v| v.parse::<u32>().ok()).unwrap_or(0))
    });
    dirs.push(PathBuf::from("/usr/local/bin"));
    dirs.push(PathBuf::from("/usr/bin"));
    dirs.into_iter().find(|d| {
        ["initdb", "pg_ctl", "postgres", "pg_dump", "psql"]
            .iter()
            .all(|b| d.join(b).is_file())
    })
}

/// The PostgreSQL bin dir, or `None` after a loud skip message (panics in CI).
fn require_pg(test: &str) -> Option<PathBuf> {
    match pg_bin_dir() {
        Some(d) => Some(d),
        None if std::env::var_os("CI").is_some() => {
            panic!("{test}: PostgreSQL binaries (initdb, pg_ctl, postgres, pg_dump, psql) not found, and CI is set")
        }
        None => {
            eprintln!(
                "\n*** SKIPPING {test}: PostgreSQL binaries not found \
                 (apt-get install postgresql); set CI=1 to make this a failure ***\n"
            );
            None
        }
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A private PostgreSQL cluster listening only on a Unix socket.
struct Pg {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl Pg {
    fn start(bin: PathBuf) -> Pg {
        let dir = tempfile::Builder::new()
            .prefix("snap-pg")
            .tempdir()
            .unwrap();
        if is_root() {
            // postgres refuses to run as root: the server runs as `postgres`,
            // which must be able to write the temp dir.
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            let st = Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(st.success(), "chown postgres failed");
        }
        // The socket file name carries the port; no TCP is opened, so any
        // number works without clashing with another test.
        let port = 20000 + (std::process::id() % 20000) as u16;
        let pg = Pg { bin, dir, port };
        let data = pg.dir.path().join("data");
        pg.as_server(&[
            "initdb",
            "-D",
            data.to_str().unwrap(),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]);
        let opts = format!(
            "-k {} -p {} -c listen_addresses='' -c fsync=off -c full_page_writes=off",
            pg.dir.path().display(),
            pg.port
        );
        pg.as_server(&[
            "pg_ctl",
            "-D",
            data.to_str().unwrap(),
            "-l",
            pg.dir.path().join("server.log").to_str().unwrap(),
            "-o",
            &opts,
            "-w",
            "-t",
            "60",
            "start",
        ]);
        pg
    }

    /// Runs a server-side binary, as `postgres` when we are root.
    fn as_server(&self, args: &[&str]) {
        let prog = self.bin.join(args[0]);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&prog);
            c
        } else {
            Command::new(&prog)
        };
        let out = cmd
            .args(&args[1..])
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?} failed: {}\n{}\nserver log: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        );
    }

    /// Environment that points libpq clients at this cluster.
    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("PGHOST".into(), self.dir.path().display().to_string()),
            ("PGPORT".into(), self.port.to_string()),
            ("PGUSER".into(), "postgres".into()),
        ]
    }

    fn client(&self, prog: &str) -> Command {
        let mut c = Command::new(self.bin.join(prog));
        c.envs(self.env());
        c
    }

    fn sql(&self, db: &str, sql: &str) -> String {
        let out = self
            .client("psql")
            .args([
                "-X",
                "-q",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                db,
                "-c",
                sql,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn bin_path_env(&self) -> String {
        format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let prog = self.bin.join("pg_ctl");
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&prog);
            c
        } else {
            Command::new(&prog)
        };
        let _ = cmd
            .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
    }
}

/// Test data with awkward values: quotes, tabs, newlines, Unicode, NULLs,
/// bytea, arrays, a sequence and a view.
const SCHEMA: &str = "
CREATE TABLE items (
    id integer PRIMARY KEY,
    name text NOT NULL,
    price numeric(12,2),
    tags text[],
    payload bytea,
    created timestamptz NOT NULL
);
INSERT INTO items
SELECT i,
       'item ' || i || E' \\'quoted\\' \\t tab \\n newline ü€',
       CASE WHEN i % 7 = 0 THEN NULL ELSE i * 1.25 END,
       ARRAY['t' || (i % 5), 'x,y'],
       decode(md5(i::text), 'hex'),
       timestamptz '2026-01-01 00:00:00+00' + i * interval '1 minute'
FROM generate_series(1, 5000) AS i;
CREATE TABLE orders (id bigserial PRIMARY KEY, item integer REFERENCES items(id), qty integer);
INSERT INTO orders (item, qty) SELECT (i % 5000) + 1, i % 13 FROM generate_series(1, 3000) AS i;
CREATE VIEW big_orders AS SELECT * FROM orders WHERE qty > 10;
";

/// Everything the restored database must reproduce, as text.
fn contents(pg: &Pg, db: &str) -> String {
    let mut s = pg.sql(
        db,
        "SELECT id, name, price, tags, encode(payload, 'hex'), created FROM items ORDER BY id",
    );
    s += &pg.sql(db, "SELECT id, item, qty FROM orders ORDER BY id");
    s += &pg.sql(db, "SELECT count(*) FROM big_orders");
    s += &pg.sql(db, "SELECT last_value FROM orders_id_seq");
    s
}

struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new() -> Repo {
        let r = Repo {
            dir: tempfile::tempdir().unwrap(),
        };
        let out = r.snap(&["init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1"]);
        assert!(out.status.success(), "init: {}", stderr(&out));
        r
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(SNAP);
        c.arg("--repo")
            .arg(self.path())
            .args(args)
            .env("SNAP_PASSWORD", PASSWORD)
            .env_remove("SNAP_PASSWORD_FILE")
            .env_remove("SNAP_PASSWORD_COMMAND");
        c
    }

    fn snap(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn snapshot_files(&self) -> usize {
        std::fs::read_dir(self.path().join("snapshots"))
            .map(|rd| rd.count())
            .unwrap_or(0)
    }

    fn snapshots_json(&self) -> serde_json::Value {
        let out = self.snap(&["--json", "snapshots"]);
        assert!(out.status.success(), "snapshots: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Waits for `child` at most `limit`, killing it (and failing) after that.
fn wait_limit(mut child: Child, limit: Duration, what: &str) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what} still running after {limit:?}; stderr: {}",
                stderr(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Pids of the processes whose parent is `ppid` (from /proc).
fn children_of(ppid: u32) -> Vec<u32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command: state, ppid, ...
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        if rest.split(' ').nth(1).and_then(|p| p.parse().ok()) == Some(ppid) {
            v.push(pid);
        }
    }
    v
}

/// A psql session holding an exclusive lock on `items`, so pg_dump blocks.
struct Locker {
    child: Child,
}

impl Locker {
    fn lock(pg: &Pg, db: &str) -> Locker {
        let mut child = pg
            .client("psql")
            .args(["-X", "-q", "-At", "-d", db])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(b"BEGIN;\nLOCK TABLE items IN ACCESS EXCLUSIVE MODE;\nSELECT 'locked';\n")
            .unwrap();
        stdin.flush().unwrap();
        // Keep stdin open (leaked into the child handle) so the session stays.
        child.stdin = Some(stdin);
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked");
        Locker { child }
    }
}

impl Drop for Locker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn setup() -> Option<(Pg, Repo)> {
    let bin = require_pg(std::thread::current().name().unwrap_or("pg test"))?;
    let pg = Pg::start(bin);
    pg.sql("postgres", "CREATE DATABASE apptest");
    pg.sql("apptest", SCHEMA);
    Some((pg, Repo::new()))
}

#[test]
fn pg_dump_round_trip_via_to_command_and_dump_pipe() {
    let Some((pg, repo)) = setup() else { return };
    let before = contents(&pg, "apptest");
    assert!(before.lines().count() > 8000, "test data was not created");

    // Files and two dumps in one snapshot. The client finds the server only
    // through PGHOST/PGPORT/PGUSER: the environment must pass through.
    let files = repo.dir.path().join("etc-app");
    std::fs::create_dir(&files).unwrap();
    std::fs::write(files.join("app.conf"), "db = apptest\n").unwrap();
    let out = repo
        .cmd(&[
            "create",
            files.to_str().unwrap(),
            "--from-command",
            "db=pg_dump -w --no-owner apptest",
            "--from-command",
            "db.custom=pg_dump -w -Fc -Z0 apptest",
            "--from-shell",
            "globals=pg_dumpall -w --globals-only | grep -v '^--'",
        ])
        .env("PATH", pg.bin_path_env())
        .envs(pg.env())
        .output()
        .unwrap();
    assert!(out.status.success(), "create failed: {}", stderr(&out));

    // snap snapshots shows the dumps with command, size and exit status.
    let snaps = repo.snapshots_json();
    let snaps = snaps.as_array().unwrap();
    assert_eq!(snaps.len(), 1);
    let streams = snaps[0]["summary"]["streams"].as_array().unwrap();
    let names: Vec<&str> = streams
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["db", "db.custom", "globals"]);
    assert_eq!(streams[0]["command"], "pg_dump -w --no-owner apptest");
    assert!(streams.iter().all(|s| s["exit_code"] == 0));
    assert!(streams[0]["bytes"].as_u64().unwrap() > 100_000);
    let human = repo.snap(&["snapshots"]);
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(
        human.contains("stream db ")
            && human.contains("from `pg_dump -w --no-owner apptest`, exit 0"),
        "{human}"
    );
    // ... and so does snap ls, with the file in the snapshot.
    let ls = repo.snap(&["ls", "latest", "/.snap-streams"]);
    let ls = String::from_utf8_lossy(&ls.stdout);
    assert!(
        ls.contains("[from `pg_dump -w -Fc -Z0 apptest`, exit 0]"),
        "{ls}"
    );
    let ls_all = repo.snap(&["ls", "latest"]);
    assert!(String::from_utf8_lossy(&ls_all.stdout).contains("app.conf"));

    pg.sql("postgres", "DROP DATABASE apptest");

    // 1. restore --to-command psql (psql stops on the first error).
    pg.sql("postgres", "CREATE DATABASE restored1");
    let out = repo
        .cmd(&[
            "restore",
            "latest",
            "--include",
            "db",
            "--to-command",
            "psql -X -q -v ON_ERROR_STOP=1 -d restored1 >/dev/null",
        ])
        .env("PATH", pg.bin_path_env())
        .envs(pg.env())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "restore --to-command: {}",
        stderr(&out)
    );
    assert_eq!(contents(&pg, "restored1"), before, "restored1 differs");

    // 2. snap dump | psql, both ends checked.
    pg.sql("postgres", "CREATE DATABASE restored2");
    let mut dump = repo
        .cmd(&["dump", "latest", "db"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let psql = pg
        .client("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "restored2"])
        .stdin(Stdio::from(dump.stdout.take().unwrap()))
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let dump_out = dump.wait_with_output().unwrap();
    assert!(
        dump_out.status.success(),
        "snap dump: {}",
        stderr(&dump_out)
    );
    assert!(psql.status.success(), "psql: {}", stderr(&psql));
    assert_eq!(contents(&pg, "restored2"), before, "restored2 differs");

    // 3. The custom-format dump restores with pg_restore.
    pg.sql("postgres", "CREATE DATABASE restored3");
    let out = repo
        .cmd(&[
            "restore",
            "latest",
            "--include",
            "db.custom",
            "--to-command",
            "pg_restore --exit-on-error --no-owner -d restored3",
        ])
        .env("PATH", pg.bin_path_env())
        .envs(pg.env())
        .output()
        .unwrap();
    assert!(out.status.success(), "pg_restore: {}", stderr(&out));
    assert_eq!(contents(&pg, "restored3"), before, "restored3 differs");

    // A restore command that fails is a failed restore, not a broken pipe.
    let out = repo
        .cmd(&[
            "restore",
            "latest",
            "--include",
            "db",
            "--to-command",
            "psql -X -q -v ON_ERROR_STOP=1 -d no_such_database",
        ])
        .env("PATH", pg.bin_path_env())
        .envs(pg.env())
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "restore into a missing database succeeded"
    );
    assert!(stderr(&out).contains("--to-command"), "{}", stderr(&out));

    let check = repo.snap(&["check", "--read-data"]);
    assert!(check.status.success(), "check: {}", stderr(&check));
}

#[test]
fn pg_dump_of_missing_database_commits_nothing() {
    let Some((pg, repo)) = setup() else { return };
    let files = repo.dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    std::fs::write(files.join("a"), "a").unwrap();
    let out = repo
        .cmd(&[
            "create",
            files.to_str().unwrap(),
            "--from-command",
            "good=pg_dump -w apptest",
            "--from-command",
            "db=pg_dump -w no_such_db",
        ])
        .env("PATH", pg.bin_path_env())
        .envs(pg.env())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("stream db") && err.contains("exited with status 1"),
        "{err}"
    );
    assert!(
        err.contains("no_such_db"),
        "pg_dump's stderr not shown: {err}"
    );
    assert!(err.contains("no snapshot saved"), "{err}");
    assert_eq!(repo.snapshot_files(), 0);
    assert_eq!(repo.snapshots_json().as_array().unwrap().len(), 0);
}

#[test]
fn pg_dump_killed_by_a_signal_commits_nothing() {
    let Some((pg, repo)) = setup() else { return };
    // pg_dump blocks on the lock, so it is surely mid-dump when killed.
    let locker = Locker::lock(&pg, "apptest");
    let child = repo
        .cmd(&["create", "--from-command", "db=pg_dump -w apptest"])
        .env("PATH", pg.bin_path_env())
        .envs(pg.env())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let snap_pid = child.id();
    let start = Instant::now();
    let dumper = loop {
        let kids = children_of(snap_pid);
        if let Some(&k) = kids.first() {
            let comm = std::fs::read_to_string(format!("/proc/{k}/comm")).unwrap_or_default();
            if comm.trim() == "pg_dump" {
                break k;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "pg_dump never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: plain syscall on a pid we just found as our grandchild.
    assert_eq!(unsafe { libc::kill(dumper as i32, libc::SIGKILL) }, 0);
    let out = wait_limit(child, Duration::from_secs(60), "snap create");
    drop(locker);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("killed by signal 9"), "{err}");
    assert_eq!(repo.snapshot_files(), 0);
}

#[test]
fn pg_dump_timeout_kills_the_whole_pipeline_and_commits_nothing() {
    let Some((pg, repo)) = setup() else { return };
    let locker = Locker::lock(&pg, "apptest");
    // Through a shell pipeline: killing only `sh` would leave pg_dump and
    // gzip holding the pipe, and create would hang.
    let started = Instant::now();
    let child = repo
        .cmd(&[
            "create",
            "--command-timeout",
            "2s",
            "--from-shell",
            "db=pg_dump -w apptest | gzip",
        ])
        .env("PATH", pg.bin_path_env())
        .envs(pg.env())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_limit(
        child,
        Duration::from_secs(60),
        "snap create --command-timeout",
    );
    let took = started.elapsed();
    drop(locker);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("timed out after 2s"), "{err}");
    assert!(
        took >= Duration::from_secs(2),
        "returned before the timeout: {took:?}"
    );
    assert_eq!(repo.snapshot_files(), 0);
    // No pg_dump left behind: its server backend goes away once the lock
    // is released and it finds its client gone.
    let start = Instant::now();
    loop {
        let left = pg.sql(
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump'",
        );
        if left.trim() == "0" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "pg_dump still connected after the timeout"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `snap run` of a job with a real pg_dump, and its drill loading the dump
/// into a scratch database: the job's whole point, end to end.
#[test]
fn pg_job_dumps_and_its_drill_loads_the_dump_into_a_scratch_database() {
    let Some((pg, repo)) = setup() else { return };
    let dir = repo.dir.path();
    let files = dir.join("etc-app");
    std::fs::create_dir(&files).unwrap();
    std::fs::write(files.join("app.conf"), "db = apptest\n").unwrap();
    std::fs::write(dir.join("pw"), format!("{PASSWORD}\n")).unwrap();
    let counted = dir.join("counted");
    let write_config = |load_into: &str| {
        let drill = format!(
            "createdb -w -T template0 drill && psql -X -q -w -v ON_ERROR_STOP=1 -d {load_into} && \
             psql -X -w -At -d drill -c 'SELECT count(*) FROM items' > {c}; s=$?; dropdb -w --if-exists drill; exit $s",
            c = counted.display()
        );
        let text = format!(
            "[repositories.local]\npath = {repo:?}\npassword_file = {pw:?}\n\n\
             [jobs.app]\npaths = [{files:?}]\n\
             dumps = [ {{ name = \"apptest.sql\", command = [\"pg_dump\", \"-w\", \"--no-owner\", \"apptest\"] }} ]\n\
             drill = {{ sample = \"100%\", dump_command = {drill:?} }}\n",
            repo = repo.path().display().to_string(),
            pw = dir.join("pw").display().to_string(),
            files = files.display().to_string(),
        );
        std::fs::write(dir.join("snap.toml"), text).unwrap();
    };
    let run = || {
        let out = Command::new(SNAP)
            .args(["--json", "run", "app", "--config"])
            .arg(dir.join("snap.toml"))
            .env("SNAP_CACHE_DIR", dir.join("cache"))
            .env_remove("SNAP_PASSWORD")
            .env("PATH", pg.bin_path_env())
            .envs(pg.env())
            .output()
            .unwrap();
        let s: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
        (out.status.code(), s)
    };
    write_config("drill");
    let (c, s) = run();
    assert_eq!(c, Some(0), "{s:#}");
    let drill = &s["steps"][1];
    assert_eq!(drill["step"], "drill");
    assert_eq!(drill["detail"]["dumps"][0]["name"], "apptest.sql");
    assert_eq!(drill["detail"]["dumps"][0]["ok"], true);
    // The scratch database held what the live one holds.
    assert_eq!(std::fs::read_to_string(&counted).unwrap().trim(), "5000");
    assert_eq!(
        pg.sql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'drill'"
        )
        .trim(),
        "0",
        "the scratch database was left behind"
    );

    // Loading into a database that already has the tables fails: the
    // drill fails the job, and the snapshot is kept.
    write_config("apptest");
    let (c, s) = run();
    assert_eq!(c, Some(20), "{s:#}");
    assert_eq!(s["failed_step"], "drill");
    let err = s["error"].as_str().unwrap();
    assert!(
        err.contains("dump apptest.sql") && err.contains("already exists"),
        "{err}"
    );
    assert!(err.contains("is saved and kept"), "{err}");
    assert_eq!(repo.snapshots_json().as_array().unwrap().len(), 2);
}
