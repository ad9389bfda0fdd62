//! Growing the root partition's table entry of an image file, offline and in place.
//!
//! A baked image is often made bigger than its base, so that packages fit before the
//! first boot. The root partition ends last in Raspberry Pi OS images, so growing it is a
//! matter of extending the file (sparsely: the new space costs nothing on disk) and
//! rewriting the root's entry; the filesystem inside is grown separately.
//!
//! Only what a partitioning tool would change is written, and nothing is written before
//! every check has passed:
//!
//! - MBR: the root's sector count and end CHS in sector 0, the CHS computed the way
//!   `sfdisk` does, so that the result is byte-identical to resizing with `sfdisk -N`.
//! - GPT: the root's `last_lba`, both headers and the entry-array CRC, with the backup
//!   table moved to the (new) end of the file as `sfdisk --relocate gpt-bak-std` does, the
//!   stale backup header zeroed, and the protective MBR's size updated.
//!
//! [`grow_image`] (with the `ext4` feature) does the whole job: the entry, then the
//! root's ext4 grown into the new space by `pibake_ext4`'s own grower.
//!
//! The headers are written here by hand rather than through the `gpt` crate: they are
//! 92 bytes with two CRC32s, and writing them directly keeps every other byte as it was.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, IoContext, Result};
use crate::partition::{Layout, Partition, SECTOR, TableKind};
use crate::region::Region;

/// What [`grow_root_entry`] changed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RootGrowth {
    /// 1-based partition number of the root.
    pub number: u32,
    /// Byte offset of the root partition in the image (unchanged).
    pub start: u64,
    /// The root partition's size before, in bytes.
    pub old_size: u64,
    /// The root partition's size after, in bytes.
    pub new_size: u64,
    /// The image file's length before.
    pub old_len: u64,
    /// The image file's length after.
    pub new_len: u64,
}

/// What [`grow_image`] changed: the root partition and the filesystem in it.
#[cfg(feature = "ext4")]
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageGrowth {
    /// The partition table's change and the file's length.
    pub partition: RootGrowth,
    /// The root filesystem's change.
    pub filesystem: pibake_ext4::Growth,
}

/// Grows the image file at `path` so that its root partition holds `root_size` bytes and
/// its ext4 fills them: [`grow_root_entry`], then [`pibake_ext4::Ext4::grow`], both in
/// place, rootless and without moving data.
///
/// A filesystem that cannot be written (errors flagged, orphans, a journal to recover)
/// is refused before the table changes. Should the filesystem's own growth refuse after
/// that (it needs more descriptor blocks than it keeps in reserve), the image is left
/// valid, its partition larger than its filesystem; pibake grows copies of bases, so
/// it drops the copy.
#[cfg(feature = "ext4")]
pub fn grow_image(path: &Path, root_size: u64) -> Result<ImageGrowth> {
    let whole = Region::whole(path, false)?;
    let root = Layout::read(&whole)?.root().clone();
    pibake_ext4::Ext4::open_rw(whole.sub(root.start, root.size)?)?;
    let partition = grow_root_entry(path, root_size)?;
    let whole = Region::whole(path, true)?;
    let mut fs = pibake_ext4::Ext4::open_rw(whole.sub(partition.start, partition.new_size)?)?;
    let filesystem = fs.grow(fs.device_blocks())?;
    Ok(ImageGrowth {
        partition,
        filesystem,
    })
}

/// Grows the root partition of the image file at `path` (opened read-write here) to
/// `new_size` bytes, same start: extends the file (sparse: `File::set_len`, never writing
/// zeros) when the partition's new end (plus, for GPT, the backup entry array and header)
/// is past the file's end, then rewrites the root's entry.
///
/// Refused before anything is written: a size that is not whole sectors or smaller than
/// the current one, a root that is not the last partition, and a size the table cannot
/// describe. The same size is a no-op that writes nothing. The filesystem inside is not
/// touched: growing it into the new space is the caller's next step.
///
/// Writes go in the order that leaves a readable table if interrupted: the file is
/// extended, then (GPT) the new backup table is written where nothing points yet, then
/// the primary that points at it; then the file is synced.
pub fn grow_root_entry(path: &Path, new_size: u64) -> Result<RootGrowth> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .at(path)?;
    let file = Arc::new(file);
    let old_len = file.metadata().at(path)?.len();
    let image = Region::new(file.clone(), path, 0, old_len);
    let layout = Layout::read(&image)?;
    let root = layout.root().clone();
    check_new_size(path, &root, new_size)?;
    let mut growth = RootGrowth {
        number: root.number,
        start: root.start,
        old_size: root.size,
        new_size,
        old_len,
        new_len: old_len,
    };
    if new_size == root.size {
        return Ok(growth);
    }
    check_root_is_last(path, &layout)?;
    let plan = match layout.table {
        TableKind::Mbr => plan_mbr(&image, &root, new_size)?,
        TableKind::Gpt => plan_gpt(&image, &root, new_size)?,
    };
    growth.new_len = plan.new_len;
    apply(path, &file, old_len, plan)?;
    Ok(growth)
}

