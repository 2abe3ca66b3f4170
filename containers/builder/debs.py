"""Debian packages for the target architecture, downloaded and unpacked, never installed.

The runtime is cut from the files of real Debian packages. For the build's own architecture
and for a foreign one alike, the builder resolves the dependency closure of the interpreter
packages with ``apt-cache``, downloads the ``.deb`` files for the target architecture and
unpacks them with ``dpkg-deb -x`` into a staging root: nothing is executed for the target,
so an arm64 runtime is assembled on amd64 without emulation.

Each package's control fields and file list are kept (``packages.json``) so the runtime can
carry ``/var/lib/dpkg/status.d/<package>`` entries for the packages it takes files from, as
distroless images do; scanners such as trivy read those to know what is installed.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

#: The packages the interpreter and its standard library come from.
INTERPRETER_PACKAGES = ("python3.13-minimal", "libpython3.13-stdlib", "base-files")
#: Packages of data alone, staged without their dependencies: Mozilla's CA certificates, which
#: the runtime bundles when OpenSSL ships (rootfs.write_ca_bundle).
DATA_PACKAGES = ("ca-certificates",)
#: Fields copied into a status.d entry, in dpkg's order.
STATUS_FIELDS = (
    "Package",
    "Version",
    "Architecture",
    "Maintainer",
    "Source",
    "Installed-Size",
    "Depends",
    "Pre-Depends",
    "Multi-Arch",
    "Homepage",
    "Description",
)
TIMEOUT = 600


@dataclass(frozen=True)
class Package:
    """One unpacked Debian package: its control fields and the paths it ships."""

    name: str
    control: dict[str, str]
    files: tuple[str, ...]

    def status_entry(self) -> str:
        """The package's entry in dpkg's status format, as distroless writes it."""
        lines = []
        for field in STATUS_FIELDS:
            value = self.control.get(field)
            if value is None:
                continue
            if field == "Package":
                lines.append(f"Package: {value}")
                lines.append("Status: install ok installed")
            else:
                lines.append(f"{field}: {value}")
        return "\n".join(lines) + "\n"


def _run(argv: list[str], cwd: Path | None = None) -> str:
    logger.debug("$ %s", " ".join(argv))
    result = subprocess.run(  # noqa: S603 - argv list, fixed tools
        argv, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {result.returncode}: {result.stderr.strip()}")
    return result.stdout


def native_arch() -> str:
    """The builder's own Debian architecture."""
    return _run(["dpkg", "--print-architecture"]).strip()


def resolve(packages: tuple[str, ...], arch: str) -> list[str]:
    """``packages`` and all they depend on, for ``arch``, named as ``apt-get download`` wants."""
    qualified = [f"{name}:{arch}" for name in packages]
    output = _run(
        [
            "apt-cache",
            "depends",
            "--recurse",
            "--no-recommends",
            "--no-suggests",
            "--no-conflicts",
            "--no-breaks",
            "--no-replaces",
            "--no-enhances",
            *qualified,
        ]
    )
    names = set()
    for line in output.splitlines():
        # Top-level lines name real packages, qualified (libc6:arm64) unless they are native or
        # Architecture: all; indented ones are edges; <virtual> ones are provided by a real
        # package that is listed on its own line too.
        if line and not line.startswith((" ", "<")):
            names.add(line.strip())
    return sorted(names)


def stage(arch: str, dest: Path, packages: tuple[str, ...] = INTERPRETER_PACKAGES) -> list[Package]:
    """Download and unpack the closure of ``packages`` for ``arch`` into ``dest / "root"``."""
    if arch != native_arch():
        _run(["dpkg", "--add-architecture", arch])
        _run(["apt-get", "update", "-q"])
    names = resolve(packages, arch)
    debs = dest / "debs"
    root = dest / "root"
    debs.mkdir(parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    _run(["apt-get", "download", "-q", *names, *DATA_PACKAGES], cwd=debs)
    unpacked = []
    for deb in sorted(debs.glob("*.deb")):
        control = _control(deb)
        if control.get("Architecture") not in {arch, "all"}:
            continue
        files = tuple(
            _content_path(line) for line in _run(["dpkg-deb", "--contents", str(deb)]).splitlines()
        )
        _run(["dpkg-deb", "--extract", str(deb), str(root)])
        unpacked.append(Package(name=control["Package"], control=control, files=files))
    (dest / "packages.json").write_text(
        json.dumps([asdict(package) for package in unpacked], indent=1, sort_keys=True)
    )
    logger.info("staged %d packages for %s", len(unpacked), arch)
    return unpacked


def load(dest: Path) -> list[Package]:
    """The packages a previous :func:`stage` call unpacked into ``dest``."""
    raw = json.loads((dest / "packages.json").read_text())
    return [
        Package(name=item["name"], control=item["control"], files=tuple(item["files"]))
        for item in raw
    ]


def _control(deb: Path) -> dict[str, str]:
    text = _run(["dpkg-deb", "--field", str(deb)])
    fields: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if line.startswith((" ", "\t")) and key:
            fields[key] += "\n" + line
        elif ":" in line:
            key, value = line.split(":", 1)
            fields[key] = value.strip()
    return fields


def _content_path(line: str) -> str:
    """The path in one line of ``dpkg-deb --contents`` (``ls -l`` style), as ``/usr/...``."""
    name = line.split(None, 5)[5].split(" -> ", maxsplit=1)[0]
    return name.removeprefix(".").rstrip("/") or "/"


def main(argv: list[str] | None = None) -> int:
    """``python3 debs.py --arch ARCH --dest DIR``: stage the interpreter packages."""
    logging.basicConfig(level=logging.INFO, format="builder: %(message)s")
    parser = argparse.ArgumentParser(prog="debs.py")
    parser.add_argument("--arch", required=True)
    parser.add_argument("--dest", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        stage(args.arch, args.dest)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        logger.error("error: %s", exc)  # "builder: error: ...", as doit image looks for
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
