//! The compressors of node outputs: one chunk in, one self-contained frame out.

use std::io::Read;

use crate::CHUNK;
use crate::error::{Error, Result};

/// A compression format pibake writes frame by frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Zstandard: one zstd frame per chunk, making a `.img.zst`.
    Zstd,
    /// xz: one whole xz stream per chunk, making a `.img.xz`.
    Xz,
}

impl Codec {
    /// The file name suffix after `.img`.
    pub fn suffix(self) -> &'static str {
        match self {
            Codec::Zstd => "zst",
            Codec::Xz => "xz",
        }
    }

    /// One chunk as one self-contained frame.
    pub fn compress(self, chunk: &[u8]) -> Result<Vec<u8>> {
        let fail = |e: &dyn std::fmt::Display| Error::Codec {
            format: self.suffix(),
            message: e.to_string(),
        };
        match self {
            // zstd's default level: fast, and what `zstd` writes unless told otherwise.
            Codec::Zstd => zstd::bulk::compress(chunk, 3).map_err(|e| fail(&e)),
            Codec::Xz => {
                // xz's default preset, with the dictionary no larger than a chunk: the
                // ratio is the same, and each encoder needs about 45 MiB, not 94.
                let mut opts = liblzma::stream::LzmaOptions::new_preset(6).map_err(|e| fail(&e))?;
                opts.dict_size(CHUNK as u32);
                let mut filters = liblzma::stream::Filters::new();
                filters.lzma2(&opts);
                let stream = liblzma::stream::Stream::new_stream_encoder(
                    &filters,
                    liblzma::stream::Check::Crc64,
                )
                .map_err(|e| fail(&e))?;
                let mut out = Vec::with_capacity(chunk.len() / 4);
                liblzma::read::XzEncoder::new_stream(chunk, stream)
                    .read_to_end(&mut out)
                    .map_err(|e| fail(&e))?;
                Ok(out)
            }
        }
    }

    /// Memory one compressing thread needs, for bounding parallel work.
    pub fn memory(self) -> u64 {
        match self {
            Codec::Zstd => 24 << 20,
            Codec::Xz => 48 << 20,
        }
    }
}
