//! Base images as they are downloaded: raw, xz, zstd, gzip or zip.
//!
//! A compressed base is decoded once into a cache keyed by the sha256 of the compressed
//! file, so a rebuild months later reuses the exact same bytes and never re-decodes.
//! Decoding streams (memory stays bounded whatever the image size), writes zero runs as
//! holes (a 5 GiB Raspberry Pi OS image is mostly free space), and uses liblzma's
//! multi-threaded decoder for xz, the format Raspberry Pi OS is published in.
//!
//! A cache entry appears under its final name only after the decoder has verified the
//! format's own integrity check (xz check, zstd frame, gzip and zip CRC-32) and the data
//! is on disk, so an interrupted or corrupt decode never leaves an entry that a later run
//! would trust.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use sha2::Digest;

use super::sparse::{CopyError, SparseWriter};
use crate::digest::Sha256;
use crate::error::{Error, IoContext, Result};

/// The container a base image comes in, told by magic bytes, not by file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// An uncompressed disk image, used as it is.
    Raw,
    /// xz (`.img.xz`), the format Raspberry Pi OS is published in.
    Xz,
    /// Zstandard (`.img.zst`).
    Zstd,
    /// gzip (`.img.gz`); concatenated members decode as one stream.
    Gzip,
    /// A zip archive holding exactly one `.img` file.
    Zip,
}

impl Format {
    /// The format's lower-case name, as used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Xz => "xz",
            Format::Zstd => "zstd",
            Format::Gzip => "gzip",
            Format::Zip => "zip",
        }
    }

    /// Reads the first bytes of `path` and names its format. Anything but a regular file
    /// is refused before it is opened (see [`check_input`]): every base and image pibake
    /// reads starts here.
    pub fn detect(path: &Path) -> Result<Format> {
        check_input(path, false)?;
        let mut head = [0u8; 6];
        let file = File::open(path).at(path)?;
        let n = file.read_at(&mut head, 0).at(path)?;
        Ok(Format::sniff(&head[..n]))
    }

    /// Names the format whose magic bytes `head` (a file's first bytes) starts with.
    pub fn sniff(head: &[u8]) -> Format {
        if head.starts_with(XZ_MAGIC) {
            Format::Xz
        } else if head.starts_with(ZSTD_MAGIC) {
            Format::Zstd
        } else if head.starts_with(b"\x1f\x8b") {
            Format::Gzip
        } else if head.starts_with(b"PK\x03\x04") {
            Format::Zip
        } else {
            Format::Raw
        }
    }
}

/// Refuses an input that is not a regular file (nor, with `block_ok`, a block device)
/// before anything opens it, following symlinks: opening a FIFO waits for a writer, a
/// socket cannot be opened at all, a directory has no bytes, and a character device such
/// as `/dev/zero` never ends, so hashing or decoding it would run (and fill the cache's
/// disk) forever. Returns the file's metadata.
pub fn check_input(path: &Path, block_ok: bool) -> Result<fs::Metadata> {
    let meta = fs::metadata(path).at(path)?;
    let ft = meta.file_type();
    if ft.is_file() || (block_ok && ft.is_block_device()) {
        return Ok(meta);
    }
    let kind = if ft.is_fifo() {
        "a FIFO (named pipe)"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_dir() {
        "a directory"
    } else {
        "not a file"
    };
    let wanted = if block_ok {
        "a regular file or a block device"
    } else {
        "a regular file"
    };
    Err(
        Error::invalid(format!("{} is {kind}; only {wanted} is read here", path.display()))
            .with_hint("name the file itself (copy the data into a file first if it comes from a pipe or a device)"),
    )
}

/// Set when the user asked the command to stop (Ctrl-C, SIGTERM): hashing and decoding
/// check it at every read, since a multi-gigabyte base takes minutes and a signal handler
/// that only sets a flag would otherwise wait for them.
static STOP: AtomicBool = AtomicBool::new(false);

/// Asks hashing and decoding in progress to stop at their next read, with an error.
/// Safe to call from a signal handler (it only stores to an atomic).
pub fn interrupt() {
    STOP.store(true, Ordering::SeqCst);
}

/// Whether [`interrupt`] was called.
pub fn interrupted() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// The error a read loop stops with once [`interrupted`]; not `ErrorKind::Interrupted`,
/// which readers retry.
fn stopped() -> io::Error {
    io::Error::other("interrupted")
}

/// A reader that fails once [`interrupt`] was called, so every loop over it stops.
struct Stoppable<R>(R);

impl<R: Read> Read for Stoppable<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if interrupted() {
            return Err(stopped());
        }
        self.0.read(buf)
    }
}

