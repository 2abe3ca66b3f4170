"""Reading the docs as a reader copies from them: commands, inline code, the things they name.

:mod:`tests.test_docs` checks what this finds against the project as it is: fenced ``sh``
blocks are split into commands (heredoc bodies and ``text``/``yaml`` blocks are data), inline
code spans are kept with the line and table column they sit in, and each command is read
into the ``doit`` tasks and variables, ``nox`` sessions and ``python -m`` modules it names.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

SHELL_LANGUAGES = frozenset({"sh", "bash", "shell", "console", "zsh"})
#: Words in front of a command that run it rather than being it.
WRAPPERS = frozenset({"sudo", "time", "env", "exec", "nohup", "command"})
DOIT_COMMANDS = frozenset(
    {"run", "list", "info", "clean", "forget", "ignore", "help", "auto", "dumpdb", "strace"}
    | {"reset-dep", "tabcompletion"}
)
DOIT_VALUE_OPTIONS = frozenset(
    {"-f", "--file", "-d", "--dir", "--db-file", "--backend", "--check_file_uptodate", "-v"}
    | {"--verbosity", "-r", "--reporter", "-o", "--output-file", "-n", "--process", "-P"}
    | {"--parallel-type", "--template", "--sort"}
)
NOX_SESSION_OPTIONS = frozenset({"-s", "-e", "--session", "--sessions"})
NOX_VALUE_OPTIONS = frozenset({"-f", "--noxfile", "-p", "--python", "-k", "-t", "--tags"})
#: The README's notation for "an option", not an option itself.
NOTATION = frozenset({"key=value"})

PYTHON = re.compile(r"python(?:3(?:\.\d+)?)?")
ASSIGNMENT = re.compile(r"[A-Za-z_]\w*=.*")
VARIABLE = re.compile(r"([a-z_][a-z0-9_]*)=(.*)")
#: A bare ``key=value`` span: a doit option as the docs write one (``mode=local|tunnel``).
BARE_VARIABLE = re.compile(r"[a-z_][a-z0-9_]*=[\w.,:|/*-]*")
PLACEHOLDER = re.compile(r"[A-Z][A-Z0-9_]*|<[^>]+>|\.\.\.|N")
COMMAND_WORD = re.compile(r"(?:^|[\s/])(?:doit|nox|python[\d.]*)(?:\s|$)")
CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
FENCE = re.compile(r"\s*(`{3,}|~{3,})\s*([\w+-]*)")
HEREDOC = re.compile(r"<<-?\s*(['\"]?)(\w+)\1")

# ---- what the docs say -----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Snippet:
    """A shell command from a fenced block, or an inline code span, where a doc shows it."""

    doc: str
    line: int
    text: str
    #: ``shell`` (a fenced block's command) or ``inline``.
    kind: str
    #: The line or paragraph around an inline span (to find the test files it cites).
    context: str = ""
    #: The header of the table column an inline span sits in, lower case.
    column: str = ""

    def where(self) -> str:
        """``README.md:12: `doit deploy```, the start of every problem reported."""
        return f"{self.doc}:{self.line}: `{self.text}`"


@dataclass(frozen=True, kw_only=True)
class Reference:
    """One thing a snippet names: a task, a variable, a session or a module."""

    kind: str
    name: str


def fenced_blocks(lines: list[str]) -> Iterator[tuple[int, int, str]]:
    """Each fenced block as (index of its opening fence, of its closing fence, language)."""
    index = 0
    while index < len(lines):
        opening = FENCE.fullmatch(lines[index])
        if opening is None:
            index += 1
            continue
        fence, language = opening.groups()
        end = index + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        yield index, end, language
        index = end + 1


def prose_lines(text: str) -> list[str]:
    """The lines of ``text`` with every fenced block blanked out (line numbers kept)."""
    lines = text.splitlines()
    for start, end, _ in fenced_blocks(lines):
        lines[start : end + 1] = [""] * len(lines[start : end + 1])
    return lines


def snippets(doc: str, text: str) -> list[Snippet]:
    """Every shell command of the fenced shell blocks and every inline code span of ``text``."""
    lines = text.splitlines()
    found = [
        Snippet(doc=doc, line=line, text=command, kind="shell")
        for start, end, language in fenced_blocks(lines)
        if language in SHELL_LANGUAGES
        for line, command in shell_commands(lines[start + 1 : end], start + 2)
    ]
    return found + inline_spans(doc, prose_lines(text))


def shell_commands(body: list[str], first_line: int) -> Iterator[tuple[int, str]]:
    """The logical command lines of a shell block: continuations joined, heredocs skipped."""
    index = 0
    while index < len(body):
        number = first_line + index
        command = body[index].removeprefix("$ ")
        while command.endswith("\\") and index + 1 < len(body):
            index += 1
            command = command[:-1] + " " + body[index].strip()
        index += 1
        heredoc = HEREDOC.search(command)
        if heredoc is not None:
            command = command[: heredoc.start()] + command[heredoc.end() :]
            while index < len(body) and body[index].strip() != heredoc.group(2):
                index += 1
            index += 1
        if command.strip() and not command.lstrip().startswith("#"):
            yield number, command.strip()


def inline_spans(doc: str, lines: list[str]) -> list[Snippet]:
    """The code spans of each paragraph (a span may wrap onto the next line)."""
    found = []
    start = 0
    while start < len(lines):
        if not lines[start].strip():
            start += 1
            continue
        end = start
        while end < len(lines) and lines[end].strip():
            end += 1
        paragraph = "\n".join(lines[start:end])
        for match in CODE_SPAN.finditer(paragraph):
            offset = paragraph.count("\n", 0, match.start())
            line = lines[start + offset]
            span = match.group(2).replace("\n", " ").strip()
            in_table = line.lstrip().startswith("|")
            column = ""
            if in_table:
                span = span.replace("\\|", "|")
                line_start = paragraph.rfind("\n", 0, match.start()) + 1
                column = table_column(lines[start:end], offset, match.start() - line_start)
            found.append(
                Snippet(
                    doc=doc,
                    line=start + offset + 1,
                    text=span,
                    kind="inline",
                    context=line if in_table else paragraph,
                    column=column,
                )
            )
        start = end
    return found


def table_cells(row: str) -> list[str]:
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", row.strip().strip("|"))]


def table_column(rows: list[str], row: int, position: int) -> str:
    """The header (lower case) of the column at ``position`` of table row ``row``."""
    separator = next(
        (i for i, text in enumerate(rows) if re.fullmatch(r"\s*\|?[\s:|-]+\|?\s*", text)), None
    )
    if separator is None or separator == 0 or row <= separator:
        return ""
    before = rows[row][:position]
    cell = len(re.findall(r"(?<!\\)\|", before)) - (1 if rows[row].lstrip().startswith("|") else 0)
    headers = table_cells(rows[separator - 1])
    return headers[cell].lower() if 0 <= cell < len(headers) else ""


# ---- what a command names --------------------------------------------------------------------


def words(command: str) -> list[list[str]]:
    """A command line's simple commands, each as its words (``&&``, ``|``, ``;`` split them)."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    segments: list[list[str]] = [[]]
    for token in lexer:
        if token and all(char in "();<>|&" for char in token):
            segments.append([])
        else:
            segments[-1].append(token)
    return [segment for segment in segments if segment]


