"""Assembling the runtime's three layers from the staged packages, the wheels and the app.

    base  the loader, the interpreter, the shared libraries in their DT_NEEDED closure, the
          chosen standard-library extension modules, the chosen standard library compiled into
          ``/usr/lib/python313.zip``, ``/etc/passwd``/``group`` for uid 1000, an empty ``/tmp``
          and a dpkg ``status.d`` entry for every package a file was taken from;
    deps  the locked dependencies, byte-compiled: pure-Python ones in ``/opt/app/site.zip``,
          those with extension modules and every ``dist-info/METADATA`` (scanners read it)
          under ``/opt/app/site``;
    app   the service, byte-compiled, under ``/opt/app/app``.

Every ELF file is stripped of its symbol table and debug sections (:mod:`builder.strip`),
every file gets the same mtime (SOURCE_DATE_EPOCH), a normalised mode and no setuid/setgid
bit; ``.pyc`` files use unchecked-hash invalidation so they do not embed source mtimes; zip
entries are sorted with fixed timestamps. Two builds of the same inputs give the same bytes.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import tempfile
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from builder import bytecode, elf, strip
from builder.debs import Package

logger = logging.getLogger(__name__)

PYTHON = "python3.13"
STDLIB = PurePosixPath("/usr/lib") / PYTHON
STDLIB_ZIP = PurePosixPath("/usr/lib/python313.zip")
SITE = PurePosixPath("/opt/app/site")
SITE_ZIP = PurePosixPath("/opt/app/site.zip")
APP_ROOT = PurePosixPath("/opt/app")
#: Where the ca-certificates package keeps Mozilla's certificates, and the bundle made of them
#: (the Dockerfile's SSL_CERT_FILE names the same path).
MOZILLA_CERTS = "/usr/share/ca-certificates/mozilla"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
#: The runtime's import path (the Dockerfile sets the same PYTHONPATH).
PYTHONPATH = f"{APP_ROOT}:{SITE_ZIP}:{SITE}"
UID = 1000
GID = 1000
TRIPLETS = {"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}
#: Merged-/usr links (shipped by base-files) kept in the runtime when what they point to is there.
USR_LINKS = ("/lib", "/lib64")
#: Data files that are only for developers and never needed at run time.
DEV_SUFFIXES = (".py", ".pyi", ".pyc", ".c", ".h", ".pyx", ".pxd", ".pxi", ".typed")
PASSWD = f"root:x:0:0:root:/root:/sbin/nologin\napp:x:{UID}:{GID}:app:/nonexistent:/sbin/nologin\n"
GROUP = f"root:x:0:\napp:x:{GID}:\n"


@dataclass
class Layer:
    """A directory that becomes one image layer."""

    root: Path
    files: set[str] = field(default_factory=set)

    def path(self, target: str | PurePosixPath) -> Path:
        """Where the image path ``target`` lives inside this layer's directory."""
        return self.root / str(target).lstrip("/")


class Sysroot:
    """The staged target filesystem, read with its own symlinks (never the builder's)."""

    def __init__(self, root: Path, arch: str) -> None:
        self.root = root
        self.arch = arch
        triplet = TRIPLETS[arch]
        self.lib_dirs = [f"/usr/lib/{triplet}", f"/lib/{triplet}", "/usr/lib", "/lib"]

    def host(self, path: str) -> Path:
        """The builder path of the target path ``path``."""
        return self.root / path.lstrip("/")

    def chain(self, path: str) -> list[str]:
        """``path`` and every symlink hop to its real file, as target paths."""
        hops = []
        current = self._real_dirs(PurePosixPath(path))
        for _ in range(40):
            hops.append(str(current))
            host = self.host(str(current))
            if not host.is_symlink():
                if not host.exists():
                    raise FileNotFoundError(f"{current} is not in the staged {self.arch} root")
                return hops
            current = self._real_dirs(self._follow(current))
        raise RuntimeError(f"symlink loop at {path}")

    def _follow(self, link: PurePosixPath) -> PurePosixPath:
        target = PurePosixPath(self.host(str(link)).readlink())
        joined = target if target.is_absolute() else link.parent / target
        return PurePosixPath(os.path.normpath(joined))

    def _real_dirs(self, path: PurePosixPath) -> PurePosixPath:
        """``path`` with its directory part free of symlinks (``/lib64/x`` -> ``/usr/lib64/x``)."""
        resolved = PurePosixPath("/")
        for part in path.parent.parts[1:]:
            candidate = resolved / part
            for _ in range(40):
                if not self.host(str(candidate)).is_symlink():
                    break
                candidate = self._follow(candidate)
            resolved = candidate
        return resolved / path.name

    def find_library(self, name: str, runpath: Iterable[str] = ()) -> str:
        """The target path of the shared library ``name``, searched as the loader would."""
        for directory in [*runpath, *self.lib_dirs]:
            candidate = f"{directory}/{name}"
            try:
                self.chain(candidate)
            except FileNotFoundError:
                continue
            return candidate
        raise FileNotFoundError(f"{name} is needed but is in none of {self.lib_dirs}")


