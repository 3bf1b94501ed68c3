//! Stand-in servers written in Python (`tests/smtp_server.py`, `tests/registry_server.py`),
//! each run as a child process that reports what it does as JSON lines on stdout. This
//! starts one, collects those lines, and lets a test wait for the one it needs.

#![allow(dead_code)]

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// A running stand-in; killed when dropped.
pub struct PyServer {
    child: Child,
    events: Arc<Mutex<Vec<Value>>>,
}

impl PyServer {
    /// Starts `tests/<script>` with `args` under `$HOOKRELAY_TEST_PYTHON` (default
    /// `python3`). `hint` is added to the panic when it cannot start.
    pub fn spawn(script: &str, args: &[String], hint: &str) -> PyServer {
        let python =
            std::env::var("HOOKRELAY_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let script = format!("{}/tests/{script}", env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new(&python)
            .arg(&script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {python} {script}{hint}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = events.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    seen.lock().expect("lock").push(v);
                }
            }
        });
        PyServer { child, events }
    }

    /// Every event reported so far, in order.
    pub fn events(&self) -> Vec<Value> {
        self.events.lock().expect("lock").clone()
    }

    /// Waits until an event satisfies `pred` and returns the first that does; panics after
    /// `timeout`, naming `what` and listing the events seen.
    pub async fn wait_event(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.events().into_iter().find(|e| pred(e)) {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; events: {:?}",
                self.events()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Writes one line to the server's stdin (the stand-ins read commands there).
    pub async fn send_line(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("write to the stand-in");
        stdin.flush().await.expect("flush");
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