def command_references(tokens: list[str]) -> list[Reference]:
    """What one simple command names, if it runs doit, nox or ``python -m``."""
    start = 0
    while start < len(tokens) and _runs_the_next_word(tokens[start]):
        start += 1
    if start == len(tokens):
        return []
    program = PurePosixPath(tokens[start]).name
    arguments = tokens[start + 1 :]
    if program == "doit":
        return doit_references(arguments)
    if program == "nox":
        return nox_references(arguments)
    if PYTHON.fullmatch(program):
        return python_references(arguments)
    return []


def _runs_the_next_word(token: str) -> bool:
    return ASSIGNMENT.fullmatch(token) is not None or token in WRAPPERS


def python_references(arguments: list[str]) -> list[Reference]:
    """``python -m MODULE ARGS``: the module, and what ``-m doit``/``-m nox`` name."""
    for index, argument in enumerate(arguments):
        if argument == "-m" and index + 1 < len(arguments):
            module, rest = arguments[index + 1], arguments[index + 2 :]
        elif argument.startswith("-m") and len(argument) > 2:
            module, rest = argument[2:], arguments[index + 1 :]
        elif argument.startswith("-") and argument not in {"-", "-c"}:
            continue
        else:
            return []  # a script, -c code or - (stdin): nothing to look up
        found = [Reference(kind="module", name=module)]
        if module == "doit":
            found += doit_references(rest)
        elif module == "nox":
            found += nox_references(rest)
        return found
    return []


def doit_references(arguments: list[str]) -> list[Reference]:
    """The tasks and variables of ``doit [command] [options] [task ...] [key=value ...]``."""
    found = []
    command = None
    skip = False
    for argument in arguments:
        if skip:
            skip = False
        elif argument.startswith("-"):
            skip = argument in DOIT_VALUE_OPTIONS
        elif variable := VARIABLE.fullmatch(argument):
            found.append(Reference(kind="variable", name=variable.group(1)))
        elif command is None and argument in DOIT_COMMANDS:
            command = argument
            if command == "help":
                break
        elif not PLACEHOLDER.fullmatch(argument):
            found.append(Reference(kind="task", name=argument.split(":")[0]))
    return found


def nox_references(arguments: list[str]) -> list[Reference]:
    """The sessions of ``nox -s a b ...`` (everything after ``--`` is the session's)."""
    found = []
    sessions = skip = False
    for argument in arguments:
        if argument == "--":
            break
        if skip:
            skip = False
        elif argument in NOX_SESSION_OPTIONS:
            sessions = True
        elif argument.startswith("-"):
            sessions = False
            skip = argument in NOX_VALUE_OPTIONS
        elif sessions:
            found.append(Reference(kind="session", name=argument))
    return found


def references(snippet: Snippet) -> list[Reference]:
    """The tasks, variables, sessions and modules a snippet names."""
    text = snippet.text
    if snippet.kind == "inline":
        tokens = text.split()
        if text in NOTATION:
            return []
        if tokens and all(BARE_VARIABLE.fullmatch(token) for token in tokens):
            return [Reference(kind="variable", name=t.split("=")[0]) for t in tokens]
        if snippet.column == "session" and re.fullmatch(r"[\w-]+", text):
            return [Reference(kind="session", name=text)]
        if snippet.column == "task" and tokens and not COMMAND_WORD.search(text):
            return doit_references(tokens)
        if not COMMAND_WORD.search(text):
            return []
    return [found for tokens in words(text) for found in command_references(tokens)]