def elf_closure(sysroot: Sysroot, starts: Iterable[str]) -> list[str]:
    """Every target path (links included) that ``starts`` need to load: the DT_NEEDED closure."""
    wanted: list[str] = []
    seen: set[str] = set()
    queue = list(starts)
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        hops = sysroot.chain(path)
        wanted.extend(hops)
        info = elf.read_elf(sysroot.host(hops[-1]))
        if info.machine != sysroot.arch:
            raise ValueError(f"{path} is {info.machine}, expected {sysroot.arch}")
        if info.interpreter:
            queue.append(info.interpreter)
        for library in info.needed:
            queue.append(sysroot.find_library(library, info.runpath))
    return sorted(set(wanted))


def system_libraries(sysroot: Sysroot, extensions: Iterable[Path]) -> list[str]:
    """Target paths of the system libraries that the wheels' extension modules need.

    ``extensions`` are the ``.so`` files of the installed dependencies (outside the sysroot).
    A library a wheel bundles (found through its ``$ORIGIN`` run path, as auditwheel sets it
    up) ships with the wheel; every other one must come from the Debian packages, e.g.
    ``libgcc_s.so.1`` for cryptography's Rust extension.
    """
    wanted = set()
    for extension in extensions:
        info = elf.read_elf(extension)
        if info.machine != sysroot.arch:
            raise ValueError(f"{extension} is {info.machine}, expected {sysroot.arch}")
        bundled_dirs = [
            Path(
                entry.replace("$ORIGIN", str(extension.parent)).replace(
                    "${ORIGIN}", str(extension.parent)
                )
            )
            for entry in info.runpath
            if "ORIGIN" in entry
        ]
        for library in info.needed:
            if any((directory / library).exists() for directory in bundled_dirs):
                continue
            wanted.add(sysroot.find_library(library))
    return sorted(wanted)


def copy_from_sysroot(sysroot: Sysroot, layer: Layer, paths: Iterable[str]) -> None:
    """Copy target ``paths`` (files or symlinks, as they are) into ``layer``."""
    for path in paths:
        source = sysroot.host(path)
        dest = layer.path(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            if not dest.is_symlink():
                dest.symlink_to(source.readlink())
        else:
            shutil.copy2(source, dest)
        layer.files.add(path)


def compile_tree(
    sources: dict[str, Path],
    dest: Path,
    display_root: PurePosixPath,
    *,
    docstrings: bool = True,
) -> None:
    """Byte-compile ``{relative name: source}`` into sourceless ``.pyc`` files under ``dest``.

    ``docstrings`` False leaves them out (:mod:`builder.bytecode`).
    """
    for relative, source in sorted(sources.items()):
        target = dest / Path(relative).with_suffix(".pyc")
        target.parent.mkdir(parents=True, exist_ok=True)
        bytecode.compile_module(source, target, str(display_root / relative), docstrings=docstrings)


def stdlib_sources(stdlib: Path, modules: Iterable[str]) -> tuple[dict[str, Path], list[str]]:
    """Source files and extension-module names for ``modules`` in the target's ``stdlib``."""
    sources: dict[str, Path] = {}
    extensions: list[str] = []
    for name in modules:
        relative = Path(*name.split("."))
        package = stdlib / relative / "__init__.py"
        module = (stdlib / relative).with_suffix(".py")
        if package.is_file():
            sources[str(relative / "__init__.py")] = package
        elif module.is_file():
            sources[str(relative.with_suffix(".py"))] = module
        else:
            extensions.append(name)
    return sources, extensions


def write_zip(source_dir: Path, archive: Path, epoch: int) -> None:
    """Zip ``source_dir`` reproducibly: sorted entries, fixed timestamps and modes."""
    stamp = time.gmtime(max(epoch, 315532800))[:6]  # zip cannot store dates before 1980
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in sorted(source_dir.rglob("*")):
            # Directory entries too: zipimport finds namespace packages (no __init__) by them.
            name = path.relative_to(source_dir).as_posix() + ("/" if path.is_dir() else "")
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.create_system = 3
            if path.is_dir():
                info.external_attr = (0o40755 << 16) | 0x10
                zf.writestr(info, b"")
            else:
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, path.read_bytes(), compresslevel=9)


