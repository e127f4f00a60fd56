//! `vipd`: the command operators run.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use vipd::dataplane::{self, Dataplane, ModePreference};

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

#[derive(Subcommand)]
enum Command {
    /// Drive the XDP data plane by hand, without the daemon.
    #[command(subcommand)]
    Xdp(XdpCommand),
}

#[derive(Subcommand)]
enum XdpCommand {
    /// Load the responder, pin its maps and attach it to an interface.
    Attach {
        #[arg(long)]
        iface: String,
        #[arg(long, default_value = dataplane::DEFAULT_PIN_DIR)]
        pin: PathBuf,
        #[arg(long, value_enum, default_value_t = ModePreference::Auto)]
        mode: ModePreference,
    },
    /// Detach the responder from an interface; unpin the maps once no interface is left.
    Detach {
        #[arg(long)]
        iface: String,
        #[arg(long, default_value = dataplane::DEFAULT_PIN_DIR)]
        pin: PathBuf,
    },
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Xdp(cmd) => xdp(cmd),
    }
}

fn xdp(cmd: XdpCommand) -> Result<()> {
    match cmd {
        XdpCommand::Attach { iface, pin, mode } => {
            let mut dp = Dataplane::open(&pin)
                .with_context(|| format!("opening the data plane under {}", pin.display()))?;
            let attached = dp
                .attach(&iface, mode)
                .with_context(|| format!("attaching to {iface}"))?;
            println!(
                "attached to {iface} ({attached:?}); maps pinned under {}",
                pin.display()
            );
        }
        XdpCommand::Detach { iface, pin } => {
            let was = Dataplane::detach(&pin, &iface)
                .with_context(|| format!("detaching from {iface}"))?;
            if Dataplane::attached_interfaces(&pin)?.is_empty() {
                Dataplane::unpin_maps(&pin)?;
            }
            if was {
                println!("detached from {iface}");
            } else {
                println!("nothing attached to {iface} under {}", pin.display());
            }
        }
    }
    Ok(())
}
