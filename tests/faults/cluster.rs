//! The fault suite's processes: hookrelay instances (the release binary, each with its own
//! data directory and admin port, all in one consumer group) that a scenario starts, kills
//! and stops; and, for the broker scenario, a broker of the suite's own that it can stop and
//! resume without disturbing the broker the other tests share.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hookrelay::config::Config;
use hookrelay::kafka::topics::{ensure_topics, topic_specs};
use rdkafka::ClientConfig;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;

use crate::isolated_env::isolated_env;

/// The broker the other tests share (`scripts/kafka start`).
pub fn shared_bootstrap() -> String {
    std::env::var("HOOKRELAY_TEST_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:19092".to_owned())
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka")
}

/// A name no other scenario or run uses.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{:x}", std::process::id(), nanos & 0xff_ffff)
}

/// A scenario's configuration: its own topics and group on `bootstrap`, retry tiers of
/// `tiers_secs` seconds, loopback receivers allowed, and `overrides` on top.
pub fn config(
    bootstrap: &str,
    tiers_secs: &[u64],
    overrides: &[(&str, &str)],
) -> (Config, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let delays: Vec<String> = tiers_secs.iter().map(|s| format!("{s}s")).collect();
    let mut env = isolated_env(&unique("fault"), bootstrap, &delays);
    env.extend(
        [
            ("HOOKRELAY__TOPICS__PARTITIONS__EVENTS", "6"),
            ("HOOKRELAY__TOPICS__PARTITIONS__RETRY", "3"),
            ("HOOKRELAY__DELIVERY__TIMEOUT", "2s"),
            ("HOOKRELAY__SHUTDOWN__DRAIN_TIMEOUT", "5s"),
            ("HOOKRELAY__API__ENABLED", "false"),
            // Fail over quickly when an instance is killed.
            ("HOOKRELAY__KAFKA__PROPERTIES__SESSION.TIMEOUT.MS", "6000"),
        ]
        .iter()
        .chain(overrides)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let config = Config::load_from(None, &env).expect("the scenario's config is valid");
    (config, dir)
}

/// Creates the scenario's topics.
pub async fn create_topics(config: &Config) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.bootstrap_servers)
        .create()
        .expect("admin client");
    ensure_topics(&admin, &topic_specs(config))
        .await
        .expect("create the scenario's topics");
}

struct Instance {
    file: PathBuf,
    admin_port: u16,
    child: Option<Child>,
}

/// hookrelay instances in one consumer group.
pub struct Fleet {
    instances: Vec<Instance>,
    /// `HOOKRELAY_LOG` of the instances: errors only, unless `FAULTS_CHILD_LOG` or
    /// [`Fleet::logging`] says otherwise.
    log: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Fleet {
    /// `n` instances of `config`, each with its own data directory under `dir` (not
    /// started yet).
    pub fn new(config: &Config, dir: &Path, n: usize) -> Fleet {
        let instances = (0..n)
            .map(|i| {
                let mut c = config.clone();
                c.subscriptions.data_dir = dir.join(format!("instance-{i}"));
                let admin_port = free_port();
                c.admin.listen = format!("127.0.0.1:{admin_port}").parse().expect("addr");
                let file = dir.join(format!("instance-{i}.toml"));
                std::fs::write(&file, c.to_masked_toml()).expect("write config");
                Instance {
                    file,
                    admin_port,
                    child: None,
                }
            })
            .collect();
        let log = std::env::var("FAULTS_CHILD_LOG").unwrap_or_else(|_| "error".to_owned());
        Fleet { instances, log }
    }

    /// Instances started from now on log at `filter` (their stderr is the suite's log, shown
    /// in full when the suite fails).
    pub fn logging(mut self, filter: &str) -> Fleet {
        filter.clone_into(&mut self.log);
        self
    }

    pub fn len(&self) -> usize {
        self.instances.len()
    }

    /// Starts instance `i` (again).
    pub fn start(&mut self, i: usize) {
        let instance = &mut self.instances[i];
        if instance.child.is_some() {
            return;
        }
        let child = Command::new(env!("CARGO_BIN_EXE_hookrelay"))
            .args(["run", "--config"])
            .arg(&instance.file)
            .env("HOOKRELAY_LOG", &self.log)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn hookrelay");
        instance.child = Some(child);
    }

    /// Starts every instance and waits until each answers `/readyz` with 200.
    pub async fn start_all_ready(&mut self) {
        for i in 0..self.len() {
            self.start(i);
        }
        for i in 0..self.len() {
            assert!(
                self.wait_ready(i, Duration::from_secs(60)).await,
                "instance {i} not ready within 60 s"
            );
        }
    }

    /// SIGKILL: no drain, no commit.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.instances[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for the exit (a graceful stop); returns whether it exited 0.
    pub fn stop(&mut self, i: usize) -> bool {
        let Some(mut child) = self.instances[i].child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status.success(),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return false;
                }
            }
        }
    }

    /// `/readyz` of instance `i`: (status, text); status 0 when it does not answer.
    pub async fn readyz(&self, i: usize) -> (u16, String) {
        let url = format!("http://127.0.0.1:{}/readyz", self.instances[i].admin_port);
        match reqwest::get(url).await {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.text().await.unwrap_or_default())
            }
            Err(_) => (0, String::new()),
        }
    }

    /// Waits until instance `i` answers `/readyz` with 200.
    pub async fn wait_ready(&self, i: usize, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.readyz(i).await.0 == 200 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    }

    /// Resident memory of instance `i`, in KiB (Linux).
    pub fn rss_kib(&self, i: usize) -> Option<u64> {
        let pid = self.instances[i].child.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for i in 0..self.len() {
            self.kill(i);
        }
    }
}

/// A broker of the suite's own (another port and data directory than the shared one), for
/// the scenario that stops and restarts the broker.
pub struct PrivateBroker {
    port: u16,
}

impl PrivateBroker {
    fn run(&self, command: &str) -> bool {
        Command::new(script())
            .arg(command)
            .env("KAFKA_PORT", self.port.to_string())
            .env("KAFKA_HEAP", "512m")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Starts a fresh broker on `port` (and the two ports after it).
    pub fn start(port: u16) -> PrivateBroker {
        let broker = PrivateBroker { port };
        assert!(
            broker.run("start"),
            "could not start a private broker on port {port}"
        );
        broker
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops it (its data stays).
    pub fn stop(&self) {
        assert!(self.run("stop"), "could not stop the private broker");
    }

    /// Starts it again on its data.
    pub fn resume(&self) {
        assert!(self.run("resume"), "could not resume the private broker");
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = self.run("stop");
    }
}