def build_base(
    *,
    sysroot: Sysroot,
    packages: list[Package],
    modules: list[str],
    layer: Layer,
    epoch: int,
    site: Path | None = None,
    standins: dict[str, str] | None = None,
    docstrings: bool = True,
    ca_bundle: bool = False,
) -> None:
    """Fill the base layer: interpreter, libraries, standard library, users, /tmp, dpkg status.

    ``site`` is the target-arch dependencies directory: the system libraries its extension
    modules need join the closure. ``standins`` maps a top-level module name to the source
    that ships under that name instead of the standard library's (``ssl`` without OpenSSL);
    ``docstrings`` False compiles the standard library without them; ``ca_bundle`` (when
    OpenSSL ships) adds the CA certificates TLS clients verify servers with.
    """
    stdlib = sysroot.host(str(STDLIB))
    sources, extensions = stdlib_sources(stdlib, modules)
    dynload = f"{STDLIB}/lib-dynload"
    extension_paths = []
    for name in extensions:
        matches = sorted(sysroot.host(dynload).glob(f"{name}.cpython-*.so"))
        if not matches:
            raise FileNotFoundError(f"standard-library module {name} has no file in {stdlib}")
        extension_paths.append(f"{dynload}/{matches[0].name}")
    interpreter = f"/usr/bin/{PYTHON}"
    wheel_needs = system_libraries(
        sysroot,
        sorted(p for p in site.rglob("*.so*") if elf.is_elf(p)) if site is not None else [],
    )
    closure = elf_closure(sysroot, [interpreter, *extension_paths, *wheel_needs])
    copy_from_sysroot(sysroot, layer, closure)
    layer.path("/usr/bin/python3").symlink_to(PYTHON)
    layer.path(dynload).mkdir(parents=True, exist_ok=True)
    copy_from_sysroot(sysroot, layer, sysroot.chain("/usr/lib/os-release"))
    copy_from_sysroot(sysroot, layer, ["/etc/debian_version"])
    layer.path("/etc/os-release").symlink_to("../usr/lib/os-release")
    # The merged-/usr links (/lib -> usr/lib, ...) that the loader path goes through.
    for link in USR_LINKS:
        host = sysroot.host(link)
        if host.is_symlink() and (layer.path(link).parent / host.readlink()).exists():
            copy_from_sysroot(sysroot, layer, [link])

    with tempfile.TemporaryDirectory() as scratch, tempfile.TemporaryDirectory() as written:
        for name, text in sorted((standins or {}).items()):
            source = Path(written) / f"{name}.py"
            source.write_text(text)
            sources[f"{name}.py"] = source
        compile_tree(sources, Path(scratch), STDLIB, docstrings=docstrings)
        write_zip(Path(scratch), layer.path(STDLIB_ZIP), epoch)

    layer.path("/etc/passwd").write_text(PASSWD)
    layer.path("/etc/group").write_text(GROUP)
    layer.path("/tmp").mkdir()  # noqa: S108 - the image's own empty /tmp
    certificates = write_ca_bundle(sysroot, layer) if ca_bundle else []
    taken = [*closure, *certificates, "/usr/lib/os-release", "/etc/debian_version"]
    write_status(layer, packages, taken)
    logger.info(
        "base: %d stdlib modules, %d extension modules, %d files from packages",
        len(sources),
        len(extension_paths),
        len(closure),
    )


