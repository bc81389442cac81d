//! The thin shell: reading files, decompressing, applying plans, running depmod and dracut.

pub mod bounded;
pub mod children;
pub mod decompress;
pub mod depmod;
pub mod initramfs;
pub mod input;
pub mod links;
pub mod load;
pub mod lock;
pub mod owed;
pub mod snapshot;
