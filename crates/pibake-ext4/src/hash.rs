//! Directory-index hashes: where a name lives in a hash-indexed (`dir_index`) directory.
//!
//! A writer that adds a name to an htree directory must put it in the leaf whose hash
//! range covers the name's hash, computed exactly as the kernel and e2fsprogs do
//! (`fs/ext4/hash.c`, `lib/ext2fs/dirhash.c`): the same algorithm, the same seed from the
//! superblock, and the same treatment of bytes above 0x7f, which older code read as
//! signed `char`. The superblock flags say which: `EXT2_FLAGS_UNSIGNED_HASH` selects the
//! unsigned variants. A name hashed wrongly is invisible to lookups, so the tests compare
//! against `debugfs dx_hash` on many names.

/// Hash versions as stored in `s_def_hash_version` and the htree root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashVersion {
    /// The original ext3 hash, on signed chars.
    Legacy,
    /// Half MD4 on signed chars (the default of mke2fs with a signed-char platform).
    HalfMd4,
    /// TEA on signed chars.
    Tea,
    /// The original hash, on unsigned chars.
    LegacyUnsigned,
    /// Half MD4 on unsigned chars (what Raspberry Pi OS images use).
    HalfMd4Unsigned,
    /// TEA on unsigned chars.
    TeaUnsigned,
}

/// A directory hash version this crate cannot compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownHashVersion {
    /// Version 6, SipHash, used only with casefold and encryption.
    Siphash,
    /// Any other number.
    Other(u8),
}

impl std::fmt::Display for UnknownHashVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnknownHashVersion::Siphash => f.write_str(
                "directory hash version 6 (siphash, used only with casefold + encryption)",
            ),
            UnknownHashVersion::Other(v) => write!(f, "unknown directory hash version {v}"),
        }
    }
}

impl HashVersion {
    /// The version in effect for a directory: the htree root's base version (0, 1, 2),
    /// made unsigned when the superblock's `EXT2_FLAGS_UNSIGNED_HASH` flag is set.
    pub fn from_disk(version: u8, unsigned: bool) -> Result<HashVersion, UnknownHashVersion> {
        use HashVersion::*;
        Ok(match (version, unsigned) {
            (0, false) => Legacy,
            (1, false) => HalfMd4,
            (2, false) => Tea,
            (0, true) | (3, _) => LegacyUnsigned,
            (1, true) | (4, _) => HalfMd4Unsigned,
            (2, true) | (5, _) => TeaUnsigned,
            (6, _) => {
                return Err(UnknownHashVersion::Siphash);
            }
            (v, _) => {
                return Err(UnknownHashVersion::Other(v));
            }
        })
    }

    fn unsigned(self) -> bool {
        matches!(
            self,
            HashVersion::LegacyUnsigned | HashVersion::HalfMd4Unsigned | HashVersion::TeaUnsigned
        )
    }
}

/// The (major, minor) hash of `name`. The major hash has its low bit cleared: that bit
/// marks hash collisions that continue in the next leaf.
pub fn dx_hash(version: HashVersion, name: &[u8], seed: [u32; 4]) -> (u32, u32) {
    let mut buf = if seed.iter().any(|&s| s != 0) {
        seed
    } else {
        [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476]
    };
    let unsigned = version.unsigned();
    let (hash, minor) = match version {
        HashVersion::Legacy | HashVersion::LegacyUnsigned => (legacy(name, unsigned), 0),
        HashVersion::HalfMd4 | HashVersion::HalfMd4Unsigned => {
            for chunk in chunks(name, 32) {
                let input = str2hashbuf::<8>(chunk, unsigned);
                half_md4(&mut buf, &input);
            }
            (buf[1], buf[2])
        }
        HashVersion::Tea | HashVersion::TeaUnsigned => {
            for chunk in chunks(name, 16) {
                let input = str2hashbuf::<4>(chunk, unsigned);
                tea(&mut buf, &input);
            }
            (buf[0], buf[1])
        }
    };
    (hash & !1, minor)
}

/// The successive tails of `name` the C code feeds in (`p += 32; len -= 32`): each chunk
/// starts at a multiple of `step` and runs to the end of the name (the padding depends on
/// the remaining length, not the chunk length).
fn chunks(name: &[u8], step: usize) -> impl Iterator<Item = &[u8]> {
    (0..name.len()).step_by(step).map(move |i| &name[i..])
}

/// A byte as the C code sees it: `signed char` sign-extends bytes above 0x7f.
fn byte(b: u8, unsigned: bool) -> u32 {
    if unsigned {
        u32::from(b)
    } else {
        i32::from(b.cast_signed()).cast_unsigned()
    }
}