impl<R: io::Seek> io::Seek for Stoppable<R> {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        self.0.seek(pos)
    }
}

/// Where the cache lives and whether to show progress.
#[derive(Debug, Clone, Default)]
pub struct CacheOptions {
    /// Cache directory; `None` means `$XDG_CACHE_HOME/pibake` (or `~/.cache/pibake`).
    pub dir: Option<PathBuf>,
    /// Whether to show progress bars while hashing and decoding.
    pub progress: bool,
}

impl CacheOptions {
    /// The cache directory: `dir` when given, else `pibake` in the user's cache directory.
    pub fn dir(&self) -> Result<PathBuf> {
        match &self.dir {
            Some(d) => Ok(d.clone()),
            None => dirs::cache_dir().map(|d| d.join("pibake")).ok_or_else(|| {
                Error::invalid("no cache directory: neither XDG_CACHE_HOME nor HOME is set")
                    .with_hint("pass --cache-dir DIR or set PIBAKE_CACHE_DIR")
            }),
        }
    }
}

/// A base image ready to read: `raw` is an uncompressed image file.
#[derive(Debug, Clone, Serialize)]
pub struct Base {
    /// What the user gave.
    pub source: PathBuf,
    /// The container `source` came in.
    pub format: Format,
    /// The uncompressed image: `source` itself when raw, else the cache entry.
    pub raw: PathBuf,
    /// True when a cache entry from an earlier run was reused.
    pub reused: bool,
    /// sha256 of `source`, known once a compressed base was keyed by it.
    #[serde(skip)]
    source_sha256: Option<Sha256>,
    /// Where the sha256 of a raw base is remembered between runs.
    #[serde(skip)]
    cache_dir: Option<PathBuf>,
}

impl Base {
    /// sha256 of what the user gave: the cache key of a compressed base (no second read),
    /// or computed now for a raw one.
    pub fn source_sha256(&self) -> Result<Sha256> {
        match (&self.source_sha256, &self.cache_dir) {
            (Some(s), _) => Ok(*s),
            (None, Some(dir)) => remembered_sha256(&self.source, dir),
            (None, None) => sha256_file(&self.source, false),
        }
    }
}

/// Makes `path` readable as a raw image, decoding into the cache when compressed.
/// Anything but a regular file is refused before it is opened ([`Format::detect`]).
pub fn prepare(path: &Path, opts: &CacheOptions) -> Result<Base> {
    let format = Format::detect(path)?;
    let dir = opts.dir()?;
    if format == Format::Raw {
        return Ok(Base {
            source: path.to_path_buf(),
            format,
            raw: path.to_path_buf(),
            reused: false,
            source_sha256: None,
            cache_dir: Some(dir),
        });
    }
    fs::create_dir_all(&dir).at(&dir)?;
    let key = sha256_file(path, opts.progress)?;
    let entry = dir.join(format!("{key}.img"));
    let reused = entry.exists();
    if !reused {
        decode_into_cache(path, format, &entry, opts.progress)?;
    }
    Ok(Base {
        source: path.to_path_buf(),
        format,
        raw: entry,
        reused,
        source_sha256: Some(key),
        cache_dir: Some(dir),
    })
}

/// The sha256 of a raw image, read in full only the first time: it is remembered under
/// the file's identity (device, inode, size, modification time), which any write to the
/// file changes.
fn remembered_sha256(path: &Path, dir: &Path) -> Result<Sha256> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(path).at(path)?;
    let memo = dir.join("raw-sha256").join(format!(
        "{}-{}-{}-{}.{}",
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec()
    ));
    if let Some(s) = fs::read_to_string(&memo)
        .ok()
        .and_then(|s| s.parse::<Sha256>().ok())
    {
        return Ok(s);
    }
    let sum = sha256_file(path, false)?;
    let parent = memo.parent().expect("a file in a directory");
    fs::create_dir_all(parent).at(parent)?;
    let part = memo.with_extension("part");
    fs::write(&part, sum.to_string()).at(&part)?;
    fs::rename(&part, &memo).at(&memo)?;
    Ok(sum)
}

