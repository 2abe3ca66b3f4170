"""The builder stage's entry point: ``python3 -m builder stage|assemble``.

``stage``     download and unpack the interpreter's Debian packages for the target arch;
``assemble``  trace the app, analyse its imports, decide whether OpenSSL ships, write the
              three runtime layers under ``--out`` (base/, deps/, app/), strip every ELF
              file in them and smoke-test them as one root.

Progress goes to stderr as ``builder: ...`` lines, and a failure as one ``builder: error: ...``
line, which ``doit image`` finds in Docker's output and shows first.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import ssl
import sys
import sysconfig
import tempfile
from pathlib import Path

from builder import debs, modules, nossl, project, rootfs, smoke, tls

logger = logging.getLogger("builder")


class _Formatter(logging.Formatter):
    """``builder: message``, and ``builder: error: message`` for errors."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = "builder: error: " if record.levelno >= logging.ERROR else "builder: "
        return prefix + record.getMessage()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python3 -m builder")
    commands = parser.add_subparsers(dest="command", required=True)
    stage = commands.add_parser("stage", help="unpack the interpreter packages for --arch")
    stage.add_argument("--arch", required=True)
    stage.add_argument("--dest", type=Path, required=True)
    assemble = commands.add_parser("assemble", help="write the runtime layers")
    assemble.add_argument("--arch", required=True)
    assemble.add_argument("--stage", type=Path, required=True)
    assemble.add_argument("--app", type=Path, required=True, help="the app package directory")
    assemble.add_argument("--site", type=Path, required=True, help="target-arch dependencies")
    assemble.add_argument("--native-site", type=Path, required=True, help="builder-arch deps")
    assemble.add_argument("--out", type=Path, required=True)
    assemble.add_argument("--epoch", type=int, required=True, help="SOURCE_DATE_EPOCH")
    assemble.add_argument(
        "--project", type=Path, default=None, help="pyproject.toml ([tool.zeroport.image])"
    )
    assemble.add_argument(
        "--skip-foreign-smoke",
        action="store_true",
        help="do not run the smoke test when the target arch cannot execute here",
    )
    return parser


