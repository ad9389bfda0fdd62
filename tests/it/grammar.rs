//! Grammar by construction: every inventory value that reaches a file or a script is
//! parsed where it enters, and refused there with file, line and column when the file
//! it lands in could not hold it; the files are written by one writer per format. Here:
//! Wi-Fi settings (NetworkManager keyfiles, wpa_supplicant.conf), local .deb names (the
//! first-boot shell step) and `[Install]` sections (the links enabling makes), each with
//! a legitimate value that reads back from a built image.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{
    Fixture, Release, build_options as options, debugfs_text as debugfs, e2fsck_clean, test_key,
    tool,
};
use pibake::bake::build;
use pibake::inventory::{Inventory, NetworkStack};
use pibake::plan::render::sh_quote;
use pibake::plan::{Plan, plans};

/// A cluster of one node `w1` of role `worker` (the profile `profiles/worker.yaml`),
/// with `extra` files beside it, on `base` when given.
fn cluster(dir: &Path, base: Option<&Path>, extra: &[(&str, &str)]) -> PathBuf {
    for (p, content) in extra {
        let path = dir.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
    let base = base.map_or(String::new(), |b| format!("base: {}\n", b.display()));
    let text = format!(
        "cluster: lab\n{base}networks:\n  lan: {{ subnet: 10.0.0.0/24, gateway: 10.0.0.1 }}\nadmin:\n  name: admin\n  locked: true\n  ssh_keys: [\"{}\"]\nroles:\n  worker: {{}}\nnodes:\n  - {{ name: w1, role: worker }}\n",
        test_key()
    );
    let path = dir.join("cluster.yaml");
    fs::write(&path, text).unwrap();
    path
}

/// The plans of a cluster whose profile is `profile` (and other files `extra`).
fn plan_of(
    dir: &Path,
    profile: &str,
    extra: &[(&str, &str)],
    stack: NetworkStack,
) -> pibake::error::Result<Vec<Plan>> {
    let mut files = vec![("profiles/worker.yaml", profile)];
    files.extend_from_slice(extra);
    let path = cluster(dir, None, &files);
    let inv = Inventory::load(&path)?;
    plans(&inv, &[], Some(stack))
}

/// The refusal of a profile (its text and other files), the directory taken out of it.
fn refusal(profile: &str, extra: &[(&str, &str)], stack: NetworkStack) -> String {
    let dir = tempfile::tempdir().unwrap();
    let err = plan_of(dir.path(), profile, extra, stack)
        .map(|_| ())
        .expect_err("bad input accepted")
        .to_string();
    err.replace(&format!("{}/", dir.path().display()), "")
}

fn file<'a>(p: &'a Plan, path: &str) -> &'a str {
    let f = p
        .files
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("no {path}"));
    std::str::from_utf8(&f.content).unwrap()
}

const WLAN: &str = "extends: base\ninterfaces:\n  wlan0:\n    dhcp: true\n";

/// (profile, other files, the stack, what the refusal must start with, what it must say)
type Case<'a> = (
    String,
    Vec<(&'a str, &'a str)>,
    NetworkStack,
    &'a str,
    &'a str,
);

fn check_cases(cases: Vec<Case>) {
    let failed: Vec<String> = cases
        .iter()
        .filter_map(|(profile, extra, stack, at, says)| {
            let err = refusal(profile, extra, *stack);
            let ok = err.starts_with(at) && err.contains(says);
            (!ok).then(|| format!("want `{at}` ... `{says}` in:\n{err}\n--- profile:\n{profile}"))
        })
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}

