//! `pibake completions SHELL` and `pibake man DIR`: shell completion scripts and man
//! pages, generated from the command line's own definition (clap's generators), so they
//! can never list an option the binary does not have.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;
use pibake::error::{Error, IoContext, Result};

/// Print a shell completion script on standard output, e.g. `pibake completions bash >
/// ~/.local/share/bash-completion/completions/pibake`
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Write a man page per command and subcommand (pibake.1, pibake-build.1, ...) into a
/// directory, e.g. `pibake man ~/.local/share/man/man1`
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// The directory, made when missing (a `man1` directory on your MANPATH)
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// The script is made in memory first: clap's generators panic on a failed write, and a
/// reader that closes the pipe early must end the command quietly instead.
pub fn run_completions(args: &CompletionsArgs) -> Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "pibake", &mut script);
    std::io::stdout()
        .lock()
        .write_all(&script)
        .map_err(|e| Error::io("standard output", e))
}

/// Every page is rendered before any is written, and each goes through a temporary name,
/// so what is under a page's name is always a whole page.
pub fn run_man(args: &ManArgs) -> Result<()> {
    let mut cmd = Cli::command();
    cmd.build();
    let mut pages = Vec::new();
    render(cmd, &mut pages)?;
    std::fs::create_dir_all(&args.dir).map_err(|e| {
        Error::io(&args.dir, e)
            .with_hint("give a directory you can write, such as ~/.local/share/man/man1")
    })?;
    for (name, text) in &pages {
        write_page(&args.dir.join(name), text)?;
    }
    outln!(
        "{} man pages written to {}",
        pages.len(),
        args.dir.display()
    );
    Ok(())
}

/// The pages of `cmd` and of its subcommands, depth first, as (file name, roff text).
/// clap's own `help` subcommands get none: `pibake help X` shows what `pibake-X` says.
fn render(cmd: clap::Command, pages: &mut Vec<(String, Vec<u8>)>) -> Result<()> {
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        render(sub.clone(), pages)?;
    }
    let man = clap_mangen::Man::new(cmd);
    let mut text = Vec::new();
    man.render(&mut text)
        .map_err(|e| Error::invalid(format!("rendering {}: {e}", man.get_filename())))?;
    pages.push((man.get_filename(), text));
    Ok(())
}

/// Writes one page through a hidden temporary name beside it.
fn write_page(path: &Path, text: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let part = path.with_file_name(format!(".{name}.part"));
    if let Err(e) = std::fs::write(&part, text).at(&part) {
        let _ = std::fs::remove_file(&part);
        return Err(e);
    }
    std::fs::rename(&part, path).at(path)
}
