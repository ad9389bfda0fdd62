//! The first-boot contract between plan and bake, in one place: the runner, its unit
//! and its paths; the paths the build writes a role's packages to (`bake::software`)
//! and the first-boot step reads them from, and that step, made from the same paths.
//!
//! The build unpacks what it can into the image and leaves here: `unpacked` (each
//! unpacked package as `PKG ARCH INFO-NAME`, dependencies first), `order` (the `.deb`s
//! only dpkg can install, by file name), `units` (units the unpacked packages ship, to
//! be enabled only once configured). First boot runs the `preinst install` dpkg never
//! runs at configure, `dpkg --configure -a`, then installs the remaining `.deb`s.

/// Runs the first-boot steps in order and keeps their markers and log.
pub const FIRSTBOOT_RUNNER: &str = "/usr/local/lib/pibake/firstboot";
/// One file per first-boot step, run in name order (`10-packages.sh`, `20-...`).
pub const FIRSTBOOT_STEPS: &str = "/usr/local/lib/pibake/firstboot.d";
/// Present once every step has succeeded: the unit then never runs again.
pub const FIRSTBOOT_DONE: &str = "/var/lib/pibake/firstboot.done";
/// The runner: each step's result goes to the journal (stdout) and to
/// `/var/lib/pibake/firstboot.log`; a step's own marker is set only when it exits 0.
pub const FIRSTBOOT_RUNNER_TEXT: &str = r#"#!/bin/sh
# Written by pibake: runs each first-boot step once, in order. A step that fails stops
# the run and is retried on the next boot; the steps before it are not run again.
# PIBAKE_ROOT (unset on a node) runs it against another tree, as pibake's tests do.
set -u
root=${PIBAKE_ROOT:-}
state=$root/var/lib/pibake/firstboot.state
log=$root/var/lib/pibake/firstboot.log
mkdir -p "$state"
for step in "$root"/usr/local/lib/pibake/firstboot.d/*.sh; do
    [ -e "$step" ] || continue
    name=$(basename "$step" .sh)
    [ -e "$state/$name.done" ] && continue
    echo "pibake firstboot: $name: running"
    if sh "$step"; then
        touch "$state/$name.done"
        echo "$(date -u +%FT%TZ) $name ok" >>"$log"
        echo "pibake firstboot: $name: ok"
    else
        rc=$?
        echo "$(date -u +%FT%TZ) $name failed (exit $rc); retried on the next boot" >>"$log"
        echo "pibake firstboot: $name: failed (exit $rc); retried on the next boot"
        exit 1
    fi
done
touch "$root/var/lib/pibake/firstboot.done"
echo "pibake firstboot: all steps done"
"#;
/// The unit that runs the first-boot work.
pub const FIRSTBOOT_UNIT: &str = "pibake-firstboot.service";
/// Where a profile's own `.deb`s (`debs:`) wait for first boot.
pub const DEB_DIR: &str = "/var/lib/pibake/debs";

/// Where a role's first-boot package files live.
pub const PACKAGES_DIR: &str = "/var/lib/pibake/packages";
/// Units a profile enables that exist only once first boot has installed or
/// configured their package, enabled by the `enable-units` step.
pub const ENABLE_AFTER_INSTALL: &str = "/var/lib/pibake/enable-after-install";

/// A file of [`PACKAGES_DIR`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackagesFile {
    /// `PKG ARCH INFO-NAME` per unpacked package, dependencies first.
    Unpacked,
    /// First-boot `.deb` file names, in closure order.
    Order,
    /// Unit names the unpacked packages ship.
    Units,
}

impl PackagesFile {
    /// The file's name inside [`PACKAGES_DIR`].
    pub fn name(self) -> &'static str {
        match self {
            PackagesFile::Unpacked => "unpacked",
            PackagesFile::Order => "order",
            PackagesFile::Units => "units",
        }
    }

    /// Its path in the image.
    pub fn path(self) -> String {
        format!("{PACKAGES_DIR}/{}", self.name())
    }
}

/// The first-boot step for a role's packages.
///
/// `preinst install` runs with the environment dpkg gives maintainer scripts
/// (`dpkg-maintscript-helper` refuses to run without it), once (its marker survives a
/// retry), and with no terminal on stdin; `--force-confold` keeps the configuration
/// files the profile put in place; a failed configure prints `dpkg --audit`, which
/// names the packages left half-done, to the journal and the first-boot log, and the
/// step is retried on the next boot. apt installs the remaining `.deb`s from absolute
/// paths (without `--no-download`, which makes apt look in its own archive cache).
pub fn packages_step() -> String {
    let unpacked = PackagesFile::Unpacked.name();
    let order = PackagesFile::Order.name();
    format!(
        r#"cd {PACKAGES_DIR}
export DEBIAN_FRONTEND=noninteractive
if [ -s {unpacked} ] && [ ! -e preinst.done ]; then
    dpkg_version=$(dpkg-query -W -f='${{Version}}' dpkg)
    while read -r pkg arch info; do
        script=/var/lib/dpkg/info/$info.preinst
        [ -x "$script" ] || continue
        echo "pibake: $pkg: preinst install"
        if ! DPKG_MAINTSCRIPT_PACKAGE=$pkg DPKG_MAINTSCRIPT_ARCH=$arch \
            DPKG_MAINTSCRIPT_NAME=preinst DPKG_MAINTSCRIPT_PACKAGE_REFCOUNT=1 \
            DPKG_RUNNING_VERSION=$dpkg_version DPKG_ADMINDIR=/var/lib/dpkg DPKG_ROOT= \
            "$script" install </dev/null; then
            echo "pibake: $pkg: preinst install failed" >&2
            exit 1
        fi
    done < {unpacked}
    touch preinst.done
fi
if ! dpkg --configure -a --force-confdef --force-confold; then
    echo "pibake: dpkg --configure -a failed; dpkg --audit says:" >&2
    dpkg --audit >&2
    exit 1
fi
if [ -s {order} ]; then
    set --
    while read -r f; do set -- "$@" "{PACKAGES_DIR}/$f"; done < {order}
    apt-get install -y --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
    rm -f -- "$@"
fi
rm -f {unpacked} {order} preinst.done
"#
    )
}

/// The step enabling the units listed in [`ENABLE_AFTER_INSTALL`].
pub fn enable_units_step() -> String {
    format!(
        "# Units the packages brought, enabled now that they are configured (listed by the build).\nif [ -f {ENABLE_AFTER_INSTALL} ]; then\n    xargs -r systemctl enable --now < {ENABLE_AFTER_INSTALL}\nfi\n"
    )
}
