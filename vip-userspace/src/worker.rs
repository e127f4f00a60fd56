//! Threads beside the daemon's event loop, each with a runtime of its own, for everything
//! that may take longer than a map write (docs/architecture.md, "the event loop never
//! waits"). The daemon starts them; the control servers and notify hooks run on them:
//!
//! - `vipd-worker`: reload and interface-rebuild preparation (parse, netlink, attach,
//!   map entries), tracking watchers, notify hooks, the conflict reader, and the control
//!   and metrics servers. Normal priority: a reload or a takeover's hook must not starve.
//! - `vipd-addresses`: VIP addresses on interfaces and paced announcements. Nice 19: ten
//!   thousand netlink requests are seconds of kernel time, and the XDP program already
//!   answers for the VIPs (the slot moved first), so their timing does not matter.
//!
//! Each reports back to the loop over a bounded channel.

use std::future::Future;

use anyhow::{Context as _, Result, anyhow};
use tokio::{runtime::Handle, task::JoinHandle};

use crate::net::Netlink;

#[derive(Clone)]
pub struct Worker {
    handle: Handle,
    /// A netlink connection served by this thread.
    pub nl: Netlink,
}

impl Worker {
    /// Starts thread `name` at `nice` (0 = normal) with a current-thread runtime that
    /// serves spawned tasks until the process exits.
    pub fn start(name: &str, nice: i32) -> Result<Worker> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                if nice != 0 {
                    // SAFETY: setpriority on this thread's own id; no memory is involved.
                    unsafe {
                        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, nice);
                    }
                }
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(anyhow!("runtime: {e}")));
                        return;
                    }
                };
                let nl = rt.block_on(async { Netlink::connect() });
                let _ = tx.send(nl.map(|nl| (rt.handle().clone(), nl)).map_err(Into::into));
                rt.block_on(std::future::pending::<()>());
            })
            .with_context(|| format!("starting thread {name}"))?;
        let (handle, nl) = rx
            .recv()
            .with_context(|| format!("thread {name} died while starting"))??;
        Ok(Worker { handle, nl })
    }

    pub fn spawn<F>(&self, f: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(f)
    }
}
