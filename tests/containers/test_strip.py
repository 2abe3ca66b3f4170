"""Stripping ELF files: smaller, still loadable, the same bytes every time.

Against a real unstripped extension module of this machine: markupsafe's ``_speedups`` (a
runtime dependency; its wheel ships it with its symbol table and debug sections).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import markupsafe
import pytest
from builder.elf import ElfError, read_elf
from builder.strip import DEBUG_PREFIXES, SHT_SYMTAB, LayoutError, strip_bytes, strip_file

PACKAGE = Path(markupsafe.__file__).parent
EXTENSION = next(PACKAGE.glob("_speedups*.so"))


def _sections(data: bytes) -> list[tuple[str, int]]:
    """(name, type) of every section of a little-endian ELF64 file."""
    shoff = struct.unpack_from("<Q", data, 40)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 58)
    headers = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names_at = headers[shstrndx][4]

    def name(offset: int) -> str:
        start = names_at + offset
        return data[start : data.index(b"\0", start)].decode()

    return [(name(header[0]), header[1]) for header in headers]


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "markupsafe"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_the_wheel_extension_is_unstripped_to_begin_with() -> None:
    names = [name for name, _ in _sections(EXTENSION.read_bytes())]
    assert ".symtab" in names, "markupsafe's wheel now ships stripped: pick another fixture"


def test_strip_drops_symbols_and_debug_sections_and_the_module_still_loads(
    package_copy: Path,
) -> None:
    extension = next(package_copy.glob("_speedups*.so"))
    before = extension.read_bytes()

    saved = strip_file(extension)

    after = extension.read_bytes()
    assert saved == len(before) - len(after) > 0
    sections = _sections(after)
    assert not [name for name, kind in sections if kind == SHT_SYMTAB]
    assert not [name for name, _ in sections if name.startswith(DEBUG_PREFIXES)]
    assert ".dynsym" in [name for name, _ in sections]
    # what the loader needs is untouched
    assert read_elf(extension) == read_elf(EXTENSION)
    code = (
        "import markupsafe\n"
        "from markupsafe import _speedups\n"
        "assert markupsafe._escape_inner is _speedups._escape_inner\n"
        "print(_speedups.__file__, markupsafe.escape('<a>'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(package_copy.parent)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.split() == [str(extension), "&lt;a&gt;"]


def test_strip_is_reproducible_and_idempotent() -> None:
    data = EXTENSION.read_bytes()
    once = strip_bytes(data)
    assert strip_bytes(data) == once
    assert strip_bytes(once) is once  # nothing left to strip: the very same bytes


def test_a_file_that_is_not_elf_or_is_cut_short_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ElfError, match="not an ELF file"):
        strip_bytes(b"#!/bin/sh\n" + b"\0" * 64)
    with pytest.raises(ElfError, match="malformed"):
        strip_bytes(EXTENSION.read_bytes()[:2000])
    script = tmp_path / "script"
    script.write_bytes(b"#!/bin/sh\n" + b"\0" * 64)
    with pytest.raises(ElfError, match=str(script)):
        strip_file(script)


def test_a_section_to_remove_listed_before_a_mapped_one_is_refused() -> None:
    data = bytearray(EXTENSION.read_bytes())
    shoff = struct.unpack_from("<Q", data, 40)[0]
    shentsize = struct.unpack_from("<H", data, 58)[0]
    # Make section 1 (mapped, before the others) look like a symbol table.
    struct.pack_into("<I", data, shoff + shentsize + 4, SHT_SYMTAB)
    struct.pack_into("<Q", data, shoff + shentsize + 8, 0)  # and not allocated
    with pytest.raises(LayoutError, match="before a mapped one"):
        strip_bytes(bytes(data))
