#!/usr/bin/env python3
"""Compares a root pibake unpacked packages into (PIBAKE) with the same base after
`dpkg --unpack` of the same packages (DPKG); BASE is the untouched base. Used by
tests/e2e/dpkg-oracle.sh. Prints every difference and exits 1 if there is any that is
not one of the differences listed here, each with its reason:

- directory mtimes and the mtimes of dpkg's info files are not compared: dpkg stamps
  them with the time it ran, pibake with the build's time;
- pending triggers: dpkg (run with --no-triggers, so that it records activations and
  runs none, as pibake) incorporates them into the status file at once
  (Triggers-Pending, Status triggers-pending); pibake leaves them in triggers/Unincorp
  for the node's dpkg to incorporate, so the check is that both name the same
  (package, trigger) pairs;
- paths no package lists (users and groups a preinst made, dpkg's own logs and
  backups): dpkg ran the preinsts at unpack, pibake runs them on first boot.
"""
import hashlib
import os
import stat
import sys

PIBAKE, DPKG, BASE = sys.argv[1:4]
ADMIN = "var/lib/dpkg"
problems = []


def at(root, path):
    return os.path.join(root, path.lstrip("/"))


def read(root, path):
    try:
        with open(at(root, path), "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def stanzas(root):
    out = {}
    for rec in read(root, ADMIN + "/status").decode().split("\n\n"):
        rec = rec.strip("\n")
        if not rec:
            continue
        fields = dict(l.split(": ", 1) for l in rec.split("\n") if l and not l.startswith(" ") and ": " in l)
        out[(fields["Package"], fields.get("Architecture", ""))] = rec
    return out


def describe(root, path):
    p = at(root, path)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return None
    d = {"type": stat.S_IFMT(st.st_mode), "mode": oct(st.st_mode & 0o7777), "uid": st.st_uid, "gid": st.st_gid}
    if stat.S_ISREG(st.st_mode):
        d["size"] = st.st_size
        d["links"] = st.st_nlink
        d["mtime"] = int(st.st_mtime)
        with open(p, "rb") as f:
            d["sha256"] = hashlib.sha256(f.read()).hexdigest()
    elif stat.S_ISLNK(st.st_mode):
        d["target"] = os.readlink(p)
    return d


def compare_path(path, what=None):
    a, b = describe(PIBAKE, path), describe(DPKG, path)
    if what is not None and a is not None and b is not None:
        a.pop("mtime", None)
        b.pop("mtime", None)
    if a != b:
        problems.append(f"{path}: pibake {a} / dpkg {b}")


def without_triggers(rec):
    lines = [l for l in rec.split("\n") if not l.startswith(("Triggers-Pending:", "Triggers-Awaited:"))]
    return "\n".join(l.replace("install ok triggers-pending", "install ok installed")
                     .replace("install ok triggers-awaited", "install ok installed") for l in lines)


def pending_from_status(recs):
    out = set()
    for (name, _), rec in recs.items():
        for l in rec.split("\n"):
            if l.startswith("Triggers-Pending: "):
                out.update((name, t) for t in l.split(": ", 1)[1].split())
    return out


def pending_from_unincorp(root):
    text = (read(root, ADMIN + "/triggers/Unincorp") or b"").decode()
    files = (read(root, ADMIN + "/triggers/File") or b"").decode().split("\n")
    out = set()
    for line in filter(None, text.split("\n")):
        trig = line.split()[0]
        if trig.startswith("/"):
            who = [l.split(" ", 1)[1] for l in files if l.startswith(trig + " ")]
        else:
            who = (read(root, ADMIN + "/triggers/" + trig) or b"").decode().split()
        out.update((w.split("/")[0].split(":")[0], trig) for w in who)
    return out


def main():
    unpacked = [l.split() for l in read(PIBAKE, "var/lib/pibake/packages/unpacked").decode().splitlines() if l]
    p_recs, d_recs, b_recs = stanzas(PIBAKE), stanzas(DPKG), stanzas(BASE)
    paths = set()
    for name, arch, info in unpacked:
        key = (name, arch)
        pr, dr = p_recs.get(key), d_recs.get(key)
        if dr is None or pr != without_triggers(dr):
            problems.append(f"status of {name}:\n--- pibake\n{pr}\n--- dpkg\n{dr}")
        lists = [read(r, f"{ADMIN}/info/{info}.list") for r in (PIBAKE, DPKG)]
        if lists[0] != lists[1]:
            problems.append(f"info/{info}.list differs")
        paths.update(p for p in (lists[1] or b"").decode().splitlines() if p != "/.")
        for line in (dr or "").split("\n"):
            if line.startswith(" /") and line.endswith(" newconffile"):
                paths.add(line.split()[0] + ".dpkg-new")
        names = {f for r in (PIBAKE, DPKG) for f in os.listdir(at(r, ADMIN + "/info")) if f.startswith(info + ".")}
        for f in sorted(names):
            compare_path(f"/{ADMIN}/info/{f}", what="info")
    for path in sorted(paths):
        kind = describe(DPKG, path)
        compare_path(path, what="dir" if kind and kind["type"] == stat.S_IFDIR else None)
    for key, rec in b_recs.items():
        if without_triggers(p_recs.get(key, "")) != without_triggers(d_recs.get(key, "")):
            problems.append(f"status of base package {key[0]} differs")
    trig_files = {f for r in (PIBAKE, DPKG) for f in os.listdir(at(r, ADMIN + "/triggers"))} - {"Unincorp", "Lock"}
    for f in sorted(trig_files):
        if read(PIBAKE, f"{ADMIN}/triggers/{f}") != read(DPKG, f"{ADMIN}/triggers/{f}"):
            problems.append(f"triggers/{f} differs")
    ours, theirs = pending_from_unincorp(PIBAKE), pending_from_status(d_recs) | pending_from_unincorp(DPKG)
    if ours != theirs:
        problems.append(f"pending triggers: pibake {sorted(ours)} / dpkg {sorted(theirs)}")
    for d in ("usr/bin", "usr/sbin"):
        for f in os.listdir(at(BASE, d)):
            p = f"/{d}/{f}"
            try:
                want = os.getxattr(at(BASE, p), "security.capability", follow_symlinks=False)
            except OSError:
                continue
            try:
                got = os.getxattr(at(PIBAKE, p), "security.capability", follow_symlinks=False)
            except OSError:
                got = None
            if got != want:
                problems.append(f"{p}: the base's security.capability is not kept")
    print(f"compared {len(unpacked)} packages, {len(paths)} paths, their info files, triggers and status")
    for p in problems:
        print("DIFFERENCE:", p)
    sys.exit(1 if problems else 0)


main()
