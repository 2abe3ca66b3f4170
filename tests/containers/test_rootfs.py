"""Assembling the runtime layers: sysroot links, the ELF closure, zips, byte-code, modes.

The sysroot is built in a temporary directory from real binaries of this machine (an
executable that needs only the C library, the C library and the loader), laid out with
Debian's merged-/usr links, so the closure is computed over real ELF files on amd64 and arm64.
"""

from __future__ import annotations

import importlib.util
import marshal
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path, PurePosixPath

import markupsafe
import pytest
from builder import elf
from builder.debs import Package
from builder.rootfs import (
    CA_BUNDLE,
    GID,
    PYTHON,
    SITE,
    SITE_ZIP,
    STDLIB,
    STDLIB_ZIP,
    TRIPLETS,
    UID,
    Layer,
    Sysroot,
    build_app,
    build_base,
    build_site,
    compile_tree,
    copy_from_sysroot,
    elf_closure,
    normalise,
    stdlib_sources,
    strip_tree,
    write_ca_bundle,
    write_status,
    write_zip,
)

EPOCH = 1_700_000_000  # 2023-11-14T22:13:20Z
ZIP_STAMP = (2023, 11, 14, 22, 13, 20)


def _host_program() -> Path:
    """An executable of this machine that needs the C library and nothing else."""
    for candidate in ("/usr/bin/env", "/bin/true", "/usr/bin/true", "/usr/bin/sleep"):
        path = Path(candidate).resolve()
        if path.is_file() and elf.read_elf(path).needed == ("libc.so.6",):
            return path
    raise AssertionError("no executable here needs only libc.so.6")


class Staged:
    """A staged target root, merged-/usr, with a program, the C library and the loader."""

    def __init__(self, root: Path) -> None:
        program = _host_program()
        info = elf.read_elf(program)
        assert info.interpreter is not None
        self.root = root
        self.arch = info.machine
        self.triplet = TRIPLETS[self.arch]
        interpreter = PurePosixPath(info.interpreter)  # /lib64/ld-linux-x86-64.so.2 on amd64
        self.loader = interpreter.name
        libc = Path(f"/lib/{self.triplet}/libc.so.6").resolve()
        libdir = root / "usr/lib" / self.triplet
        libdir.mkdir(parents=True)
        shutil.copy(libc, libdir / "libc.so.6")
        shutil.copy(Path(info.interpreter).resolve(), libdir / self.loader)
        (root / "usr/bin").mkdir(parents=True)
        shutil.copy(program, root / "usr/bin/prog")
        (root / "lib").symlink_to("usr/lib")
        # The loader's path goes through a merged-/usr link, then an absolute link into the
        # triplet directory (as Debian ships /usr/lib64/ld-linux-x86-64.so.2).
        self.loader_link = "/usr" + str(interpreter)
        if str(interpreter.parent) != "/lib":
            (root / str(interpreter.parent).lstrip("/")).symlink_to("usr" + str(interpreter.parent))
            (root / self.loader_link.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / self.loader_link.lstrip("/")).symlink_to(f"/lib/{self.triplet}/{self.loader}")
        self.interpreter = str(interpreter)
        self.sysroot = Sysroot(root, self.arch)

    @property
    def real_loader(self) -> str:
        return f"/usr/lib/{self.triplet}/{self.loader}"

    @property
    def libc(self) -> str:
        return f"/usr/lib/{self.triplet}/libc.so.6"


@pytest.fixture
def staged(tmp_path: Path) -> Staged:
    return Staged(tmp_path / "stage")


def _python(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=cwd,
    )


# --- Sysroot --------------------------------------------------------------------------------


def test_chain_resolves_merged_usr_and_absolute_links_inside_the_sysroot(staged: Staged) -> None:
    assert staged.sysroot.chain(staged.interpreter) == [staged.loader_link, staged.real_loader]
    assert staged.sysroot.chain(f"/lib/{staged.triplet}/libc.so.6") == [staged.libc]


