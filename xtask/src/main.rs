//! `cargo run -p xtask -- gen`: the files made from umount-wait's command
//! line definition (`umount_wait::cli`), written under `umount-wait/doc/`:
//! the man page umount-wait(8) and the bash, zsh and fish completions.
//!
//! They are committed; `cargo test -p xtask` fails when they differ from
//! what the definition gives now.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap_complete::Shell;
use clap_mangen::roff::{bold, roman, Roff};
use clap_mangen::Man;
use umount_wait::cli;

/// One generated file: where it goes (from the workspace root), and its text.
struct Generated {
    path: &'static str,
    text: Vec<u8>,
}

fn generated() -> anyhow::Result<Vec<Generated>> {
    let mut files = vec![Generated {
        path: "umount-wait/doc/umount-wait.8",
        text: man_page().context("rendering the man page")?,
    }];
    for (shell, path) in [
        (Shell::Bash, "umount-wait/doc/completions/umount-wait.bash"),
        (Shell::Zsh, "umount-wait/doc/completions/_umount-wait"),
        (Shell::Fish, "umount-wait/doc/completions/umount-wait.fish"),
    ] {
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut cli::command(), "umount-wait", &mut text);
        files.push(Generated { path, text });
    }
    Ok(files)
}

/// umount-wait(8): clap_mangen's sections, then EXIT STATUS, EXAMPLES and
/// SEE ALSO from the same text as `--help`'s epilogue.
fn man_page() -> std::io::Result<Vec<u8>> {
    let man = Man::new(cli::command())
        .section("8")
        .manual("System Administration");
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;

    let mut roff = Roff::new();
    roff.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in cli::EXIT_CODES {
        roff.control("TP", [])
            .text([bold(code.to_string())])
            .text([roman(*meaning)]);
    }
    roff.control("PP", []).text([roman(cli::EXIT_CODES_NOTE)]);
    roff.control("SH", ["LAST SHUTDOWN"]);
    for paragraph in cli::LAST_SHUTDOWN {
        roff.control("PP", []).text([roman(*paragraph)]);
    }
    roff.control("SH", ["EXAMPLES"]);
    for (line, what) in cli::EXAMPLES {
        roff.control("TP", [])
            .text([bold(*line)])
            .text([roman(*what)]);
    }
    roff.control("SH", ["SEE ALSO"]).text([
        bold("umount"),
        roman("(8), "),
        bold("umount2"),
        roman("(2), "),
        bold("mount"),
        roman("(8)"),
    ]);
    roff.to_writer(&mut out)?;
    man.render_version_section(&mut out)?;
    Ok(out)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
        .to_path_buf()
}

fn write_all(root: &Path) -> anyhow::Result<()> {
    for file in generated()? {
        let path = root.join(file.path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let unchanged = std::fs::read(&path).is_ok_and(|old| old == file.text);
        if !unchanged {
            std::fs::write(&path, &file.text)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        println!(
            "{} {}",
            if unchanged { "unchanged" } else { "wrote" },
            file.path
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["gen"] => match write_all(&workspace_root()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("xtask gen: {e:#}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!(
                "usage: cargo run -p xtask -- gen\n  \
                 writes the man page and the shell completions of umount-wait \
                 under umount-wait/doc/"
            );
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_files_are_up_to_date() {
        let root = workspace_root();
        let mut stale = Vec::new();
        for file in generated().unwrap() {
            match std::fs::read(root.join(file.path)) {
                Ok(text) if text == file.text => {}
                Ok(_) => stale.push(format!("{} differs", file.path)),
                Err(e) => stale.push(format!("{}: {e}", file.path)),
            }
        }
        assert!(
            stale.is_empty(),
            "generated files out of date ({}); run `cargo run -p xtask -- gen` and commit them",
            stale.join(", ")
        );
    }

    #[test]
    fn man_page_has_the_sections_people_look_for() {
        let page = String::from_utf8(man_page().unwrap()).unwrap();
        for section in [
            ".TH umount-wait 8",
            ".SH SYNOPSIS",
            ".SH OPTIONS",
            ".SH \"SHUTDOWN MODE (--ALL)\"",
            ".SH \"EXIT STATUS\"",
            ".SH \"LAST SHUTDOWN\"",
            ".SH EXAMPLES",
            ".SH \"SEE ALSO\"",
        ] {
            assert!(page.contains(section), "no {section:?} in:\n{page}");
        }
    }

    /// Runs `program args...` with the generated file's path last; `None`
    /// when the program is not installed (the test then says it skipped).
    fn run_on(program: &str, args: &[&str], file: &str) -> Option<std::process::Output> {
        let path = workspace_root().join(file);
        match std::process::Command::new(program)
            .args(args)
            .arg(&path)
            .output()
        {
            Ok(output) => Some(output),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("skipped: {program} is not installed");
                None
            }
            Err(e) => panic!("running {program}: {e}"),
        }
    }

    #[test]
    fn man_page_renders_without_warnings() {
        let Some(out) = run_on(
            "groff",
            &["-man", "-ww", "-z"],
            "umount-wait/doc/umount-wait.8",
        ) else {
            return;
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && stderr.is_empty(), "groff: {stderr}");
    }

    #[test]
    fn bash_completion_loads() {
        let Some(out) = run_on(
            "bash",
            &["-c", "source \"$0\" && complete -p umount-wait"],
            "umount-wait/doc/completions/umount-wait.bash",
        ) else {
            return;
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("umount-wait"),
            "bash: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
