//! Filesystems inside an image: the FAT boot partition and the ext4 root.

pub mod fat;
