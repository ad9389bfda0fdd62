//! One SSH connection per node, through the system's `ssh`, with the status script on
//! its standard input.
//!
//! The system's client is used, not a library: it is what the operator's own `ssh -F
//! OUT/ssh_config NODE` does, with their agent, keys and options, and its messages
//! (a changed host key) are the ones they know. `BatchMode` means it never prompts;
//! strict host key checking against the build's `known_hosts` means a card in the wrong
//! slot is named, never trusted. Each connection also has a hard deadline: a node that
//! accepts the connection and then hangs is killed, with everything `ssh` started.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::script::SCRIPT;

/// Most bytes read of one node's answer (its package list is the bulk: ~40 KiB).
const MAX_ANSWER: u64 = 8 << 20;

/// How to reach the nodes: the build's `ssh_config` and `known_hosts`, and the client.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The client and its leading arguments (`ssh`, or `ip netns exec NS ssh`).
    pub command: Vec<String>,
    /// The build's `ssh_config`, given with `-F`.
    pub config: PathBuf,
    /// The build's `known_hosts`, given as `UserKnownHostsFile` so a moved output
    /// directory still checks against its own keys.
    pub known_hosts: PathBuf,
    /// A private key for `-i`.
    pub identity: Option<PathBuf>,
    /// `ConnectTimeout`, seconds.
    pub connect_timeout: u32,
    /// When the whole connection is killed, from its start.
    pub deadline: Duration,
}

/// What one connection gave back.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Answer {
    /// The client's exit status; `None` when it was killed or could not start.
    pub exit: Option<i32>,
    /// Killed at the deadline.
    pub timed_out: bool,
    /// Why the client could not be started, if it could not.
    pub spawn_error: Option<String>,
    /// Its standard output (the script's answer).
    #[serde(skip)]
    pub stdout: String,
    /// Its standard error (the client's own messages).
    #[serde(skip)]
    pub stderr: String,
    /// The operator's clock (seconds since the epoch) when the node's `now=` line
    /// arrived.
    pub now_received: Option<f64>,
}

impl Probe {
    /// The client's arguments after the program, for `node`.
    pub fn args(&self, node: &str) -> Vec<OsString> {
        let mut a: Vec<OsString> = self.command[1..].iter().map(OsString::from).collect();
        a.push("-F".into());
        a.push(self.config.clone().into());
        if let Some(i) = &self.identity {
            a.push("-i".into());
            a.push(i.clone().into());
        }
        let mut known = OsString::from("UserKnownHostsFile=");
        known.push(&self.known_hosts);
        for o in [
            OsString::from("BatchMode=yes"),
            "StrictHostKeyChecking=yes".into(),
            known,
            format!("ConnectTimeout={}", self.connect_timeout).into(),
            "ServerAliveInterval=5".into(),
            "ServerAliveCountMax=3".into(),
            "LogLevel=ERROR".into(),
        ] {
            a.push("-o".into());
            a.push(o);
        }
        a.extend([
            "-T".into(),
            "--".into(),
            node.into(),
            "sh".into(),
            "-s".into(),
        ]);
        a
    }

    /// Runs the status script on `node`.
    pub fn run(&self, node: &str) -> Answer {
        let Some(program) = self.command.first() else {
            return Answer::failed_to_start("no SSH command given".into());
        };
        let mut cmd = Command::new(program);
        cmd.args(self.args(node))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Its own process group, so the deadline kills whatever the client started
        // (`ip netns exec`, a ProxyCommand) along with it.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        match cmd.spawn() {
            Ok(child) => collect(child, self.deadline),
            Err(e) => Answer::failed_to_start(format!("cannot run `{program}`: {e}")),
        }
    }
}

impl Answer {
    fn failed_to_start(why: String) -> Answer {
        Answer {
            spawn_error: Some(why),
            ..Answer::default()
        }
    }
}

/// Feeds the script, reads both outputs, and kills the client's group at the deadline.
fn collect(mut child: std::process::Child, deadline: Duration) -> Answer {
    let pid = child.id() as libc::pid_t;
    if let Some(mut stdin) = child.stdin.take() {
        // A client that exits early (a refused host key) closes the pipe: not an error
        // here; its exit status and messages say what happened.
        let _ = stdin.write_all(SCRIPT.as_bytes());
    }
    let (stop, stopped) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let fired = stopped.recv_timeout(deadline) == Err(mpsc::RecvTimeoutError::Timeout);
        if fired {
            // SAFETY: kill(2) on our child's process group; the child is not reaped
            // before this thread is joined, so its id cannot have been reused.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        fired
    });
    let stderr = child.stderr.take().map(|e| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = e.take(MAX_ANSWER).read_to_string(&mut s);
            s
        })
    });
    let (stdout, now_received) = child.stdout.take().map(read_answer).unwrap_or_default();
    let stderr = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
    let _ = stop.send(());
    let timed_out = watchdog.join().unwrap_or(false);
    let status = child.wait().ok();
    Answer {
        exit: status.and_then(|s| s.code()),
        timed_out,
        spawn_error: None,
        stdout,
        stderr,
        now_received,
    }
}

/// The answer's text, and the operator's clock when its `now=` line arrived.
fn read_answer(out: std::process::ChildStdout) -> (String, Option<f64>) {
    let mut text = String::new();
    let mut at = None;
    let mut reader = BufReader::new(out.take(MAX_ANSWER));
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
        if line.starts_with(b"now=") {
            at = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .ok()
                .map(|d| d.as_secs_f64());
        }
        text.push_str(&String::from_utf8_lossy(&line));
        line.clear();
    }
    (text, at)
}
