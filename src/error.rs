//! Errors that end a run. Each prints as one line; `main` prints them, in one place.

use std::path::PathBuf;

use crate::shell::links::LinkError;
use crate::shell::load::LoadError;
use crate::shell::lock::LockError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "Symvers dump file is not found in {}",
        crate::app::describe_lookup(looked_in)
    )]
    NoSymvers {
        release: String,
        looked_in: Vec<PathBuf>,
    },
    #[error(transparent)]
    Load(LoadError),
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error(transparent)]
    Lock(#[from] LockError),
}
