#!/usr/bin/env python3
"""make-image.py BUSYBOX_STATIC_DEB OUT.tar: the image pibake/hello:1 as a `docker save`
archive, made without Docker (so on any build machine, for arm64 nodes).

One layer: the static busybox of Debian's busybox-static package (give the arm64 .deb)
and a page; its command is busybox's web server on port 8080. `docker load -i OUT.tar`
reads it; the container-cluster example bakes it into every node.
"""
import hashlib
import io
import json
import sys
import tarfile


def deb_member(deb, prefix):
    """The bytes of the first member of the .deb (an ar archive) named PREFIX*."""
    data = open(deb, "rb").read()
    if not data.startswith(b"!<arch>\n"):
        sys.exit(f"{deb}: not a .deb (no ar header)")
    at = 8
    while at + 60 <= len(data):
        name = data[at : at + 16].decode().strip().rstrip("/")
        size = int(data[at + 48 : at + 58].decode().strip())
        if name.startswith(prefix):
            return data[at + 60 : at + 60 + size]
        at += 60 + size + (size & 1)
    sys.exit(f"{deb}: no {prefix}* member")


def busybox(deb):
    """The static busybox binary inside the package."""
    with tarfile.open(fileobj=io.BytesIO(deb_member(deb, "data.tar"))) as t:
        for m in t.getmembers():
            if m.name.lstrip("./") == "bin/busybox":
                return t.extractfile(m).read()
    sys.exit(f"{deb}: no bin/busybox (is it busybox-static?)")


def add(t, name, data=None, mode=0o644, kind=tarfile.REGTYPE):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, mode, 0
    if data is not None:
        info.size = len(data)
    t.addfile(info, io.BytesIO(data) if data is not None else None)


def tar(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for e in entries:
            add(t, *e)
    return buf.getvalue()


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    deb, out = sys.argv[1], sys.argv[2]
    layer = tar([
        ("bin", None, 0o755, tarfile.DIRTYPE),
        ("bin/busybox", busybox(deb), 0o755),
        ("www", None, 0o755, tarfile.DIRTYPE),
        ("www/index.html", b"<p>hello from a pibake swarm</p>\n"),
    ])
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        "architecture": "arm64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {
            "Cmd": ["/bin/busybox", "httpd", "-f", "-v", "-p", "8080", "-h", "/www"],
            "ExposedPorts": {"8080/tcp": {}},
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "make-image.py"}],
    }, sort_keys=True).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_dir = diff_id.split(":")[1]
    manifest = json.dumps([{
        "Config": config_name,
        "RepoTags": ["pibake/hello:1"],
        "Layers": [f"{layer_dir}/layer.tar"],
    }]).encode()
    archive = tar([
        (layer_dir, None, 0o755, tarfile.DIRTYPE),
        (f"{layer_dir}/layer.tar", layer),
        (config_name, config),
        ("manifest.json", manifest),
    ])
    with open(out, "wb") as f:
        f.write(archive)
    print(f"{out}: pibake/hello:1, {len(archive)} bytes")


main()
