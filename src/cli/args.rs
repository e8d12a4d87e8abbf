//! Raw command-line flags (clap). Commands never see these types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// snap: deduplicating, encrypted backups of files and database dumps.
#[derive(Debug, Parser)]
#[command(name = "snap", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options of every command.
#[derive(Debug, Args)]
pub struct Global {
    /// Repository location: a directory, or an object-store URL.
    #[arg(short = 'r', long, env = "SNAP_REPO", global = true)]
    pub repo: Option<String>,
    /// Read the password from this file (first line); wins over
    /// SNAP_PASSWORD [env: SNAP_PASSWORD_FILE, after SNAP_PASSWORD].
    #[arg(long, global = true, conflicts_with = "password_command")]
    pub password_file: Option<PathBuf>,
    /// Run this shell command and use its first output line as the password
    /// [env: SNAP_PASSWORD_COMMAND, after SNAP_PASSWORD and SNAP_PASSWORD_FILE].
    #[arg(long, global = true)]
    pub password_command: Option<String>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More detail (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Show progress also when stderr is not a terminal; with --json, as
    /// status lines on stdout before the report (docs/create.md).
    #[arg(long, global = true, conflicts_with = "no_progress")]
    pub progress: bool,
    /// Never show progress.
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// Backend option KEY=VALUE (repeatable), e.g. endpoint=http://host:9000,
    /// region=eu-west-1, allow_http=true, retries=3, connections=4;
    /// sftp.identity=FILE, sftp.known_hosts=FILE for sftp:// URLs.
    #[arg(short = 'o', long = "option", value_name = "KEY=VALUE", global = true)]
    pub options: Vec<String>,
}

// Parsed once per run: the size of the largest variant (create's many
// flags) costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new repository.
    Init(InitArgs),
    /// Back up files, directories and command outputs as a new snapshot.
    Create(CreateArgs),
    /// List snapshots.
    Snapshots(SnapshotsArgs),
    /// List the files of a snapshot.
    ///
    /// Names are shown in an escaped form, the same in the text and the
    /// --json output, that turns back into the exact bytes: printable
    /// UTF-8 as it is; a backslash as \\, a newline as \n, a tab as \t;
    /// every byte that is not valid UTF-8 or belongs to a control character
    /// as \xHH (e.g. a\xffb). `restore --include/--exclude` take names in
    /// this form. See docs/names.md.
    Ls(LsArgs),
    /// Restore a snapshot into a directory.
    Restore(RestoreArgs),
    /// Write one file of a snapshot to standard output, or a directory as
    /// a tar or zip archive (docs/browsing.md).
    Dump(super::dump::DumpArgs),
    /// Verify the repository's structure and, optionally, all data.
    Check(CheckArgs),
    /// Remove the given snapshots (their data is freed by `prune`).
    Forget(super::prune::ForgetArgs),
    /// Apply a retention policy and free space no snapshot needs.
    Prune(super::prune::PruneArgs),
    /// Repair the index, damaged packs, or snapshots that lost data.
    #[command(subcommand)]
    Repair(RepairCommand),
    /// Manage passwords (keys).
    #[command(subcommand)]
    Key(KeyCommand),
    /// Copy missing snapshots (raw objects) to or from another copy of this repository.
    Sync(SyncArgs),
    /// Copy snapshots from another repository (its own keys and password) into this one.
    Copy(super::copy::CopyArgs),
    /// Run a backup job of the configuration file: hooks, dumps, backup,
    /// retention, sync, restore drill, notifications (docs/jobs.md).
    Run(super::jobs::RunArgs),
    /// Restore a sample of a snapshot's files and verify them (the drill).
    Verify(super::verify::VerifyArgs),
    /// Print (or install) a systemd timer or crontab line that runs a job.
    Schedule(super::schedule::ScheduleArgs),
    /// Each job's last run, last success, and whether it is overdue.
    Status(super::schedule::StatusArgs),
    /// Remove locks of snap processes that are gone (and say which were kept, and why).
    Unlock {
        /// Remove every lock, also of processes that may be running elsewhere.
        #[arg(long)]
        remove_all: bool,
    },
    /// Show what changed between two snapshots, or between a snapshot and
    /// the files on this machine.
    Diff(super::diff::DiffArgs),
    /// Find files and directories by name or path in snapshots.
    Find(super::find::FindArgs),
    /// Browse the snapshots as a read-only file system (FUSE) until unmounted.
    Mount(super::mount::MountArgs),
    /// Sizes of snapshots: restored, distinct, stored; dedup and compression.
    Stats(super::stats::StatsArgs),
    /// Add, remove or set the tags of snapshots (each gets a new id).
    Tag(super::tag::TagArgs),
    /// Print a shell completion script (bash, zsh or fish).
    Completion(super::generate::CompletionArgs),
    /// Print the man page (or write one per command with --dir).
    Man(super::generate::ManArgs),
}

