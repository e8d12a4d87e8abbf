//! Human and JSON output of the command reports.

use serde::Serialize;

use crate::commands::check::CheckReport;
use crate::commands::create::CreateReport;
use crate::commands::ls::LsEntry;
use crate::commands::restore::RestoreReport;
use crate::commands::retention::GroupKey;
use crate::commands::snapshots::{format_time, SnapshotRow, SnapshotsOptions, SnapshotsReport};
use crate::repository::blobs::IndexSync;
use crate::repository::Selected;

/// Prints reports as text or JSON.
pub struct Printer {
    pub json: bool,
    pub quiet: bool,
    /// Progress and verbose lines of the long commands.
    pub display: super::progress::Display,
}

/// Bytes as a short human figure.
pub fn human(n: u64) -> String {
    const U: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut f = n as f64;
    let mut i = 0;
    while f >= 1024.0 && i < U.len() - 1 {
        f /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{f:.2} {}", U[i])
    }
}

impl Printer {
    /// Prints a report as one JSON line; after status lines (`--json
    /// --progress`) it carries `"message_type":"summary"`.
    pub(super) fn emit_json<T: Serialize>(&self, v: &T) {
        if self.display.json_stream() {
            let mut v = serde_json::to_value(v).expect("reports serialize");
            if let Some(o) = v.as_object_mut() {
                o.insert("message_type".into(), "summary".into());
            }
            say!("{v}");
        } else {
            say!("{}", serde_json::to_string(v).expect("reports serialize"));
        }
    }

    /// Starts the progress display of a long command (items are `unit`).
    pub fn begin(&self, unit: &'static str) -> super::progress::Session {
        super::progress::begin(&self.display, unit)
    }

    /// A warning on stderr (printed with --quiet too: it says something
    /// the user must know).
    pub fn warn(&self, msg: &str) {
        eprintln!("warning: {msg}");
    }

    /// Says which snapshot a selector picked (stderr, unless --quiet), and
    /// every warning about the choice. With --json the choice goes into the
    /// report instead (`in_json`), when the command's report can hold it.
    pub fn selected(&self, s: &Selected, in_json: bool) {
        for w in &s.warnings {
            self.warn(w);
        }
        if self.quiet || (self.json && in_json) {
            return;
        }
        let sn = &s.snapshot;
        eprintln!(
            "using snapshot {} ({}, host {}, paths {}{})",
            s.id.short(),
            format_time(sn.time_ns),
            sn.host,
            sn.paths.join(" "),
            if sn.tags.is_empty() {
                String::new()
            } else {
                format!(", tags {}", sn.tags.join(","))
            }
        );
    }

    /// The JSON description of a picked snapshot.
    pub fn selected_json(s: &Selected) -> serde_json::Value {
        serde_json::json!({
            "id": s.id.to_hex(),
            "short_id": s.id.short(),
            "time": format_time(s.snapshot.time_ns),
            "host": s.snapshot.host,
            "paths": s.snapshot.paths,
            "tags": s.snapshot.tags,
        })
    }

    /// A single line, or its JSON value.
    pub fn line(&self, text: &str, json: &serde_json::Value) {
        if self.json {
            self.emit_json(json);
        } else if !self.quiet {
            say!("{text}");
        }
    }

    pub fn init(&self, loc: &str, id: &str) {
        self.line(
            &format!("created snap repository {} at {loc}", &id[..8]),
            &serde_json::json!({"repository": loc, "id": id}),
        );
    }

    pub fn create(&self, r: &CreateReport) {
        for n in &r.notices {
            self.warn(n);
        }
        if self.json {
            return self.emit_json(r);
        }
        for w in &r.summary.warnings {
            eprintln!("warning: {w}");
        }
        if self.quiet {
            return;
        }
        let s = &r.summary;
        say!(
            "files: {} new, {} changed, {} unchanged; {} dirs",
            s.files_new,
            s.files_changed,
            s.files_unchanged,
            s.dirs
        );
        say!(
            "read {} of {}, added {} to the repository ({} new blobs) in {:.2}s",
            human(s.bytes_read),
            human(s.total_bytes),
            human(s.bytes_added),
            s.blobs_added,
            s.duration_ms as f64 / 1000.0
        );
        if r.incomplete {
            say!(
                "snapshot {} saved, INCOMPLETE: {} file(s) could not be read completely",
                &r.snapshot[..8],
                s.warnings.len()
            );
        } else {
            say!("snapshot {} saved", &r.snapshot[..8]);
        }
    }

    pub fn snapshots(&self, report: SnapshotsReport, opts: &SnapshotsOptions) {
        for w in &report.warnings {
            self.warn(w);
        }
        let groups = crate::commands::snapshots::group(report, opts);
        if self.json {
            if opts.group_by.is_some() {
                return self.emit_json(&groups);
            }
            let rows: Vec<&SnapshotRow> = groups.iter().flat_map(|g| &g.snapshots).collect();
            return self.emit_json(&rows);
        }
        let mut total = 0;
        for (i, g) in groups.iter().enumerate() {
            if opts.group_by.is_some() {
                if i > 0 {
                    say!("");
                }
                say!("{}", group_header(&g.group_key));
            }
            snapshot_table(&g.snapshots);
            total += g.snapshots.len();
        }
        if opts.group_by.is_some() {
            say!("");
            say!("{total} snapshots in {} group(s)", groups.len());
        } else {
            say!("{total} snapshots");
        }
    }

    /// `ls` output, printed entry by entry as the walk gives them out (a
    /// listing of millions of files is never held in memory).
    pub fn ls_stream(&self) -> LsStream {
        LsStream {
            json: self.json,
            n: 0,
        }
    }

