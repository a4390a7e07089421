//! The stock distro kernel: a prebuilt Debian kernel package, unpatched.
//! Not available yet.

use anyhow::{bail, Result};

use crate::bench::Bench;
use crate::kernel::KernelImage;

pub fn fetch(_bench: &Bench) -> Result<KernelImage> {
    bail!("the stock kernel target is not implemented")
}
