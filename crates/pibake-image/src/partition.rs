//! Partition tables: find the boot (FAT) and root (ext4) partitions of an image.
//!
//! Raspberry Pi OS uses an MBR table with two primary partitions, but the start sector
//! moved from 8192 to 16384 in 2025 and other images use GPT. So nothing here assumes an
//! offset: the table is read (MBR via `mbrman`, GPT via `gpt` when the MBR is protective),
//! every entry is checked against the file length and the other entries, and the boot and
//! root partitions are identified by the filesystem magic found at their start, with the
//! partition type and label as tie-breakers.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::region::Region;

/// Sector size of SD-card images. Raspberry Pi OS images and SD cards are 512-byte media.
pub const SECTOR: u64 = 512;

/// The kind of partition table an image has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    /// A DOS (MBR) partition table, as Raspberry Pi OS uses.
    Mbr,
    /// A GUID partition table, behind a protective MBR.
    Gpt,
}

impl TableKind {
    /// The table kind's usual upper-case name, as used in messages.
    pub fn name(self) -> &'static str {
        match self {
            TableKind::Mbr => "MBR",
            TableKind::Gpt => "GPT",
        }
    }
}

/// The disk identifier that `PARTUUID=` values are derived from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum DiskId {
    /// MBR disk signature (bytes 440..444, little-endian); PARTUUIDs are `xxxxxxxx-NN`.
    Mbr(u32),
    /// GPT disk GUID, lower-case hyphenated.
    Gpt(String),
}

impl std::fmt::Display for DiskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DiskId::Mbr(sig) => write!(f, "{sig:08x}"),
            DiskId::Gpt(guid) => f.write_str(guid),
        }
    }
}

/// What the first bytes of a partition say it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Content {
    /// A FAT12/16/32 boot sector: a boot partition candidate.
    Fat,
    /// An ext2/3/4 superblock: a root partition candidate.
    Ext4,
    /// Neither, or too small to tell.
    Unknown,
}

impl Content {
    /// The content's lower-case name, as used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Content::Fat => "fat",
            Content::Ext4 => "ext4",
            Content::Unknown => "unknown",
        }
    }
}

/// One used entry of the partition table, with what its first bytes hold.
#[derive(Debug, Clone, Serialize)]
pub struct Partition {
    /// 1-based number, as in `PARTUUID=...-02` and `/dev/mmcblk0p2`.
    pub number: u32,
    /// Byte offset in the image.
    pub start: u64,
    /// Length in bytes.
    pub size: u64,
    /// MBR type byte as `0x0c`, or the GPT type GUID.
    pub type_id: String,
    /// The filesystem found at the partition's start.
    pub content: Content,
    /// Filesystem label (FAT volume label or ext4 volume name), if any.
    pub label: Option<String>,
}

/// The partition table of an image, with the boot and root partitions identified.
#[derive(Debug, Clone, Serialize)]
pub struct Layout {
    /// Whether the table is MBR or GPT.
    pub table: TableKind,
    /// The disk identifier the partitions' `PARTUUID`s derive from.
    pub disk_id: DiskId,
    /// The used entries, by partition number.
    pub partitions: Vec<Partition>,
    /// Index into `partitions` of the FAT boot partition.
    pub boot: usize,
    /// Index into `partitions` of the ext4 root partition.
    pub root: usize,
}

impl Layout {
    /// The FAT boot partition.
    pub fn boot(&self) -> &Partition {
        &self.partitions[self.boot]
    }

    /// The ext4 root partition.
    pub fn root(&self) -> &Partition {
        &self.partitions[self.root]
    }

