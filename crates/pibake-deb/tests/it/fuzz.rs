//! Damaged packages never panic: truncations and bit flips of valid ones, in every
//! compression, fed through parsing, the control archive and the data walk.

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};

use pibake_deb::{Deb, DebError};

use crate::fixture::{build, small_tree};

/// xorshift64: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Everything a caller does with a package; `Ok` when all of it was accepted.
fn exercise(bytes: &[u8]) -> Result<u64, DebError> {
    let deb = Deb::parse("fuzz.deb", bytes)?;
    let mut read = deb.control()?.iter().map(|m| m.data.len() as u64).sum();
    deb.each_data_entry(|_, body| {
        read += io::copy(body, &mut io::sink()).unwrap_or(0);
        // Reading past the end (or past an error) is harmless too.
        let _ = body.read(&mut [0u8; 16]);
        Ok::<(), DebError>(())
    })?;
    Ok(read)
}

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut bytes = base.to_vec();
    let flips = match rng.below(4) {
        0 => 0,
        1 => 1,
        _ => 1 + rng.below(8),
    };
    for _ in 0..flips {
        // Half the flips land in the first 2 KiB: ar headers, control archive, tar headers.
        let span = if rng.below(2) == 0 {
            bytes.len().min(2048)
        } else {
            bytes.len()
        };
        let at = rng.below(span);
        bytes[at] ^= 1 << rng.below(8);
    }
    if flips == 0 || rng.below(3) == 0 {
        bytes.truncate(rng.below(bytes.len()));
    }
    bytes
}

#[test]
fn damaged_packages_never_panic() {
    let bases: Vec<Vec<u8>> = ["xz", "gzip", "zstd", "none"]
        .map(|c| build(small_tree, c, true).bytes)
        .into();
    for base in &bases {
        exercise(base).expect("the undamaged package is accepted");
    }
    let mut rng = Rng(0x5eed_deb5);
    let (mut accepted, mut refused) = (0, 0);
    for round in 0..2000 {
        let bytes = mutate(&mut rng, &bases[round % bases.len()]);
        match catch_unwind(AssertUnwindSafe(|| exercise(&bytes))) {
            Ok(Ok(_)) => accepted += 1,
            Ok(Err(err)) => {
                assert!(err.to_string().starts_with("fuzz.deb: "), "{err}");
                refused += 1;
            }
            Err(_) => panic!("round {round} panicked on a {}-byte package", bytes.len()),
        }
    }
    assert!(
        accepted > 0 && refused > 0,
        "accepted {accepted}, refused {refused}"
    );
}