/// The writes that grow the entry, computed in full before the first one is made.
struct Plan {
    /// The file's length afterwards (never less than before).
    new_len: u64,
    /// Byte offsets and contents, in the order to write them.
    writes: Vec<(u64, Vec<u8>)>,
}

/// Extends the file first (so every write lands inside it), then writes, then syncs.
fn apply(path: &Path, file: &Arc<File>, old_len: u64, plan: Plan) -> Result<()> {
    if plan.new_len > old_len {
        file.set_len(plan.new_len).at(path)?;
    }
    let mut image = Region::new(file.clone(), path, 0, plan.new_len);
    for (offset, bytes) in &plan.writes {
        image.write_all_at(*offset, bytes)?;
    }
    file.sync_all().at(path)
}

/// Refuses sizes that are not whole sectors or would shrink the root.
fn check_new_size(path: &Path, root: &Partition, new_size: u64) -> Result<()> {
    let name = path.display();
    if !new_size.is_multiple_of(SECTOR) {
        return Err(Error::invalid(format!(
            "{name}: a root partition of {new_size} bytes is not a whole number of {SECTOR}-byte sectors"
        ))
        .with_hint(format!(
            "give a size that is a multiple of {SECTOR} bytes, such as {}",
            new_size.next_multiple_of(SECTOR)
        )));
    }
    if new_size < root.size {
        return Err(Error::invalid(format!(
            "{name}: the root partition (partition {}) is {} bytes; {new_size} bytes would shrink it, and pibake only grows",
            root.number, root.size
        ))
        .with_hint(format!(
            "give a size of at least {} bytes, the root's current size",
            root.size
        )));
    }
    Ok(())
}

/// Refuses a root with another partition after it: growing would run into that one.
fn check_root_is_last(path: &Path, layout: &Layout) -> Result<()> {
    let root = layout.root();
    let after = layout
        .partitions
        .iter()
        .filter(|p| p.number != root.number && p.start >= root.start)
        .min_by_key(|p| p.start);
    match after {
        None => Ok(()),
        Some(p) => Err(Error::unsupported(format!(
            "{}: partition {} ({} content, bytes {}..{}) lies after the root partition {} (bytes {}..{}), so the root cannot grow",
            path.display(),
            p.number,
            p.content.name(),
            p.start,
            p.start + p.size,
            root.number,
            root.start,
            root.start + root.size
        ))
        .with_hint(format!(
            "pibake grows only a root partition that ends last; keep the base's size, or move or remove partition {} in a copy of the base first",
            p.number
        ))),
    }
}

/// Largest sector count an MBR can describe: its fields and `sfdisk` stop at 2^32 - 1.
const MBR_MAX_SECTORS: u64 = u32::MAX as u64;

/// MBR: a new sector count and end CHS in the root's 16-byte entry of sector 0.
fn plan_mbr(image: &Region, root: &Partition, new_size: u64) -> Result<Plan> {
    let name = image.path().display();
    let start = root.start / SECTOR;
    let sectors = new_size / SECTOR;
    if start + sectors > MBR_MAX_SECTORS {
        return Err(Error::unsupported(format!(
            "{name}: a root partition of {new_size} bytes at sector {start} would end at sector {}, past the {MBR_MAX_SECTORS} sectors (2 TiB) an MBR partition table can describe",
            start + sectors
        ))
        .with_hint(format!(
            "give a size of at most {} bytes, or convert the base to GPT (`sgdisk --mbrtogpt` on a copy) first",
            (MBR_MAX_SECTORS - start) * SECTOR
        )));
    }
    if !(1..=4).contains(&root.number) {
        return Err(damaged_table(format!(
            "{name}: the root partition is number {}, not one of the MBR's 4 entries",
            root.number
        )));
    }
    let mut mbr = image.read_vec(0, SECTOR as usize)?;
    let at = 446 + 16 * (root.number as usize - 1);
    let entry_start = le32(&mbr, at + 8);
    let entry_sectors = le32(&mbr, at + 12);
    if u64::from(entry_start) != start || u64::from(entry_sectors) != root.size / SECTOR {
        return Err(damaged_table(format!(
            "{name}: MBR entry {} says sectors {entry_start}+{entry_sectors}, not the root partition's {start}+{}",
            root.number,
            root.size / SECTOR
        )));
    }
    let (heads, per_track) = mbr_geometry(&mbr);
    mbr[at + 5..at + 8].copy_from_slice(&chs(start + sectors - 1, heads, per_track));
    // Checked above: the count fits in 32 bits.
    mbr[at + 12..at + 16].copy_from_slice(&(sectors as u32).to_le_bytes());
    Ok(Plan {
        new_len: image.len().max(root.start + new_size),
        writes: vec![(0, mbr)],
    })
}

