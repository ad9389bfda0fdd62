//! pibake's integration tests, one binary (one link of the crate, not one per file).
//! Every image they write is checked by e2fsck, fsck.fat, debugfs or mtools.

mod aptrepo;
mod base;
mod basefetch;
mod batch;
mod build;
mod cache;
mod cli;
mod common;
mod ext4;
mod fat;
mod flash;
mod fs_cli;
mod grammar;
mod grow;
mod httpd;
mod imager;
mod inputs;
mod inspect;
mod inventory;
mod kinds;
mod manpages;
mod packages;
mod partitions;
mod status;
mod unpack;
