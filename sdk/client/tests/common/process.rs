//! A child process for the client's tests (`httvps-client`, `httvps-gateway`), killed and reaped
//! when the test ends whatever happened, with every line it prints (stdout and stderr) kept.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long [`Process::wait_for`] waits for a line.
const LINE_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Process {
    child: Child,
    output: Arc<Mutex<Vec<String>>>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    /// Starts `command` with piped output; every line it prints is kept.
    pub fn start(mut command: Command) -> Process {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("the process starts");
        let output = Arc::new(Mutex::new(Vec::new()));
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let sink = output.clone();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                    sink.lock().unwrap().push(line);
                }
            });
        }
        Process { child, output }
    }

    /// Every line printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.output.lock().unwrap().clone()
    }

    /// Waits for a line starting with `prefix`.
    pub async fn wait_for(&self, prefix: &str) -> String {
        self.wait_for_after(prefix, 0).await.1
    }

    /// Waits for a line starting with `prefix` after the first `skip` lines; returns its index
    /// and the line.
    pub async fn wait_for_after(&self, prefix: &str, skip: usize) -> (usize, String) {
        let deadline = Instant::now() + LINE_TIMEOUT;
        loop {
            if let Some(found) = self
                .lines()
                .into_iter()
                .enumerate()
                .skip(skip)
                .find(|(_, l)| l.starts_with(prefix))
            {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "no line starting with {prefix:?} after line {skip}: {:#?}",
                self.lines()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether it has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }
}