/// The CHS geometry `sfdisk` (libfdisk) writes an MBR with: the one every used entry's
/// end CHS agrees on (head + 1, sector), else 255 heads of 63 sectors, its default for
/// disks that report none, which is what Raspberry Pi OS images' tables are made with.
fn mbr_geometry(mbr: &[u8]) -> (u64, u64) {
    let mut ends = mbr[446..510]
        .chunks_exact(16)
        .filter(|entry| entry[4] != 0)
        .map(|entry| (u64::from(entry[5]) + 1, u64::from(entry[6] & 0x3F)));
    match ends.next() {
        Some(first) if first.1 != 0 && ends.all(|end| end == first) => first,
        _ => (255, 63),
    }
}

/// The 3 CHS bytes (head, sector | cylinder high bits, cylinder low bits) of `lba`. Past
/// cylinder 1023, the last CHS of the geometry (1023/254/63, bytes FE FF FF, with 255x63):
/// the value tools use to say "beyond CHS, use the LBA fields".
fn chs(lba: u64, heads: u64, sectors: u64) -> [u8; 3] {
    let per_cylinder = heads * sectors;
    let lba = if lba / per_cylinder > 1023 {
        1024 * per_cylinder - 1
    } else {
        lba
    };
    let cylinder = lba / per_cylinder;
    let head = (lba / sectors) % heads;
    let sector = lba % sectors + 1;
    [
        head as u8,
        (sector as u8) | ((cylinder >> 2) as u8 & 0xC0),
        cylinder as u8,
    ]
}

/// The primary GPT header's fields this module reads, after its checks.
struct GptHeader {
    /// Sector 1, whole.
    sector: Vec<u8>,
    /// Bytes covered by the header CRC.
    size: usize,
    /// Where the backup header was (to zero it once it is stale).
    alternate_lba: u64,
    /// Where the primary entry array is.
    entries_lba: u64,
    /// Length of the entry array in bytes.
    entries_len: usize,
    /// Length of one entry in bytes (128, or a larger multiple of 8).
    entry_size: usize,
}

/// GPT: the root's `last_lba`, both headers, and the backup table at the new end.
fn plan_gpt(image: &Region, root: &Partition, new_size: u64) -> Result<Plan> {
    let header = read_gpt_header(image)?;
    let mut entries = read_gpt_entries(image, &header)?;
    let array_sectors = (header.entries_len as u64).div_ceil(SECTOR);
    let first_lba = root.start / SECTOR;
    let last_lba = first_lba + new_size / SECTOR - 1;
    // The root, then the backup entry array, then the backup header.
    let needed = (last_lba + array_sectors + 2)
        .checked_mul(SECTOR)
        .filter(|&n| n <= i64::MAX as u64)
        .ok_or_else(|| too_big_for_gpt(image, new_size))?;
    let new_len = image.len().max(needed);
    let total = new_len / SECTOR;
    let backup_lba = total - 1;
    let backup_entries_lba = backup_lba - array_sectors;
    set_root_last_lba(image, &header, &mut entries, root, last_lba)?;
    let entries_crc = crc32(&entries);

    let mut primary = header.sector.clone();
    put64(&mut primary, 32, backup_lba);
    put64(&mut primary, 48, backup_entries_lba - 1);
    primary[88..92].copy_from_slice(&entries_crc.to_le_bytes());
    let mut backup = primary.clone();
    put64(&mut backup, 24, backup_lba);
    put64(&mut backup, 32, 1);
    put64(&mut backup, 72, backup_entries_lba);
    seal_header(&mut primary, header.size);
    seal_header(&mut backup, header.size);

    // Backup first, then the primary's entries, then its header: at every point in
    // between, one of the two headers is valid together with its entries.
    let mut writes = vec![
        (backup_entries_lba * SECTOR, entries.clone()),
        (backup_lba * SECTOR, backup),
        (header.entries_lba * SECTOR, entries),
        (SECTOR, primary),
    ];
    writes.extend(stale_backup(image, &header, root, backup_lba, total)?);
    writes.extend(protective_mbr(image, total)?);
    Ok(Plan { new_len, writes })
}