def _app_modules(app_dir: Path) -> list[str]:
    """Every module of the app package, as dotted names."""
    names = []
    for path in sorted(app_dir.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = ["app", *path.relative_to(app_dir).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


def assemble(args: argparse.Namespace) -> None:
    """Trace, analyse, assemble and smoke-test the runtime."""
    settings = project.ImageSettings.load(args.project)
    access = (args.native_site / "jwt").is_dir()
    traced = _traced_run(args, access=access)
    chosen, standins = _choose_modules(args, settings, traced)
    layers = _write_layers(args, chosen, standins, docstrings=settings.docstrings == "keep")
    merged = args.out / "merged"
    if merged.exists():
        shutil.rmtree(merged)
    for layer in layers.values():
        shutil.copytree(layer.root, merged, symlinks=True, dirs_exist_ok=True)
    try:
        if args.arch != debs.native_arch() and args.skip_foreign_smoke:
            logger.warning("smoke test of the %s runtime skipped: no emulator here", args.arch)
            return
        runtime_env = smoke.base_env(PYTHONPATH=rootfs.PYTHONPATH)
        passed = smoke.run(smoke.chroot_launcher(str(merged)), runtime_env, access=access)
        logger.info("runtime smoke test passed: %s", ", ".join(passed))
    finally:
        shutil.rmtree(merged)


def _traced_run(args: argparse.Namespace, *, access: bool) -> set[str]:
    """Smoke-test the app with the builder's own interpreter; the modules it imported."""
    builder_dir = Path(__file__).resolve().parent.parent
    source_root = args.app.resolve().parent
    with tempfile.TemporaryDirectory() as scratch_name:
        trace_file = Path(scratch_name) / "trace.txt"
        trace_env = smoke.base_env(
            PYTHONPATH=os.pathsep.join([str(source_root), str(args.native_site), str(builder_dir)])
        )
        passed = smoke.run(
            smoke.traced_launcher(sys.executable, str(trace_file)), trace_env, access=access
        )
        logger.info("traced run passed %d checks", len(passed))
        return modules.traced_imports(trace_file)


def _choose_modules(
    args: argparse.Namespace, settings: project.ImageSettings, traced: set[str]
) -> tuple[list[str], dict[str, str]]:
    """The standard-library modules to ship, and the stand-ins that replace some of them."""
    stdlib_here = sysconfig.get_path("stdlib")
    search_path = [
        str(args.app.resolve().parent),
        str(args.native_site),
        stdlib_here,
        f"{stdlib_here}/lib-dynload",
    ]
    included = modules.included_modules(settings.include, search_path)
    if included:
        logger.info("included by pyproject.toml: %s", ", ".join(settings.include))
    static = modules.static_imports([*_app_modules(args.app), *sorted(included)], search_path)
    stdlib = args.stage / "root" / str(rootfs.STDLIB).lstrip("/")
    chosen = modules.stdlib_modules(static, traced, stdlib, include=included)
    standins = _openssl_decision(settings, static, search_path, Path(stdlib_here))
    if standins:
        chosen = [name for name in chosen if name not in tls.OPENSSL_MODULES]
    logger.info(
        "standard library: %d modules (%d seen only by static analysis)",
        len(chosen),
        len(set(chosen) - traced),
    )
    return chosen, standins


def _write_layers(
    args: argparse.Namespace, chosen: list[str], standins: dict[str, str], *, docstrings: bool
) -> dict[str, rootfs.Layer]:
    """Write base/, deps/ and app/ under ``--out``: stripped, normalised, reproducible.

    ``docstrings`` False compiles the standard library and the dependencies without them.
    """
    layers = {name: rootfs.Layer(args.out / name) for name in ("base", "deps", "app")}
    for layer in layers.values():
        if layer.root.exists():
            shutil.rmtree(layer.root)
        layer.root.mkdir(parents=True)
    rootfs.build_base(
        sysroot=rootfs.Sysroot(args.stage / "root", args.arch),
        packages=debs.load(args.stage),
        modules=chosen,
        layer=layers["base"],
        epoch=args.epoch,
        site=args.site,
        standins=standins,
        docstrings=docstrings,
        ca_bundle="ssl" not in standins,
    )
    rootfs.build_site(args.site, layers["deps"], args.epoch, docstrings=docstrings)
    rootfs.build_app(args.app, layers["app"])
    (args.out / "modules.txt").write_text("\n".join(chosen) + "\n")
    for name, layer in layers.items():
        changed, saved = rootfs.strip_tree(layer.root)
        if changed:
            logger.info("%s: stripped %d ELF files, %.1f MB less", name, changed, saved / 1e6)
        rootfs.normalise(layer.root, args.epoch)
    return layers


def _openssl_decision(
    settings: project.ImageSettings, static: set[str], search_path: list[str], stdlib: Path
) -> dict[str, str]:
    """The stand-in modules the runtime gets: ``ssl`` when OpenSSL is left out, else none."""
    if settings.openssl == "keep":
        logger.info('OpenSSL ships: openssl = "keep" in [tool.zeroport.image]')
        return {}
    users = tls.tls_users(static, search_path, stdlib)
    if users:
        logger.info("OpenSSL ships: TLS is used by %s", ", ".join(users))
        return {}
    logger.info(
        "OpenSSL left out: nothing in the image speaks TLS; ssl is a stand-in that refuses TLS "
        "(docs/adr/0014)"
    )
    return {"ssl": nossl.render(ssl)}


def main(argv: list[str] | None = None) -> int:
    """Run one builder command; exit 1 with one ``builder: error:`` line on failure."""
    handler = logging.StreamHandler()
    handler.setFormatter(_Formatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    args = _parser().parse_args(argv)
    try:
        if args.command == "stage":
            debs.stage(args.arch, args.dest)
        else:
            assemble(args)
    except (smoke.SmokeError, FileNotFoundError, ValueError, RuntimeError) as exc:
        logger.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
