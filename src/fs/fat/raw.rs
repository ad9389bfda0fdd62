//! Just enough raw FAT to repair directories that `fatfs` creates.
//!
//! `fatfs` 0.3.6 writes every directory entry with long-name slots, including the `.` and
//! `..` entries of a new directory. FAT drivers and `fsck.fat` expect `.` in slot 0 and
//! `..` in slot 1 with no long-name slots. This module walks the on-disk structures to the
//! new directory's first cluster and rewrites its head. The walk validates every cluster
//! number and chain length it follows, so a damaged FAT becomes an error, not a loop.

use crate::error::{Error, Result};
use pibake_image::region::Region;

const ENTRY: usize = 32;
const ATTR_LFN: u8 = 0x0F;
const ATTR_DIR: u8 = 0x10;
const ATTR_VOLUME: u8 = 0x08;

/// The BIOS parameter block fields needed to find clusters.
struct Geometry {
    cluster_bytes: u64,
    fat_offset: u64,
    /// First byte of the data area (cluster 2).
    data_offset: u64,
    /// FAT12/16 root directory: a fixed area; `None` on FAT32.
    fixed_root: Option<(u64, u64)>,
    root_cluster: u32,
    fat32: bool,
    clusters: u32,
}

impl Geometry {
    fn read(part: &Region) -> Result<Geometry> {
        let b = part.read_vec(0, 512)?;
        let u16at = |o: usize| u64::from(u16::from_le_bytes([b[o], b[o + 1]]));
        let u32at = |o: usize| u64::from(u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]));
        let bps = u16at(11);
        let spc = u64::from(b[13]);
        let reserved = u16at(14);
        let fats = u64::from(b[16]);
        let root_entries = u16at(17);
        let total = if u16at(19) != 0 { u16at(19) } else { u32at(32) };
        let fat_size = if u16at(22) != 0 { u16at(22) } else { u32at(36) };
        if !matches!(bps, 512 | 1024 | 2048 | 4096) || spc == 0 || fats == 0 || fat_size == 0 {
            return Err(Error::corrupt(format!(
                "{}: FAT boot sector at byte {} has an impossible geometry",
                part.path().display(),
                part.start()
            )));
        }
        let root_dir_sectors = (root_entries * ENTRY as u64).div_ceil(bps);
        let data_sector = reserved + fats * fat_size + root_dir_sectors;
        let clusters = (total.saturating_sub(data_sector) / spc) as u32;
        let fat32 = root_entries == 0;
        if !fat32 && clusters < 4085 {
            return Err(Error::unsupported("FAT12 boot partitions")
                .with_hint("Raspberry Pi OS boot partitions are FAT32 (or FAT16 when tiny)"));
        }
        Ok(Geometry {
            cluster_bytes: bps * spc,
            fat_offset: reserved * bps,
            data_offset: data_sector * bps,
            fixed_root: (!fat32).then(|| {
                let start = (reserved + fats * fat_size) * bps;
                (start, root_dir_sectors * bps)
            }),
            root_cluster: if fat32 { u32at(44) as u32 } else { 0 },
            fat32,
            clusters,
        })
    }

    fn cluster_offset(&self, cluster: u32) -> Result<u64> {
        if cluster < 2 || cluster - 2 >= self.clusters {
            return Err(Error::corrupt(format!(
                "FAT boot partition: cluster {cluster} is outside the data area"
            )));
        }
        Ok(self.data_offset + u64::from(cluster - 2) * self.cluster_bytes)
    }

    fn next(&self, part: &Region, cluster: u32) -> Result<Option<u32>> {
        let (off, width) = if self.fat32 { (4, 4) } else { (2, 2) };
        let mut raw = [0u8; 4];
        part.read_exact_at(
            self.fat_offset + u64::from(cluster) * off,
            &mut raw[..width],
        )?;
        let v = u32::from_le_bytes(raw);
        let (v, eoc) = if self.fat32 {
            (v & 0x0FFF_FFFF, 0x0FFF_FFF8)
        } else {
            (v, 0xFFF8)
        };
        Ok((v < eoc && v >= 2).then_some(v))
    }

    /// Reads a directory: the fixed FAT16 root (cluster 0) or a cluster chain.
    fn read_dir(&self, part: &Region, cluster: u32) -> Result<Vec<u8>> {
        if let (0, Some((start, len))) = (cluster, self.fixed_root) {
            return Ok(part.read_vec(start, len as usize)?);
        }
        let mut out = Vec::new();
        let mut c = cluster;
        loop {
            out.extend(part.read_vec(self.cluster_offset(c)?, self.cluster_bytes as usize)?);
            match self.next(part, c)? {
                Some(n) => c = n,
                None => break,
            }
            if out.len() as u64 > u64::from(self.clusters) * self.cluster_bytes {
                return Err(Error::corrupt(
                    "FAT boot partition: a directory's cluster chain loops",
                ));
            }
        }
        Ok(out)
    }
}