fn too_big_for_gpt(image: &Region, new_size: u64) -> Error {
    Error::unsupported(format!(
        "{}: a root partition of {new_size} bytes, plus the backup GPT after it, would need an image file larger than the {} bytes a file can be",
        image.path().display(),
        i64::MAX
    ))
    .with_hint("give a smaller size for the root partition")
}

/// Reads and checks the primary GPT header: everything is derived from it, so a damaged
/// one (that the `gpt` crate may have stepped around by using the backup) is refused.
fn read_gpt_header(image: &Region) -> Result<GptHeader> {
    let name = image.path().display();
    let damaged = |what: &str| {
        Error::invalid(format!("{name}: the primary GPT header {what}")).with_hint(
            "repair the table first (`sgdisk --verify` reports, `gdisk` recovers from the backup), or use an intact copy of the base",
        )
    };
    let sector = image.read_vec(SECTOR, SECTOR as usize)?;
    if &sector[..8] != b"EFI PART" {
        return Err(damaged("has no \"EFI PART\" signature"));
    }
    let size = le32(&sector, 12) as usize;
    if !(92..=SECTOR as usize).contains(&size) {
        return Err(damaged(&format!("claims a size of {size} bytes")));
    }
    if le32(&sector, 16) != header_crc(&sector, size) {
        return Err(damaged("fails its CRC32"));
    }
    if le64(&sector, 24) != 1 {
        return Err(damaged("does not say it is at LBA 1"));
    }
    let (count, entry_size) = (le32(&sector, 80) as usize, le32(&sector, 84) as usize);
    let entries_len = count
        .checked_mul(entry_size)
        .filter(|&n| n <= 1 << 20)
        .ok_or_else(|| damaged(&format!("claims {count} entries of {entry_size} bytes")))?;
    if entry_size < 128 || !entry_size.is_multiple_of(8) {
        return Err(damaged(&format!("claims entries of {entry_size} bytes")));
    }
    Ok(GptHeader {
        alternate_lba: le64(&sector, 32),
        entries_lba: le64(&sector, 72),
        entries_len,
        entry_size,
        size,
        sector,
    })
}

/// Reads the primary entry array and checks it against the header's CRC32.
fn read_gpt_entries(image: &Region, header: &GptHeader) -> Result<Vec<u8>> {
    // An LBA past the file fails the region's bounds check, naming the offset.
    let offset = header.entries_lba.saturating_mul(SECTOR);
    let entries = image.read_vec(offset, header.entries_len)?;
    if crc32(&entries) != le32(&header.sector, 88) {
        return Err(Error::invalid(format!(
            "{}: the primary GPT partition entries fail their CRC32",
            image.path().display()
        ))
        .with_hint(
            "repair the table first (`sgdisk --verify` reports, `gdisk` recovers from the backup), or use an intact copy of the base",
        ));
    }
    Ok(entries)
}

/// Sets the root entry's `last_lba`, after checking the entry is the root partition.
fn set_root_last_lba(
    image: &Region,
    header: &GptHeader,
    entries: &mut [u8],
    root: &Partition,
    last_lba: u64,
) -> Result<()> {
    let at = (root.number as usize - 1) * header.entry_size;
    let entry = entries.get_mut(at..at + 128).ok_or_else(|| {
        damaged_table(format!(
            "{}: GPT partition {} is outside the entry array",
            image.path().display(),
            root.number
        ))
    })?;
    let (first, last) = (le64(entry, 32), le64(entry, 40));
    if first * SECTOR != root.start || (last + 1) * SECTOR != root.start + root.size {
        return Err(damaged_table(format!(
            "{}: GPT entry {} says LBAs {first}..={last}, not the root partition's bytes {}..{}",
            image.path().display(),
            root.number,
            root.start,
            root.start + root.size
        )));
    }
    put64(entry, 40, last_lba);
    Ok(())
}

