//! weak-modules: decide which kernels an out-of-tree module fits, natively from its ELF and the
//! kernels' symvers, and keep `weak-updates/` links in step with that decision.

pub mod core;
pub mod shell;
