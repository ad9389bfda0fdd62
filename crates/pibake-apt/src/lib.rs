//! Offline apt logic for pibake: everything needed to make a role's Debian
//! packages available in a node image, as pure functions over bytes and
//! strings.
//!
//! The app fetches files (HTTP), keeps the download cache and the lock file,
//! and bakes the result into images; this crate only *reads*:
//!
//! - [`sources`]: the image's `sources.list`, `*.list` and `*.sources`;
//! - [`aptconf`]: the `apt.conf.d` settings that change resolution;
//! - [`release`]: verifies a clearsigned `InRelease` against keyrings, parses
//!   the Release, picks and checks the `Packages` index, decompresses it;
//! - [`index`]: parses `Packages` and `/var/lib/dpkg/status`;
//! - [`resolve`](mod@resolve): computes the closure of a request list as apt would;
//! - [`control`], [`version`], [`relation`]: the deb822, version and
//!   dependency grammars underneath.
//!
//! Nothing here executes anything from the target system.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod aptconf;
pub mod control;
pub mod index;
pub mod relation;
pub mod release;
pub mod resolve;
pub mod sources;
pub mod version;

pub use aptconf::AptConfig;
pub use index::{Package, parse_control, parse_packages, parse_status};
pub use relation::{PackageName, PackageRequest, Relation};
pub use release::{
    Keyring, Release, VerifyOptions, check_index, decompress_index, verify_inrelease,
};
pub use resolve::{Repository, Resolution, ResolveInput, resolve};
pub use sources::{Source, parse_sources};
pub use version::Version;
