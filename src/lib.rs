//! weak-modules: decide which kernels an out-of-tree module fits, natively from its ELF and the
//! kernels' symvers, and keep `weak-updates/` links in step with that decision.
//!
//! `core` is pure (parse, decide, plan); `shell` does the I/O (load, apply, depmod, dracut);
//! `app` runs one invocation through both.

pub mod app;
pub mod cli;
pub mod config;
pub mod core;
pub mod cores;
pub mod diagnostics;
pub mod docgen;
pub mod error;
pub mod report;
pub mod shell;