fn legacy(name: &[u8], unsigned: bool) -> u32 {
    let (mut hash0, mut hash1): (u32, u32) = (0x12a3_fe2d, 0x37ab_e8f9);
    for &b in name {
        let c = byte(b, unsigned);
        let mut hash = hash1.wrapping_add(hash0 ^ c.wrapping_mul(7_152_373));
        if hash & 0x8000_0000 != 0 {
            hash = hash.wrapping_sub(0x7fff_ffff);
        }
        hash1 = hash0;
        hash0 = hash;
    }
    hash0 << 1
}

/// Packs up to `4 * N` bytes of `msg` into words, padded with a length-derived pattern.
fn str2hashbuf<const N: usize>(msg: &[u8], unsigned: bool) -> [u32; N] {
    let len = c_u32(msg.len());
    let mut pad = len | (len << 8);
    pad |= pad << 16;
    let mut out = [pad; N];
    let mut val = pad;
    let take = msg.len().min(N * 4);
    let mut word = 0;
    for (i, &b) in msg[..take].iter().enumerate() {
        val = byte(b, unsigned).wrapping_add(val << 8);
        if i % 4 == 3 {
            out[word] = val;
            word += 1;
            val = pad;
        }
    }
    if word < N {
        out[word] = val;
    }
    out
}

/// A length as the C code's `(__u32)len` sees it.
#[allow(clippy::cast_possible_truncation)] // as the C code truncates, for identical hashes
fn c_u32(len: usize) -> u32 {
    len as u32
}

fn tea(buf: &mut [u32; 4], input: &[u32; 4]) {
    const DELTA: u32 = 0x9E37_79B9;
    let (mut sum, mut b0, mut b1) = (0u32, buf[0], buf[1]);
    let [a, b, c, d] = *input;
    for _ in 0..16 {
        sum = sum.wrapping_add(DELTA);
        b0 = b0.wrapping_add(
            (b1 << 4).wrapping_add(a) ^ b1.wrapping_add(sum) ^ (b1 >> 5).wrapping_add(b),
        );
        b1 = b1.wrapping_add(
            (b0 << 4).wrapping_add(c) ^ b0.wrapping_add(sum) ^ (b0 >> 5).wrapping_add(d),
        );
    }
    buf[0] = buf[0].wrapping_add(b0);
    buf[1] = buf[1].wrapping_add(b1);
}

fn half_md4(buf: &mut [u32; 4], x: &[u32; 8]) {
    const K2: u32 = 0o13240474631;
    const K3: u32 = 0o15666365641;
    let f = |x: u32, y: u32, z: u32| z ^ (x & (y ^ z));
    let g = |x: u32, y: u32, z: u32| (x & y).wrapping_add((x ^ y) & z);
    let h = |x: u32, y: u32, z: u32| x ^ y ^ z;
    let [mut a, mut b, mut c, mut d] = *buf;
    macro_rules! round {
        ($f:expr, $a:ident, $b:ident, $c:ident, $d:ident, $x:expr, $s:expr) => {
            $a = $a
                .wrapping_add($f($b, $c, $d))
                .wrapping_add($x)
                .rotate_left($s)
        };
    }
    round!(f, a, b, c, d, x[0], 3);
    round!(f, d, a, b, c, x[1], 7);
    round!(f, c, d, a, b, x[2], 11);
    round!(f, b, c, d, a, x[3], 19);
    round!(f, a, b, c, d, x[4], 3);
    round!(f, d, a, b, c, x[5], 7);
    round!(f, c, d, a, b, x[6], 11);
    round!(f, b, c, d, a, x[7], 19);

    round!(g, a, b, c, d, x[1].wrapping_add(K2), 3);
    round!(g, d, a, b, c, x[3].wrapping_add(K2), 5);
    round!(g, c, d, a, b, x[5].wrapping_add(K2), 9);
    round!(g, b, c, d, a, x[7].wrapping_add(K2), 13);
    round!(g, a, b, c, d, x[0].wrapping_add(K2), 3);
    round!(g, d, a, b, c, x[2].wrapping_add(K2), 5);
    round!(g, c, d, a, b, x[4].wrapping_add(K2), 9);
    round!(g, b, c, d, a, x[6].wrapping_add(K2), 13);

    round!(h, a, b, c, d, x[3].wrapping_add(K3), 3);
    round!(h, d, a, b, c, x[7].wrapping_add(K3), 9);
    round!(h, c, d, a, b, x[2].wrapping_add(K3), 11);
    round!(h, b, c, d, a, x[6].wrapping_add(K3), 15);
    round!(h, a, b, c, d, x[1].wrapping_add(K3), 3);
    round!(h, d, a, b, c, x[5].wrapping_add(K3), 9);
    round!(h, c, d, a, b, x[0].wrapping_add(K3), 11);
    round!(h, b, c, d, a, x[4].wrapping_add(K3), 15);

    buf[0] = buf[0].wrapping_add(a);
    buf[1] = buf[1].wrapping_add(b);
    buf[2] = buf[2].wrapping_add(c);
    buf[3] = buf[3].wrapping_add(d);
}
