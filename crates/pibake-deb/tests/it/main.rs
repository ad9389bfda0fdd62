//! pibake-deb's tests, one binary. Packages are built by the system's `dpkg-deb` and
//! every entry read back is compared with an independent reader: `dpkg-deb` itself
//! (`--fsys-tarfile`, `--ctrl-tarfile`, `-x`, `-e`) with GNU tar listing the archives.
//! Hostile packages are assembled byte by byte (`craft`), since no well-behaved tool
//! writes them.

mod craft;
mod fixture;
mod fuzz;
mod listing;
mod refusals;
mod roundtrip;
