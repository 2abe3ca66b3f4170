"""The ELF reader, against real binaries of this machine (so it runs on amd64 and arm64 alike)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from builder.elf import ELF_MAGIC, ElfError, is_elf, read_elf

PYTHON = Path(sys.executable).resolve()


def _host_library(name: str, runpath: tuple[str, ...]) -> Path:
    """Where this machine's loader finds ``name`` (the runpath, then the usual directories)."""
    machine = os.uname().machine
    dirs = [
        *runpath,
        f"/lib/{machine}-linux-gnu",
        f"/usr/lib/{machine}-linux-gnu",
        "/lib64",
        "/lib",
    ]
    for directory in dirs:
        candidate = Path(directory) / name
        if candidate.is_file():
            return candidate.resolve()
    raise AssertionError(f"{name} is in none of {dirs}")


def test_the_interpreter_names_its_loader_and_the_c_library() -> None:
    info = read_elf(PYTHON)
    assert info.machine == {"x86_64": "amd64", "aarch64": "arm64"}[os.uname().machine]
    assert info.interpreter is not None
    assert Path(info.interpreter).name.startswith("ld-linux")
    assert Path(info.interpreter).exists()
    assert "libc.so.6" in info.needed


def test_a_shared_library_needs_the_loader_the_executable_names() -> None:
    python = read_elf(PYTHON)
    assert python.interpreter is not None
    libc = read_elf(_host_library("libc.so.6", python.runpath))
    assert Path(python.interpreter).name in libc.needed
    assert libc.machine == python.machine


def test_is_elf_tells_binaries_from_scripts_links_and_directories(tmp_path: Path) -> None:
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\n")
    link = tmp_path / "link"
    link.symlink_to(PYTHON)
    assert is_elf(PYTHON)
    assert not is_elf(script)
    assert not is_elf(link)
    assert not is_elf(tmp_path)
    assert not is_elf(tmp_path / "absent")


def test_a_file_that_is_not_elf_is_refused_by_name(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a binary\n")
    with pytest.raises(ElfError, match=r"notes\.txt is not an ELF file"):
        read_elf(text)


def test_a_header_cut_short_is_an_elf_error(tmp_path: Path) -> None:
    cut = tmp_path / "cut"
    cut.write_bytes(PYTHON.read_bytes()[:40])
    with pytest.raises(ElfError, match="truncated"):
        read_elf(cut)


def test_every_truncation_either_reads_the_same_or_is_an_elf_error(tmp_path: Path) -> None:
    # A download cut short must stop the build with the builder's one-line error
    # (``ElfError`` is a ValueError, which ``python3 -m builder`` reports), never a traceback.
    data = PYTHON.read_bytes()
    assert data.startswith(ELF_MAGIC)
    full = read_elf(PYTHON)
    cut = tmp_path / "cut"
    escaped: dict[str, list[int]] = {}
    for size in range(len(ELF_MAGIC), min(len(data), 64 * 1024), 16):
        cut.write_bytes(data[:size])
        try:
            info = read_elf(cut)
        except ElfError:
            continue
        except Exception as exc:
            escaped.setdefault(type(exc).__name__, []).append(size)
            continue
        assert info == full, f"a file cut at {size} bytes read as {info}"
    assert escaped == {}, {name: sizes[:3] for name, sizes in escaped.items()}