/// sha256 of a file, read in large chunks.
pub fn sha256_file(path: &Path, progress: bool) -> Result<Sha256> {
    let file = File::open(path).at(path)?;
    let len = file.metadata().at(path)?.len();
    let bar = bar(progress, len, "hashing");
    let mut reader = Stoppable(bar.wrap_read(file));
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf).at(path)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    bar.finish_and_clear();
    Ok(Sha256::from_hasher(hasher))
}

fn bar(progress: bool, len: u64, what: &'static str) -> indicatif::ProgressBar {
    if !progress {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:>9} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    bar.set_message(what);
    bar
}

/// Decodes `path` into `entry`, through a temporary name in the same directory.
fn decode_into_cache(path: &Path, format: Format, entry: &Path, progress: bool) -> Result<()> {
    let part = entry.with_extension(format!("img.part-{}", std::process::id()));
    let result = (|| {
        let out = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&part)
            .at(&part)?;
        let input = File::open(path).at(path)?;
        let bar = bar(progress, input.metadata().at(path)?.len(), "decoding");
        let input = BufReader::with_capacity(1 << 20, Stoppable(bar.wrap_read(input)));
        let mut sink = SparseWriter::new(&out, &part);
        decode(format, input, &mut sink).map_err(|e| match interrupted() {
            true => Error::io(path, stopped()),
            false => damaged(path, format, e),
        })?;
        if sink.written() == 0 {
            return Err(Error::invalid(format!(
                "{}: decodes to an empty file, not a disk image",
                path.display()
            )));
        }
        sink.finish()?;
        out.sync_all().at(&part)?;
        bar.finish_and_clear();
        fs::rename(&part, entry).at(entry)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&part);
    }
    result
}

/// Decodes a base held in memory (`name` names it in errors), with the same checks as a
/// decode into the cache: the format's integrity check, one `.img` per zip, nothing but
/// padding after the last stream, not empty. Output past `limit` bytes is an error, so
/// memory stays bounded whatever the input claims. For small inputs such as tests and
/// fuzzing; bases on disk go through [`prepare`], which streams into a sparse file.
pub fn decode_bytes(data: &[u8], name: &Path, limit: u64) -> Result<(Format, Vec<u8>)> {
    let format = Format::sniff(data);
    let mut sink = Bounded {
        out: Vec::new(),
        limit,
    };
    match format {
        Format::Raw => sink.copy_from(&mut &data[..]).map_err(DecodeError::from),
        _ => decode(format, io::Cursor::new(data), &mut sink),
    }
    .map_err(|e| damaged(name, format, e))?;
    if sink.out.is_empty() {
        return Err(Error::invalid(format!(
            "{}: decodes to an empty file, not a disk image",
            name.display()
        )));
    }
    Ok((format, sink.out))
}

/// Where [`decode`] puts the decoded stream: a sparse file, or memory.
trait Sink {
    /// Appends all of `input`, to its end.
    fn copy_from(&mut self, input: &mut impl Read) -> Result<(), CopyError>;
}

impl Sink for SparseWriter<'_> {
    fn copy_from(&mut self, input: &mut impl Read) -> Result<(), CopyError> {
        SparseWriter::copy_from(self, input)
    }
}

/// The decoded stream in memory, refused once it grows past `limit` bytes.
struct Bounded {
    out: Vec<u8>,
    limit: u64,
}

impl Sink for Bounded {
    fn copy_from(&mut self, input: &mut impl Read) -> Result<(), CopyError> {
        let room = self.limit.saturating_sub(self.out.len() as u64);
        input
            .take(room.saturating_add(1))
            .read_to_end(&mut self.out)
            .map_err(CopyError::Input)?;
        if self.out.len() as u64 > self.limit {
            return Err(CopyError::Output(Error::invalid(format!(
                "decodes to more than {} bytes",
                self.limit
            ))));
        }
        Ok(())
    }
}

/// An error of the decoder means the download is damaged; say so, naming the file.
fn damaged(path: &Path, format: Format, e: DecodeError) -> Error {
    match e {
        DecodeError::Output(e) => e,
        DecodeError::Input(e) => Error::invalid(format!(
            "{}: {} data is truncated or corrupt: {e}",
            path.display(),
            format.name()
        ))
        .with_hint("download the image again and compare its sha256 with the published one"),
        DecodeError::Layout(what) => Error::invalid(format!("{}: {what}", path.display())),
    }
}

