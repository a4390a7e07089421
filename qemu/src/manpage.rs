//! The EXAMPLES program of the man-pages patch, built from the patch itself.
//!
//! `kernel-patches/man-pages/0001-umount.2-Document-UMOUNT_WAIT.patch` adds
//! to umount.2 a program between `.\" SRC BEGIN (umount_wait.c)` and
//! `.\" SRC END` (the markers man-pages' own build uses to extract its
//! examples). The guest runs that very program (suite `manpage-example`):
//! it is taken out of the patch at build time, its roff escapes undone,
//! and compiled static like the helpers in qemu/guest/bin, so no second
//! copy can drift. `UMOUNT_WAIT` comes from the kernel series' uapi hunk
//! (a `linux/mount.h` that adds it to the host's), as a patched kernel's
//! headers would give it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::context::{run_logged, Bench};

/// The patch, relative to the repository.
pub const PATCH: &str = "kernel-patches/man-pages/0001-umount.2-Document-UMOUNT_WAIT.patch";
/// The page the patch changes, in either layout of man-pages trees.
const PAGES: [&str; 2] = ["man/man2/umount.2", "man2/umount.2"];
/// The example's file name in the SRC BEGIN marker.
pub const EXAMPLE: &str = "umount_wait.c";
/// Its name in the guest's /usr/lib/umw/bin.
pub const BINARY: &str = "manpage-umount_wait";

/// The lines of the patched page that the patch shows (context and
/// added lines), one group per hunk of the page's diff.
fn new_side_hunks(patch: &str) -> Result<Vec<Vec<&str>>> {
    let mut hunks: Vec<Vec<&str>> = Vec::new();
    let mut in_page = false;
    let mut in_hunk = false;
    for line in patch.lines() {
        if line.starts_with("diff --git ") {
            in_page = false;
            in_hunk = false;
        } else if let Some(path) = line.strip_prefix("+++ ") {
            in_page = PAGES
                .iter()
                .any(|p| path.strip_prefix("b/").unwrap_or(path) == *p);
            in_hunk = false;
        } else if line.starts_with("@@") {
            in_hunk = in_page;
            if in_hunk {
                hunks.push(Vec::new());
            }
        } else if in_hunk {
            if line == "-- " {
                // the signature after the last hunk of a format-patch mail
                in_hunk = false;
            } else if let Some(text) = line.strip_prefix('+').or_else(|| line.strip_prefix(' ')) {
                hunks.last_mut().unwrap().push(text);
            } else if line.is_empty() {
                // a context line that lost its space
                hunks.last_mut().unwrap().push("");
            } else if !line.starts_with('-') && !line.starts_with('\\') {
                in_hunk = false;
            }
        }
    }
    if hunks.is_empty() {
        bail!("the patch changes no {}", PAGES.join(" or "));
    }
    Ok(hunks)
}

/// The C source of the example `name` in the patched page, as a reader
/// of the rendered page (or man-pages' `make build-ex-src`) gets it.
pub fn example_source(patch: &str, name: &str) -> Result<String> {
    let begin = format!(".\\\" SRC BEGIN ({name})");
    for hunk in new_side_hunks(patch)? {
        let Some(start) = hunk.iter().position(|l| *l == begin) else {
            continue;
        };
        let body = &hunk[start + 1..];
        let end = body
            .iter()
            .position(|l| *l == ".\\\" SRC END")
            .with_context(|| format!("no SRC END after {begin} in the same hunk"))?;
        let body = &body[..end];
        if body.first() != Some(&".EX") || body.last() != Some(&".EE") {
            bail!("{name}: the source is not one .EX/.EE block");
        }
        let mut source = String::new();
        for (n, line) in body[1..body.len() - 1].iter().enumerate() {
            if line.starts_with('.') || line.starts_with('\'') {
                bail!(
                    "{name}, line {}: a roff request in the source: {line}",
                    n + 1
                );
            }
            source.push_str(&unescape(line).with_context(|| format!("{name}, line {}", n + 1))?);
            source.push('\n');
        }
        return Ok(source);
    }
    bail!("no {begin} in the patch's umount.2")
}

