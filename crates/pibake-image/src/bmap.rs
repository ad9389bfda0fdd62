//! Block maps in bmaptool's XML format (version 2.0): which 4 KiB blocks of an image hold
//! data, with a sha256 per range, so a flasher writes only those and can check them.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;

use sha2::Digest;

use crate::digest::Sha256;
use crate::error::{Error, IoContext, Result};

/// Block size of the bmaps pibake writes, in bytes.
pub const BLOCK: u64 = 4096;

/// sha256 of bytes `r` of `file`.
fn range_sha256(file: &File, path: &Path, r: &Range<u64>) -> Result<Sha256> {
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 4 << 20];
    let mut off = r.start;
    while off < r.end {
        let n = ((r.end - off) as usize).min(buf.len());
        file.read_exact_at(&mut buf[..n], off).at(path)?;
        h.update(&buf[..n]);
        off += n as u64;
    }
    Ok(Sha256::from_hasher(h))
}

/// The bmap of an image of `len` bytes whose data lies in `ranges` (byte ranges, each
/// with the sha256 of its bytes, in order; block-aligned but for the image's end).
pub fn render<'a>(len: u64, ranges: impl IntoIterator<Item = &'a (u64, u64, Sha256)>) -> String {
    let mut map = String::new();
    let mut mapped = 0;
    for (start, end, sum) in ranges {
        let (first, last) = (start / BLOCK, end.div_ceil(BLOCK) - 1);
        mapped += last - first + 1;
        let span = if first == last {
            first.to_string()
        } else {
            format!("{first}-{last}")
        };
        map.push_str(&format!(
            "        <Range chksum=\"{sum}\"> {span} </Range>\n"
        ));
    }
    let zero = "0".repeat(64);
    let text = format!(
        "<?xml version=\"1.0\" ?>\n<!-- Written by pibake: the blocks of the image that hold data -->\n<bmap version=\"2.0\">\n    <ImageSize> {len} </ImageSize>\n    <BlockSize> {BLOCK} </BlockSize>\n    <BlocksCount> {} </BlocksCount>\n    <MappedBlocksCount> {mapped} </MappedBlocksCount>\n    <ChecksumType> sha256 </ChecksumType>\n    <BmapFileChecksum> {zero} </BmapFileChecksum>\n    <BlockMap>\n{map}    </BlockMap>\n</bmap>\n",
        len.div_ceil(BLOCK)
    );
    // The file's own checksum is taken with that field all zeros, then filled in.
    let sum = Sha256::of(text.as_bytes());
    text.replacen(&zero, &sum.to_string(), 1)
}

/// The ranges and checksums a bmap lists (the parts of the format pibake writes).
pub fn parse(text: &str, origin: &Path) -> Result<Vec<(Range<u64>, Sha256)>> {
    let bad = |what: &str| {
        Error::invalid(format!(
            "{}: not a bmap pibake can read: {what}",
            origin.display()
        ))
    };
    let block: u64 = field(text, "BlockSize")
        .ok_or_else(|| bad("no BlockSize"))?
        .parse()
        .ok()
        .filter(|&b| b > 0)
        .ok_or_else(|| bad("BlockSize"))?;
    let mut out = Vec::new();
    for part in text.split("<Range").skip(1) {
        let sum = part
            .split("chksum=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .ok_or_else(|| bad("a Range without chksum"))?;
        let sum: Sha256 = sum
            .parse()
            .map_err(|e| bad(&format!("chksum `{sum}`: {e}")))?;
        let span = part
            .split('>')
            .nth(1)
            .and_then(|s| s.split('<').next())
            .ok_or_else(|| bad("a Range without blocks"))?
            .trim();
        let (a, b) = span.split_once('-').unwrap_or((span, span));
        let (a, b): (u64, u64) = (
            a.trim().parse().map_err(|_| bad(span))?,
            b.trim().parse().map_err(|_| bad(span))?,
        );
        // Blocks `a` to `b` inclusive, as bytes; a range that runs backwards or past
        // 2^64 bytes describes no image.
        let bytes = (a <= b)
            .then(|| Some(a.checked_mul(block)?..b.checked_add(1)?.checked_mul(block)?))
            .flatten()
            .ok_or_else(|| bad(span))?;
        out.push((bytes, sum));
    }
    Ok(out)
}

fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.split(&format!("<{name}>"))
        .nth(1)?
        .split(&format!("</{name}>"))
        .next()
        .map(str::trim)
}

/// Checks `target` against a bmap's checksums; a mismatch names the range.
pub fn verify(target: &Path, bmap: &Path) -> Result<u64> {
    let text = std::fs::read_to_string(bmap).at(bmap)?;
    let file = File::open(target).at(target)?;
    let len = file.metadata().at(target)?.len();
    let size: u64 = field(&text, "ImageSize")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut checked = 0;
    for (r, sum) in parse(&text, bmap)? {
        if r.start > size {
            return Err(Error::invalid(format!(
                "{}: a range starts at byte {}, past the image size {size} it gives",
                bmap.display(),
                r.start
            )));
        }
        let r = r.start..r.end.min(size);
        if r.end > len && len != 0 {
            return Err(Error::invalid(format!(
                "{}: ends before byte {} that the bmap lists",
                target.display(),
                r.end
            )));
        }
        if range_sha256(&file, target, &r)? != sum {
            return Err(Error::corrupt(format!(
                "{}: bytes {}..{} do not match the bmap's checksum ({})",
                target.display(),
                r.start,
                r.end,
                bmap.display()
            )));
        }
        checked += r.end - r.start;
    }
    Ok(checked)
}
