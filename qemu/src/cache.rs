//! Cache keys: the hash of a stage's inputs.
//!
//! A key names what went into a product (source package version, config
//! fragments, patches, binaries). Products live under a directory named after
//! the key, so a changed input gives a new key and a rebuild, an unchanged one
//! a reuse that the stage reports.

use std::fs::{self, File};
use std::path::Path;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// Builds a key from labelled inputs.
pub struct Key {
    hasher: Sha256,
}

impl Key {
    pub fn new(stage: &str) -> Self {
        let mut key = Key {
            hasher: Sha256::new(),
        };
        key.text("stage", stage);
        key
    }

    /// Adds a labelled string (length-prefixed, so inputs cannot run into each other).
    pub fn text(&mut self, label: &str, value: &str) -> &mut Self {
        for part in [label.as_bytes(), value.as_bytes()] {
            self.hasher.update((part.len() as u64).to_le_bytes());
            self.hasher.update(part);
        }
        self
    }

    /// Adds a file's name and content.
    pub fn file(&mut self, path: &Path) -> Result<&mut Self> {
        let content = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.text("file", &name);
        self.hasher.update((content.len() as u64).to_le_bytes());
        self.hasher.update(&content);
        Ok(self)
    }

    /// The first 16 hex digits of the hash: enough to tell products apart.
    pub fn finish(&self) -> String {
        let digest = self.hasher.clone().finalize();
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

/// An exclusive lock on a file under the cache, held until dropped: two
/// benches running at once take turns on the kernel trees.
pub struct Lock {
    _file: File,
}

impl Lock {
    pub fn take(path: &Path, waiting: impl FnOnce()) -> Result<Lock> {
        use rustix::fs::{flock, FlockOperation};
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            waiting();
            flock(&file, FlockOperation::LockExclusive)
                .with_context(|| format!("locking {}", path.display()))?;
        }
        Ok(Lock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_inputs_same_key_other_inputs_other_key() {
        let a = Key::new("kernel").text("version", "6.12.117").finish();
        let b = Key::new("kernel").text("version", "6.12.117").finish();
        let c = Key::new("kernel").text("version", "6.12.118").finish();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 16);
    }

    #[test]
    fn labels_and_values_do_not_run_into_each_other() {
        let a = Key::new("s").text("ab", "c").finish();
        let b = Key::new("s").text("a", "bc").finish();
        assert_ne!(a, b);
    }
}