/// Why decoding stopped: the compressed input, the archive layout, or our own output.
enum DecodeError {
    Input(io::Error),
    Layout(String),
    Output(Error),
}

impl From<CopyError> for DecodeError {
    fn from(e: CopyError) -> Self {
        match e {
            CopyError::Input(e) => DecodeError::Input(e),
            CopyError::Output(e) => DecodeError::Output(e),
        }
    }
}

/// Copies the decoded stream of `input` into `sink`.
fn decode(
    format: Format,
    input: impl BufRead + io::Seek,
    sink: &mut impl Sink,
) -> Result<(), DecodeError> {
    match format {
        Format::Raw => unreachable!("raw images are not decoded"),
        // Concatenated streams (xz) and frames (zstd) are one file to every decoder, and
        // are what pibake itself writes; after the last one only padding may follow.
        Format::Xz => {
            let mut input = input;
            loop {
                let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
                let stream = liblzma::stream::MtStreamBuilder::new()
                    .threads(threads)
                    // Enough for every core to hold the blocks xz -T0 writes at preset 9.
                    .memlimit_threading(1 << 30)
                    .memlimit_stop(u64::MAX)
                    .decoder()
                    .map_err(|e| DecodeError::Input(e.into()))?;
                let mut dec = liblzma::bufread::XzDecoder::new_stream(input, stream);
                sink.copy_from(&mut dec)?;
                input = dec.into_inner();
                if !next_starts_with(&mut input, XZ_MAGIC)? {
                    return trailing_must_be_padding(input);
                }
            }
        }
        Format::Zstd => {
            let mut input = input;
            loop {
                let mut dec = zstd::stream::read::Decoder::with_buffer(input)
                    .map_err(DecodeError::Input)?
                    .single_frame();
                sink.copy_from(&mut dec)?;
                input = dec.finish();
                if !next_starts_with(&mut input, ZSTD_MAGIC)? {
                    return trailing_must_be_padding(input);
                }
            }
        }
        Format::Gzip => Ok(sink.copy_from(&mut flate2::bufread::MultiGzDecoder::new(input))?),
        Format::Zip => {
            let mut archive =
                zip::ZipArchive::new(input).map_err(|e| DecodeError::Input(io::Error::other(e)))?;
            let images: Vec<String> = archive
                .file_names()
                .filter_map(|n| n.ok().map(|n| n.into_owned()))
                .filter(|n| n.to_ascii_lowercase().ends_with(".img"))
                .collect();
            let [name] = images.as_slice() else {
                return Err(DecodeError::Layout(format!(
                    "the zip archive must hold exactly one .img file, it holds {}{}",
                    images.len(),
                    if images.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", images.join(", "))
                    }
                )));
            };
            let mut file = archive
                .by_name(name)
                .map_err(|e| DecodeError::Input(io::Error::other(e)))?;
            Ok(sink.copy_from(&mut file)?)
        }
    }
}

const XZ_MAGIC: &[u8] = b"\xfd7zXZ\0";
const ZSTD_MAGIC: &[u8] = b"\x28\xb5\x2f\xfd";

/// Whether the unread input starts with `magic` (another stream or frame follows). It
/// reads ahead and seeks back, since a buffer may end in the middle of the magic.
fn next_starts_with(
    input: &mut (impl BufRead + io::Seek),
    magic: &[u8],
) -> Result<bool, DecodeError> {
    let mut head = [0u8; 8];
    let head = &mut head[..magic.len()];
    let mut got = 0;
    while got < head.len() {
        match input.read(&mut head[got..]).map_err(DecodeError::Input)? {
            0 => break,
            n => got += n,
        }
    }
    input
        .seek(io::SeekFrom::Current(-(got as i64)))
        .map_err(DecodeError::Input)?;
    Ok(got == magic.len() && head == magic)
}

/// After the last xz stream or zstd frame, only zero padding may follow; anything else
/// means the file is not the single image it claims to be.
fn trailing_must_be_padding(mut rest: impl BufRead) -> Result<(), DecodeError> {
    loop {
        let buf = rest.fill_buf().map_err(DecodeError::Input)?;
        if buf.is_empty() {
            return Ok(());
        }
        if buf.iter().any(|&b| b != 0) {
            return Err(DecodeError::Input(io::Error::other(
                "unexpected data after the end of the compressed stream",
            )));
        }
        let n = buf.len();
        rest.consume(n);
    }
}
