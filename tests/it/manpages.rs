//! `pibake completions SHELL` and `pibake man DIR`, generated from the command line's
//! definition: the bash script parses and knows every subcommand; every subcommand has
//! a man page that is roff groff reads without a warning.

use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::{pibake, pibake_ok};

/// The subcommands `pibake --help` lists (clap's own `help` aside).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        // A name is indented by two spaces; a wrapped description by more.
        .filter(|l| l.len() > 2 && !l[2..].starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completion_parses_and_knows_every_subcommand() {
    let names = subcommands(&pibake_ok(&["--help"]));
    assert!(names.len() >= 10 && names.contains(&"completions".to_string()));
    let script = pibake_ok(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pibake.bash");
    fs::write(&file, &script).unwrap();
    let o = Command::new("bash").arg("-n").arg(&file).output().unwrap();
    assert!(
        o.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    for n in &names {
        assert!(
            script.contains(&format!("pibake__subcmd__{n}")),
            "no completion for {n}"
        );
    }
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        assert!(
            pibake_ok(&["completions", shell]).contains("pibake"),
            "{shell}"
        );
    }
    assert!(!pibake(&["completions", "tcsh"]).status.success());
}

/// A reader that stops early ends the command quietly, no panic.
#[test]
fn a_closed_pipe_ends_completions_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pibake"))
        .args(["completions", "zsh"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    child.wait().unwrap();
    assert!(!err.contains("panicked"), "{err}");
}

/// Each page's structure: a `.TH` title naming the page, a NAME section naming the command.
fn check_page(page: &Path, command: &str) {
    let text = fs::read_to_string(page).unwrap();
    let th = text
        .lines()
        .find(|l| l.starts_with(".TH "))
        .unwrap_or_else(|| panic!("{}: no .TH line", page.display()));
    assert!(th.starts_with(&format!(".TH {command} 1")), "{th}");
    let name = text
        .split(".SH NAME\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{}: no NAME section", page.display()));
    assert!(name.starts_with(&command.replace('-', "\\-")), "{name}");
}

#[test]
fn every_subcommand_has_a_man_page_groff_reads() {
    let dir = tempfile::tempdir().unwrap();
    let man = dir.path().join("share/man/man1");
    pibake_ok(&["man", man.to_str().unwrap()]);
    let mut pages = vec!["pibake".to_string()];
    pages.extend(
        subcommands(&pibake_ok(&["--help"]))
            .iter()
            .map(|n| format!("pibake-{n}")),
    );
    pages.extend(
        subcommands(&pibake_ok(&["fs", "--help"]))
            .iter()
            .map(|n| format!("pibake-fs-{n}")),
    );
    for p in &pages {
        let file = man.join(format!("{p}.1"));
        assert!(file.is_file(), "no page {}", file.display());
        check_page(&file, p);
        // groff, as man(1) renders pages (`bash .ci/run` installs it).
        let o = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(&file)
            .output()
            .expect("groff (groff-base) is installed");
        assert!(
            o.status.success() && o.stderr.is_empty(),
            "groff on {p}.1: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let written = fs::read_dir(&man).unwrap().count();
    assert_eq!(
        written,
        pages.len(),
        "pages beyond the subcommands, or parts left"
    );
    // A directory that cannot be made is named in the error.
    let blocked = dir.path().join("file");
    fs::write(&blocked, "").unwrap();
    let o = pibake(&["man", blocked.join("man1").to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains(blocked.to_str().unwrap()));
}