    pub fn restore(&self, sel: &Selected, r: &RestoreReport) {
        let snap = sel.id.short();
        if self.json {
            let mut v = serde_json::to_value(r).expect("reports serialize");
            v["snapshot"] = Self::selected_json(sel);
            return self.emit_json(&v);
        }
        for w in &r.warnings {
            eprintln!("warning: {w}");
        }
        for e in &r.errors {
            eprintln!("error: {e}");
        }
        if !self.quiet {
            let mut extra = String::new();
            if r.files_kept > 0 {
                extra += &format!(", {} existing kept", r.files_kept);
            }
            if r.deleted > 0 {
                extra += &format!(", {} deleted", r.deleted);
            }
            say!(
                "restored snapshot {snap}: {} files, {} dirs, {} others, {} written (read {} packs); \
                 files: {} written, {} unchanged{extra}",
                r.files,
                r.dirs,
                r.others,
                human(r.bytes),
                r.packs_read,
                r.files_written,
                r.files_unchanged,
            );
        }
        if !r.errors.is_empty() {
            eprintln!("restore finished with {} error(s)", r.errors.len());
        }
    }

    pub fn check(&self, r: &CheckReport) {
        if self.json {
            return self.emit_json(r);
        }
        for w in &r.warnings {
            eprintln!("warning: {w}");
        }
        for e in &r.errors {
            eprintln!("error: {e}");
        }
        for a in &r.advice {
            eprintln!("{a}");
        }
        if !self.quiet {
            say!(
                "checked {} snapshots, {} trees, {} packs; read {} packs ({})",
                r.snapshots,
                r.trees,
                r.packs,
                r.packs_read,
                human(r.bytes_read)
            );
            if r.errors.is_empty() {
                say!("no errors found");
            } else {
                say!("{} error(s) found", r.errors.len());
            }
        }
    }

    pub fn repair(&self, r: &IndexSync) {
        if self.json {
            return self.emit_json(r);
        }
        for d in &r.packs_damaged {
            eprintln!("error: pack {d} has an unreadable header; its blobs are not indexed");
        }
        for d in &r.packs_truncated {
            eprintln!(
                "error: pack {d} has another size than indexed (truncated); \
                 its blobs are recorded damaged (`snap repair packs`)"
            );
        }
        if !self.quiet {
            say!("index rebuilt: {} packs indexed", r.packs_added);
        }
    }
}

/// `snapshots for (host h, paths /a /b, tags x,y):` for the fields grouped by.
fn group_header(k: &GroupKey) -> String {
    match describe_group(k) {
        None => "snapshots:".to_string(),
        Some(d) => format!("snapshots for ({d}):"),
    }
}

/// `host h, paths /a /b, tags x,y` for the fields grouped by (`None`:
/// one group of all snapshots).
pub(super) fn describe_group(k: &GroupKey) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(h) = &k.host {
        parts.push(format!("host {h}"));
    }
    if let Some(p) = &k.paths {
        parts.push(format!("paths {}", p.join(" ")));
    }
    if let Some(t) = &k.tags {
        parts.push(if t.is_empty() {
            "no tags".to_string()
        } else {
            format!("tags {}", t.join(","))
        });
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// The table of `snap snapshots` (one per group).
fn snapshot_table(rows: &[SnapshotRow]) {
    say!(
        "{:<8}  {:<20}  {:<12}  {:>10}  {:>10}  {:<8}  Tags / Paths",
        "ID",
        "Time",
        "Host",
        "Size",
        "Added",
        "Parent"
    );
    for r in rows {
        let t = r.time.get(..19).unwrap_or(&r.time).replace('T', " ");
        say!(
            "{:<8}  {:<20}  {:<12}  {:>10}  {:>10}  {:<8}  {}{}{}",
            r.short_id,
            t,
            r.host,
            human(r.summary.total_bytes),
            human(r.summary.bytes_added),
            r.parent.as_deref().map(|p| &p[..8]).unwrap_or("-"),
            if r.tags.is_empty() {
                String::new()
            } else {
                format!("[{}] ", r.tags.join(","))
            },
            r.paths.join(" "),
            if r.incomplete { " (incomplete)" } else { "" }
        );
        if r.future {
            say!(
                "{:<8}  dated ahead of this machine's clock: `latest` passes over it",
                ""
            );
        }
        for st in &r.summary.streams {
            say!(
                "{:<8}  stream {} {} from `{}`, exit {}",
                "",
                st.name,
                human(st.bytes),
                st.command,
                st.exit_code
            );
        }
    }
}

/// See [`Printer::ls_stream`]. With `--json`, one JSON array, an element a
/// line.
pub struct LsStream {
    json: bool,
    n: u64,
}

impl LsStream {
    /// Prints one entry.
    pub fn entry(&mut self, r: &LsEntry) {
        if self.json {
            let sep = if self.n == 0 { "[" } else { "," };
            say!(
                "{sep}{}",
                serde_json::to_string(r).expect("entries serialize")
            );
        } else {
            let extra = match (&r.link_target, &r.command) {
                (Some(t), _) => format!(" -> {t}"),
                (_, Some(c)) => format!("  [from `{c}`, exit {}]", r.exit_code.unwrap_or(0)),
                _ => String::new(),
            };
            say!(
                "{:<8} {:04o} {:>12} {}  {}{}",
                r.kind,
                r.mode,
                r.size,
                r.mtime.get(..19).unwrap_or(&r.mtime),
                r.path,
                extra
            );
        }
        self.n += 1;
    }

    /// Ends the output (closes the JSON array).
    pub fn finish(self) {
        if self.json {
            say!("{}", if self.n == 0 { "[]" } else { "]" });
        }
    }
}