def test_chain_never_reads_the_builders_own_files(staged: Staged, tmp_path: Path) -> None:
    # /etc/hostname exists on the builder, not in the staged root.
    (staged.root / "usr/lib/hostname").symlink_to("/etc/hostname")
    with pytest.raises(FileNotFoundError, match=r"/etc/hostname is not in the staged"):
        staged.sysroot.chain("/usr/lib/hostname")
    # and a link to a path only the staged root has resolves
    (staged.root / "opt/only-here").mkdir(parents=True)
    (staged.root / "opt/only-here/data").write_text("x")
    (staged.root / "usr/lib/data").symlink_to("/opt/only-here/data")
    assert staged.sysroot.chain("/usr/lib/data") == ["/usr/lib/data", "/opt/only-here/data"]


def test_chain_reports_a_symlink_loop(staged: Staged) -> None:
    (staged.root / "usr/lib/a").symlink_to("b")
    (staged.root / "usr/lib/b").symlink_to("a")
    with pytest.raises(RuntimeError, match="symlink loop at /usr/lib/a"):
        staged.sysroot.chain("/usr/lib/a")


def test_find_library_searches_the_runpath_first(staged: Staged) -> None:
    assert staged.sysroot.find_library("libc.so.6") == staged.libc
    (staged.root / "opt/vendor").mkdir(parents=True)
    shutil.copy(staged.root / staged.libc.lstrip("/"), staged.root / "opt/vendor/libc.so.6")
    assert staged.sysroot.find_library("libc.so.6", ["/opt/vendor"]) == "/opt/vendor/libc.so.6"
    with pytest.raises(FileNotFoundError, match=r"libnope\.so\.1 is needed"):
        staged.sysroot.find_library("libnope.so.1")


def test_elf_closure_holds_the_program_its_libraries_the_loader_and_every_link(
    staged: Staged,
) -> None:
    closure = elf_closure(staged.sysroot, ["/usr/bin/prog"])
    assert closure == sorted({"/usr/bin/prog", staged.libc, staged.loader_link, staged.real_loader})


def test_elf_closure_refuses_a_binary_of_another_architecture(staged: Staged) -> None:
    other = "arm64" if staged.arch == "amd64" else "amd64"
    with pytest.raises(ValueError, match=rf"/usr/bin/prog is {staged.arch}, expected {other}"):
        elf_closure(Sysroot(staged.root, other), ["/usr/bin/prog"])


def test_copy_from_sysroot_keeps_links_as_links(staged: Staged, tmp_path: Path) -> None:
    layer = Layer(tmp_path / "layer")
    paths = elf_closure(staged.sysroot, ["/usr/bin/prog"])
    copy_from_sysroot(staged.sysroot, layer, paths)
    link = layer.path(staged.loader_link)
    assert link.is_symlink()
    assert str(link.readlink()) == f"/lib/{staged.triplet}/{staged.loader}"
    copied = layer.path(staged.libc)
    assert copied.read_bytes() == (staged.root / staged.libc.lstrip("/")).read_bytes()
    assert layer.files == set(paths)


# --- zips and byte-code ---------------------------------------------------------------------


