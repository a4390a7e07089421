//! Each line the command prints on stderr is one write(2): the
//! systemd-shutdown hook sends stderr to /dev/kmsg, where each write is one
//! record of the kernel log. Read here through a datagram socket, which
//! keeps the writes apart as /dev/kmsg does. No root needed.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_umount-wait");

/// The writes `args` made to stderr, one string each.
fn stderr_writes(args: &[&str]) -> Vec<String> {
    let (ours, theirs) = UnixDatagram::pair().expect("socketpair");
    let status = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(OwnedFd::from(theirs)))
        .status()
        .expect("running umount-wait");
    assert!(!status.success(), "{args:?} should fail");
    ours.set_nonblocking(true).unwrap();
    let mut writes = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    while let Ok(n) = ours.recv(&mut buf) {
        writes.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    writes
}

fn assert_whole_lines(args: &[&str]) {
    let writes = stderr_writes(args);
    assert!(!writes.is_empty(), "{args:?} printed nothing on stderr");
    for w in &writes {
        assert!(
            w.starts_with("umount-wait: ") && w.ends_with('\n') && w.matches('\n').count() == 1,
            "{args:?}: a write that is not one whole line: {w:?} (all: {writes:?})"
        );
    }
}

#[test]
fn an_error_is_one_record() {
    assert_whole_lines(&["/nonexistent/umount-wait-test"]);
}

#[test]
fn no_verdict_is_one_record() {
    assert_whole_lines(&["--last-shutdown=/nonexistent/umount-wait-test"]);
}
