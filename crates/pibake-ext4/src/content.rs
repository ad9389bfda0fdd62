//! A file's content as it arrives from a reader: exactly the promised length, taken one
//! block at a time, so a large file never needs a second copy of itself in memory.

use std::io::{self, Read};

use crate::error::ErrorKind;

/// A reader that must hold exactly `len` bytes, and the path they are for (errors name
/// it).
pub(crate) struct Content<'a> {
    path: &'a str,
    reader: &'a mut dyn Read,
    len: u64,
    /// Bytes taken so far.
    taken: u64,
}

impl<'a> Content<'a> {
    pub(crate) fn new(path: &'a str, reader: &'a mut dyn Read, len: u64) -> Content<'a> {
        Content {
            path,
            reader,
            len,
            taken: 0,
        }
    }

    /// The length the caller promised.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The next block: `bs` bytes of content, zero-filled past its end.
    pub(crate) fn next_block(&mut self, bs: usize) -> Result<Vec<u8>, ErrorKind> {
        let mut block = vec![0u8; bs];
        let left = self.len - self.taken;
        let want = usize::try_from(left).map_or(bs, |left| left.min(bs));
        let mut at = 0;
        while at < want {
            match self.reader.read(&mut block[at..want]) {
                Ok(0) => {
                    let got = self.taken + at as u64;
                    return Err(self.fault(format!("ended after {got} of {} bytes", self.len)));
                }
                // A reader that claims more than it was given breaks `Read`'s contract.
                Ok(n) if n > want - at => {
                    return Err(self.fault("reader reported more bytes than it was asked for"));
                }
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.failed(e)),
            }
        }
        self.taken += want as u64;
        Ok(block)
    }

    /// Checks that the reader, all content taken, has nothing more to give.
    pub(crate) fn finish(&mut self) -> Result<(), ErrorKind> {
        let mut probe = [0u8; 1];
        loop {
            match self.reader.read(&mut probe) {
                Ok(0) => return Ok(()),
                Ok(_) => return Err(self.fault(format!("holds more than {} bytes", self.len))),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.failed(e)),
            }
        }
    }

    fn fault(&self, detail: impl Into<String>) -> ErrorKind {
        ErrorKind::Content {
            path: self.path.into(),
            detail: detail.into(),
            source: None,
        }
    }

    fn failed(&self, e: io::Error) -> ErrorKind {
        ErrorKind::Content {
            path: self.path.into(),
            detail: format!("could not be read: {e}"),
            source: Some(e),
        }
    }
}
