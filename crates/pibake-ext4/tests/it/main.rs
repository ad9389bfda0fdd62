//! pibake-ext4's tests, one binary: every filesystem they write is checked by
//! e2fsprogs (`e2fsck -fn`, `debugfs`) and read back by ext4-view, a second reader.

mod corrupt;
mod grow;
mod hash;
mod links;
mod props;
mod util;
mod xattrs;
