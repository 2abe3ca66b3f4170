"""Debian packages: dpkg status entries, ``dpkg-deb`` and ``apt-cache`` output, staging.

The external tools are replaced by a stand-in for ``debs._run`` that answers with output
recorded from the real tools (dpkg-deb 1.21, apt 2.6).
"""

from __future__ import annotations

from email.parser import HeaderParser
from pathlib import Path

import pytest
from builder import debs
from builder.debs import Package, _content_path, _control, load, resolve, stage

CONTENTS = """\
drwxr-xr-x root/root         0 2025-11-29 11:32 ./
drwxr-xr-x root/root         0 2025-11-29 11:32 ./usr/
drwxr-xr-x root/root         0 2025-11-29 11:32 ./usr/lib/x86_64-linux-gnu/
-rw-r--r-- root/root    121000 2025-11-29 11:32 ./usr/lib/x86_64-linux-gnu/libz.so.1.3
drwxr-xr-x root/root         0 2025-11-29 11:32 ./usr/share/doc/zz/a dir/
-rw-r--r-- root/root         2 2025-11-29 11:32 ./usr/share/doc/zz/a dir/read me.txt
lrwxrwxrwx root/root         0 2025-11-29 11:32 ./usr/lib/x86_64-linux-gnu/libz.so.1 -> libz.so.1.3
"""

FIELDS = """\
Package: zlib1g
Version: 1:1.3.dfsg-3.1
Architecture: arm64
Maintainer: Mark Brown <broonie@debian.org>
Description: compression library - runtime
 zlib is a library implementing the deflate compression method found
 in gzip and PKZIP.
Section: libs
Multi-Arch: same
Source: zlib
"""

# apt-cache depends --recurse for a foreign architecture: real packages qualified, an
# alternative (|), a virtual package (<...>) and an Architecture: all package unqualified.
DEPENDS = """\
python3.13-minimal:arm64
  PreDepends: libc6:arm64
  Depends: libpython3.13-minimal:arm64
 |Depends: libexpat1:arm64
  Depends: <debconf-2.0>
libc6:arm64
  Depends: libgcc-s1:arm64
libpython3.13-minimal:arm64
  Depends: libc6:arm64
libexpat1:arm64
libgcc-s1:arm64
  Depends: gcc-14-base:arm64
gcc-14-base:arm64
tzdata
<debconf-2.0>
  debconf
"""


def test_content_path_reads_files_directories_links_and_spaces() -> None:
    paths = [_content_path(line) for line in CONTENTS.splitlines()]
    assert paths == [
        "/",
        "/usr",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu/libz.so.1.3",
        "/usr/share/doc/zz/a dir",
        "/usr/share/doc/zz/a dir/read me.txt",
        "/usr/lib/x86_64-linux-gnu/libz.so.1",
    ]


def test_control_keeps_multi_line_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(debs, "_run", lambda argv, cwd=None: FIELDS)
    control = _control(Path("zlib1g.deb"))
    assert control["Version"] == "1:1.3.dfsg-3.1"
    assert control["Description"] == (
        "compression library - runtime\n"
        " zlib is a library implementing the deflate compression method found\n"
        " in gzip and PKZIP."
    )


def test_status_entry_is_dpkg_status_with_only_the_known_fields_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(debs, "_run", lambda argv, cwd=None: FIELDS)
    entry = Package("zlib1g", _control(Path("zlib1g.deb")), ()).status_entry()
    keys = [line.split(":", 1)[0] for line in entry.splitlines() if not line.startswith(" ")]
    assert keys == [
        "Package",
        "Status",
        "Version",
        "Architecture",
        "Maintainer",
        "Source",
        "Multi-Arch",
        "Description",
    ]
    assert entry.endswith("in gzip and PKZIP.\n")
    # What scanners do with it: read it as RFC 822 headers.
    headers = HeaderParser().parsestr(entry)
    assert headers["Status"] == "install ok installed"
    assert headers["Architecture"] == "arm64"
    assert "Section" not in headers


def test_resolve_names_every_real_package_of_the_closure(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def fake_run(argv: list[str], cwd: Path | None = None) -> str:
        calls.append(argv)
        return DEPENDS

    monkeypatch.setattr(debs, "_run", fake_run)
    names = resolve(("python3.13-minimal", "base-files"), "arm64")
    assert names == [
        "gcc-14-base:arm64",
        "libc6:arm64",
        "libexpat1:arm64",
        "libgcc-s1:arm64",
        "libpython3.13-minimal:arm64",
        "python3.13-minimal:arm64",
        "tzdata",
    ]
    (argv,) = calls
    assert argv[:3] == ["apt-cache", "depends", "--recurse"]
    assert "--no-recommends" in argv
    assert argv[-2:] == ["python3.13-minimal:arm64", "base-files:arm64"]


class FakeTools:
    """``dpkg``, ``apt-get`` and ``dpkg-deb`` for :func:`debs.stage`."""

    def __init__(self, native: str) -> None:
        self.native = native
        self.calls: list[list[str]] = []
        self.fields = {
            "zlib1g_arm64.deb": FIELDS,
            "zlib1g_amd64.deb": FIELDS.replace("arm64", "amd64"),
            "tzdata_all.deb": "Package: tzdata\nVersion: 2025b\nArchitecture: all\n",
        }

    def __call__(self, argv: list[str], cwd: Path | None = None) -> str:
        self.calls.append(argv)
        tool = argv[:2]
        if tool == ["dpkg", "--print-architecture"]:
            return self.native + "\n"
        if tool == ["apt-cache", "depends"]:
            return "zlib1g:arm64\ntzdata\n"
        if tool == ["apt-get", "download"]:
            assert cwd is not None
            for name in self.fields:
                (cwd / name).write_bytes(b"!<arch>\n")
            return ""
        if tool == ["dpkg-deb", "--field"]:
            return self.fields[Path(argv[2]).name]
        if tool == ["dpkg-deb", "--contents"]:
            return CONTENTS
        if tool == ["dpkg-deb", "--extract"]:
            return ""
        return ""


def test_stage_for_a_foreign_arch_keeps_only_that_arch_and_all(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    tools = FakeTools(native="amd64")
    monkeypatch.setattr(debs, "_run", tools)
    staged = stage("arm64", tmp_path)
    assert ["dpkg", "--add-architecture", "arm64"] in tools.calls
    assert sorted(p.name for p in staged) == ["tzdata", "zlib1g"]
    extracted = [argv for argv in tools.calls if argv[:2] == ["dpkg-deb", "--extract"]]
    assert {Path(argv[2]).name for argv in extracted} == {"zlib1g_arm64.deb", "tzdata_all.deb"}
    assert all(argv[3] == str(tmp_path / "root") for argv in extracted)
    zlib = next(p for p in staged if p.name == "zlib1g")
    assert "/usr/lib/x86_64-linux-gnu/libz.so.1" in zlib.files
    # a later ``assemble`` reads back exactly what was staged
    assert load(tmp_path) == staged


def test_stage_for_the_native_arch_adds_no_architecture(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    tools = FakeTools(native="arm64")
    monkeypatch.setattr(debs, "_run", tools)
    stage("arm64", tmp_path)
    assert not [argv for argv in tools.calls if "--add-architecture" in argv]
    assert not [argv for argv in tools.calls if argv[:2] == ["apt-get", "update"]]


def test_run_raises_with_the_tools_own_message(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"ls exited [1-9]: .*no-such-path"):
        debs._run(["ls", str(tmp_path / "no-such-path")])
