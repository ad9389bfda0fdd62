//! Sparse writing: zero runs become holes, so multi-GB images with little data in them
//! take little disk space and little time to write.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::{Error, IoContext, Result};

/// Why a copy stopped: reading the input, or writing the output.
pub enum CopyError {
    Input(io::Error),
    Output(Error),
}

/// Writes a stream to a file, leaving holes where whole 4 KiB blocks are zero.
pub struct SparseWriter<'a> {
    file: &'a File,
    path: &'a Path,
    /// Bytes of the stream seen so far.
    pos: u64,
}

/// The granularity of holes: the block size of every common Linux filesystem.
const HOLE: usize = 4096;

impl<'a> SparseWriter<'a> {
    pub fn new(file: &'a File, path: &'a Path) -> Self {
        SparseWriter { file, path, pos: 0 }
    }

    pub fn written(&self) -> u64 {
        self.pos
    }

    /// Reads `input` to its end in 4 MiB chunks, writing only non-zero blocks.
    pub fn copy_from(&mut self, input: &mut impl Read) -> std::result::Result<(), CopyError> {
        let mut buf = vec![0u8; 4 << 20];
        loop {
            let mut filled = 0;
            while filled < buf.len() {
                match input.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(CopyError::Input(e)),
                }
            }
            if filled == 0 {
                return Ok(());
            }
            self.write_chunk(&buf[..filled])
                .map_err(CopyError::Output)?;
        }
    }

    fn write_chunk(&mut self, chunk: &[u8]) -> Result<()> {
        let mut run_start = None;
        for (i, block) in chunk.chunks(HOLE).enumerate() {
            let zero = block.iter().all(|&b| b == 0);
            match (zero, run_start) {
                (false, None) => run_start = Some(i * HOLE),
                (true, Some(s)) => {
                    self.write_at(&chunk[s..i * HOLE], s)?;
                    run_start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = run_start {
            self.write_at(&chunk[s..], s)?;
        }
        self.pos += chunk.len() as u64;
        Ok(())
    }

    fn write_at(&self, data: &[u8], offset_in_chunk: usize) -> Result<()> {
        self.file
            .write_all_at(data, self.pos + offset_in_chunk as u64)
            .at(self.path)
    }

    /// Sets the final length, so a trailing zero run is a hole too.
    pub fn finish(self) -> Result<()> {
        self.file.set_len(self.pos).at(self.path)
    }
}
