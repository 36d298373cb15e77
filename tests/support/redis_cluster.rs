//! A Redis Cluster of three masters on loopback, started for one test or
//! bench run: `redis-server --cluster-enabled yes` three times on free ports
//! in a directory of its own, then `redis-cli --cluster create`. Dropping
//! it kills the servers and removes the directory.
//!
//! Included by path (`#[path = "support/redis_cluster.rs"]`) from
//! tests/store_redis_cluster.rs and benches/cluster.rs.

#![allow(dead_code)]

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

/// How many masters.
const MASTERS: usize = 3;
/// How long a node may stay silent before the others mark it failed. The
/// tests that kill a node check what the *other* masters answer while it is
/// down; once it is marked failed, `cluster-require-full-coverage` makes
/// every master answer `CLUSTERDOWN`. Long enough that a loaded machine
/// finishes those steps first (a 5 s timeout raced them under CI load).
const NODE_TIMEOUT_MS: u32 = 15_000;
/// How long each start step may take on a loaded machine.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// How many times the whole start is tried (a port taken in between).
const ATTEMPTS: usize = 3;

/// The programs: `REDIS_SERVER` / `REDIS_CLI`, else from `PATH`.
fn program(var: &str, default: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// One running node.
struct Node {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// Three masters on loopback, covering all 16384 slots. Dropping it kills
/// every node and removes its directory, whatever happened before.
pub struct RedisCluster {
    root: PathBuf,
    nodes: Vec<Node>,
}

/// A port that is free, whose cluster bus port (+10000) is free too.
fn free_port() -> Result<u16, String> {
    for _ in 0..200 {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        if port > 55_000 {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return Ok(port);
        }
    }
    Err("no free port pair".into())
}

fn cli(port: u16, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program("REDIS_CLI", "redis-cli"))
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("redis-cli: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "redis-cli {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    while !check() {
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}"));
        }
        sleep(Duration::from_millis(100));
    }
    Ok(())
}

impl Node {
    fn spawn(&mut self) -> Result<(), String> {
        let port = self.port.to_string();
        let child = Command::new(program("REDIS_SERVER", "redis-server"))
            .args(["--port", &port, "--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-config-file", "nodes.conf"])
            .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--logfile", "redis.log"])
            .args(["--save", ""])
            // The data outlives a killed process: a restarted node comes
            // back with every write it acknowledged.
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("redis-server: {e} (is it installed?)"))?;
        self.child = Some(child);
        let port = self.port;
        wait_for(&format!("node {port} to answer PING"), || {
            cli(port, &["PING"]).is_ok_and(|out| out.trim() == "PONG")
        })
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl RedisCluster {
    /// Starts three masters and joins them; blocks until every node reports
    /// `cluster_state:ok` (up to a minute per step, three attempts).
    pub fn start() -> Result<Self, String> {
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            match Self::try_start() {
                Ok(cluster) => return Ok(cluster),
                Err(error) => last = error,
            }
        }
        Err(format!("the Redis Cluster did not start: {last}"))
    }

    fn try_start() -> Result<Self, String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let root =
            std::env::temp_dir().join(format!("tjwt-cluster-{}-{nanos:x}", std::process::id()));
        let mut cluster = Self {
            root,
            nodes: Vec::new(),
        };
        let mut ports = Vec::new();
        while ports.len() < MASTERS {
            let port = free_port()?;
            if !ports.contains(&port) {
                ports.push(port);
            }
        }
        for port in ports {
            let dir = cluster.root.join(port.to_string());
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            cluster.nodes.push(Node {
                port,
                dir,
                child: None,
            });
        }
        for node in &mut cluster.nodes {
            node.spawn()?;
        }
        let addresses: Vec<String> = cluster
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(addresses.iter().map(String::as_str));
        args.push("--cluster-yes");
        cli(cluster.nodes[0].port, &args)?;
        cluster.wait_ok()?;
        Ok(cluster)
    }

    /// Blocks until every running node reports `cluster_state:ok` and knows
    /// every slot.
    pub fn wait_ok(&self) -> Result<(), String> {
        for node in self.nodes.iter().filter(|n| n.child.is_some()) {
            let port = node.port;
            wait_for(&format!("node {port}: cluster_state:ok"), || {
                cli(port, &["CLUSTER", "INFO"]).is_ok_and(|info| {
                    info.contains("cluster_state:ok")
                        && info.contains("cluster_slots_ok:16384")
                        && info.contains(&format!("cluster_known_nodes:{MASTERS}"))
                })
            })?;
        }
        Ok(())
    }

    /// The node URLs, `redis://127.0.0.1:{port}`.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect()
    }

    /// The ports of the nodes.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// The port of the node serving `key`'s hash slot.
    pub fn port_of(&self, key: &str) -> Result<u16, String> {
        let slot: u16 = cli(self.nodes[0].port, &["CLUSTER", "KEYSLOT", key])?
            .trim()
            .parse()
            .map_err(|e| format!("CLUSTER KEYSLOT: {e}"))?;
        for node in &self.nodes {
            // Its own line of CLUSTER NODES lists its slot ranges from the
            // ninth field on.
            let slots = cli(node.port, &["CLUSTER", "NODES"])?;
            let mine = slots
                .lines()
                .find(|line| line.contains("myself"))
                .ok_or("CLUSTER NODES without myself")?;
            for range in mine.split_whitespace().skip(8) {
                let (low, high) = match range.split_once('-') {
                    Some((low, high)) => (low.parse::<u16>(), high.parse::<u16>()),
                    None => (range.parse::<u16>(), range.parse::<u16>()),
                };
                if let (Ok(low), Ok(high)) = (low, high)
                    && (low..=high).contains(&slot)
                {
                    return Ok(node.port);
                }
            }
        }
        Err(format!("no node serves slot {slot}"))
    }

    /// Kills the node on `port` (SIGKILL: no goodbye to its clients).
    pub fn kill(&mut self, port: u16) {
        if let Some(node) = self.nodes.iter_mut().find(|n| n.port == port) {
            node.kill();
        }
    }

    /// Starts the node on `port` again, from its directory (its cluster
    /// config and append-only file), and waits for the cluster to be ok.
    pub fn restart(&mut self, port: u16) -> Result<(), String> {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.port == port)
            .ok_or("no such node")?;
        node.spawn()?;
        self.wait_ok()
    }

    /// Whether a server answers PING on `port`.
    pub fn answers(port: u16) -> bool {
        cli(port, &["PING"]).is_ok_and(|out| out.trim() == "PONG")
    }

    /// The directory holding the nodes' files.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
