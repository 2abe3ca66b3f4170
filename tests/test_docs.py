"""The docs point at real things: every command, task, option, session, module, path and test.

A reader copies commands out of README.md, MILESTONES.md and docs/ (fenced ``sh`` blocks, and
inline code such as ``doit deploy mode=tunnel``) and follows the paths and tests they cite.
Each reference is checked against the code as it is today:

* ``doit TASK key=value``: the task is one ``doit list`` shows, the variable one dodo.py reads
  (a ``*_VARS`` tuple, declared once by the options class it belongs to, or a ``get_var``
  call; ``scripts/core/options.py`` sees only what dodo.py passes on); a bare ``key=value`` span
  and the first word of a table's ``task`` column count;
* ``nox -s SESSION``, and a table's ``session`` column: a session ``nox --list`` shows;
* ``python -m MODULE``: importable from the repository root;
* a path in backticks or in a command whose first part is in the repository (``app/``,
  ``containers/`` ...; not ``build/`` or ``secrets/``, which running things creates), and a
  relative link: it exists (a glob matches something);
* ``tests/...py::name``, or a ``test_...`` name on a line citing ``tests/...py``: defined there;
* a ``doit security`` check id (``IMG-``, ``CTR-``, ``NET-``, ``HDR-``, ``WAF-``, ``ATK-``): one
  the security step reports;
* the security checklist's header table: the headers and values the service sends.

Heredoc bodies and ``text``/``yaml`` blocks are data, not commands. A broken reference fails
with the doc, the line and what it says, e.g.
``README.md:12: `.venv/bin/doit deplyo`: no doit task 'deplyo' (doit list: base_image, ...)``.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from scripts.bench import figures
from scripts.core import paths
from tests.docs_reader import (
    CODE_SPAN,
    Reference,
    Snippet,
    prose_lines,
    references,
    snippets,
    table_cells,
    words,
)

ROOT = paths.ROOT
DOCS = sorted(
    str(path.relative_to(ROOT))
    for path in [ROOT / "README.md", ROOT / "MILESTONES.md", *(ROOT / "docs").rglob("*.md")]
)
#: Top-level entries that running things creates: absent from a fresh clone, so not checked.
GENERATED = frozenset(
    {"build", "secrets", ".venv", ".nox", ".git", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
)
PYTHON_SUFFIX = re.compile(r"-\d+(?:\.\d+)*$")
LINK = re.compile(r"\]\(([^)\s]+)\)")
SCHEME = re.compile(r"[a-z][a-z0-9+.-]*:")
TEST_FILE = re.compile(r"tests/[\w/.*-]+\.py")
TEST_NODE = re.compile(r"(tests/[\w/.-]+\.py)::((?:\w+::)*)(\w+)(?:\[.*\])?")
TEST_NAME = re.compile(r"test_\w+")
CHECK_ID = re.compile(r"(?:IMG|CTR|NET|HDR|WAF|ATK)-[^\s\[]+(?:\[.*\])?")
LITERAL_ID = re.compile(r"\bid=\"([A-Z]+-[A-Z0-9-]+)\"")
#: The security step's package: every module in it may define check ids.
SECURITY_PACKAGE = "security"


# ---- what is real ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Project:
    """What the docs may name: tasks, variables, sessions and security check ids."""

    tasks: frozenset[str]
    variables: frozenset[str]
    sessions: frozenset[str]
    check_ids: frozenset[str]


def _run(*arguments: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", *arguments],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{' '.join(arguments)} failed: {result.stderr[-2000:]}"
    return result.stdout


def doit_tasks(db_file: Path) -> frozenset[str]:
    """The tasks ``doit list`` shows (its state in ``db_file``, not the checkout's .doit.db)."""
    listing = _run("doit", "list", "--db-file", str(db_file))
    return frozenset(line.split()[0] for line in listing.splitlines() if line.strip())


def doit_variables() -> frozenset[str]:
    """The command-line variables dodo.py hands its tasks: its ``*_VARS`` (each the tuple an
    options class declares, imported from where it is declared) and its ``get_var`` calls."""
    spec = importlib.util.spec_from_file_location("dodo_under_test", ROOT / "dodo.py")
    assert spec is not None
    assert spec.loader is not None
    dodo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dodo)
    declared = {
        name
        for attribute, value in vars(dodo).items()
        if attribute.endswith("_VARS")
        for name in value
    }
    called = [
        node.args[0]
        for node in ast.walk(ast.parse((ROOT / "dodo.py").read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "get_var"
        and node.args
    ]
    return frozenset(
        declared
        | {
            name.value
            for name in called
            if isinstance(name, ast.Constant) and isinstance(name.value, str)
        }
    )


def nox_sessions() -> frozenset[str]:
    """The sessions ``nox --list`` shows (``*`` selected, ``-`` not run by default), by full
    name (``tests-3.11``) and by name (``tests``)."""
    listed = re.findall(r"^[*-] (\S+) ->", _run("nox", "--list"), re.MULTILINE)
    return frozenset(listed) | {PYTHON_SUFFIX.sub("", name) for name in listed}


def security_check_ids() -> frozenset[str]:
    """The ids ``doit security`` reports, without their ``[container]`` or ``[request]`` part."""
    from scripts.security import container_audit, headers
    from scripts.security import run as security
    from scripts.security.cases import cases
    from tunnel.spec import load_spec

    ids = set()
    for module in sorted((paths.SCRIPTS / SECURITY_PACKAGE).glob("*.py")):
        ids |= set(LITERAL_ID.findall(module.read_text()))
    ids |= {c.id for c in container_audit.container_checks({}, container_audit.ExpectedPorts())}
    ids |= {f"ATK-{case.id}" for case in cases("example.test")}
    report = security.SecurityReport(target="", image="", platform="", started="")
    ids |= {c.id for c in security.waf_section(report, load_spec(security.TUNNEL_SPEC))}
    grade = headers.Grade(letter="A", score=100)
    ids.add(headers.grade_check("request", grade, "A").id)
    return frozenset(check_id.split("[")[0] for check_id in ids)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return Project(
        tasks=doit_tasks(tmp_path_factory.mktemp("doit") / "doit.db"),
        variables=doit_variables(),
        sessions=nox_sessions(),
        check_ids=security_check_ids(),
    )


@functools.cache
def _source(path: Path) -> str:
    return path.read_text()


def importable(module: str) -> bool:
    """True when ``python -m module`` can find it from the repository root."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def defines(path: Path, name: str) -> bool:
    """True when the Python file at ``path`` defines the function or class ``name``."""
    pattern = rf"^\s*(?:async\s+def|def|class)\s+{re.escape(name)}\b"
    return path.is_file() and re.search(pattern, _source(path), re.MULTILINE) is not None


# ---- the checks ------------------------------------------------------------------------------


def _parsed(snippet: Snippet) -> tuple[list[Reference], str | None]:
    try:
        return references(snippet), None
    except ValueError as exc:
        return [], f"{snippet.where()}: cannot be read as a shell command ({exc})"


def command_problems(doc: str, text: str, project: Project, kinds: set[str]) -> list[str]:
    """Tasks, variables, sessions and modules of ``kinds`` that do not exist."""
    problems = []
    for snippet in snippets(doc, text):
        found, unreadable = _parsed(snippet)
        if unreadable is not None:
            problems.append(unreadable)
        for reference in found:
            if reference.kind not in kinds:
                continue
            problem = _missing(reference, project)
            if problem:
                problems.append(f"{snippet.where()}: {problem}")
    return problems


def _missing(reference: Reference, project: Project) -> str | None:
    name = reference.name
    if reference.kind == "task" and name not in project.tasks:
        return f"no doit task {name!r} (doit list: {', '.join(sorted(project.tasks))})"
    if reference.kind == "variable" and name not in project.variables:
        return f"no doit variable {name!r} is read by dodo.py"
    if reference.kind == "session" and name not in project.sessions:
        return f"no nox session {name!r} (nox --list: {', '.join(sorted(project.sessions))})"
    if reference.kind == "module" and not importable(name):
        return f"python -m {name}: no module {name!r} from the repository root"
    return None


def path_words(snippet: Snippet) -> list[str]:
    """The words of a snippet that may be paths."""
    if snippet.kind == "inline":
        return snippet.text.split()
    try:
        return [word for tokens in words(snippet.text) for word in tokens]
    except ValueError:
        return []


def repo_path(word: str, doc: str) -> Path | None:
    """The repository path ``word`` names, or None when it is no path of the repository."""
    word = word.strip("()[]{},;\"'").rstrip(".:").split("::")[0]
    if "/" not in word or "://" in word or "=" in word or "..." in word:
        return None
    if re.search(r"[<>$~]", word):
        return None
    if word.startswith("/") or word.startswith("-"):
        return None
    path = (ROOT / doc).parent / word if word.startswith(("./", "../")) else ROOT / word
    try:
        relative = Path(os.path.normpath(path)).relative_to(ROOT)
    except ValueError:
        return None
    top = relative.parts[0] if relative.parts else ""
    if not top or top in GENERATED or not (ROOT / top).exists():
        return None
    return ROOT / relative


def exists(path: Path, written: str) -> bool:
    """True when ``path`` exists: a directory if written with a trailing ``/``, any match of a
    glob, or ``scripts/build/image.run_until_healthy`` for a name that ``scripts/build/image.py``
    defines."""
    relative = path.relative_to(ROOT).as_posix()
    if any(char in relative for char in "*?["):
        return any(ROOT.glob(relative))
    if written.rstrip(".:,;)").endswith("/"):
        return path.is_dir()
    module, _, name = path.name.partition(".")
    if path.exists() or not name.isidentifier():
        return path.exists()
    return defines(path.with_name(f"{module}.py"), name)


def path_problems(doc: str, text: str) -> list[str]:
    """Repository paths and relative links that do not exist."""
    problems = []
    for snippet in snippets(doc, text):
        for word in path_words(snippet):
            path = repo_path(word, doc)
            if path is not None and not exists(path, word):
                problems.append(f"{snippet.where()}: {path.relative_to(ROOT)} does not exist")
    for number, line in enumerate(prose_lines(text), start=1):
        for link in LINK.findall(line):
            target = link.split("#", 1)[0]
            if not target or SCHEME.match(target):
                continue
            if not ((ROOT / doc).parent / target).exists():
                problems.append(f"{doc}:{number}: link ({link}) points at nothing")
    return problems


def cited_test_problems(doc: str, text: str) -> list[str]:
    """``tests/...py::name`` and ``test_...`` names that no cited test file defines."""
    problems = []
    for snippet in snippets(doc, text):
        if snippet.kind != "inline":
            continue
        if node := TEST_NODE.fullmatch(snippet.text):
            path, name = ROOT / node.group(1), node.group(3)
            if not path.is_file():
                problems.append(f"{snippet.where()}: {node.group(1)} does not exist")
            elif not defines(path, name):
                problems.append(f"{snippet.where()}: {node.group(1)} defines no {name}")
        elif TEST_NAME.fullmatch(snippet.text):
            cited = sorted({p for f in TEST_FILE.findall(snippet.context) for p in ROOT.glob(f)})
            files = cited or sorted(paths.TESTS.rglob("test_*.py"))
            if not any(defines(path, snippet.text) for path in files):
                where = ", ".join(str(p.relative_to(ROOT)) for p in cited) or "tests/"
                problems.append(f"{snippet.where()}: no test {snippet.text} in {where}")
    return problems


def check_id_problems(doc: str, text: str, project: Project) -> list[str]:
    """``doit security`` check ids the security step never reports."""
    problems = []
    for snippet in snippets(doc, text):
        if snippet.kind != "inline" or not CHECK_ID.fullmatch(snippet.text):
            continue
        pattern = re.sub(r"<[^>]+>", "*", snippet.text.split("[")[0])
        if not fnmatch.filter(project.check_ids, pattern):
            problems.append(f"{snippet.where()}: doit security reports no check {pattern}")
    return problems


# ---- the docs as they are --------------------------------------------------------------------


def _doc(doc: str) -> str:
    return _source(ROOT / doc)


def _report(problems: list[str]) -> str:
    return f"{len(problems)} broken reference(s):\n" + "\n".join(problems)


@pytest.mark.parametrize("doc", DOCS)
def test_every_doit_task_and_variable_exists(doc: str, project: Project) -> None:
    problems = command_problems(doc, _doc(doc), project, {"task", "variable"})
    assert problems == [], _report(problems)


@pytest.mark.parametrize("doc", DOCS)
def test_every_nox_session_exists(doc: str, project: Project) -> None:
    problems = command_problems(doc, _doc(doc), project, {"session"})
    assert problems == [], _report(problems)


@pytest.mark.parametrize("doc", DOCS)
def test_every_python_module_is_importable(doc: str, project: Project) -> None:
    problems = command_problems(doc, _doc(doc), project, {"module"})
    assert problems == [], _report(problems)


@pytest.mark.parametrize("doc", DOCS)
def test_every_repository_path_and_link_exists(doc: str) -> None:
    problems = path_problems(doc, _doc(doc))
    assert problems == [], _report(problems)


@pytest.mark.parametrize("doc", DOCS)
def test_every_cited_test_exists(doc: str) -> None:
    problems = cited_test_problems(doc, _doc(doc))
    assert problems == [], _report(problems)


@pytest.mark.parametrize("doc", DOCS)
def test_every_security_check_id_is_one_doit_security_reports(doc: str, project: Project) -> None:
    problems = check_id_problems(doc, _doc(doc), project)
    assert problems == [], _report(problems)


def documented_headers(text: str) -> dict[str, str]:
    """The ``| Header-Name | `value` ... |`` rows of a doc, by lower-case header name."""
    shown = {}
    for line in prose_lines(text):
        cells = table_cells(line) if line.lstrip().startswith("|") else []
        if len(cells) != 2 or not re.fullmatch(r"[A-Z][A-Za-z]*(?:-[A-Z][A-Za-z]*)+", cells[0]):
            continue
        if value := CODE_SPAN.search(cells[1]):
            shown[cells[0].lower()] = value.group(2)
    return shown


def test_the_security_checklist_shows_the_headers_the_service_sends() -> None:
    from app.config import Settings
    from app.headers import security_headers

    sent = {name.decode(): value.decode() for name, value in security_headers(Settings())}
    shown = documented_headers(_doc("docs/security.md"))
    assert sorted(shown) == sorted(sent), "docs/security.md's header table lists other headers"
    for name, value in shown.items():
        if value.endswith(", ..."):  # the start of a long value
            assert sent[name].startswith(value.removesuffix("...")), (name, sent[name])
        else:
            assert sent[name] == value, f"docs/security.md shows {name}: {value}, not {sent[name]}"


def test_the_readme_measured_table_is_the_one_the_reports_made() -> None:
    # python -m scripts.bench.figures writes both from the benchmark reports; a figure typed
    # into the README by hand, or a table left behind by a rerun, shows up here.
    rows = figures.read_rows()
    assert rows, "docs/measured.json has no rows: run the benchmarks, then scripts.bench.figures"
    assert figures.readme_table(_doc("README.md")) == figures.table(rows), (
        "README.md's measured table is not docs/measured.json's: run python -m "
        "scripts.bench.figures (it rewrites the table from the reports)"
    )


def test_every_figure_a_doc_quotes_is_the_measured_one() -> None:
    # An ADR that quotes a measured figure marks it; python -m scripts.bench.figures rewrites
    # the marks with the table, so a figure kept by hand from an older run shows up here.
    rows = figures.read_rows()
    quoting = figures.quoting_docs()
    assert quoting, "no doc quotes a measured figure with a figure mark"
    for path in quoting:
        doc = str(path.relative_to(ROOT))
        text = path.read_text()
        assert figures.marks_into(text, rows, doc=doc) == text, (
            f"{doc} quotes a figure other than docs/measured.json's: run python -m "
            "scripts.bench.figures (it rewrites the marked figures)"
        )


# ---- the checker itself ----------------------------------------------------------------------

PLANTED = "docs/planted.md"


def test_the_readme_quick_start_is_read() -> None:
    found = {
        (snippet.line, reference.kind, reference.name)
        for snippet in snippets("README.md", _doc("README.md"))
        for reference in references(snippet)
    }
    quick_start = _doc("README.md").splitlines().index("```sh") + 2
    assert {
        (quick_start, "task", "deploy"),
        (quick_start, "variable", "allow_unaudited"),
        (quick_start + 1, "session", "tests"),
    } <= found


def test_the_readme_lists_every_doit_task_and_nox_session(project: Project) -> None:
    listed = {
        (snippet.column, snippet.text)
        for snippet in snippets("README.md", _doc("README.md"))
        if snippet.column in {"task", "session"}
    }
    tasks = {text for column, text in listed if column == "task"}
    sessions = {text for column, text in listed if column == "session"}
    names = {PYTHON_SUFFIX.sub("", name) for name in project.sessions}
    assert sorted(project.tasks - tasks) == [], "doit tasks missing from README's task table"
    assert sorted(names - sessions) == [], "nox sessions missing from README's session table"


def test_a_missing_task_or_variable_is_reported_with_doc_line_and_command(
    project: Project,
) -> None:
    text = "Deploy:\n\n```sh\n.venv/bin/doit deploy\n.venv/bin/doit deplyo colour=red\n```\n"
    problems = command_problems(PLANTED, text, project, {"task", "variable"})
    assert [problem.split(": no ")[0] for problem in problems] == [
        "docs/planted.md:5: `.venv/bin/doit deplyo colour=red`",
        "docs/planted.md:5: `.venv/bin/doit deplyo colour=red`",
    ]
    assert "no doit task 'deplyo' (doit list: base_image," in problems[0]
    assert problems[1].endswith("no doit variable 'colour' is read by dodo.py")


def test_missing_sessions_modules_paths_tests_and_check_ids_are_reported(
    project: Project,
) -> None:
    text = "\n".join(
        [
            "Run `nox -s tset` and `python -m scripts.nosuch`; see `containers/compose.yml`,",
            "`tests/app/test_routes.py::test_nothing_here` and [the ADR](adr/0099-none.md).",
            "",
            "| check | test |",
            "| --- | --- |",
            "| `IMG-NO-SUCH` | `test_gone` in `tests/app/test_routes.py` |",
        ]
    )
    problems = [
        *command_problems(PLANTED, text, project, {"session", "module"}),
        *path_problems(PLANTED, text),
        *cited_test_problems(PLANTED, text),
        *check_id_problems(PLANTED, text, project),
    ]
    assert [problem.split(": ", 2)[:2] for problem in problems] == [
        ["docs/planted.md:1", "`nox -s tset`"],
        ["docs/planted.md:1", "`python -m scripts.nosuch`"],
        ["docs/planted.md:1", "`containers/compose.yml`"],
        ["docs/planted.md:2", "link (adr/0099-none.md) points at nothing"],
        ["docs/planted.md:2", "`tests/app/test_routes.py::test_nothing_here`"],
        ["docs/planted.md:6", "`test_gone`"],
        ["docs/planted.md:6", "`IMG-NO-SUCH`"],
    ]


def test_data_placeholders_and_paths_outside_the_repository_are_not_references(
    project: Project,
) -> None:
    text = "\n".join(
        [
            "```sh",
            "cat > /tmp/x.yml <<'EOF'",
            "doit nosuchtask",
            "EOF",
            "IMAGE=$(.venv/bin/python -c 'print(1)') && doit -s TASK port=N  # doit nosuch",
            "```",
            "",
            "```text",
            "doit nosuchtask",
            "```",
            "",
            "`hypercorn/config.py`, `build/image.json`, `/usr/bin/python3`, `key=value`,",
            "`camera=()`, `tests/scripts/bench/test_*.py`, `WAF-<phase>.<rule>.<check>`, `ATK-*`.",
        ]
    )
    problems = [
        *command_problems(PLANTED, text, project, {"task", "variable", "session", "module"}),
        *path_problems(PLANTED, text),
        *cited_test_problems(PLANTED, text),
        *check_id_problems(PLANTED, text, project),
    ]
    assert problems == []
