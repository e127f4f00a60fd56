//! Running the operator's programs (track scripts, notify hooks) with as little of the
//! daemon's power as they need: a cleared environment with only the documented variables,
//! the configured `script_user`'s identity, their own process group (so a timeout kills
//! every process they started, not just the first), and their output captured into the
//! log up to a cap. Starting one never blocks the caller's thread for long: it is a
//! fork/exec done on the worker thread.

use std::{
    os::unix::process::{CommandExt as _, ExitStatusExt as _},
    process::{ExitStatus, Stdio},
    time::Duration,
};

use tokio::io::AsyncReadExt as _;

/// Output kept from each of stdout and stderr.
pub const OUTPUT_CAP: usize = 4096;

/// The only variable every program gets; hooks add their own (docs/operations.md).
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Whose identity programs run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunAs {
    /// `None`: root, as the daemon.
    pub ids: Option<(u32, u32)>,
}

#[derive(Debug)]
pub enum Outcome {
    Exited {
        status: ExitStatus,
        stdout: String,
        stderr: String,
    },
    /// Killed with its whole process group after the timeout.
    TimedOut,
    /// Could not be started. `transient` when the cause is the machine (out of file
    /// descriptors, processes or memory) rather than the program: callers then keep the
    /// last known result instead of calling it a failure.
    NotStarted {
        error: std::io::Error,
        transient: bool,
    },
}

impl Outcome {
    pub fn success(&self) -> bool {
        matches!(self, Outcome::Exited { status, .. } if status.success())
    }
}

/// Kills a process group when dropped: a caller that goes away (an instance removed by a
/// reload) leaves nothing running.
struct GroupGuard(Option<i32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            // SAFETY: kill(2) on a process group we created; no memory is involved.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

async fn capped(r: Option<impl tokio::io::AsyncRead + Unpin>) -> String {
    let Some(mut r) = r else {
        return String::new();
    };
    let mut buf = Vec::new();
    // Read past the cap (discarding) so a chatty program never blocks on a full pipe.
    let mut chunk = [0u8; 1024];
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = OUTPUT_CAP.saturating_sub(buf.len());
                buf.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    }
    String::from_utf8_lossy(&buf).trim_end().to_owned()
}

/// Runs `argv` with `env` (on top of `PATH`) as `run_as`, for at most `timeout`.
pub async fn run(
    argv: &[String],
    env: &[(&str, String)],
    run_as: RunAs,
    timeout: Duration,
) -> Outcome {
    let Some((program, args)) = argv.split_first() else {
        return Outcome::NotStarted {
            error: std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"),
            transient: false,
        };
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", PATH)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some((uid, gid)) = run_as.ids {
        cmd.as_std_mut().gid(gid).uid(uid);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(error) => {
            let transient = matches!(
                error.raw_os_error(),
                Some(libc::EMFILE | libc::ENFILE | libc::EAGAIN | libc::ENOMEM)
            );
            return Outcome::NotStarted { error, transient };
        }
    };
    let guard = GroupGuard(child.id().map(|p| p as i32));
    let out = tokio::spawn(capped(child.stdout.take()));
    let err = tokio::spawn(capped(child.stderr.take()));
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => {
            // Exited. Processes it left in the background are its business (a hook may
            // start a service); they may keep the pipes open, so output is collected
            // for a moment only.
            let mut guard = guard;
            guard.0 = None;
            Outcome::Exited {
                status,
                stdout: collect(out).await,
                stderr: collect(err).await,
            }
        }
        Ok(Err(error)) => Outcome::NotStarted {
            error,
            transient: true,
        },
        Err(_) => {
            drop(guard);
            let _ = child.wait().await;
            out.abort();
            err.abort();
            Outcome::TimedOut
        }
    }
}

async fn collect(task: tokio::task::JoinHandle<String>) -> String {
    let abort = task.abort_handle();
    match tokio::time::timeout(Duration::from_millis(100), task).await {
        Ok(Ok(s)) => s,
        _ => {
            abort.abort();
            "(output left open by a background process)".into()
        }
    }
}

/// A one-line description of how a program ended, for the log.
pub fn describe(o: &Outcome) -> String {
    match o {
        Outcome::Exited { status, .. } => match (status.code(), status.signal()) {
            (Some(c), _) => format!("exit status {c}"),
            (None, Some(s)) => format!("killed by signal {s}"),
            _ => status.to_string(),
        },
        Outcome::TimedOut => "timed out; its process group was killed".into(),
        Outcome::NotStarted { error, .. } => format!("could not start: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[tokio::test]
    async fn environment_is_cleared_but_for_path_and_what_the_caller_adds() {
        let o = run(
            &argv(&["/usr/bin/env"]),
            &[("VIPD_INSTANCE", "gw".into())],
            RunAs::default(),
            Duration::from_secs(5),
        )
        .await;
        let Outcome::Exited { stdout, status, .. } = o else {
            panic!("{o:?}")
        };
        assert!(status.success());
        let mut vars: Vec<&str> = stdout.lines().collect();
        vars.sort();
        assert_eq!(
            vars,
            vec![&format!("PATH={PATH}") as &str, "VIPD_INSTANCE=gw"]
        );
    }

    #[tokio::test]
    async fn a_timeout_kills_the_whole_process_group() {
        let marker = std::env::temp_dir().join(format!("vipd-exec-{}", std::process::id()));
        let _ = std::fs::remove_file(&marker);
        // The child's child sleeps, then would write the marker if it survived.
        let script = format!("(sleep 0.5; echo alive > {}) & sleep 10", marker.display());
        let o = run(
            &argv(&["/bin/sh", "-c", &script]),
            &[],
            RunAs::default(),
            Duration::from_millis(150),
        )
        .await;
        assert!(matches!(o, Outcome::TimedOut), "{o:?}");
        std::thread::sleep(Duration::from_millis(800));
        assert!(!marker.exists(), "a grandchild survived the timeout");
    }

    #[tokio::test]
    async fn output_is_captured_up_to_the_cap() {
        let o = run(
            &argv(&[
                "/bin/sh",
                "-c",
                "head -c 100000 /dev/zero | tr '\\0' x; echo err >&2; exit 3",
            ]),
            &[],
            RunAs::default(),
            Duration::from_secs(5),
        )
        .await;
        let Outcome::Exited {
            status,
            stdout,
            stderr,
        } = o
        else {
            panic!("{o:?}")
        };
        assert_eq!(status.code(), Some(3));
        assert_eq!(stdout.len(), OUTPUT_CAP);
        assert_eq!(stderr, "err");
    }

    #[tokio::test]
    async fn a_missing_program_is_not_started_and_not_transient() {
        let o = run(
            &argv(&["/nonexistent/check"]),
            &[],
            RunAs::default(),
            Duration::from_secs(1),
        )
        .await;
        assert!(
            matches!(
                o,
                Outcome::NotStarted {
                    transient: false,
                    ..
                }
            ),
            "{o:?}"
        );
    }
}