def write_ca_bundle(sysroot: Sysroot, layer: Layer) -> list[str]:
    """Write :data:`CA_BUNDLE` from the staged ca-certificates package, as Debian's
    update-ca-certificates does (every Mozilla certificate, in name order); the files used.

    The image sets ``SSL_CERT_FILE`` to it: OpenSSL's own default (/usr/lib/ssl/cert.pem) is a
    link Debian makes at install time, which a runtime cut from packages does not have.
    """
    certificates = sorted(sysroot.host(MOZILLA_CERTS).glob("*.crt"))
    if not certificates:
        raise FileNotFoundError(
            f"no CA certificates under {MOZILLA_CERTS}: the ca-certificates package was not "
            "staged (builder.debs.DATA_PACKAGES)"
        )
    bundle = layer.path(CA_BUNDLE)
    bundle.parent.mkdir(parents=True, exist_ok=True)
    with bundle.open("wb") as out:
        for certificate in certificates:
            data = certificate.read_bytes()
            out.write(data if data.endswith(b"\n") else data + b"\n")
    return [f"{MOZILLA_CERTS}/{path.name}" for path in certificates]


def write_status(layer: Layer, packages: list[Package], taken: list[str]) -> None:
    """A dpkg ``status.d`` entry for each package that at least one taken file came from."""
    taken_set = set(taken)
    status = layer.path("/var/lib/dpkg/status.d")
    status.mkdir(parents=True, exist_ok=True)
    for package in packages:
        if taken_set.intersection(package.files):
            (status / package.name).write_text(package.status_entry())


def build_site(site_packages: Path, layer: Layer, epoch: int, *, docstrings: bool = True) -> None:
    """Fill the deps layer from an unpacked ``pip install --target`` directory.

    Pure-Python distributions go, byte-compiled, into ``site.zip`` (a third of the size; the
    import system reads it with zipimport). Packages holding extension modules stay as files
    under ``site/``, since an extension module cannot load from a zip; so do the
    ``dist-info/METADATA`` files, which scanners read to know what is installed.
    ``docstrings`` False compiles the dependencies without them.
    """
    files = layer.path(SITE)
    sources: dict[str, Path] = {}
    zipped_sources: dict[str, Path] = {}
    zipped_data: dict[str, Path] = {}
    native_tops = {
        path.relative_to(site_packages).parts[0]
        for path in site_packages.rglob("*.so")
        if "__pycache__" not in path.parts
    }
    for path in sorted(site_packages.rglob("*")):
        relative = path.relative_to(site_packages)
        if path.is_dir() or "__pycache__" in relative.parts or relative.parts[0] == "bin":
            continue
        if relative.parts[0].endswith(".dist-info"):
            if relative.name == "METADATA":
                _copy(path, files / relative)
            continue
        native = relative.parts[0] in native_tops
        if path.suffix == ".py":
            (sources if native else zipped_sources)[str(relative)] = path
        elif path.suffix == ".so" or not path.name.endswith(DEV_SUFFIXES):
            if native:
                _copy(path, files / relative)
            else:
                zipped_data[str(relative)] = path
    compile_tree(sources, files, SITE, docstrings=docstrings)
    with tempfile.TemporaryDirectory() as scratch:
        compile_tree(zipped_sources, Path(scratch), SITE_ZIP, docstrings=docstrings)
        for relative_name, data_file in zipped_data.items():
            _copy(data_file, Path(scratch) / relative_name)
        write_zip(Path(scratch), layer.path(SITE_ZIP), epoch)


def build_app(app_dir: Path, layer: Layer) -> None:
    """Fill the app layer with the byte-compiled service package."""
    sources = {
        str(Path("app") / path.relative_to(app_dir)): path
        for path in sorted(app_dir.rglob("*.py"))
        if "__pycache__" not in path.parts
    }
    compile_tree(sources, layer.path(APP_ROOT), APP_ROOT)


def strip_tree(root: Path) -> tuple[int, int]:
    """Strip every ELF file under ``root``; how many changed and the bytes they lost."""
    changed = 0
    saved = 0
    for path in sorted(root.rglob("*")):
        if elf.is_elf(path):
            lost = strip.strip_file(path)
            if lost:
                changed += 1
                saved += lost
    return changed, saved


def normalise(layer_root: Path, epoch: int) -> None:
    """Fixed mtimes, 0644/0755 modes, no setuid/setgid, /tmp sticky and world-writable."""
    for path in sorted(layer_root.rglob("*"), reverse=True):
        if not path.is_symlink():
            mode = path.stat().st_mode
            if path.is_dir():
                new = 0o1777 if path == layer_root / "tmp" else 0o755
            else:
                new = 0o755 if mode & stat.S_IXUSR else 0o644
            path.chmod(new)
        os.utime(path, (epoch, epoch), follow_symlinks=False)
    os.utime(layer_root, (epoch, epoch))


def _copy(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, dest)
    if os.access(source, os.X_OK):
        dest.chmod(0o755)
