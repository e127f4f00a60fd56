//! The `vipd` command line. It lives in the library so the test harness builds the very
//! same binary (`tests/src/bin/vipd.rs`) that operators run.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::ExitCode,
};

use crate::{
    config::{self, Config, LocalHost},
    control,
    daemon::{self, Options},
    dataplane::{Dataplane, ModePreference},
};
use anyhow::{Context as _, Result};
use clap::{CommandFactory as _, Parser, Subcommand, ValueEnum};

/// Where the Debian package installs the configuration (and the systemd unit reads it);
/// `vipd status` finds the control socket through it when given neither option.
pub const DEFAULT_CONFIG: &str = "/etc/vipd/vipd.toml";

#[derive(Parser)]
#[command(
    name = "vipd",
    version,
    about = "VRRP virtual IPs with an XDP packet path"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon in the foreground (logs to stderr).
    Run {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
        /// On exit leave the XDP program, maps, VIPs and ownership in place, so a vipd
        /// restarted within the lease (an upgrade) resumes without a gap.
        #[arg(long)]
        keep_on_exit: bool,
        #[arg(long, value_enum, default_value_t = ModePreference::Auto)]
        xdp_mode: ModePreference,
    },
    /// Validate a configuration and print it with every default filled in; warnings go
    /// to stderr and do not change the exit status.
    Check {
        #[arg(long, short)]
        config: PathBuf,
        /// Instead of printing it, ask the vipd this file's control_socket names what a
        /// reload of its configuration file would do (as `vipd reload --dry-run`).
        #[arg(long)]
        against_running: bool,
    },
    /// Show the state of a running vipd.
    Status {
        #[command(flatten)]
        to: To,
        #[arg(long)]
        json: bool,
    },
    /// Reload the running vipd's configuration file and report what became of each
    /// instance: unchanged, changed in place (which fields), restarted (why), added,
    /// removed. A file with any problem changes nothing (exit status 1). The unit's
    /// ExecReload.
    Reload {
        #[command(flatten)]
        to: To,
        /// Only say what a reload would do; change nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Lower the priority of an instance, a sync group or the whole node by AMOUNT more
    /// (kept across reloads; across restarts with global.state_file). A master demoted
    /// below its backup hands over, make-before-break.
    Demote {
        #[command(flatten)]
        to: To,
        #[command(flatten)]
        target: TargetArgs,
        /// 1..=254, added to what is already taken off.
        #[arg(long, value_name = "AMOUNT")]
        by: u8,
    },
    /// Take a demotion back (AMOUNT of it, or all of it), and let instances handed over
    /// preempt again.
    Promote {
        #[command(flatten)]
        to: To,
        #[command(flatten)]
        target: TargetArgs,
        #[arg(long, value_name = "AMOUNT")]
        by: Option<u8>,
    },
    /// Hand a master instance (its sync group with it), a sync group or the whole node over
    /// now, make-before-break: it resigns, keeps answering until the successor's first
    /// advertisement, and does not preempt back until `vipd promote`.
    Handover {
        #[command(flatten)]
        to: To,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Print events as JSON lines as they happen (transitions, BFD changes, handovers,
    /// reloads, maintenance commands) until interrupted.
    Events {
        #[command(flatten)]
        to: To,
    },
    /// Drive the XDP data plane by hand, without the daemon.
    #[command(subcommand)]
    Xdp(XdpCommand),
    /// Convert another VRRP daemon's configuration into a vipd file.
    #[command(subcommand)]
    Import(ImportCommand),
}

/// Which running vipd a command talks to.
#[derive(clap::Args)]
struct To {
    /// Control socket (default: the one the configuration names).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Configuration to read the control socket path from (default: /etc/vipd/vipd.toml).
    #[arg(long, short)]
    config: Option<PathBuf>,
}

/// Whom a maintenance command is for: an instance, or one of the options.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct TargetArgs {
    /// The instance (the [[vrrp]] name).
    instance: Option<String>,
    /// A sync group (every instance in it).
    #[arg(long, value_name = "NAME")]
    sync_group: Option<String>,
    /// Every instance of the node.
    #[arg(long)]
    node: bool,
}

impl TargetArgs {
    fn target(self) -> control::socket::Target {
        use control::socket::Target;
        match (self.instance, self.sync_group) {
            (Some(i), _) => Target::Instance(i),
            (None, Some(g)) => Target::SyncGroup(g),
            (None, None) => Target::Node,
        }
    }
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Convert a keepalived configuration (with the files it includes) into a vipd file.
    ///
    /// Writes the vipd file to stdout, or to OUT with -o. Every keepalived setting the
    /// file does not carry over is printed on stderr as `file:line: keyword: reason` and
    /// listed in the file's header; notes (`file:line: keyword: note: ...`) say where the
    /// file keeps keepalived's meaning in other words. Check the result on the machine it
    /// is for with `vipd check --config OUT`.
    #[command(after_help = "Exit status:\n  \
        0  the file was written and carries over everything keepalived would do\n  \
        1  the file was written, but something keepalived would do was left out (see stderr)\n  \
        2  nothing was written: a file could not be read (or is not a regular file, or is\n     \
           too large), an include loops or is missing, braces do not balance, a value has\n     \
           the wrong shape, or OUTPUT exists (see stderr)")]
    Keepalived {
        /// The keepalived configuration, e.g. /etc/keepalived/keepalived.conf.
        file: PathBuf,
        /// Write the vipd file here instead of stdout: a new file, readable by its owner
        /// alone (it may hold a VRRPv2 password). An existing file or a symbolic link at
        /// OUTPUT is an error, and nothing is written.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Replace whatever is at OUTPUT (a symbolic link itself, never its target).
        #[arg(long, requires = "output")]
        force: bool,
        /// keepalived's config id (its -i option) for `@ID` lines. Default: this host's
        /// name up to the first dot, as keepalived does.
        #[arg(long)]
        config_id: Option<String>,
        /// router_id when global_defs sets none. Default: this host's name, as keepalived
        /// does.
        #[arg(long)]
        router_id: Option<String>,
    },
    /// Convert ucarp command lines into CARP instances of a vipd file.
    ///
    /// Give one command line after `--` (`vipd import ucarp -- --interface=eth0
    /// --srcip=... `), or a file of them with --file, one a line (`#` comments, `\`
    /// continuations, shell quoting), e.g. what `ps -o args= -C ucarp` prints. Each
    /// becomes one `[[vrrp]]` with `protocol = "carp"`. Options are read as ucarp
    /// 1.5.2 reads them; what the file does not carry over is printed on stderr as
    /// `source:line: option: reason` and listed in the file's header.
    #[command(after_help = "Exit status:\n  \
        0  the file was written and carries over everything ucarp would do\n  \
        1  the file was written, but something ucarp would do was left out (see stderr)\n  \
        2  nothing was written: the file could not be read, an option is unknown or has a\n     \
           value ucarp refuses, or something ucarp requires is missing (see stderr)")]
    Ucarp {
        /// A file of ucarp command lines, one a line.
        #[arg(long, conflicts_with = "args", required_unless_present = "args")]
        file: Option<PathBuf>,
        /// Write the vipd file here instead of stdout: a new file, readable by its owner
        /// alone (it holds the passphrase). An existing file or a symbolic link at OUTPUT
        /// is an error, and nothing is written.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Replace whatever is at OUTPUT (a symbolic link itself, never its target).
        #[arg(long, requires = "output")]
        force: bool,
        /// The vipd router_id. Default: this host's name.
        #[arg(long)]
        router_id: Option<String>,
        /// One ucarp command line, after `--` (the program name may lead it).
        #[arg(last = true)]
        args: Vec<String>,
    },
}

#[derive(Subcommand)]
enum XdpCommand {
    /// Load the responder, pin its maps and attach it to an interface.
    Attach {
        #[arg(long)]
        iface: String,
        #[arg(long, default_value = config::DEFAULT_PIN_DIR)]
        pin: PathBuf,
        #[arg(long, value_enum, default_value_t = ModePreference::Auto)]
        mode: ModePreference,
    },
    /// Detach the responder from an interface; unpin the maps once no interface is left.
    Detach {
        #[arg(long)]
        iface: String,
        #[arg(long, default_value = config::DEFAULT_PIN_DIR)]
        pin: PathBuf,
    },
}

/// The clap definition of the command line, for the manual page and shell completions
/// (`vip-dist`, `cargo xtask package`).
pub fn command() -> clap::Command {
    Cli::command()
}

fn init_logging(format: LogFormat) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A log that cannot be written (a full disk, a closed pipe) must never take the
    // daemon down: by default tracing-subscriber reports such failures on stderr, whose
    // own failure panics. Colours only on a terminal: the journal and log files get
    // plain `key=value` fields, one event per line.
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .log_internal_errors(false);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            config,
            log_format,
            keep_on_exit,
            xdp_mode,
        } => {
            init_logging(log_format);
            runtime().and_then(|rt| {
                rt.block_on(daemon::run(Options {
                    config,
                    keep_on_exit,
                    xdp_mode,
                }))
            })
        }
        Command::Check {
            config,
            against_running: false,
        } => check(&config),
        Command::Check {
            config,
            against_running: true,
        } => reload(
            To {
                socket: None,
                config: Some(config),
            },
            true,
            false,
        ),
        Command::Status { to, json } => status(to, json),
        Command::Reload { to, dry_run, json } => reload(to, dry_run, json),
        Command::Demote { to, target, by } => maintain(
            to,
            control::socket::Request::Demote {
                target: target.target(),
                by,
            },
        ),
        Command::Promote { to, target, by } => maintain(
            to,
            control::socket::Request::Promote {
                target: target.target(),
                by,
            },
        ),
        Command::Handover { to, target } => maintain(
            to,
            control::socket::Request::Handover {
                target: target.target(),
            },
        ),
        Command::Events { to } => events(to),
        Command::Xdp(cmd) => {
            init_logging(LogFormat::Text);
            xdp(cmd)
        }
        Command::Import(cmd) => return import(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Not eprintln!: it panics when stderr cannot be written.
            let _ = writeln!(std::io::stderr(), "vipd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Writes to stdout; a reader that went away (`vipd status | head`) is not an error.
fn out(text: &str) {
    let _ = std::io::stdout().write_all(text.as_bytes());
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    // One thread: the daemon is a single event loop, and its socket readers wake it
    // without crossing threads. The slow netlink work has a thread of its own
    // (daemon::background).
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

fn load(config: &Path) -> Result<Config> {
    Ok(Config::load(config, &LocalHost)?)
}

fn check(config: &Path) -> Result<()> {
    let c = load(config)?;
    let mut stderr = std::io::stderr();
    for warning in &c.warnings {
        let _ = writeln!(stderr, "warning: {warning}");
    }
    for note in xdp_notes(&c) {
        let _ = writeln!(stderr, "note: {note}");
    }
    out(&c.to_toml_string());
    Ok(())
}

/// What `vipd check` can tell about the XDP side on this host: kernel features the
/// responder lacks (root only: probing loads programs), and every interface of the file
/// whose hook another program holds, with what vipd will do about it.
fn xdp_notes(c: &Config) -> Vec<String> {
    let mut notes = Vec::new();
    if nix::unistd::geteuid().is_root() {
        for f in crate::dataplane::probe::features() {
            if !f.present {
                notes.push(format!(
                    "kernel: {} (Linux {}) is missing: vipd will not start",
                    f.name, f.since
                ));
            }
        }
    }
    let mut names = std::collections::BTreeSet::new();
    for inst in &c.instances {
        names.insert(inst.interface.clone());
        names.extend(inst.all_vips().map(|v| v.dev.clone()));
    }
    for name in names {
        // An upper device (bridge, VLAN, macvlan, bond) carries the program on the devices
        // below it.
        let below = nix::net::if_::if_nametoindex(name.as_str())
            .ok()
            .and_then(|i| crate::dataplane::lowers(i).ok())
            .unwrap_or_default();
        if below.iter().any(|l| l.name != name) {
            let list: Vec<String> = below
                .iter()
                .map(|l| match l.vlan {
                    0 => l.name.clone(),
                    v => format!("{} (VLAN {v})", l.name),
                })
                .collect();
            notes.push(format!(
                "interface {name}: an upper device; the XDP program runs natively on {}",
                if list.is_empty() {
                    "the devices that join it (none yet)".to_owned()
                } else {
                    list.join(", ")
                }
            ));
        }
        let hooks = if below.is_empty() {
            vec![name.clone()]
        } else {
            below.into_iter().map(|l| l.name).collect()
        };
        for h in hooks {
            if let Ok(Some(n)) = Dataplane::neighbour(&c.global.pin_path, &h) {
                notes.push(format!("interface {h}: {n}"));
            }
        }
    }
    notes
}

/// The control socket `to` names, directly or through a configuration.
fn socket_of(to: To) -> Result<PathBuf> {
    Ok(match (to.socket, to.config) {
        (Some(s), _) => s,
        (None, Some(c)) => load(&c)?.global.control_socket,
        (None, None) if Path::new(DEFAULT_CONFIG).exists() => {
            load(Path::new(DEFAULT_CONFIG))?.global.control_socket
        }
        (None, None) => {
            anyhow::bail!("give --socket PATH or --config FILE (there is no {DEFAULT_CONFIG})")
        }
    })
}

fn status(to: To, json: bool) -> Result<()> {
    let path = socket_of(to)?;
    let s = runtime()?.block_on(control::socket::query(&path))?;
    if json {
        out(&(serde_json::to_string_pretty(&s)? + "\n"));
    } else {
        out(&s.render());
    }
    Ok(())
}

/// Prints a reply's message and its instances; an answer that is not ok is the error.
fn print_reply(reply: &control::socket::Reply, json: bool) -> Result<()> {
    if json {
        out(&(serde_json::to_string_pretty(reply)? + "\n"));
    } else if reply.ok {
        let mut text = format!("{}\n", reply.message);
        for c in &reply.instances {
            let detail = match c.outcome.as_str() {
                "changed" => format!(": changed in place: {}", c.detail),
                "restarted" => format!(": restarted: {}", c.detail),
                other => format!(": {other}"),
            };
            text.push_str(&format!("{}{detail}\n", c.instance));
        }
        out(&text);
    }
    if !reply.ok {
        anyhow::bail!("{}", reply.message);
    }
    Ok(())
}

fn reload(to: To, dry_run: bool, json: bool) -> Result<()> {
    let path = socket_of(to)?;
    let request = control::socket::Request::Reload { dry_run };
    let reply = runtime()?.block_on(control::socket::command(&path, &request))?;
    print_reply(&reply, json)
}

fn maintain(to: To, request: control::socket::Request) -> Result<()> {
    let path = socket_of(to)?;
    let reply = runtime()?.block_on(control::socket::command(&path, &request))?;
    print_reply(&reply, false)
}

fn events(to: To) -> Result<()> {
    let path = socket_of(to)?;
    runtime()?.block_on(async {
        let mut lines = control::socket::events(&path).await?;
        while let Some(line) = lines.next_line().await? {
            if line.starts_with("{\"error\"") {
                anyhow::bail!("{line}");
            }
            out(&format!("{line}\n"));
            // A reader that went away (`vipd events | head`) ends the stream.
            if std::io::stdout().flush().is_err() {
                return Ok(());
            }
        }
        Ok(())
    })
}

/// `vipd import ...`; its exit status is the importer's (see its help).
fn import(cmd: ImportCommand) -> ExitCode {
    match cmd {
        ImportCommand::Keepalived {
            file,
            output,
            force,
            config_id,
            router_id,
        } => {
            let mut options = crate::import::Options::for_this_host();
            if config_id.is_some() {
                options.config_id = config_id;
            }
            if let Some(id) = router_id {
                options.router_id = id;
            }
            let status = crate::import::run(
                &file,
                output.as_deref(),
                force,
                &options,
                &LocalHost,
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            );
            ExitCode::from(status)
        }
        ImportCommand::Ucarp {
            file,
            output,
            force,
            router_id,
            args,
        } => {
            use crate::import::{Loc, ucarp};
            let lines = match file {
                Some(path) => ucarp::lines_of_file(&path),
                None => Ok(vec![(
                    Loc {
                        file: "command line".into(),
                        line: 1,
                    },
                    args,
                )]),
            };
            let router_id =
                router_id.unwrap_or_else(|| crate::import::Options::for_this_host().router_id);
            let status = ucarp::run(
                lines,
                &router_id,
                output.as_deref(),
                force,
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            );
            ExitCode::from(status)
        }
    }
}

fn xdp(cmd: XdpCommand) -> Result<()> {
    match cmd {
        XdpCommand::Attach { iface, pin, mode } => {
            // The load balancer stays loaded where a daemon with services pinned its maps.
            let services = pin.join(vip_common::maps::LB_TABLES).exists();
            let mut dp = Dataplane::open_for(&pin, services)
                .with_context(|| format!("opening the data plane under {}", pin.display()))?;
            let attached = dp
                .attach(&iface, mode)
                .with_context(|| format!("attaching to {iface}"))?;
            out(&format!(
                "attached to {iface} ({attached:?}); maps pinned under {}\n",
                pin.display()
            ));
        }
        XdpCommand::Detach { iface, pin } => {
            let was = Dataplane::detach(&pin, &iface)
                .with_context(|| format!("detaching from {iface}"))?;
            if Dataplane::attached_interfaces(&pin)?.is_empty() {
                Dataplane::unpin_maps(&pin)?;
            }
            if was {
                out(&format!("detached from {iface}\n"));
            } else {
                out(&format!(
                    "nothing attached to {iface} under {}\n",
                    pin.display()
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        super::command().debug_assert();
    }
}
