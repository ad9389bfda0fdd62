//! The command-line interface: one file per subcommand.
//!
//! Output goes through [`out!`] and [`outln!`], never `print!`: a reader that closes the
//! pipe early (`pibake plan ... | head`) ends the command quietly instead of panicking.

/// `print!` that returns an error from the enclosing function when stdout is closed.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!($($arg)*))?
    };
}

/// `println!` that returns an error from the enclosing function when stdout is closed.
macro_rules! outln {
    () => {
        $crate::cli::write_stdout(format_args!("\n"))?
    };
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*)))?
    };
}

pub mod build;
pub mod completions;
pub mod demo;
pub mod flash;
pub mod fs;
pub mod grow;
pub mod images;
pub mod init;
pub mod inspect;
pub mod plan;
pub mod status;
pub mod unpack;
pub mod validate;

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use pibake::error::{Error, Result};
use pibake_image::base::CacheOptions;

/// Bake ready-to-flash Raspberry Pi OS images for whole clusters.
#[derive(Debug, Parser)]
#[command(name = "pibake", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand understands.
#[derive(Debug, clap::Args)]
pub struct Global {
    /// Where decoded base images and packages are cached [default: $PIBAKE_CACHE_DIR,
    /// else $XDG_CACHE_HOME/pibake]
    // Read from the environment by hand: clap's `env` makes every usage line it prints
    // show `--cache-dir` as though it were required whenever the variable is set.
    #[arg(long, global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Print machine-readable JSON instead of the human report
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress bars
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

impl Global {
    /// Progress bars only for a person watching a terminal.
    pub fn progress(&self) -> bool {
        !self.quiet && std::io::stderr().is_terminal()
    }

    pub fn cache_options(&self) -> CacheOptions {
        CacheOptions {
            dir: self.cache_dir.clone().or_else(|| {
                std::env::var_os("PIBAKE_CACHE_DIR")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            }),
            progress: self.progress(),
        }
    }
}

/// How `build`, `flash` and `plan` obtain role packages.
#[derive(Debug, Clone, clap::Args)]
pub struct PackageArgs {
    /// Use the package cache alone: no repository is contacted, and a package or index
    /// not in the cache is an error
    #[arg(long)]
    pub offline: bool,
    /// Resolve packages again instead of using pibake.lock: all roles, or
    /// `--update-packages=NAME,...` for the roles whose set holds one of them
    #[arg(long, value_name = "NAME,...", num_args = 0..=1, require_equals = true, value_delimiter = ',')]
    pub update_packages: Option<Vec<String>>,
    /// Fail instead of changing pibake.lock (for CI): every role's locked set must hold
    /// its profile's requests, against this base
    #[arg(long, conflicts_with = "update_packages")]
    pub locked: bool,
    /// Install the profiles' `packages:` from the network on first boot instead of
    /// baking them in (as `packages_online:` does), for bases without apt sources
    #[arg(long)]
    pub online_packages: bool,
    #[command(flatten)]
    pub catalog: images::CatalogArg,
}

impl PackageArgs {
    /// The settings these flags make; package names are checked here.
    pub fn settings(&self, global: &Global) -> Result<pibake::packages::Settings> {
        use pibake::packages::Update;
        let update = match &self.update_packages {
            None => Update::Nothing,
            Some(names) if names.is_empty() => Update::All,
            Some(names) => Update::Named(
                names
                    .iter()
                    .map(|n| {
                        pibake_apt::PackageName::new(n)
                            .map_err(|e| Error::invalid(format!("--update-packages: {e}")))
                    })
                    .collect::<Result<_>>()?,
            ),
        };
        Ok(pibake::packages::Settings {
            offline: self.offline,
            update,
            progress: global.progress(),
            locked: self.locked,
        })
    }

    /// Loads the cluster with these flags applied to its profiles.
    pub fn load(&self, cluster: &std::path::Path) -> Result<pibake::inventory::Inventory> {
        let mut inv = pibake::inventory::Inventory::load(cluster)?;
        inv.catalog = self.catalog.source();
        if self.online_packages {
            inv.packages_online_instead();
        }
        Ok(inv)
    }
}

/// In the order of the work: try it, describe a cluster, build, flash; then the tools.
#[derive(Debug, Subcommand)]
pub enum Command {
    Demo(demo::Args),
    Init(init::Args),
    Images(images::Args),
    Validate(validate::Args),
    Plan(plan::Args),
    Build(build::Args),
    Flash(flash::Args),
    Verify(flash::VerifyArgs),
    Status(status::Args),
    Inspect(inspect::Args),
    Fs(fs::Args),
    Grow(grow::Args),
    Unpack(unpack::Args),
    Completions(completions::CompletionsArgs),
    Man(completions::ManArgs),
}

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> Result<()> {
    let Cli { global, command } = cli;
    match command {
        Command::Demo(args) => demo::run(&args, &global),
        Command::Inspect(args) => inspect::run(&args, &global),
        Command::Fs(args) => fs::run(&args, &global),
        Command::Grow(args) => grow::run(&args, &global),
        Command::Unpack(args) => unpack::run(&args, &global),
        Command::Validate(args) => validate::run(&args, &global),
        Command::Build(args) => build::run(&args, &global),
        Command::Flash(args) => flash::run(&args, &global),
        Command::Verify(args) => flash::run_verify(&args, &global),
        Command::Status(args) => status::run(&args, &global),
        Command::Plan(args) => plan::run(&args, &global),
        Command::Init(args) => init::run(&args),
        Command::Images(args) => images::run(&args, &global),
        Command::Completions(args) => completions::run_completions(&args),
        Command::Man(args) => completions::run_man(&args),
    }
}

/// Writes to stdout; a closed stdout is an I/O error, which `main` treats as the end.
pub fn write_stdout(args: std::fmt::Arguments) -> Result<()> {
    use std::io::Write;
    std::io::stdout()
        .lock()
        .write_fmt(args)
        .map_err(|e| Error::io("standard output", e))
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::invalid(format!("cannot render JSON: {e}")))?;
    outln!("{text}");
    Ok(())
}
