//! The thin shell: reading files, decompressing, applying plans, running depmod and dracut.

pub mod decompress;
pub mod initramfs;
pub mod load;
