//! HTTP GET for apt files: indices and packages, through the cluster's mirror rules.
//!
//! Every download pibake makes goes through one [`Fetcher`], so the rules that matter
//! when a build runs somewhere unusual live in one place: a mirror rewrite from
//! cluster.yaml (an apt-cacher on the lab network, a local mirror behind a firewall),
//! an `--offline` switch that refuses the network outright instead of waiting for it
//! to time out, stall timeouts that fail a dead connection without cutting a slow but
//! progressing download short, and errors that name the URL really requested and say
//! what to do when a repository cannot be reached from here.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

/// How long to wait for a TCP (and TLS) connection, and for a host name to resolve.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// How long one read or write may wait for the network before the transfer counts as
/// stalled; restarted by every byte that arrives, so it never limits a long download.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Bytes read from the network between writes to the file and progress reports.
const CHUNK: usize = 64 * 1024;

/// Downloads files over HTTP(S), rewriting URLs by the cluster's mirror rules, or
/// refuses every download when offline.
pub struct Fetcher {
    agent: ureq::Agent,
    /// Mirror rules as (prefix, replacement), longest prefix first.
    mirrors: Vec<(String, String)>,
    offline: bool,
}

impl Fetcher {
    /// A fetcher with the URL prefix rewrites of cluster.yaml's `apt: { mirrors: ... }`
    /// (`"http://deb.debian.org/debian": "http://10.0.0.1:3142/debian"`). The longest
    /// matching prefix wins, and a prefix matches only at a path boundary: equal to the
    /// URL, followed in it by `/`, or itself ending with `/`. `offline` refuses every
    /// download before any connection is made.
    pub fn new(mirrors: &BTreeMap<String, String>, offline: bool) -> Fetcher {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_resolve(Some(CONNECT_TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_per_read(Some(STALL_TIMEOUT))
            .timeout_per_write(Some(STALL_TIMEOUT))
            .user_agent(concat!("pibake/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        let mut mirrors: Vec<(String, String)> = mirrors
            .iter()
            .map(|(from, to)| (from.clone(), to.clone()))
            .collect();
        mirrors.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
        Fetcher {
            agent,
            mirrors,
            offline,
        }
    }

    /// The URL actually requested for `url`: the replacement of its longest matching
    /// mirror prefix followed by the rest of `url`, or `url` itself when no rule
    /// matches.
    pub fn url_for(&self, url: &str) -> String {
        match self.rule_for(url) {
            Some((from, to)) => format!("{to}{}", &url[from.len()..]),
            None => url.to_string(),
        }
    }

    /// True when every download is refused (`--offline`: the cache alone).
    pub fn offline(&self) -> bool {
        self.offline
    }

    /// The whole body of `url`, refusing one larger than `limit` bytes.
    pub fn get(&self, url: &str, limit: u64) -> Result<Vec<u8>> {
        let to = self.url_for(url);
        let mut response = self.request(url, &to, None)?;
        if response.status().as_u16() != 200 {
            return Err(self.status_error(url, &to, &response));
        }
        let mut body = Vec::new();
        let mut reader = response.body_mut().as_reader();
        let mut chunk = vec![0u8; CHUNK];
        loop {
            let n = read_some(&mut reader, &mut chunk).map_err(|e| self.error(url, &to, e))?;
            if n == 0 {
                return Ok(body);
            }
            if (body.len() + n) as u64 > limit {
                return Err(self.too_large(url, &to, limit));
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }

    /// Appends the body of `url` to `file`, which already holds its first `offset`
    /// bytes, asking for the rest with `Range: bytes=offset-`. A `206 Partial Content`
    /// answer is appended; a `200` (servers and proxies may ignore ranges) replaces the
    /// file's contents with the whole body. `progress(n)` is called with each chunk's
    /// byte count as it arrives; a `416` (the server's file is no longer than `offset`)
    /// starts the file over. Returns the file's final length; stops with an error once
    /// it would exceed `limit` bytes, leaving the file at most `limit` long.
    pub fn get_to(
        &self,
        url: &str,
        file: &mut File,
        offset: u64,
        limit: u64,
        progress: &dyn Fn(u64),
    ) -> Result<u64> {
        let to = self.url_for(url);
        let mut response = self.request(url, &to, (offset > 0).then_some(offset))?;
        let mut length = match response.status().as_u16() {
            200 => 0,
            206 if offset > 0 => {
                let start = response
                    .headers()
                    .get("content-range")
                    .and_then(|v| v.to_str().ok())
                    .and_then(range_start);
                if start != Some(offset) {
                    return Err(self.fail(
                        url,
                        &to,
                        format!("asked for bytes {offset}- and got another range"),
                    ));
                }
                offset
            }
            // The file on the server is no longer than what the caller holds: not the
            // same file, so start it over.
            416 if offset > 0 => return self.get_to(url, file, 0, limit, progress),
            _ => return Err(self.status_error(url, &to, &response)),
        };
        let file_fd = file.as_raw_fd();
        let io = |e: std::io::Error| Error::io(path_of(file_fd, &to), e);
        file.set_len(length).map_err(io)?;
        file.seek(SeekFrom::Start(length)).map_err(io)?;
        let mut reader = response.body_mut().as_reader();
        let mut chunk = vec![0u8; CHUNK];
        loop {
            let n = read_some(&mut reader, &mut chunk).map_err(|e| self.error(url, &to, e))?;
            if n == 0 {
                return Ok(length);
            }
            if length + n as u64 > limit {
                return Err(self.too_large(url, &to, limit));
            }
            file.write_all(&chunk[..n]).map_err(io)?;
            length += n as u64;
            progress(n as u64);
        }
    }

    /// The longest mirror rule whose prefix matches `url` at a path boundary.
    fn rule_for(&self, url: &str) -> Option<&(String, String)> {
        self.mirrors.iter().find(|(from, _)| {
            url.strip_prefix(from.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || from.ends_with('/'))
        })
    }

    /// Sends the GET for `url` (requested as `to`), from byte `from` on when given.
    fn request(
        &self,
        url: &str,
        to: &str,
        from: Option<u64>,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        if self.offline {
            return Err(Error::Fetch {
                url: to.to_string(),
                original: self.original(url, to),
                message: "the file is not in the cache, and --offline forbids downloading it"
                    .into(),
                hint: Some(
                    "build once with the network (or a reachable mirror in cluster.yaml) to fill the cache"
                        .into(),
                ),
            });
        }
        let scheme = to.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        if !matches!(scheme.as_deref(), Some("http" | "https")) {
            return Err(Error::unsupported(format!(
                "fetching {to}: only http:// and https:// repositories can be downloaded from"
            ))
            .with_hint("point it at an http:// or https:// mirror in cluster.yaml: `apt: { mirrors: { ... } }`"));
        }
        let mut request = self.agent.get(to);
        if let Some(from) = from {
            request = request.header("Range", format!("bytes={from}-"));
        }
        request.call().map_err(|e| self.error(url, to, e))
    }

    /// The URL asked for, when a mirror rule made `to` out of it.
    fn original(&self, url: &str, to: &str) -> Option<String> {
        (url != to).then(|| url.to_string())
    }

    /// A failure of the transfer itself, with the hint about unreachable repositories.
    fn error(&self, url: &str, to: &str, e: impl std::fmt::Display) -> Error {
        self.fail(url, to, e.to_string())
    }

    /// The error for an answer other than the one asked for, with its status.
    fn status_error(
        &self,
        url: &str,
        to: &str,
        response: &ureq::http::Response<ureq::Body>,
    ) -> Error {
        let status = response.status();
        let reason = status.canonical_reason().unwrap_or("");
        self.fail(
            url,
            to,
            format!("HTTP {} {reason}", status.as_u16())
                .trim_end()
                .to_string(),
        )
    }

    fn too_large(&self, url: &str, to: &str, limit: u64) -> Error {
        self.fail(
            url,
            to,
            format!("the body is larger than the {limit} bytes expected"),
        )
    }

    fn fail(&self, url: &str, to: &str, message: String) -> Error {
        let prefix = match self.rule_for(url) {
            Some((from, _)) => from.clone(),
            None => repository_prefix(url),
        };
        Error::Fetch {
            url: to.to_string(),
            original: self.original(url, to),
            message,
            hint: Some(format!(
                "if this repository is unreachable from here, build with `--offline` (the cache alone) or point it at a reachable mirror in cluster.yaml: `apt: {{ mirrors: {{ \"{prefix}\": \"http://your-mirror/...\" }} }}`"
            )),
        }
    }
}

/// The path of the open file `fd`, for an error writing it (the caller passed a file,
/// not its name); a description naming the download when the system cannot tell.
fn path_of(fd: std::os::fd::RawFd, to: &str) -> PathBuf {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .unwrap_or_else(|_| PathBuf::from(format!("the file downloaded from {to}")))
}

/// Reads what is there, retrying reads a signal interrupted.
fn read_some(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// The first byte of a `Content-Range: bytes START-END/TOTAL` answer.
fn range_start(value: &str) -> Option<u64> {
    let (start, _) = value.trim().strip_prefix("bytes ")?.split_once('-')?;
    start.trim().parse().ok()
}

/// A guess at the repository a URL belongs to, for the mirror rule the hint suggests:
/// scheme, host and first path segment (`http://deb.debian.org/debian`).
fn repository_prefix(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let mut parts = rest.splitn(3, '/');
    match (parts.next(), parts.next()) {
        (Some(host), Some(first)) if !first.is_empty() => format!("{scheme}://{host}/{first}"),
        (Some(host), _) => format!("{scheme}://{host}"),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetcher(rules: &[(&str, &str)]) -> Fetcher {
        let mirrors = rules
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        Fetcher::new(&mirrors, false)
    }

    #[test]
    fn mirror_prefixes_match_at_path_boundaries_only() {
        let f = fetcher(&[("http://a/debian", "http://m:3142/debian")]);
        assert_eq!(
            f.url_for("http://a/debian/dists/bookworm/InRelease"),
            "http://m:3142/debian/dists/bookworm/InRelease"
        );
        assert_eq!(f.url_for("http://a/debian"), "http://m:3142/debian");
        assert_eq!(
            f.url_for("http://a/debian-security/dists/x"),
            "http://a/debian-security/dists/x"
        );
        assert_eq!(f.url_for("http://b/debian/x"), "http://b/debian/x");
    }

    #[test]
    fn a_prefix_ending_in_a_slash_matches_anything_after_it() {
        let f = fetcher(&[("http://a/deb", "http://m/x"), ("http://a/", "http://m/")]);
        assert_eq!(f.url_for("http://a/debian/y"), "http://m/debian/y");
        assert_eq!(f.url_for("http://a/deb/y"), "http://m/x/y");
    }

    #[test]
    fn the_longest_matching_prefix_wins() {
        let f = fetcher(&[
            ("http://a", "http://m1"),
            ("http://a/debian", "http://m2/d"),
            ("http://a/debian/pool", "http://m3/p"),
        ]);
        assert_eq!(
            f.url_for("http://a/debian/pool/main/x.deb"),
            "http://m3/p/main/x.deb"
        );
        assert_eq!(f.url_for("http://a/debian/dists/y"), "http://m2/d/dists/y");
        assert_eq!(f.url_for("http://a/raspbian/z"), "http://m1/raspbian/z");
        assert_eq!(fetcher(&[]).url_for("http://a/b"), "http://a/b");
    }

    #[test]
    fn hints_name_the_repository() {
        assert_eq!(
            repository_prefix("http://deb.debian.org/debian/pool/main/a.deb"),
            "http://deb.debian.org/debian"
        );
        assert_eq!(repository_prefix("http://h"), "http://h");
        assert_eq!(range_start("bytes 100-199/200"), Some(100));
        assert_eq!(range_start("bytes */200"), None);
    }
}