/// Which snapshots a selector may pick (as restic's filters).
#[derive(Clone, Debug, Default, Args)]
pub struct FilterArgs {
    /// Only snapshots of this host (repeatable: any of them). Without it,
    /// `latest` means this host's latest.
    #[arg(long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Only snapshots with all these tags, e.g. `nightly,db` (repeatable:
    /// any of the sets; `--tag ""` means no tags).
    #[arg(long = "tag", value_name = "TAG[,TAG...]")]
    pub tags: Vec<String>,
    /// Only snapshots that hold this source path (repeatable: all of them).
    #[arg(long = "path", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Group the list by these fields (any of host,paths,tags); --json
    /// then prints a list of {group_key, snapshots}.
    #[arg(short = 'g', long, value_name = "host,paths,tags")]
    pub group_by: Option<String>,
    /// Only the N newest snapshots of each group (of each host and paths
    /// without --group-by).
    #[arg(long, value_name = "N")]
    pub latest: Option<usize>,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Make the repository at URL hold every snapshot of --repo.
    #[arg(
        long,
        value_name = "URL",
        conflicts_with = "from",
        required_unless_present = "from"
    )]
    pub to: Option<String>,
    /// Make --repo hold every snapshot of the repository at URL.
    #[arg(long, value_name = "URL")]
    pub from: Option<String>,
    /// Re-read every object sent and check it against its name (hash).
    #[arg(long)]
    pub verify: bool,
    /// Also delete snapshots and packs on the target that the source no longer has.
    #[arg(long)]
    pub delete: bool,
    /// Parallel object copies.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// zstd level for new data (1-22). 3, the default, stores about 5% less
    /// than 1 for about 10% more first-backup time (docs/create.md).
    #[arg(long, default_value_t = 3)]
    pub compression: i32,
    /// Target average chunk size in KiB.
    #[arg(long, hide = true)]
    pub chunk_avg_kib: Option<u32>,
    /// Argon2id memory in KiB (lower only for tests).
    #[arg(long, hide = true)]
    pub kdf_memory_kib: Option<u32>,
    /// Argon2id iterations.
    #[arg(long, hide = true)]
    pub kdf_iterations: Option<u32>,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Files and directories to back up.
    pub paths: Vec<PathBuf>,
    /// Store a command's standard output as NAME (repeatable): NAME=COMMAND ARGS...
    /// Run without a shell; words split on blanks, '...' and "..." quote.
    #[arg(long = "from-command", value_name = "NAME=CMD")]
    pub from_command: Vec<String>,
    /// Like --from-command, but CMD is a shell command line run by `sh -c`
    /// (pipes, redirections, variables).
    #[arg(long = "from-shell", value_name = "NAME=SHELL-CMD")]
    pub from_shell: Vec<String>,
    /// Store standard input as NAME.
    #[arg(long, value_name = "NAME")]
    pub stdin_name: Option<String>,
    /// Kill a dump command (its whole process group) after this long
    /// (e.g. 30m, 2h) and fail.
    #[arg(long, value_name = "DURATION")]
    pub command_timeout: Option<String>,
    /// Tag the snapshot (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Host name to record.
    #[arg(long)]
    pub host: Option<String>,
    /// Exclude paths matching this glob (repeatable).
    #[arg(short = 'e', long = "exclude")]
    pub excludes: Vec<String>,
    /// Read exclude globs from this file (repeatable).
    #[arg(long = "exclude-file")]
    pub exclude_files: Vec<PathBuf>,
    /// Skip contents of directories tagged with CACHEDIR.TAG.
    #[arg(long)]
    pub exclude_caches: bool,
    /// Do not cross file system boundaries.
    #[arg(short = 'x', long)]
    pub one_file_system: bool,
    /// Snapshot time (RFC 3339) instead of now.
    #[arg(long)]
    pub time: Option<String>,
    /// Parent snapshot for change detection: an id, or `latest` (the
    /// default: the latest of the recorded host and these paths that is not
    /// newer than this snapshot).
    #[arg(long)]
    pub parent: Option<String>,
    /// Read every file again, ignoring the parent.
    #[arg(long)]
    pub full: bool,
    /// Worker threads (default: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Like --exclude, regardless of case (repeatable).
    #[arg(long = "iexclude", value_name = "PATTERN")]
    pub iexcludes: Vec<String>,
    /// Like --exclude-file, regardless of case (repeatable).
    #[arg(long = "iexclude-file", value_name = "FILE")]
    pub iexclude_files: Vec<PathBuf>,
    /// Leave out the contents of directories that hold file NAME (starting
    /// with HEADER, if given); NAME itself is kept (repeatable).
    #[arg(long = "exclude-if-present", value_name = "NAME[:HEADER]")]
    pub exclude_if_present: Vec<String>,
    /// Leave out files larger than SIZE (e.g. 500M, 2G; sources given
    /// by name are kept).
    #[arg(long, value_name = "SIZE")]
    pub exclude_larger_than: Option<String>,
    /// Back up the paths and globs listed in FILE, one per line (`#`
    /// comments; repeatable).
    #[arg(long = "files-from", value_name = "FILE")]
    pub files_from: Vec<PathBuf>,
    /// Back up the paths listed in FILE, one per line, exactly as written
    /// (repeatable).
    #[arg(long = "files-from-verbatim", value_name = "FILE")]
    pub files_from_verbatim: Vec<PathBuf>,
    /// Back up the paths listed in FILE, separated by NUL bytes (`find
    /// -print0`; repeatable).
    #[arg(long = "files-from-raw", value_name = "FILE")]
    pub files_from_raw: Vec<PathBuf>,
    /// Show what would be read and added; store nothing, take no lock,
    /// save no snapshot.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Save no snapshot when nothing changed since the parent.
    #[arg(long)]
    pub skip_if_unchanged: bool,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Snapshot: `latest` or an id prefix.
    pub snapshot: String,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Path inside the snapshot.
    pub path: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Snapshot: `latest` or an id prefix; `SNAP:SUBPATH` restores the
    /// contents of that directory of it into --to.
    pub snapshot: String,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Target directory (created if missing).
    #[arg(long = "to", alias = "target", value_name = "DIR")]
    pub to: Option<PathBuf>,
    /// Pipe the selected file into this command's stdin instead (sh -c).
    #[arg(long, value_name = "CMD")]
    pub to_command: Option<String>,
    /// Restore only paths matching this glob (repeatable). Names are
    /// written as `ls` shows them (a\xffb, \\ for a backslash: see
    /// `snap ls --help`); quote a glob character with brackets ([*]).
    #[arg(long = "include")]
    pub includes: Vec<String>,
    /// Leave out paths matching this glob (repeatable; names as for --include).
    #[arg(long = "exclude")]
    pub excludes: Vec<String>,
    #[command(flatten)]
    pub fit: super::restore::FitArgs,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Read and verify all data.
    #[arg(long)]
    pub read_data: bool,
    /// Read and verify this percentage of packs (e.g. 10 or 10%).
    #[arg(long, value_name = "PCT")]
    pub read_data_subset: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum RepairCommand {
    /// Rebuild the index from the pack headers.
    Index,
    /// Salvage the intact blobs of damaged packs into new packs, then remove the damaged packs.
    Packs(super::repair::RepairPacksArgs),
    /// Rewrite snapshots around lost or damaged data (tagged `repaired`).
    Snapshots(super::repair::RepairSnapshotsArgs),
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Add a password; the new one is read from --new-password-file.
    Add {
        /// File holding the new password.
        #[arg(long)]
        new_password_file: PathBuf,
    },
    /// List key files; `*` marks the one this password opened.
    List,
    /// Remove a key (an id prefix from `key list`); never the one in use.
    Remove {
        /// The key's id (prefix).
        id: String,
    },
    /// Change this password: add a key for the new one (read from
    /// --new-password-file), then remove the key in use.
    Passwd {
        /// File holding the new password.
        #[arg(long)]
        new_password_file: PathBuf,
    },
}
