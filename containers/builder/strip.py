"""Strip symbol tables and debug information from ELF files, reproducibly, for any architecture.

Wheels often ship their extension modules unstripped: uvloop's ``loop`` extension is 16 MB as
its wheel has it and 1.8 MB without its symbol table and DWARF sections, which nothing reads
at run time (the loader needs only what the program headers map: ``.dynsym``, ``.dynstr`` and
the code and data). Debian's packages arrive already stripped.

``strip`` from binutils does this for the build's own architecture only; this module does it
for amd64 and arm64 alike, and the same input always gives the same bytes. It removes the
symbol table (``SHT_SYMTAB``) with its string table, every ``.debug*``/``.zdebug*`` section and
the relocations that apply to them, none of which any segment maps. What the loader maps is
left byte for byte where it was: the output is the input up to the end of the last segment,
followed by the non-allocated sections that stay (``.comment``, notes, the section-name table)
and a new section header table.

A file whose layout this cannot handle without moving mapped bytes (a removed section listed
before a mapped one, data past the segments that spans their end) is left as it is, and
:func:`strip_file` says so.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from pathlib import Path

from builder.elf import ELF_MAGIC, ElfError

SHT_NULL = 0
SHT_SYMTAB = 2
SHT_STRTAB = 3
SHT_RELA = 4
SHT_NOBITS = 8
SHT_REL = 9
SHF_ALLOC = 0x2
SHF_INFO_LINK = 0x40
#: Section indices from here up are special values (SHN_LORESERVE), not indices.
SHN_LORESERVE = 0xFF00
DEBUG_PREFIXES = (".debug", ".zdebug")


class LayoutError(ElfError):
    """The file's layout would need mapped bytes moved to strip it; it is left as it is."""


@dataclass(frozen=True)
class _Section:
    name_offset: int
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int
    addralign: int
    entsize: int
    name: str = ""

    @property
    def allocated(self) -> bool:
        return bool(self.flags & SHF_ALLOC)

    @property
    def file_size(self) -> int:
        return 0 if self.type == SHT_NOBITS else self.size

    @property
    def links_by_info(self) -> bool:
        """True when ``info`` holds a section index (relocations, SHF_INFO_LINK)."""
        return self.type in (SHT_REL, SHT_RELA) or bool(self.flags & SHF_INFO_LINK)

    def fields(self) -> tuple[int, ...]:
        return (
            self.name_offset,
            self.type,
            self.flags,
            self.addr,
            self.offset,
            self.size,
            self.link,
            self.info,
            self.addralign,
            self.entsize,
        )


@dataclass(frozen=True)
class _Format:
    endian: str
    is64: bool

    @property
    def header(self) -> str:
        """e_type .. e_shstrndx, after the 16 bytes of e_ident."""
        return self.endian + ("HHIQQQIHHHHHH" if self.is64 else "HHIIIIIHHHHHH")

    @property
    def section(self) -> str:
        return self.endian + ("IIQQQQIIQQ" if self.is64 else "IIIIIIIIII")

    @property
    def program(self) -> str:
        """p_type, p_offset, p_filesz: where each sits in a program header differs."""
        return self.endian + ("I4xQ16xQ" if self.is64 else "II8xI")


def strip_bytes(data: bytes) -> bytes:
    """``data`` without symbol tables and debug sections; ``data`` itself when it has none.

    Raises :class:`ElfError` for a file that is not ELF, and :class:`LayoutError` for one
    whose layout cannot be stripped without moving what the loader maps.
    """
    if len(data) < 52 or data[:4] != ELF_MAGIC or data[4] not in (1, 2) or data[5] not in (1, 2):
        raise ElfError("not an ELF file")
    fmt = _Format(endian="<" if data[5] == 1 else ">", is64=data[4] == 2)
    try:
        return _strip(data, fmt)
    except (struct.error, IndexError, ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, ElfError):
            raise
        raise ElfError(f"truncated or malformed ELF file: {exc}") from None


def strip_file(path: Path) -> int:
    """Strip ``path`` in place (its mode is kept); the number of bytes it lost."""
    data = path.read_bytes()
    try:
        stripped = strip_bytes(data)
    except ElfError as exc:
        raise type(exc)(f"{path}: {exc}") from None
    if stripped is not data:
        path.write_bytes(stripped)
    return len(data) - len(stripped)


