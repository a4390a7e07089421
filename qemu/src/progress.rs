//! Status lines: one per stage.
//!
//! On a terminal the line of the running stage is redrawn with its elapsed
//! time; in CI (or when stderr is not a terminal) each stage prints a plain
//! start line and a plain end line. Full logs go to files named in the lines.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Result;

pub struct Progress {
    live: bool,
}

impl Progress {
    pub fn new(ci: bool) -> Self {
        Progress {
            live: !ci && std::io::stderr().is_terminal(),
        }
    }

    /// A line of information between stages.
    pub fn note(&self, message: &str) {
        eprintln!("umw-vm: {message}");
    }

    /// Runs one stage, with its status line.
    pub fn stage<T>(
        &self,
        what: &str,
        log: Option<&Path>,
        work: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let started = Instant::now();
        let log_note = log
            .map(|l| format!(" (log: {})", l.display()))
            .unwrap_or_default();
        let ticker = if self.live {
            let done = Arc::new(AtomicBool::new(false));
            let flag = done.clone();
            let label = what.to_string();
            let handle = thread::spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    eprint!("\r\x1b[K  .. {label} [{}]", elapsed(started));
                    let _ = std::io::stderr().flush();
                    thread::sleep(Duration::from_millis(500));
                }
            });
            Some((done, handle))
        } else {
            eprintln!("umw-vm: {what}{log_note} ...");
            None
        };
        let result = work();
        if let Some((done, handle)) = ticker {
            done.store(true, Ordering::Relaxed);
            let _ = handle.join();
            eprint!("\r\x1b[K");
        }
        match &result {
            Ok(_) => eprintln!("umw-vm: {what}: done in {}", elapsed(started)),
            Err(_) => eprintln!(
                "umw-vm: {what}: FAILED after {}{log_note}",
                elapsed(started)
            ),
        }
        result
    }
}

fn elapsed(since: Instant) -> String {
    let secs = since.elapsed().as_secs();
    if secs >= 60 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{secs}s")
    }
}