/// SSIDs, passphrases, countries and interface names outside what a keyfile,
/// wpa_supplicant.conf or the kernel command line can take are refused where they
/// were written; a passphrase is never quoted in the refusal.
#[test]
fn wifi_values_are_refused_at_their_line() {
    use NetworkStack::{Dhcpcd, NetworkManager as Nm};
    let wlan = |rest: &str| format!("{WLAN}{rest}");
    let long = format!("    ssid: {}\n    country: GB\n", "x".repeat(33));
    let cases: Vec<Case> = vec![
        (
            wlan("    ssid: \"lab\\nx=y\"\n    psk: password1\n    country: GB\n"),
            vec![],
            Nm,
            "profiles/worker.yaml:5:11: interfaces.wlan0.ssid: ",
            "SSID `lab\\nx=y` holds the control character `\\n`",
        ),
        (
            wlan("    ssid: \"\"\n    country: GB\n"),
            vec![],
            Nm,
            "profiles/worker.yaml:5:11: ",
            "an SSID is 1 to 32 bytes",
        ),
        (
            wlan(&long),
            vec![],
            Nm,
            "profiles/worker.yaml:5:11: ",
            "is 33 bytes; an SSID is 1 to 32 bytes",
        ),
        (
            wlan("    ssid: lab\n    psk: \"secret12\\npsk=x\"\n    country: GB\n"),
            vec![],
            Nm,
            "profiles/worker.yaml:6:10: interfaces.wlan0.psk: ",
            "holds a character outside printable ASCII",
        ),
        (
            wlan("    ssid: lab\n    psk: short12\n    country: GB\n"),
            vec![],
            Nm,
            "profiles/worker.yaml:6:10: ",
            "is 7 characters: a WPA passphrase is 8 to 63",
        ),
        (
            wlan("    ssid: lab\n    psk: 12345678\n    country: GB\n"),
            vec![],
            Nm,
            "profiles/worker.yaml:6:10: ",
            "`psk:` is text, but YAML reads the passphrase as a number",
        ),
        (
            wlan("    ssid: lab\n    psk: password1\n    country: ZZ\n"),
            vec![],
            Nm,
            "profiles/worker.yaml:7:14: interfaces.wlan0.country: ",
            "`ZZ` is not an ISO 3166-1 alpha-2 country code",
        ),
        (
            wlan("    ssid: lab\n    country: UK\n"),
            vec![],
            Nm,
            "profiles/worker.yaml:6:14: ",
            "`UK` is not an ISO 3166-1 code: the United Kingdom's is `GB`",
        ),
        (
            wlan("    ssid: lab\n    country: gb\n"),
            vec![],
            Nm,
            "profiles/worker.yaml:6:14: ",
            "write the code in capitals, `GB`",
        ),
        // wpa_supplicant.conf cannot quote a `"`: refused for the stacks that write it,
        // at the passphrase.
        (
            wlan("    ssid: lab\n    psk: 'pass\"word'\n    country: GB\n"),
            vec![],
            Dhcpcd,
            "profiles/worker.yaml:6:10: ",
            "holds a `\"`, which wpa_supplicant.conf cannot quote",
        ),
        // Not named by the issue: the interface name lands in `id=`, `interface-name=`,
        // and file names.
        (
            "extends: base\ninterfaces:\n  \"eth0\\ninterface-name=evil\": { dhcp: true }\n".into(),
            vec![],
            Nm,
            "profiles/worker.yaml:3:",
            "is not an interface name",
        ),
    ];
    check_cases(cases);
    let err = refusal(
        &wlan("    ssid: lab\n    psk: \"hunter22\\nx\"\n    country: GB\n"),
        &[],
        Nm,
    );
    assert!(!err.contains("hunter22"), "the passphrase shown: {err}");
    // The same passphrase with a `"` is fine for NetworkManager, which has its keyfile.
    let dir = tempfile::tempdir().unwrap();
    let ok = wlan("    ssid: lab\n    psk: 'pass\"word'\n    country: GB\n");
    let p = &plan_of(dir.path(), &ok, &[], Nm).unwrap()[0];
    let nm = file(
        p,
        "/etc/NetworkManager/system-connections/pibake-wlan0.nmconnection",
    );
    assert!(nm.contains("\npsk=pass\"word\n"), "{nm}");
}

