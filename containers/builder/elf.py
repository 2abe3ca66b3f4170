"""Just enough of the ELF format to find what a binary needs at run time.

The runtime image holds the interpreter, the extension modules the app imports and the shared
libraries those need: the DT_NEEDED closure. ``ldd`` cannot answer that for a foreign
architecture (it runs the loader), so the builder reads the dynamic section itself.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

ELF_MAGIC = b"\x7fELF"
PT_DYNAMIC = 2
PT_INTERP = 3
DT_NULL = 0
DT_NEEDED = 1
DT_STRTAB = 5
DT_RPATH = 15
DT_RUNPATH = 29

#: e_machine values for the architectures the image is built for.
MACHINES = {62: "amd64", 183: "arm64", 3: "386", 40: "arm"}


class ElfError(ValueError):
    """A file that should be ELF is not, or is truncated."""


@dataclass(frozen=True)
class ElfInfo:
    """What the loader needs to run one ELF file."""

    machine: str
    interpreter: str | None
    needed: tuple[str, ...]
    #: DT_RUNPATH and DT_RPATH entries (wheels set them to $ORIGIN/... for bundled libraries).
    runpath: tuple[str, ...]


def is_elf(path: Path) -> bool:
    """True when ``path`` is a regular file starting with the ELF magic."""
    if not path.is_file() or path.is_symlink():
        return False
    with path.open("rb") as handle:
        return handle.read(4) == ELF_MAGIC


def read_elf(path: Path) -> ElfInfo:
    """Parse the program headers and dynamic section of the ELF file at ``path``."""
    data = path.read_bytes()
    if len(data) < 6 or data[:4] != ELF_MAGIC:
        raise ElfError(f"{path} is not an ELF file")
    try:
        return _parse(data)
    except (struct.error, ValueError, IndexError) as exc:
        raise ElfError(f"{path} is a truncated or malformed ELF file: {exc}") from None


def _parse(data: bytes) -> ElfInfo:
    is64 = data[4] == 2
    endian = "<" if data[5] == 1 else ">"
    (machine,) = struct.unpack_from(endian + "H", data, 18)
    if is64:
        phoff = _unpack(data, endian + "Q", 32)
        phentsize, phnum = struct.unpack_from(endian + "HH", data, 54)
    else:
        phoff = _unpack(data, endian + "I", 28)
        phentsize, phnum = struct.unpack_from(endian + "HH", data, 42)
    segments = [_program_header(data, endian, is64, phoff + i * phentsize) for i in range(phnum)]

    interpreter = None
    dynamic: list[tuple[int, int]] = []
    for p_type, p_offset, _vaddr, p_filesz in segments:
        if p_type == PT_INTERP:
            interpreter = data[p_offset : p_offset + p_filesz].rstrip(b"\0").decode()
        elif p_type == PT_DYNAMIC:
            dynamic = _dynamic_entries(data, endian, is64, p_offset, p_filesz)
    strtab_vaddr = next((value for tag, value in dynamic if tag == DT_STRTAB), None)
    needed: list[str] = []
    runpath: list[str] = []
    if strtab_vaddr is not None:
        strtab = _vaddr_to_offset(segments, strtab_vaddr)
        for tag, value in dynamic:
            if tag == DT_NEEDED:
                needed.append(_cstring(data, strtab + value))
            elif tag in {DT_RPATH, DT_RUNPATH}:
                runpath.extend(_cstring(data, strtab + value).split(":"))
    return ElfInfo(
        machine=MACHINES.get(machine, f"e_machine={machine}"),
        interpreter=interpreter,
        needed=tuple(needed),
        runpath=tuple(runpath),
    )


def _unpack(data: bytes, fmt: str, offset: int) -> int:
    (value,) = struct.unpack_from(fmt, data, offset)
    return int(value)


def _program_header(data: bytes, endian: str, is64: bool, offset: int) -> tuple[int, int, int, int]:
    if is64:
        p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from(
            endian + "IIQQQQ", data, offset
        )
    else:
        p_type, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from(
            endian + "IIIII", data, offset
        )
    return p_type, p_offset, p_vaddr, p_filesz


def _dynamic_entries(
    data: bytes, endian: str, is64: bool, offset: int, size: int
) -> list[tuple[int, int]]:
    fmt = endian + ("qQ" if is64 else "iI")
    step = struct.calcsize(fmt)
    entries = []
    for position in range(offset, offset + size - step + 1, step):
        tag, value = struct.unpack_from(fmt, data, position)
        if tag == DT_NULL:
            break
        entries.append((tag, value))
    return entries


def _vaddr_to_offset(segments: list[tuple[int, int, int, int]], vaddr: int) -> int:
    pt_load = 1
    for p_type, p_offset, p_vaddr, p_filesz in segments:
        if p_type == pt_load and p_vaddr <= vaddr < p_vaddr + p_filesz:
            return vaddr - p_vaddr + p_offset
    return vaddr


def _cstring(data: bytes, offset: int) -> str:
    end = data.index(b"\0", offset)
    return data[offset:end].decode()