def _strip(data: bytes, fmt: _Format) -> bytes:
    header = list(struct.unpack_from(fmt.header, data, 16))
    phoff, shoff = header[4], header[5]
    phentsize, phnum, shentsize, shnum, shstrndx = header[8:13]
    if shoff == 0 or shnum == 0 or shstrndx >= SHN_LORESERVE:
        return data  # no section table, or one too large for the header fields: nothing to do
    sections: list[_Section] = []
    for index in range(shnum):
        section = _Section(*struct.unpack_from(fmt.section, data, shoff + index * shentsize))
        sections.append(section)
    names_at = sections[shstrndx].offset
    sections = [replace(s, name=_cstring(data, names_at + s.name_offset)) for s in sections]
    dropped = _droppable(sections, shstrndx)
    if not dropped:
        return data
    last_mapped = max((i for i, s in enumerate(sections) if s.allocated), default=0)
    if min(dropped) <= last_mapped:
        raise LayoutError("a section to remove is listed before a mapped one")

    content_end = max(
        _segments_end(data, fmt, phoff, phentsize, phnum), 16 + struct.calcsize(fmt.header)
    )
    if shoff < content_end:
        raise LayoutError("the section header table sits inside the mapped segments")
    new_index: dict[int, int] = {}
    kept: list[_Section] = []
    for index, section in enumerate(sections):
        if index not in dropped:
            new_index[index] = len(kept)
            kept.append(section)

    out = bytearray(data[:content_end])
    placed: list[_Section] = []
    for section in kept:
        end = section.offset + section.file_size
        if section.file_size == 0 or end <= content_end:
            placed.append(section)
            continue
        if section.offset < content_end:
            raise LayoutError(f"section {section.name} spans the end of the mapped segments")
        _pad(out, max(section.addralign, 1))
        placed.append(replace(section, offset=len(out)))
        out += data[section.offset : end]

    _pad(out, 8 if fmt.is64 else 4)
    new_shoff = len(out)
    for section in placed:
        remapped = replace(
            section,
            link=_remap(section.link, new_index),
            info=_remap(section.info, new_index) if section.links_by_info else section.info,
        )
        out += struct.pack(fmt.section, *remapped.fields())
    header[5] = new_shoff
    header[11] = len(placed)
    header[12] = new_index[shstrndx]
    struct.pack_into(fmt.header, out, 16, *header)
    return bytes(out)


def _droppable(sections: list[_Section], shstrndx: int) -> set[int]:
    """Indices of the sections nothing at run time reads: symbols, debug info, their relocs."""
    dropped = set()
    for index, section in enumerate(sections):
        if section.allocated or index == 0:
            continue
        if section.type == SHT_SYMTAB or section.name.startswith(DEBUG_PREFIXES):
            dropped.add(index)
    for index in sorted(dropped):
        link = sections[index].link
        if (
            sections[index].type == SHT_SYMTAB
            and 0 < link < len(sections)
            and link != shstrndx
            and sections[link].type == SHT_STRTAB
            and not sections[link].allocated
        ):
            dropped.add(link)
    for index, section in enumerate(sections):
        relocation = section.type in (SHT_REL, SHT_RELA) and not section.allocated
        if relocation and (section.link in dropped or section.info in dropped):
            dropped.add(index)
    # A kept section that links to a removed one would be left pointing nowhere.
    for index, section in enumerate(sections):
        if index not in dropped and section.type != SHT_NULL and section.link in dropped:
            raise LayoutError(f"section {section.name} links to a section that would go")
    return dropped


def _segments_end(data: bytes, fmt: _Format, phoff: int, phentsize: int, phnum: int) -> int:
    """The end of the furthest byte any segment, or the program header table, takes."""
    end = phoff + phentsize * phnum
    for index in range(phnum):
        _type, offset, filesz = struct.unpack_from(fmt.program, data, phoff + index * phentsize)
        end = max(end, offset + filesz)
    if end > len(data):
        raise ElfError("a segment reaches past the end of the file")
    return end


def _remap(index: int, new_index: dict[int, int]) -> int:
    if index == 0 or index >= SHN_LORESERVE:
        return index
    return new_index[index]


def _pad(buffer: bytearray, alignment: int) -> None:
    buffer.extend(b"\0" * (-len(buffer) % alignment))


def _cstring(data: bytes, offset: int) -> str:
    end = data.index(b"\0", offset)
    return data[offset:end].decode("ascii")
