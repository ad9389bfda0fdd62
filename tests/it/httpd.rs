//! A tiny HTTP/1.1 server for tests that download: no network, no fixtures on disk.
//!
//! It serves a map of paths to bytes on 127.0.0.1 (GET only, one request per
//! connection), honours `Range: bytes=N-` with `206 Partial Content` unless told to
//! ignore ranges (as some servers and proxies do), can cut a path's first answer short
//! to simulate an interrupted download, and records every request so tests can assert
//! what was asked for.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

#[derive(Default)]
struct State {
    files: HashMap<String, Vec<u8>>,
    ignore_ranges: bool,
    /// Paths whose next answer stops after this many body bytes.
    cut: HashMap<String, usize>,
    /// Every request: its path and the start of the range it asked for.
    requests: Vec<(String, Option<u64>)>,
}

/// A running server; stopped when dropped.
pub struct Httpd {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Httpd {
    /// Serves `files` (path, such as `/debian/pool/a.deb`, to contents).
    pub fn start<'a>(files: impl IntoIterator<Item = (&'a str, Vec<u8>)>) -> Httpd {
        let state = State {
            files: files.into_iter().map(|(p, b)| (p.to_string(), b)).collect(),
            ..State::default()
        };
        let state = Arc::new(Mutex::new(state));
        let stop = Arc::new(AtomicBool::new(false));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(conn) = conn {
                        let state = state.clone();
                        std::thread::spawn(move || answer(conn, &state));
                    }
                }
            })
        };
        Httpd {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Serves `bytes` at `path` from now on (a repository that moved on).
    pub fn put(&self, path: &str, bytes: Vec<u8>) {
        self.state
            .lock()
            .unwrap()
            .files
            .insert(path.to_string(), bytes);
    }

    /// Answers every request with the whole file and `200`, whatever range it asks.
    pub fn ignore_ranges(&self) {
        self.state.lock().unwrap().ignore_ranges = true;
    }

    /// Cuts the connection after `bytes` bytes of the next answer's body for `path`
    /// (its headers still announce the whole length).
    pub fn cut_after(&self, path: &str, bytes: usize) {
        self.state
            .lock()
            .unwrap()
            .cut
            .insert(path.to_string(), bytes);
    }

    /// The requests for `path` so far, in order, as the start of the range each asked
    /// for (`None`: the whole file).
    pub fn requests(&self, path: &str) -> Vec<Option<u64>> {
        let state = self.state.lock().unwrap();
        state
            .requests
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, r)| *r)
            .collect()
    }

    /// How many requests the server has had, for any path.
    pub fn total_requests(&self) -> usize {
        self.state.lock().unwrap().requests.len()
    }
}

impl Drop for Httpd {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request from `conn` and answers it.
fn answer(mut conn: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut words = line.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let mut range = None;
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => return,
            Ok(_) if header.trim().is_empty() => break,
            Ok(_) => {}
        }
        if let Some((name, value)) = header.split_once(':')
            && name.trim().eq_ignore_ascii_case("range")
        {
            range = value
                .trim()
                .strip_prefix("bytes=")
                .and_then(|v| v.strip_suffix('-'))
                .and_then(|v| v.parse::<u64>().ok());
        }
    }
    let (status, extra, body, cut) = {
        let mut s = state.lock().unwrap();
        s.requests.push((path.to_string(), range));
        let cut = s.cut.remove(path);
        match (method, s.files.get(path)) {
            ("GET", Some(file)) => {
                let len = file.len() as u64;
                match range {
                    Some(start) if !s.ignore_ranges && start >= len => (
                        "416 Range Not Satisfiable",
                        format!("Content-Range: bytes */{len}\r\n"),
                        Vec::new(),
                        None,
                    ),
                    Some(start) if !s.ignore_ranges => (
                        "206 Partial Content",
                        format!("Content-Range: bytes {start}-{}/{len}\r\n", len - 1),
                        file[start as usize..].to_vec(),
                        cut,
                    ),
                    _ => ("200 OK", String::new(), file.clone(), cut),
                }
            }
            ("GET", None) => ("404 Not Found", String::new(), Vec::new(), None),
            _ => ("405 Method Not Allowed", String::new(), Vec::new(), None),
        }
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    );
    let sent = &body[..cut.unwrap_or(body.len()).min(body.len())];
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(sent);
    let _ = conn.flush();
    let _ = conn.shutdown(Shutdown::Both);
}
