//! Track files: an integer read from a file, polled once a second.

use std::{path::Path, time::Duration};

use tokio::{sync::mpsc, task::JoinHandle};

use super::{TrackItem, TrackUpdate};

const POLL: Duration = Duration::from_secs(1);

/// The file's integer, or `None` when it is missing or holds anything else.
pub fn read(path: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.trim().parse().ok()
}

/// Watches `path` for `member`, reporting value changes until aborted.
pub fn spawn(
    member: u64,
    index: usize,
    path: std::path::PathBuf,
    initial: Option<i64>,
    tx: mpsc::Sender<TrackUpdate>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = initial;
        loop {
            tokio::time::sleep(POLL).await;
            let value = read(&path);
            if value != last {
                last = value;
                let item = TrackItem::File { index, value };
                if tx.send(TrackUpdate { member, item }).await.is_err() {
                    return;
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_integer_and_refuses_anything_else() {
        let dir = std::env::temp_dir().join(format!("vipd-track-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("prio");
        std::fs::write(&f, " -7\n").unwrap();
        assert_eq!(read(&f), Some(-7));
        std::fs::write(&f, "ten").unwrap();
        assert_eq!(read(&f), None);
        assert_eq!(read(&dir.join("missing")), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