    /// Reads the table of `image` and identifies the boot and root partitions.
    pub fn read(image: &Region) -> Result<Layout> {
        let name = image.path().display().to_string();
        let mut sector0 = [0u8; 512];
        if image.len() < SECTOR {
            return Err(Error::invalid(format!(
                "{name}: {} bytes is too small to be a disk image",
                image.len()
            ))
            .with_hint("pass a Raspberry Pi OS image (.img, .img.xz, .img.zst, .img.gz or .zip)"));
        }
        image.read_exact_at(0, &mut sector0)?;
        if sector0[510..512] != [0x55, 0xAA] {
            return Err(Error::invalid(format!(
                "{name}: no partition table (no 0x55AA signature at byte 510)"
            ))
            .with_hint(
                "this looks like a bare filesystem or not a disk image; pass a whole SD-card image",
            ));
        }
        // No partition can start at sector 0, on top of the table itself; and mbrman 0.6
        // panics (unwraps) reading a table whose used entries all start there. Nor does it
        // check the sums of its chain of logical partitions (an overflow: a panic in a
        // checked build, a wrong start otherwise), and Raspberry Pi OS images have only
        // primary partitions: an extended partition is refused before mbrman reads it.
        for (i, entry) in sector0[446..510].chunks_exact(16).enumerate() {
            if matches!(entry[4], 0x05 | 0x0F | 0x85) {
                return Err(Error::unsupported(format!(
                    "{name}: MBR partition {} is an extended partition (type {:#04x}); pibake reads primary partitions only",
                    i + 1,
                    entry[4]
                ))
                .with_hint("Raspberry Pi OS images have two primary partitions (boot and root); pass one of those"));
            }
            let start = u32::from_le_bytes([entry[8], entry[9], entry[10], entry[11]]);
            if entry[4] != 0 && start == 0 {
                return Err(Error::invalid(format!(
                    "{name}: MBR partition {} starts at sector 0, over the partition table",
                    i + 1
                ))
                .with_hint("the partition table is damaged; pibake will not write into it"));
            }
        }
        let mbr = mbrman::MBR::read_from(&mut image.clone(), SECTOR as u32)
            .map_err(|e| Error::invalid(format!("{name}: cannot read the MBR: {e}")))?;
        let protective = mbr.iter().any(|(_, p)| p.is_used() && p.sys == 0xEE);
        let (table, disk_id, mut partitions) = if protective {
            read_gpt(image, &name)?
        } else {
            let sig = u32::from_le_bytes([sector0[440], sector0[441], sector0[442], sector0[443]]);
            (TableKind::Mbr, DiskId::Mbr(sig), mbr_entries(&mbr, &name)?)
        };
        check_bounds(&partitions, image.len(), &name)?;
        for p in &mut partitions {
            let (content, label) = probe(image, p.start, p.size)?;
            p.content = content;
            p.label = label;
        }
        let boot = pick(&partitions, Content::Fat, "bootfs").ok_or_else(|| {
            Error::invalid(format!(
                "{name}: no FAT partition found (the Pi firmware boots from one)"
            ))
            .with_hint("is this a Raspberry Pi OS image? `pibake inspect` lists what it holds")
        })?;
        let root = pick(&partitions, Content::Ext4, "rootfs").ok_or_else(|| {
            Error::invalid(format!(
                "{name}: no ext4 partition found for the root filesystem"
            ))
            .with_hint("is this a Raspberry Pi OS image? `pibake inspect` lists what it holds")
        })?;
        Ok(Layout {
            table,
            disk_id,
            partitions,
            boot,
            root,
        })
    }
}

fn mbr_entries(mbr: &mbrman::MBR, name: &str) -> Result<Vec<Partition>> {
    let mut out = Vec::new();
    for (number, p) in mbr.iter() {
        if !p.is_used() || p.is_extended() {
            continue;
        }
        if p.sectors == 0 {
            return Err(Error::invalid(format!(
                "{name}: MBR partition {number} has zero length"
            )));
        }
        out.push(Partition {
            number: number as u32,
            start: u64::from(p.starting_lba) * SECTOR,
            size: u64::from(p.sectors) * SECTOR,
            type_id: format!("0x{:02x}", p.sys),
            content: Content::Unknown,
            label: None,
        });
    }
    Ok(out)
}

