"""The builder stage's entry point: ``python3 -m builder stage|assemble``.

``stage``     download and unpack the interpreter's Debian packages for the target arch;
``assemble``  trace the app, analyse its imports, write the three runtime layers under
              ``--out`` (base/, deps/, app/) and smoke-test them as one root.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

from builder import debs, modules, rootfs, smoke

logger = logging.getLogger("builder")


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
    builder_dir = Path(__file__).resolve().parent.parent
    source_root = args.app.resolve().parent
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        trace_file = scratch / "trace.txt"
        trace_env = smoke.base_env(
            PYTHONPATH=os.pathsep.join([str(source_root), str(args.native_site), str(builder_dir)])
        )
        access = (args.native_site / "jwt").is_dir()
        passed = smoke.run(
            smoke.traced_launcher(sys.executable, str(trace_file)), trace_env, access=access
        )
        logger.info("traced run passed %d checks", len(passed))
        traced = modules.traced_imports(trace_file)
    stdlib_here = sysconfig.get_path("stdlib")
    static = modules.static_imports(
        _app_modules(args.app),
        [str(source_root), str(args.native_site), stdlib_here, f"{stdlib_here}/lib-dynload"],
    )
    stdlib = args.stage / "root" / str(rootfs.STDLIB).lstrip("/")
    chosen = modules.stdlib_modules(static, traced, stdlib)
    missed_by_trace = sorted(set(chosen) - traced)
    logger.info(
        "standard library: %d modules (%d seen only by static analysis)",
        len(chosen),
        len(missed_by_trace),
    )

    sysroot = rootfs.Sysroot(args.stage / "root", args.arch)
    layers = {name: rootfs.Layer(args.out / name) for name in ("base", "deps", "app")}
    for layer in layers.values():
        if layer.root.exists():
            shutil.rmtree(layer.root)
        layer.root.mkdir(parents=True)
    rootfs.build_base(
        sysroot=sysroot,
        packages=debs.load(args.stage),
        modules=chosen,
        layer=layers["base"],
        epoch=args.epoch,
        site=args.site,
    )
    rootfs.build_site(args.site, layers["deps"], args.epoch)
    rootfs.build_app(args.app, layers["app"])
    (args.out / "modules.txt").write_text("\n".join(chosen) + "\n")
    for layer in layers.values():
        rootfs.normalise(layer.root, args.epoch)

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


def main(argv: list[str] | None = None) -> int:
    """Run one builder command; exit 1 with one line on failure."""
    logging.basicConfig(level=logging.INFO, format="builder: %(message)s")
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