/// Zeroes the old backup header, if it is now inside the disk and not where the new
/// one goes, so that no tool finds a stale header there and "recovers" from it. Only a
/// sector past the root's old end that holds a GPT signature is touched: never data.
fn stale_backup(
    image: &Region,
    header: &GptHeader,
    root: &Partition,
    backup_lba: u64,
    total: u64,
) -> Result<Option<(u64, Vec<u8>)>> {
    let old = header.alternate_lba;
    let root_end_lba = (root.start + root.size) / SECTOR;
    let in_old_file = old
        .checked_add(1)
        .and_then(|n| n.checked_mul(SECTOR))
        .is_some_and(|end| end <= image.len());
    if old == backup_lba || old < root_end_lba || old >= total || !in_old_file {
        return Ok(None);
    }
    let sector = image.read_vec(old * SECTOR, SECTOR as usize)?;
    Ok((&sector[..8] == b"EFI PART").then(|| (old * SECTOR, vec![0; SECTOR as usize])))
}

/// Sets the protective MBR's size to the disk's sectors minus one (at most 2^32 - 1), as
/// `sgdisk` and `sfdisk` write it. A hybrid MBR (other entries besides 0xEE) is left
/// alone: its 0xEE entry does not cover the disk on purpose.
fn protective_mbr(image: &Region, total: u64) -> Result<Option<(u64, Vec<u8>)>> {
    let mut mbr = image.read_vec(0, SECTOR as usize)?;
    let used: Vec<usize> = (0..4).filter(|i| mbr[446 + 16 * i + 4] != 0).collect();
    let [only] = used[..] else { return Ok(None) };
    let at = 446 + 16 * only;
    if mbr[at + 4] != 0xEE || le32(&mbr, at + 8) != 1 {
        return Ok(None);
    }
    let size = (total - 1).min(u64::from(u32::MAX)) as u32;
    mbr[at + 12..at + 16].copy_from_slice(&size.to_le_bytes());
    Ok(Some((0, mbr)))
}

/// A table that contradicts what was just read from it: nothing is written into it.
fn damaged_table(what: String) -> Error {
    Error::invalid(what).with_hint(
        "the partition table is damaged; check it with `sfdisk --verify` or `sgdisk --verify`, or use an intact copy of the base",
    )
}

/// Stores a header's CRC32: over its first `size` bytes, with the CRC field zeroed.
fn seal_header(sector: &mut [u8], size: usize) {
    let crc = header_crc(sector, size);
    sector[16..20].copy_from_slice(&crc.to_le_bytes());
}

fn header_crc(sector: &[u8], size: usize) -> u32 {
    let mut header = sector[..size].to_vec();
    header[16..20].fill(0);
    crc32(&header)
}

/// CRC-32 (IEEE 802.3, reflected, as GPT uses). Bitwise: the largest input is a 16 KiB
/// entry array, once per grow, so a table buys nothing.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

fn le32(bytes: &[u8], at: usize) -> u32 {
    let mut raw = [0; 4];
    raw.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(raw)
}

fn le64(bytes: &[u8], at: usize) -> u64 {
    let mut raw = [0; 8];
    raw.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(raw)
}

fn put64(bytes: &mut [u8], at: usize, value: u64) {
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_is_the_ieee_one() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn chs_matches_sfdisk_below_and_beyond_cylinder_1023() {
        // Bytes sfdisk 2.38 wrote for these end sectors on a 255x63 geometry.
        assert_eq!(chs(40959, 255, 63), [0x8C, 0x0A, 0x02]);
        assert_eq!(chs(131071, 255, 63), [0x28, 0x20, 0x08]);
        assert_eq!(chs(6291455, 255, 63), [0x9F, 0x58, 0x87]);
        assert_eq!(chs(33554431, 255, 63), [0xFE, 0xFF, 0xFF]);
    }

    #[test]
    fn geometry_is_the_tables_when_every_entry_agrees() {
        let mut mbr = vec![0u8; 512];
        // Two entries ending on cylinder boundaries of a 4-head, 16-sector geometry, as
        // sfdisk 2.38 then resizes with: partition 2 grown past cylinder 1023 got 03 D0 FF.
        mbr[446 + 4] = 0x0C;
        mbr[446 + 5..446 + 8].copy_from_slice(&chs(40959, 4, 16));
        mbr[462 + 4] = 0x83;
        mbr[462 + 5..462 + 8].copy_from_slice(&chs(81919, 4, 16));
        assert_eq!(mbr_geometry(&mbr), (4, 16));
        assert_eq!(chs(122879, 4, 16), [0x03, 0xD0, 0xFF]);
        mbr[462 + 5..462 + 8].copy_from_slice(&chs(81919, 255, 63));
        assert_eq!(
            mbr_geometry(&mbr),
            (255, 63),
            "disagreeing entries: default"
        );
    }
}
