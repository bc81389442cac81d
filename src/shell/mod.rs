//! The thin shell: reading files, decompressing, applying plans, running depmod and dracut.

pub mod decompress;
pub mod depmod;
pub mod initramfs;
pub mod links;
pub mod load;
pub mod lock;