def _tree(root: Path) -> Path:
    files = {
        "pkg/__init__.py": "VALUE = 'pkg'\n",
        "pkg/mod.py": "from . import VALUE\nNAME = VALUE + '.mod'\n",
        "nsp/inner.py": "NAME = 'nsp.inner'\n",  # nsp has no __init__: a namespace package
        "top.py": "NAME = 'top'\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_write_zip_gives_the_same_bytes_whatever_the_mtimes_and_modes(tmp_path: Path) -> None:
    first = _tree(tmp_path / "a")
    second = _tree(tmp_path / "b")
    for path in second.rglob("*"):
        os.utime(path, (EPOCH + 12345, EPOCH + 12345))
    (second / "top.py").chmod(0o755)
    write_zip(first, tmp_path / "one.zip", EPOCH)
    write_zip(second, tmp_path / "two.zip", EPOCH)
    write_zip(first, tmp_path / "again.zip", EPOCH)
    one = (tmp_path / "one.zip").read_bytes()
    assert one == (tmp_path / "two.zip").read_bytes()
    assert one == (tmp_path / "again.zip").read_bytes()


def test_write_zip_entries_are_sorted_stamped_and_include_directories(tmp_path: Path) -> None:
    write_zip(_tree(tmp_path / "src"), tmp_path / "out.zip", EPOCH)
    with zipfile.ZipFile(tmp_path / "out.zip") as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert {"pkg/", "nsp/"} <= set(names)
    assert {info.date_time for info in infos} == {ZIP_STAMP}
    modes = {info.filename: info.external_attr >> 16 for info in infos}
    assert stat.S_IMODE(modes["pkg/mod.py"]) == 0o644
    assert stat.S_ISDIR(modes["nsp/"])


def test_write_zip_clamps_an_epoch_before_1980(tmp_path: Path) -> None:
    write_zip(_tree(tmp_path / "src"), tmp_path / "out.zip", 0)
    with zipfile.ZipFile(tmp_path / "out.zip") as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_modules_and_a_namespace_package_import_from_the_zip(tmp_path: Path) -> None:
    compiled = tmp_path / "compiled"
    sources = {
        str(p.relative_to(tmp_path / "src")): p for p in _tree(tmp_path / "src").rglob("*.py")
    }
    compile_tree(sources, compiled, PurePosixPath("/opt/app/site.zip"))
    write_zip(compiled, tmp_path / "site.zip", EPOCH)
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(tmp_path / "site.zip")!r})
        import pkg.mod, nsp.inner, top
        print(pkg.mod.NAME, nsp.inner.NAME, top.NAME, type(pkg.mod.__loader__).__name__)
        """
    )
    result = _python("-c", code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["pkg.mod", "nsp.inner", "top", "zipimporter"]


def test_compile_tree_writes_sourceless_unchecked_hash_pyc(tmp_path: Path) -> None:
    source = tmp_path / "src/mod.py"
    source.parent.mkdir()
    source.write_text("def f():\n    raise ValueError\n")
    compile_tree({"pkg/mod.py": source}, tmp_path / "out", PurePosixPath("/opt/app"))
    pyc = tmp_path / "out/pkg/mod.pyc"
    data = pyc.read_bytes()
    assert data[:4] == importlib.util.MAGIC_NUMBER
    # flags: bit 0 hash-based, bit 1 check_source (must be off: sources do not ship)
    assert int.from_bytes(data[4:8], "little") == 0b01
    # the test reads back the pyc it has just written
    code = marshal.loads(data[16:])  # noqa: S302
    assert code.co_filename == "/opt/app/pkg/mod.py"
    assert not (tmp_path / "out/pkg/mod.py").exists()
    os.utime(source, (EPOCH, EPOCH))
    compile_tree({"pkg/mod.py": source}, tmp_path / "again", PurePosixPath("/opt/app"))
    assert (tmp_path / "again/pkg/mod.pyc").read_bytes() == data


def test_stdlib_sources_tells_packages_modules_and_extensions_apart(tmp_path: Path) -> None:
    stdlib = tmp_path / "python3.13"
    for name in ("json/__init__.py", "json/decoder.py", "os.py"):
        (stdlib / name).parent.mkdir(parents=True, exist_ok=True)
        (stdlib / name).write_text("")
    sources, extensions = stdlib_sources(stdlib, ["json", "json.decoder", "os", "_json"])
    assert sources == {
        "json/__init__.py": stdlib / "json/__init__.py",
        "json/decoder.py": stdlib / "json/decoder.py",
        "os.py": stdlib / "os.py",
    }
    assert extensions == ["_json"]


# --- the deps and app layers ----------------------------------------------------------------


@pytest.fixture
def site_packages(tmp_path: Path) -> Path:
    """A ``pip install --target`` directory: pure, native, namespace and top-level modules."""
    site = tmp_path / "site-packages"
    files: dict[str, str | bytes] = {
        "purepkg/__init__.py": "NAME = 'pure'\n",
        "purepkg/mod.py": "from . import NAME\n",
        "purepkg/data.json": '{"x": 1}',
        "purepkg/py.typed": "",
        "purepkg/stubs.pyi": "x: int\n",
        "purepkg/__pycache__/mod.cpython-313.pyc": b"stale",
        "purepkg-1.0.dist-info/METADATA": "Name: purepkg\nVersion: 1.0\n",
        "purepkg-1.0.dist-info/RECORD": "purepkg/__init__.py,,\n",
        "nativepkg/__init__.py": "NAME = 'native'\n",
        "nativepkg/helper.py": "HELP = 1\n",
        "nativepkg/_speed.cpython-313-x86_64-linux-gnu.so": b"\x7fELF not really",
        "nativepkg/_speed.pyi": "",
        "nativepkg/include/speed.h": "",
        "nativepkg-2.0.dist-info/METADATA": "Name: nativepkg\nVersion: 2.0\n",
        "nsp/part.py": "PART = 1\n",
        "six.py": "SIX = 6\n",
        "bin/some-script": "#!/bin/sh\n",
    }
    for name, content in files.items():
        path = site / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    (site / "nativepkg/_speed.cpython-313-x86_64-linux-gnu.so").chmod(0o755)
    return site


def test_build_site_zips_pure_code_and_keeps_native_packages_and_metadata_as_files(
    site_packages: Path, tmp_path: Path
) -> None:
    layer = Layer(tmp_path / "deps")
    build_site(site_packages, layer, EPOCH)
    with zipfile.ZipFile(layer.path(SITE_ZIP)) as archive:
        zipped = set(archive.namelist())
    assert {"purepkg/__init__.pyc", "purepkg/mod.pyc", "purepkg/data.json"} <= zipped
    assert {"nsp/", "nsp/part.pyc", "six.pyc"} <= zipped
    assert not {name for name in zipped if name.endswith((".py", ".pyi", ".typed"))}
    assert not {name for name in zipped if "nativepkg" in name or "dist-info" in name}
    assert not {name for name in zipped if "__pycache__" in name or name.startswith("bin")}
    site = layer.path(SITE)
    files = {str(p.relative_to(site)) for p in site.rglob("*") if p.is_file()}
    assert files == {
        "nativepkg/__init__.pyc",
        "nativepkg/helper.pyc",
        "nativepkg/_speed.cpython-313-x86_64-linux-gnu.so",
        "nativepkg-2.0.dist-info/METADATA",
        "purepkg-1.0.dist-info/METADATA",
    }
    assert os.access(site / "nativepkg/_speed.cpython-313-x86_64-linux-gnu.so", os.X_OK)


def test_build_site_is_reproducible(site_packages: Path, tmp_path: Path) -> None:
    first, second = Layer(tmp_path / "one"), Layer(tmp_path / "two")
    build_site(site_packages, first, EPOCH)
    for path in site_packages.rglob("*"):
        os.utime(path, (EPOCH + 99, EPOCH + 99))
    build_site(site_packages, second, EPOCH)
    assert first.path(SITE_ZIP).read_bytes() == second.path(SITE_ZIP).read_bytes()


def test_the_deps_layer_imports_as_the_runtime_path_sets_it(
    site_packages: Path, tmp_path: Path
) -> None:
    layer = Layer(tmp_path / "deps")
    build_site(site_packages, layer, EPOCH)
    code = textwrap.dedent(
        f"""
        import sys
        sys.path[:0] = [{str(layer.path(SITE_ZIP))!r}, {str(layer.path(SITE))!r}]
        import purepkg.mod, nsp.part, six, nativepkg.helper
        import importlib.resources
        print(purepkg.mod.NAME, nsp.part.PART, six.SIX, nativepkg.helper.HELP)
        print(importlib.resources.files("purepkg").joinpath("data.json").read_text())
        """
    )
    result = _python("-c", code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["pure 1 6 1", '{"x": 1}']


def test_build_app_compiles_the_package_under_opt_app(tmp_path: Path) -> None:
    app = tmp_path / "src/app"
    (app / "sub").mkdir(parents=True)
    (app / "__pycache__").mkdir()
    (app / "__init__.py").write_text("")
    (app / "routes.py").write_text("def boom():\n    raise RuntimeError\n")
    (app / "sub/__init__.py").write_text("")
    (app / "__pycache__/routes.cpython-313.pyc").write_bytes(b"stale")
    layer = Layer(tmp_path / "app-layer")
    build_app(app, layer)
    root = layer.path("/opt/app")
    files = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert files == {"app/__init__.pyc", "app/routes.pyc", "app/sub/__init__.pyc"}
    code = marshal.loads((root / "app/routes.pyc").read_bytes()[16:])  # noqa: S302
    assert code.co_filename == "/opt/app/app/routes.py"  # what a traceback in the image shows


# --- the base layer -------------------------------------------------------------------------


def test_build_base_assembles_interpreter_libraries_stdlib_users_and_status(
    staged: Staged, tmp_path: Path
) -> None:
    root = staged.root
    shutil.copy(root / "usr/bin/prog", root / "usr/bin" / PYTHON)
    stdlib = root / str(STDLIB).lstrip("/")
    (stdlib / "json").mkdir(parents=True)
    (stdlib / "json/__init__.py").write_text("")
    (stdlib / "keyword.py").write_text("kwlist = []\n")
    (stdlib / "pdb.py").write_text("")
    dynload = stdlib / "lib-dynload"
    dynload.mkdir()
    extension = f"_json.cpython-313-{staged.triplet}.so"
    shutil.copy(root / staged.libc.lstrip("/"), dynload / extension)
    (root / "etc").mkdir()
    (root / "etc/debian_version").write_text("13.1\n")
    (root / "usr/lib/os-release").write_text('ID=debian\nVERSION_ID="13"\n')
    libc6 = Package(
        name="libc6",
        control={"Package": "libc6", "Version": "2.41-12", "Architecture": staged.arch},
        files=(staged.libc, staged.real_loader, "/usr/share/doc/libc6/copyright"),
    )
    unrelated = Package(
        name="perl-base",
        control={"Package": "perl-base", "Version": "5.40"},
        files=("/usr/bin/perl",),
    )
    layer = Layer(tmp_path / "base")
    layer.root.mkdir()

    build_base(
        sysroot=staged.sysroot,
        packages=[libc6, unrelated],
        modules=["json", "keyword", "_json"],
        layer=layer,
        epoch=EPOCH,
        standins={"ssl": '"""The stand-in."""\nSTANDIN = True\n'},
        docstrings=False,
    )

    assert layer.path(f"/usr/bin/{PYTHON}").is_file()
    assert str(layer.path("/usr/bin/python3").readlink()) == PYTHON
    assert layer.path(f"{STDLIB}/lib-dynload/{extension}").is_file()
    assert layer.path(staged.libc).is_file()
    assert layer.path(staged.real_loader).is_file()
    assert layer.path(staged.loader_link).is_symlink()
    # the merged-/usr links the loader path goes through
    assert str(layer.path("/lib").readlink()) == "usr/lib"
    with zipfile.ZipFile(layer.path(STDLIB_ZIP)) as archive:
        assert set(archive.namelist()) == {
            "json/",
            "json/__init__.pyc",
            "keyword.pyc",
            "ssl.pyc",
        }
        standin = marshal.loads(archive.read("ssl.pyc")[16:])  # noqa: S302
    assert standin.co_filename == f"{STDLIB}/ssl.py"
    assert "The stand-in." not in standin.co_consts  # compiled without docstrings
    assert "STANDIN" in standin.co_names
    assert not layer.path(f"{STDLIB}/pdb.py").exists()
    passwd = layer.path("/etc/passwd").read_text()
    assert f"app:x:{UID}:{GID}:" in passwd
    assert "/sbin/nologin" in passwd
    assert f"app:x:{GID}:" in layer.path("/etc/group").read_text()
    assert layer.path("/tmp").is_dir()
    assert str(layer.path("/etc/os-release").readlink()) == "../usr/lib/os-release"
    assert layer.path("/etc/debian_version").read_text() == "13.1\n"
    status = layer.path("/var/lib/dpkg/status.d")
    assert sorted(p.name for p in status.iterdir()) == ["libc6"]
    assert (status / "libc6").read_text() == libc6.status_entry()


def test_write_status_lists_only_packages_a_file_was_taken_from(tmp_path: Path) -> None:
    used = Package("zlib1g", {"Package": "zlib1g", "Version": "1:1.3"}, ("/usr/lib/libz.so.1",))
    unused = Package("bash", {"Package": "bash", "Version": "5.2"}, ("/bin/bash",))
    layer = Layer(tmp_path / "layer")
    write_status(layer, [used, unused], ["/usr/lib/libz.so.1", "/usr/bin/python3.13"])
    status = layer.path("/var/lib/dpkg/status.d")
    assert [p.name for p in status.iterdir()] == ["zlib1g"]
    assert (status / "zlib1g").read_text().startswith("Package: zlib1g\nStatus: install ok")


# --- normalise ------------------------------------------------------------------------------


def test_normalise_fixes_modes_and_mtimes_and_drops_setuid(tmp_path: Path) -> None:
    root = tmp_path / "layer"
    (root / "usr/bin").mkdir(parents=True)
    (root / "tmp").mkdir()
    (root / "secret").mkdir(mode=0o700)
    setuid = root / "usr/bin/tool"
    setuid.write_text("")
    setuid.chmod(0o4755)
    setgid = root / "usr/bin/other"
    setgid.write_text("")
    setgid.chmod(0o2711)
    private = root / "secret/key"
    private.write_text("")
    private.chmod(0o600)
    (root / "usr/bin/link").symlink_to("tool")

    normalise(root, EPOCH)

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.lstat().st_mode)

    assert mode(setuid) == 0o755
    assert mode(setgid) == 0o755
    assert mode(private) == 0o644
    assert mode(root / "secret") == 0o755
    assert mode(root / "usr") == 0o755
    assert mode(root / "tmp") == 0o1777
    assert (root / "usr/bin/link").is_symlink()
    every = [root, *root.rglob("*")]
    assert {path.lstat().st_mtime for path in every} == {EPOCH}


def test_strip_tree_strips_elf_files_only(tmp_path: Path) -> None:
    extension = next(Path(markupsafe.__file__).parent.glob("_speedups*.so"))
    shutil.copy(extension, tmp_path / extension.name)
    (tmp_path / "data.bin").write_bytes(b"not a binary")
    (tmp_path / "link.so").symlink_to(extension.name)

    changed, saved = strip_tree(tmp_path)

    assert changed == 1
    assert saved == extension.stat().st_size - (tmp_path / extension.name).stat().st_size > 0
    assert (tmp_path / "data.bin").read_bytes() == b"not a binary"
    assert strip_tree(tmp_path) == (0, 0)  # a second pass finds nothing left to strip
    (tmp_path / "broken.so").write_bytes(b"\x7fELF cut short")
    with pytest.raises(elf.ElfError, match=r"broken\.so: not an ELF file"):
        strip_tree(tmp_path)  # the build stops, naming the file


# --- the CA bundle --------------------------------------------------------------------------


def test_the_ca_bundle_is_every_mozilla_certificate_in_name_order(tmp_path: Path) -> None:
    mozilla = tmp_path / "root/usr/share/ca-certificates/mozilla"
    mozilla.mkdir(parents=True)
    (mozilla / "B_Root.crt").write_text("-----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----")
    (mozilla / "A_Root.crt").write_text(
        "-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n"
    )
    (mozilla / "README").write_text("not a certificate\n")
    layer = Layer(tmp_path / "base")

    used = write_ca_bundle(Sysroot(tmp_path / "root", "amd64"), layer)

    assert used == [
        "/usr/share/ca-certificates/mozilla/A_Root.crt",
        "/usr/share/ca-certificates/mozilla/B_Root.crt",
    ]
    bundle = layer.path(CA_BUNDLE).read_text()
    assert bundle.index("\nA\n") < bundle.index("\nB\n")
    assert bundle.count("-----END CERTIFICATE-----\n") == 2  # each ends its line


def test_no_staged_certificates_is_a_build_error_naming_the_package(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="ca-certificates package was not staged"):
        write_ca_bundle(Sysroot(tmp_path, "amd64"), Layer(tmp_path / "base"))
