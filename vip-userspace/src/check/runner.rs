//! The checker: a thread of its own running a small tokio runtime, where every check is
//! a task. The daemon hands it [`Job`]s and receives [`Report`]s on a channel, so no
//! check (a connect timing out, a slow script) ever waits on the event loop.

use std::{net::SocketAddr, thread, time::Duration};

use tokio::sync::mpsc;

use crate::{exec::RunAs, lb::service::CheckKind};

/// One check to run.
#[derive(Debug, Clone)]
pub struct Job {
    /// The caller's name for what is checked (service and member), returned as is.
    pub key: (usize, usize),
    pub kind: CheckKind,
    pub target: SocketAddr,
    pub timeout: Duration,
}

/// A finished check.
#[derive(Debug)]
pub struct Report {
    pub key: (usize, usize),
    /// `None`: the check passed; otherwise why it failed.
    pub error: Option<String>,
    pub took: Duration,
}

pub struct Checker {
    jobs: mpsc::UnboundedSender<Job>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Checker {
    /// Starts the checker's thread; reports arrive on the returned receiver.
    pub fn start(run_as: RunAs) -> std::io::Result<(Self, mpsc::UnboundedReceiver<Report>)> {
        let (jobs, mut job_rx) = mpsc::unbounded_channel::<Job>();
        let (report_tx, reports) = mpsc::unbounded_channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = thread::Builder::new()
            .name("vipd-checks".into())
            .spawn(move || {
                runtime.block_on(async move {
                    while let Some(job) = job_rx.recv().await {
                        let tx = report_tx.clone();
                        tokio::spawn(async move {
                            let started = tokio::time::Instant::now();
                            let result =
                                super::run(&job.kind, job.target, job.timeout, run_as).await;
                            let error = result.err().map(|e| crate::error_chain(&e));
                            let _ = tx.send(Report {
                                key: job.key,
                                error,
                                took: started.elapsed(),
                            });
                        });
                    }
                });
            })?;
        Ok((
            Self {
                jobs,
                thread: Some(thread),
            },
            reports,
        ))
    }

    /// Queues a check; it starts at once.
    pub fn submit(&self, job: Job) {
        let _ = self.jobs.send(job);
    }
}

impl Drop for Checker {
    fn drop(&mut self) {
        // Closing the queue ends the thread's loop; checks under way are abandoned with
        // their runtime (a script's process group is killed on drop, see `exec`).
        let (closed, _) = mpsc::unbounded_channel();
        self.jobs = closed;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