/// What a keyfile and wpa_supplicant.conf get of SSIDs and passphrases that need their
/// quoting: nothing can add a line, and each reads back as written.
#[test]
fn wifi_values_are_written_through_their_formats_writers() {
    let dir = tempfile::tempdir().unwrap();
    let profile =
        format!("{WLAN}    ssid: \" lab;1\\\\x\"\n    psk: \"pa\\\\ss wo#rd;\"\n    country: GB\n");
    let nm = &plan_of(dir.path(), &profile, &[], NetworkStack::NetworkManager).unwrap()[0];
    let key = file(
        nm,
        "/etc/NetworkManager/system-connections/pibake-wlan0.nmconnection",
    );
    assert!(
        key.contains("\n[wifi]\nmode=infrastructure\nssid=\\slab\\\\;1\\\\x\n")
            && key.contains("\n[wifi-security]\nkey-mgmt=wpa-psk\npsk=pa\\\\ss wo#rd;\n"),
        "{key}"
    );
    assert!(
        nm.cmdline_add
            .contains(&"cfg80211.ieee80211_regdom=GB".to_string())
    );
    let dhcpcd = &plan_of(dir.path(), &profile, &[], NetworkStack::Dhcpcd).unwrap()[0];
    let wpa = file(dhcpcd, "/etc/wpa_supplicant/wpa_supplicant.conf");
    assert!(
        wpa.contains("country=GB\n")
            && wpa.contains("    ssid=\" lab;1\\x\"\n")
            && wpa.contains("    psk=\"pa\\ss wo#rd;\"\n"),
        "{wpa}"
    );
    // An SSID wpa_supplicant cannot quote goes in hex; a raw key unquoted.
    let profile = format!(
        "{WLAN}    ssid: 'say \"hi\"'\n    psk: \"{}\"\n    country: DE\n",
        "AB".repeat(32)
    );
    let p = &plan_of(dir.path(), &profile, &[], NetworkStack::Ifupdown).unwrap()[0];
    let wpa = file(p, "/etc/wpa_supplicant/wpa_supplicant.conf");
    assert!(
        wpa.contains("    ssid=7361792022686922\n")
            && wpa.contains(&format!("    psk={}\n", "ab".repeat(32))),
        "{wpa}"
    );
}

/// Local .deb names outside a file-name alphabet, and `[Install]` names that are not
/// unit names, are refused at their line; so are the same in an overlay's unit and a
/// `files:` unit, which the issue does not name.
#[test]
fn deb_names_and_install_sections_are_refused_at_their_line() {
    use NetworkStack::NetworkManager as Nm;
    let unit = |install: &str| {
        format!(
            "extends: base\nservices:\n  units:\n    evil.service: |\n      [Unit]\n      Description=evil\n      [Service]\n      ExecStart=/bin/true\n      [Install]\n      {install}\n  enable: [evil.service]\n"
        )
    };
    let site = "extends: base\noverlays: [site]\n";
    let cases: Vec<Case> = vec![
        (
            "debs: [\"my pkg;reboot.deb\"]\n".into(),
            vec![],
            Nm,
            "profiles/worker.yaml:1:8: debs[0]: ",
            "`my pkg;reboot.deb`: the file name holds ` `",
        ),
        (
            "debs:\n  - \"debs/evil\\nreboot.deb\"\n".into(),
            vec![],
            Nm,
            "profiles/worker.yaml:2:5: ",
            "the path holds a control character",
        ),
        (
            "debs: [\"debs/x';reboot;'.deb\"]\n".into(),
            vec![],
            Nm,
            "profiles/worker.yaml:1:8: ",
            "the file name holds `'`",
        ),
        (
            "debs: [a/tool_1_all.deb, b/tool_1_all.deb]\n".into(),
            vec![],
            Nm,
            "profiles/worker.yaml:1:26: ",
            "a second .deb named `tool_1_all.deb`",
        ),
        (
            unit("Alias=../../../usr/bin/sudo"),
            vec![],
            Nm,
            "profiles/worker.yaml:10:7: unit evil.service, [Install]: ",
            "Alias=: `../../../usr/bin/sudo` is not a unit name",
        ),
        (
            unit("WantedBy=multi-user.target ../../../etc/evil.target"),
            vec![],
            Nm,
            "profiles/worker.yaml:10:7: ",
            "WantedBy=: `../../../etc/evil.target` is not a unit name",
        ),
        (
            unit("RequiredBy=/etc/systemd/evil.target"),
            vec![],
            Nm,
            "profiles/worker.yaml:10:7: ",
            "RequiredBy=: `/etc/systemd/evil.target` is not a unit name",
        ),
        (
            unit("UpheldBy=../x.target"),
            vec![],
            Nm,
            "profiles/worker.yaml:10:7: ",
            "UpheldBy=:",
        ),
        (
            unit("Also=../../../etc/shadow"),
            vec![],
            Nm,
            "profiles/worker.yaml:10:7: ",
            "Also=:",
        ),
        (
            unit("DefaultInstance=../../x"),
            vec![],
            Nm,
            "profiles/worker.yaml:10:7: ",
            "DefaultInstance=: `../../x` is not an instance name",
        ),
        (
            unit("Alias=sudo.socket"),
            vec![],
            Nm,
            "profiles/worker.yaml:10:7: ",
            "is not a .service unit like evil.service",
        ),
        // A unit written on one line: the value's position, and the line in the unit.
        (
            "services:\n  units: { evil.service: \"[Install]\\nWantedBy=../../x.target\\n\" }\n".into(),
            vec![],
            Nm,
            "profiles/worker.yaml:2:26: ",
            "WantedBy=: `../../x.target` is not a unit name (like apache2.service): `/` is outside systemd's letters, digits and `:_.@-\\` (line 2 of the unit)",
        ),
        (
            "services: { enable: [\"../../x.service\"] }\n".into(),
            vec![],
            Nm,
            "profiles/worker.yaml:1:22: services.enable[0]: ",
            "`../../x.service` is not a unit name",
        ),
        // Not named by the issue: an overlay's unit, and a `files:` unit.
        (
            site.into(),
            vec![(
                "overlays/site/etc/systemd/system/site.service",
                "[Unit]\nDescription=site\n\n[Install]\nWantedBy=../../../tmp/x.target\n",
            )],
            Nm,
            "overlays/site/etc/systemd/system/site.service:5: unit site.service, [Install]: ",
            "WantedBy=: `../../../tmp/x.target` is not a unit name",
        ),
        (
            site.into(),
            vec![(
                "overlays/site/usr/lib/systemd/system/site.service.hbs",
                "[Install]\nAlias={{node.name}}/../../../../usr/bin/sudo.service\n",
            )],
            Nm,
            "overlays/site/usr/lib/systemd/system/site.service.hbs:2 (as rendered): ",
            "Alias=: `w1/../../../../usr/bin/sudo.service` is not a unit name",
        ),
        (
            "files:\n  - path: /etc/systemd/system/x.service\n    content: \"[Install]\\nAlias=../../../usr/bin/sudo\\n\"\n".into(),
            vec![],
            Nm,
            "profiles/worker.yaml:2:9: /etc/systemd/system/x.service (line 2 of its content): ",
            "Alias=: `../../../usr/bin/sudo` is not a unit name",
        ),
    ];
    check_cases(cases);
}

