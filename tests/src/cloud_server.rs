//! `cloud-api serve` as a process of the test's own.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::binary;

/// A running `cloud-api serve`, killed on drop.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cloud-api serve --config cloud.toml` in `dir` (its log appended to
/// `dir/cloud.log`) and waits until it listens on `port`.
pub fn serve(dir: &Path, port: u16) -> Server {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("cloud.log")).expect("cloud.log");
    let child = Command::new(binary("cloud-api"))
        .args(["serve", "--config", "cloud.toml"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start cloud-api");
    let end = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < end,
            "cloud-api did not start: {}",
            std::fs::read_to_string(dir.join("cloud.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Server(child)
}