/// One line of an `.EX` block as it renders: the escapes man-pages uses
/// in code (`\-`, `\[rs]`, `\e`, `\[aq]`, `\&`...). Any other escape is an
/// error rather than a guess.
pub fn unescape(line: &str) -> Result<String> {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        let (text, len) = match rest.chars().next() {
            Some('-') => ("-", 1),
            Some('e') | Some('\\') => ("\\", 1),
            Some('&') => ("", 1),
            Some('[') => {
                let close = rest
                    .find(']')
                    .with_context(|| format!("unterminated \\[ in {line:?}"))?;
                (special(&rest[1..close], line)?, close + 1)
            }
            Some('(') if rest.len() >= 3 && rest.is_char_boundary(3) => {
                (special(&rest[1..3], line)?, 3)
            }
            Some(c) => bail!("unknown roff escape \\{c} in {line:?}"),
            None => bail!("a backslash ends {line:?}"),
        };
        out.push_str(text);
        rest = &rest[len..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The special characters of groff_char(7) that code uses.
fn special(name: &str, line: &str) -> Result<&'static str> {
    Ok(match name {
        "rs" => "\\",
        "aq" => "'",
        "dq" => "\"",
        "ga" => "`",
        "ha" | "a^" => "^",
        "ti" | "a~" => "~",
        "lB" => "[",
        "rB" => "]",
        "lC" => "{",
        "rC" => "}",
        "ba" => "|",
        "hy" | "-" => "-",
        _ => bail!("unknown roff special character \\[{name}] in {line:?}"),
    })
}

/// The `#define NAME ...` line that the kernel series adds to the uapi
/// `linux/mount.h`.
pub fn uapi_define(series_patch: &str, name: &str) -> Result<String> {
    let mut in_uapi = false;
    for line in series_patch.lines() {
        if let Some(path) = line.strip_prefix("+++ ") {
            in_uapi = path == "b/include/uapi/linux/mount.h";
        } else if in_uapi {
            if let Some(define) = line.strip_prefix("+#define ") {
                if define.split_whitespace().next() == Some(name) {
                    return Ok(format!("#define {define}"));
                }
            }
        }
    }
    bail!("no #define {name} added to include/uapi/linux/mount.h")
}

/// A `linux/mount.h` for `-I`: the host's, plus the series' definition.
pub fn mount_h(define: &str) -> String {
    format!(
        "/* The host's <linux/mount.h> with the line that the UMOUNT_WAIT\n \
         * series adds to include/uapi/linux/mount.h (umw-vm, src/manpage.rs). */\n\
         #ifndef UMW_LINUX_MOUNT_H\n\
         #define UMW_LINUX_MOUNT_H\n\
         #include_next <linux/mount.h>\n\
         #ifndef UMOUNT_WAIT\n\
         {define}\n\
         #endif\n\
         #endif\n"
    )
}

/// The kernel patch of the primary series that adds UMOUNT_WAIT to the uapi header.
fn series_patch_with_define(kernel_patches: &Path) -> Result<String> {
    let mut patches: Vec<PathBuf> = fs::read_dir(kernel_patches)
        .with_context(|| format!("reading {}", kernel_patches.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "patch"))
        .collect();
    patches.sort();
    for path in &patches {
        let text = fs::read_to_string(path)?;
        if let Ok(define) = uapi_define(&text, "UMOUNT_WAIT") {
            return Ok(define);
        }
    }
    bail!(
        "no patch in {} adds UMOUNT_WAIT to include/uapi/linux/mount.h",
        kernel_patches.display()
    )
}

/// Extracts the example into `out`/manpage and compiles it static to `out`/bin.
pub fn build_example(bench: &Bench, log: &Path) -> Result<PathBuf> {
    let patch_path = bench.paths.repo.join(PATCH);
    let patch = fs::read_to_string(&patch_path)
        .with_context(|| format!("reading {}", patch_path.display()))?;
    let source = example_source(&patch, EXAMPLE)
        .with_context(|| format!("extracting {EXAMPLE} from {}", patch_path.display()))?;
    let define = series_patch_with_define(&bench.paths.kernel_patches())?;
    let dir = bench.paths.out.join("manpage");
    fs::create_dir_all(dir.join("include/linux"))?;
    fs::write(dir.join("include/linux/mount.h"), mount_h(&define))?;
    let c = dir.join(EXAMPLE);
    fs::write(&c, source)?;
    let bin = bench.paths.out.join("bin");
    fs::create_dir_all(&bin)?;
    let binary = bin.join(BINARY);
    run_logged(
        Command::new("gcc")
            .args(["-static", "-O2", "-Wall", "-Wextra", "-Werror", "-I"])
            .arg(dir.join("include"))
            .arg("-o")
            .arg(&binary)
            .arg(&c),
        log,
    )
    .with_context(|| format!("compiling {} (from {PATCH})", c.display()))?;
    Ok(binary)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATCH_TEXT: &str = "\
From 0 Mon Sep 17 00:00:00 2001
Subject: [PATCH] umount.2: x

---
 man/man2/umount.2 | 9 +++++++++

diff --git a/man/man2/umount.2 b/man/man2/umount.2
index 1..2 100644
--- a/man/man2/umount.2
+++ b/man/man2/umount.2
@@ -1,3 +1,12 @@
 .SH EXAMPLES
+.\\\" SRC BEGIN (a.c)
+.EX
+#include <stdio.h>
+\\&
+int main(void) { printf(\"%d\\[rs]n\", \\-1 + \\[aq]a\\[aq]); }
+.EE
+.\\\" SRC END
 .SH SEE ALSO
-.BR old (2)
+.BR new (2)
-- 
2.47.3
";

    #[test]
    fn the_example_is_the_unescaped_block_between_the_markers() {
        assert_eq!(
            example_source(PATCH_TEXT, "a.c").unwrap(),
            "#include <stdio.h>\n\nint main(void) { printf(\"%d\\n\", -1 + 'a'); }\n"
        );
        assert!(example_source(PATCH_TEXT, "b.c").is_err());
    }

    #[test]
    fn escapes_are_undone_or_refused() {
        assert_eq!(unescape(r"a \- b").unwrap(), "a - b");
        assert_eq!(unescape(r"\e \\ \[rs] \(rs").unwrap(), r"\ \ \ \");
        assert_eq!(
            unescape(r"\[aq]\(aq\[dq]\[ti]\[ha]\[ga]").unwrap(),
            "''\"~^`"
        );
        assert_eq!(unescape(r"\&.x").unwrap(), ".x");
        assert_eq!(unescape("no escapes").unwrap(), "no escapes");
        assert!(unescape(r"\fBbold\fP").is_err());
        assert!(unescape(r"\[unknown]").is_err());
        assert!(unescape(r"\[rs").is_err());
        assert!(unescape("trailing \\").is_err());
    }

    #[test]
    fn requests_and_broken_blocks_are_refused() {
        let request = PATCH_TEXT.replace("+#include <stdio.h>", "+.B bold");
        assert!(example_source(&request, "a.c").is_err());
        let no_end = PATCH_TEXT.replace("+.\\\" SRC END\n", "");
        assert!(example_source(&no_end, "a.c").is_err());
        let other_file = PATCH_TEXT.replace("b/man/man2/umount.2", "b/man/man2/mount.2");
        assert!(example_source(&other_file, "a.c").is_err());
        let removed = PATCH_TEXT.replace("+.\\\" SRC BEGIN (a.c)", "-.\\\" SRC BEGIN (a.c)");
        assert!(example_source(&removed, "a.c").is_err());
    }

    #[test]
    fn the_define_comes_from_the_uapi_hunk() {
        let series = "\
+++ b/fs/namespace.c
+#define UMOUNT_WAIT 1
+++ b/include/uapi/linux/mount.h
 #define UMOUNT_NOFOLLOW 0x8
+#define UMOUNT_WAIT\t0x00000010\t/* Wait */
";
        assert_eq!(
            uapi_define(series, "UMOUNT_WAIT").unwrap(),
            "#define UMOUNT_WAIT\t0x00000010\t/* Wait */"
        );
        assert!(uapi_define(series, "MNT_FORCE").is_err());
        assert!(mount_h("#define UMOUNT_WAIT 16").contains("#include_next <linux/mount.h>"));
    }

    /// The real patch: the program is there, and the kernel series defines the flag.
    #[test]
    fn the_repository_patch_has_the_example() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let patch = fs::read_to_string(repo.join(PATCH)).unwrap();
        let source = example_source(&patch, EXAMPLE).unwrap();
        for needle in [
            "umount2(\"\", UMOUNT_WAIT)",
            "flags | UMOUNT_WAIT",
            "pidfd_open(pid, 0)",
            "kill(pid, SIGKILL)",
            "detached, not yet shut down\\n",
            "'l'",
            "exit(EXIT_SUCCESS);",
        ] {
            assert!(source.contains(needle), "{needle} not in the example");
        }
        assert!(!source.contains("\\-") && !source.contains("\\["));
        let define = series_patch_with_define(&repo.join("kernel-patches")).unwrap();
        assert!(define.contains("0x00000010"), "{define}");
    }
}