/// The one shell quoting function: whatever the text, `sh` reads back exactly it, as one
/// word.
#[test]
fn shell_words_read_back_exactly() {
    let words = [
        "plain-1.0+b1_all.deb",
        "my pkg;reboot.deb",
        "it's",
        "'",
        "''\\''",
        "$(touch /tmp/pibake-pwned)",
        "`id`",
        "two\nlines",
        "",
        "~root",
        "*",
        "a\\b",
        "x=y",
        "-n",
    ];
    let line: Vec<String> = words.iter().map(|w| sh_quote(w)).collect();
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("printf '%s\\0' {}", line.join(" ")))
        .output()
        .unwrap();
    assert!(out.status.success());
    let got: Vec<&str> = std::str::from_utf8(&out.stdout)
        .unwrap()
        .split_terminator('\0')
        .collect();
    assert_eq!(got, words);
    assert!(!Path::new("/tmp/pibake-pwned").exists());
    assert_eq!(sh_quote("hello_2.10-3_arm64.deb"), "hello_2.10-3_arm64.deb");
}

/// The first-boot steps that name inventory values, run by the host's `sh` with a
/// stand-in `apt-get` that records its arguments: each value arrives as one argument,
/// exactly; among them a package request (not named by the issue) with `~` and `:`.
#[test]
fn first_boot_steps_pass_inventory_values_as_single_words() {
    let dir = tempfile::tempdir().unwrap();
    let profile = "debs: [debs/my-tool_1.0+b1~rc1_all.deb, \"other/libx_1:2.0_armhf.deb\"]\npackages_online: [\"hello=2.10-3~rc1\", \"libfoo:armhf\"]\n";
    let plans = plan_of(
        dir.path(),
        profile,
        &[
            ("debs/my-tool_1.0+b1~rc1_all.deb", "deb one"),
            ("other/libx_1:2.0_armhf.deb", "deb two"),
        ],
        NetworkStack::NetworkManager,
    )
    .unwrap();
    let p = &plans[0];
    assert_eq!(
        file(p, "/var/lib/pibake/debs/my-tool_1.0+b1~rc1_all.deb"),
        "deb one"
    );
    let steps = dir.path().join("steps");
    let bin = dir.path().join("bin");
    fs::create_dir_all(&steps).unwrap();
    fs::create_dir_all(&bin).unwrap();
    let log = dir.path().join("apt-args");
    fs::write(
        bin.join("apt-get"),
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done >> '{}'\necho -- >> '{}'\n",
            log.display(),
            log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(bin.join("apt-get"), fs::Permissions::from_mode(0o755)).unwrap();
    for name in ["10-local-debs.sh", "20-packages-online.sh"] {
        let text = file(p, &format!("/usr/local/lib/pibake/firstboot.d/{name}"));
        assert!(!text.contains("--no-download"), "{text}");
        let path = steps.join(name);
        fs::write(&path, text).unwrap();
        let out = Command::new("sh")
            .arg(&path)
            .env(
                "PATH",
                format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
            )
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        "install\n-y\n/var/lib/pibake/debs/my-tool_1.0+b1~rc1_all.deb\n/var/lib/pibake/debs/libx_1:2.0_armhf.deb\n--\nupdate\n--\ninstall\n-y\nhello=2.10-3~rc1\nlibfoo:armhf\n--\n"
    );
}

fn load(path: &Path) -> Inventory {
    let mut inv = Inventory::load(path).unwrap();
    inv.packages_online_instead();
    inv
}

/// The legitimate values, built into images of a NetworkManager release and a dhcpcd
/// one and read back with debugfs: the Wi-Fi settings in the stack's own file, the .deb
/// and its first-boot step, an inline unit's alias and `.wants` links.
#[test]
fn legitimate_values_read_back_from_built_images() {
    let profile = format!(
        "{WLAN}    ssid: \" lab;1\\\\x\"\n    psk: \"pa\\\\ss wo#rd;\"\n    country: GB\n  eth0: {{ network: lan }}\ndebs: [debs/my-tool_1.0+b1~rc1_all.deb]\nservices:\n  units:\n    site.service: |\n      [Unit]\n      Description=site\n      [Service]\n      ExecStart=/bin/true\n      [Install]\n      WantedBy=multi-user.target\n      Alias=web.service\n  enable: [site.service]\n"
    );
    for release in [Release::Bookworm, Release::Bullseye] {
        let f = Fixture::new(release);
        let work = tempfile::tempdir().unwrap();
        let path = cluster(
            work.path(),
            Some(&f.image),
            &[
                ("profiles/worker.yaml", &profile),
                ("debs/my-tool_1.0+b1~rc1_all.deb", "not really a deb"),
            ],
        );
        let built = build(&load(&path), &[], &options(work.path())).unwrap();
        let image = &built[0].image;
        e2fsck_clean(image, f.root_offset);
        let d = |r: &str| debugfs(image, f.root_offset, r);
        let name = format!("{release:?}");
        if release == Release::Bullseye {
            let wpa = d("cat /etc/wpa_supplicant/wpa_supplicant.conf");
            assert!(
                wpa.contains("country=GB\n")
                    && wpa.contains(
                        "network={\n    ssid=\" lab;1\\x\"\n    psk=\"pa\\ss wo#rd;\"\n}\n"
                    ),
                "{name}: {wpa}"
            );
            assert!(d("stat /etc/wpa_supplicant/wpa_supplicant.conf").contains("Mode:  0600"));
        } else {
            let at = "/etc/NetworkManager/system-connections/pibake-wlan0.nmconnection";
            let key = d(&format!("cat {at}"));
            assert!(
                key.contains("\ntype=wifi\ninterface-name=wlan0\n")
                    && key.contains("\nssid=\\slab\\\\;1\\\\x\n")
                    && key.contains("\npsk=pa\\\\ss wo#rd;\n"),
                "{name}: {key}"
            );
            assert!(d(&format!("stat {at}")).contains("Mode:  0600"));
        }
        let cmdline = String::from_utf8(
            tool("mtype")
                .args([
                    "-i",
                    &format!("{}@@{}", image.display(), f.boot_offset),
                    "::/cmdline.txt",
                ])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        assert!(
            cmdline.contains("cfg80211.ieee80211_regdom=GB"),
            "{name}: {cmdline}"
        );
        assert_eq!(
            d("cat /var/lib/pibake/debs/my-tool_1.0+b1~rc1_all.deb"),
            "not really a deb"
        );
        let step = d("cat /usr/local/lib/pibake/firstboot.d/10-local-debs.sh");
        assert!(
            step.contains(
                "\nDEBIAN_FRONTEND=noninteractive apt-get install -y '/var/lib/pibake/debs/my-tool_1.0+b1~rc1_all.deb'\n"
            ),
            "{name}: {step}"
        );
        assert!(
            d("stat /etc/systemd/system/web.service")
                .contains("Fast link dest: \"/etc/systemd/system/site.service\""),
            "{name}"
        );
        assert!(
            d("stat /etc/systemd/system/multi-user.target.wants/site.service")
                .contains("Fast link dest: \"/etc/systemd/system/site.service\""),
            "{name}"
        );
    }
}

/// The second line of defence: a unit of the base image itself (no inventory check sees
/// it) whose `[Install]` names a path makes the build fail, and nothing is followed:
/// the base's /usr/bin/sudo stays what it was, and no image is left.
#[test]
fn install_names_that_climb_out_of_the_unit_directory_are_refused_at_build() {
    for (install, says) in [
        (
            "Alias=../../../usr/bin/sudo",
            "unit evil.service (/usr/lib/systemd/system/evil.service): [Install] Alias=../../../usr/bin/sudo: the link /etc/systemd/system/../../../usr/bin/sudo would not be inside /etc/systemd/system; refused",
        ),
        (
            "WantedBy=../../../../usr/bin/x",
            "[Install] WantedBy=../../../../usr/bin/x: the link /etc/systemd/system/../../../../usr/bin/x.wants/evil.service would not be inside",
        ),
        (
            "Also=../../../../etc/shadow",
            "`../../../../etc/shadow` is not a unit name",
        ),
    ] {
        let f = Fixture::new(Release::Bookworm);
        let whole = pibake_image::region::Region::whole(&f.image, true).unwrap();
        let mut fs =
            pibake_ext4::Ext4::open_rw(whole.sub(f.root_offset, f.root_size).unwrap()).unwrap();
        let meta = pibake_ext4::Meta::new(0o644, 0, 0);
        fs.write_file(
            "/usr/lib/systemd/system/evil.service",
            format!(
                "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n{install}\n"
            )
            .as_bytes(),
            &meta,
        )
        .unwrap();
        fs.mkdir_p("/usr/bin", &pibake_ext4::Meta::new(0o755, 0, 0))
            .unwrap();
        fs.write_file(
            "/usr/bin/sudo",
            b"setuid sudo",
            &pibake_ext4::Meta::new(0o4755, 0, 0),
        )
        .unwrap();
        fs.commit().unwrap();
        drop(fs);
        let work = tempfile::tempdir().unwrap();
        let path = cluster(
            work.path(),
            Some(&f.image),
            &[(
                "profiles/worker.yaml",
                "extends: base\ninterfaces: { eth0: { network: lan } }\nservices: { enable: [evil.service] }\n",
            )],
        );
        let err = build(&load(&path), &[], &options(work.path()))
            .unwrap_err()
            .to_string();
        assert!(err.contains(says), "want `{says}` in: {err}");
        let images: Vec<_> = fs::read_dir(work.path().join("out"))
            .map(|rd| {
                rd.map(|e| e.unwrap().file_name())
                    .filter(|n| n.to_string_lossy().ends_with(".img"))
                    .collect()
            })
            .unwrap_or_default();
        assert!(images.is_empty(), "{install}: left behind {images:?}");
        let sudo = f.debugfs("stat /usr/bin/sudo");
        assert!(
            sudo.contains("Type: regular") && sudo.contains("Mode:  04755"),
            "{install}: {sudo}"
        );
    }
}