fn read_gpt(image: &Region, name: &str) -> Result<(TableKind, DiskId, Vec<Partition>)> {
    let disk = gpt::GptConfig::new()
        .writable(false)
        .logical_block_size(gpt::disk::LogicalBlockSize::Lb512)
        .open_from_device(image.clone())
        .map_err(|e| Error::invalid(format!("{name}: cannot read the GPT: {e}")))?;
    let mut out = Vec::new();
    for (&number, p) in disk.partitions() {
        if !p.is_used() {
            continue;
        }
        if p.last_lba < p.first_lba {
            return Err(Error::invalid(format!(
                "{name}: GPT partition {number} ends (LBA {}) before it starts (LBA {})",
                p.last_lba, p.first_lba
            )));
        }
        out.push(Partition {
            number,
            start: p.first_lba * SECTOR,
            size: (p.last_lba - p.first_lba + 1) * SECTOR,
            type_id: p.part_type_guid.guid.to_string().to_lowercase(),
            content: Content::Unknown,
            label: None,
        });
    }
    Ok((
        TableKind::Gpt,
        DiskId::Gpt(disk.guid().to_string().to_lowercase()),
        out,
    ))
}

/// Refuses partitions that run past the end of the file or overlap each other.
fn check_bounds(parts: &[Partition], file_len: u64, name: &str) -> Result<()> {
    for p in parts {
        let end = p.start.saturating_add(p.size);
        if end > file_len {
            return Err(Error::invalid(format!(
                "{name}: partition {} (bytes {}..{}) runs past the end of the file ({file_len} bytes)",
                p.number, p.start, end
            ))
            .with_hint("the image is truncated (an incomplete download?) or its table is damaged"));
        }
    }
    for (i, a) in parts.iter().enumerate() {
        for b in &parts[i + 1..] {
            if a.start < b.start + b.size && b.start < a.start + a.size {
                return Err(Error::invalid(format!(
                    "{name}: partitions {} (bytes {}..{}) and {} (bytes {}..{}) overlap",
                    a.number,
                    a.start,
                    a.start + a.size,
                    b.number,
                    b.start,
                    b.start + b.size
                ))
                .with_hint("the partition table is damaged; pibake will not write into it"));
            }
        }
    }
    Ok(())
}

/// Looks at a partition's first bytes: a FAT boot sector or an ext2/3/4 superblock.
fn probe(image: &Region, start: u64, size: u64) -> Result<(Content, Option<String>)> {
    if size < 2048 {
        return Ok((Content::Unknown, None));
    }
    let mut head = [0u8; 2048];
    image.read_exact_at(start, &mut head)?;
    // ext4: superblock at byte 1024, magic 0xEF53 at offset 56, volume name at 120.
    if head[1024 + 56..1024 + 58] == [0x53, 0xEF] {
        return Ok((Content::Ext4, label(&head[1024 + 120..1024 + 136])));
    }
    // FAT: boot signature, a plausible sector size, and the type string of FAT32 or FAT12/16.
    let bps = u16::from_le_bytes([head[11], head[12]]);
    if head[510..512] == [0x55, 0xAA] && matches!(bps, 512 | 1024 | 2048 | 4096) {
        if &head[82..87] == b"FAT32" {
            return Ok((Content::Fat, label(&head[71..82])));
        }
        if &head[54..57] == b"FAT" {
            return Ok((Content::Fat, label(&head[43..54])));
        }
    }
    Ok((Content::Unknown, None))
}

fn label(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let text = text.trim_end_matches(['\0', ' ']).trim_start();
    (!text.is_empty() && text != "NO NAME").then(|| text.to_string())
}

/// The partition with the wanted content; with several, the one with the expected label,
/// else the first. Labels are only a tie-breaker: images relabelled by users still work.
fn pick(parts: &[Partition], want: Content, label: &str) -> Option<usize> {
    let mut candidates = parts.iter().enumerate().filter(|(_, p)| p.content == want);
    let first = candidates.next()?.0;
    let labelled = parts
        .iter()
        .position(|p| p.content == want && p.label.as_deref() == Some(label));
    Some(labelled.unwrap_or(first))
}
