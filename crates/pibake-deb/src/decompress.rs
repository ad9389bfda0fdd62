//! The compressions a .deb's archives come in, decoded from the borrowed member bytes.
//!
//! Each decoder reads a `&[u8]` directly (no internal buffer of its own), so once the
//! decompressed stream ends the unread rest of the member is known exactly: a member
//! with bytes after its compressed stream is refused, since those bytes are content
//! one tool might see and another not.

use std::io::{self, Read};

use flate2::bufread::MultiGzDecoder;
use liblzma::bufread::XzDecoder;

/// How a control or data archive is compressed, from its member name's suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
}

/// A decompressing reader over one member's bytes.
pub(crate) enum Decoder<'a> {
    Plain(&'a [u8]),
    /// Multi-member, as zlib's `gzread` (what dpkg uses) reads it.
    Gzip(MultiGzDecoder<&'a [u8]>),
    /// Concatenated streams, as `xz -d` reads them.
    Xz(XzDecoder<&'a [u8]>),
    Zstd(zstd::stream::read::Decoder<'static, &'a [u8]>),
}

impl<'a> Decoder<'a> {
    pub fn new(compression: Compression, bytes: &'a [u8]) -> io::Result<Decoder<'a>> {
        Ok(match compression {
            Compression::None => Decoder::Plain(bytes),
            Compression::Gzip => Decoder::Gzip(MultiGzDecoder::new(bytes)),
            Compression::Xz => Decoder::Xz(XzDecoder::new_multi_decoder(bytes)),
            Compression::Zstd => Decoder::Zstd(zstd::stream::read::Decoder::with_buffer(bytes)?),
        })
    }

    /// Reads what is left after the tar end-of-archive block and checks the stream ended
    /// cleanly: only zeros (tar record padding) may follow the archive, the compressed
    /// stream must be intact to its end, and no member bytes may follow it.
    pub fn finish(mut self) -> Result<(), String> {
        let mut buf = [0u8; 8192];
        loop {
            match self.read(&mut buf) {
                Ok(0) => break,
                Ok(n) if buf.get(..n).unwrap_or_default().iter().all(|b| *b == 0) => {}
                Ok(_) => return Err("non-zero bytes after the end of the tar archive".into()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("damaged after the end of the tar archive: {e}")),
            }
        }
        match self.unread() {
            0 => Ok(()),
            n => Err(format!(
                "{n} bytes of trailing data after the compressed stream"
            )),
        }
    }

    /// Member bytes the decoder has not consumed.
    fn unread(&self) -> usize {
        match self {
            Decoder::Plain(rest) => rest.len(),
            Decoder::Gzip(d) => d.get_ref().len(),
            Decoder::Xz(d) => d.get_ref().len(),
            Decoder::Zstd(d) => d.get_ref().len(),
        }
    }
}

impl Read for Decoder<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(rest) => rest.read(buf),
            Decoder::Gzip(d) => d.read(buf),
            Decoder::Xz(d) => d.read(buf),
            Decoder::Zstd(d) => d.read(buf),
        }
    }
}
