//! A low-priority thread for work whose timing does not matter: putting VIP addresses on
//! interfaces. Ten thousand netlink requests are seconds of kernel time spent inside
//! sendmsg; at nice 19 they yield the CPU to the daemon loop, probers and everything
//! else, while the XDP program already answers for the VIPs (the slot moved first).

use anyhow::{Context as _, Result, anyhow};
use tokio::runtime::Handle;

use crate::net::Netlink;

pub struct Background {
    pub handle: Handle,
    /// A netlink connection whose requests are sent from the background thread.
    pub nl: Netlink,
}

impl Background {
    pub fn start() -> Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("vipd-addresses".into())
            .spawn(move || {
                // SAFETY: setpriority on this thread's own id; no memory is involved.
                unsafe {
                    libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19);
                }
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(anyhow!("background runtime: {e}")));
                        return;
                    }
                };
                let nl = rt.block_on(async { Netlink::connect() });
                let _ = tx.send(nl.map(|nl| (rt.handle().clone(), nl)).map_err(Into::into));
                // Serve spawned tasks until the process exits.
                rt.block_on(std::future::pending::<()>());
            })
            .context("starting the background thread")?;
        let (handle, nl) = rx
            .recv()
            .context("the background thread died while starting")??;
        Ok(Self { handle, nl })
    }
}
