//! The pure core: nothing here touches the filesystem or spawns a process.

pub mod abi;
pub mod audit;
pub mod compat;
pub mod cpio;
pub mod elf;
pub mod index;
pub mod kernel;
pub mod modinfo;
pub mod needs;
pub mod offer;
pub mod paths;
pub mod plan;
pub mod rpmver;
pub mod signature;
pub mod symvers;