/// Finds `name` (case-insensitive, long or short name) among the entries of a directory
/// and returns its first cluster.
fn lookup(dir: &[u8], name: &str, fat32: bool) -> Option<u32> {
    let mut lfn: Vec<(u8, [u16; 13])> = Vec::new();
    for e in dir.chunks_exact(ENTRY) {
        match e[0] {
            0x00 => return None,
            0xE5 => {
                lfn.clear();
                continue;
            }
            _ => {}
        }
        if e[11] == ATTR_LFN {
            let mut units = [0u16; 13];
            for (i, o) in [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30]
                .iter()
                .enumerate()
            {
                units[i] = u16::from_le_bytes([e[*o], e[o + 1]]);
            }
            lfn.push((e[0] & 0x1F, units));
            continue;
        }
        let long = long_name(&mut lfn);
        if e[11] & ATTR_VOLUME != 0 {
            continue;
        }
        let short = short_name(&e[..11]);
        if long
            .as_deref()
            .is_some_and(|l| l.eq_ignore_ascii_case(name))
            || short.eq_ignore_ascii_case(name)
        {
            let hi = if fat32 {
                u32::from(u16::from_le_bytes([e[20], e[21]]))
            } else {
                0
            };
            let lo = u32::from(u16::from_le_bytes([e[26], e[27]]));
            return Some(hi << 16 | lo);
        }
    }
    None
}

fn long_name(lfn: &mut Vec<(u8, [u16; 13])>) -> Option<String> {
    if lfn.is_empty() {
        return None;
    }
    lfn.sort_by_key(|(seq, _)| *seq);
    let units: Vec<u16> = lfn
        .drain(..)
        .flat_map(|(_, u)| u)
        .take_while(|&u| u != 0 && u != 0xFFFF)
        .collect();
    Some(String::from_utf16_lossy(&units))
}

fn short_name(raw: &[u8]) -> String {
    let base = String::from_utf8_lossy(&raw[..8]).trim_end().to_string();
    let ext = String::from_utf8_lossy(&raw[8..11]).trim_end().to_string();
    if ext.is_empty() {
        base
    } else {
        format!("{base}.{ext}")
    }
}

/// Rewrites the head of the just-created directory `rel` (e.g. `overlays/extra`): `.` and
/// `..` become slots 0 and 1 without long-name slots, and `..` of a directory whose parent
/// is the root points at cluster 0, as the FAT specification requires.
pub fn fix_new_dir(part: &mut Region, rel: &str) -> Result<()> {
    let geo = Geometry::read(part)?;
    let mut parent = if geo.fat32 { geo.root_cluster } else { 0 };
    let mut parent_is_root = true;
    let mut cluster = parent;
    for name in rel.split('/').filter(|p| !p.is_empty()) {
        parent = cluster;
        parent_is_root = cluster == geo.root_cluster || cluster == 0;
        let dir = geo.read_dir(part, cluster)?;
        cluster = lookup(&dir, name, geo.fat32).ok_or_else(|| {
            Error::corrupt(format!(
                "FAT boot partition: new directory {rel} not found after creating it"
            ))
        })?;
    }
    let off = geo.cluster_offset(cluster)?;
    let mut head = part.read_vec(off, geo.cluster_bytes as usize)?;
    let find = |dots: &[u8; 11]| {
        head.chunks_exact(ENTRY)
            .find(|e| e[11] != ATTR_LFN && e[11] & ATTR_DIR != 0 && &e[..11] == dots)
            .map(|e| e.to_vec())
    };
    let (Some(dot), Some(mut dotdot)) = (find(b".          "), find(b"..         ")) else {
        return Err(Error::corrupt(format!(
            "FAT boot partition: new directory {rel} lacks its . and .. entries"
        )));
    };
    let up = if parent_is_root { 0 } else { parent };
    dotdot[20..22].copy_from_slice(&((up >> 16) as u16).to_le_bytes());
    dotdot[26..28].copy_from_slice(&(up as u16).to_le_bytes());
    head.fill(0);
    head[..ENTRY].copy_from_slice(&dot);
    head[ENTRY..2 * ENTRY].copy_from_slice(&dotdot);
    Ok(part.write_all_at(off, &head)?)
}
