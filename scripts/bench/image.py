"""The image's numbers, measured: ``python -m scripts.bench.image [--rebuild] [--clean-builds]``.

* size: uncompressed (the engine's ``Size``) and as ``docker save | gzip -9``;
* start: seconds from ``docker run`` (hardened, as the stack runs it) to the first 200 on
  ``GET /``, median of 5;
* ``--rebuild``: seconds to rebuild after a change to app code only, with a warm cache, and
  which layers changed (only the app layer should);
* ``--clean-builds``: two builds from a clean cache (``--no-cache``) give the same layer
  digests and the same image ID.

Targets (issue 3): <= 20 MB, <= 10 MB gzipped, first 200 within 1 s, rebuild <= 15 s.
Writes ``build/bench/image.json``.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Final

import httpx
from docker import DockerClient

from scripts.build import Provenance, build
from scripts.core import engine, paths, proc, records
from scripts.core.records import BaseRecord, ImageRecord
from scripts.core.settings import Settings

STARTS = 5
START_TIMEOUT = 30.0
REPORT = paths.BENCH_DIR / "image.json"
#: The image's targets (issues 3 and 13), and the seed's first size target.
TARGET_SIZE_MB: Final = 20.0
TARGET_GZIP_MB: Final = 10.0
TARGET_FIRST_200_S: Final = 1.0
TARGET_REBUILD_S: Final = 15.0
SEED_SIZE_MB: Final = 15.0


def gzip_size(docker_engine: DockerClient, record: ImageRecord) -> int:
    """Bytes of ``docker save IMAGE | gzip -9``."""
    compressor = gzip.compress(b"".join(docker_engine.images.get(record.id).save()), 9)
    return len(compressor)


def first_200(docker_engine: DockerClient, record: ImageRecord, port: int) -> float:
    """Seconds from starting a hardened container to its first 200 on ``GET /``."""
    container = docker_engine.containers.create(
        record.tag,
        read_only=True,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges:true"],
        user="1000:1000",
        ports={"8080/tcp": ("127.0.0.1", port)},
    )
    try:
        with httpx.Client(trust_env=False) as client:
            started = time.perf_counter()
            container.start()
            deadline = started + START_TIMEOUT
            while time.perf_counter() < deadline:
                try:
                    if client.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                        return time.perf_counter() - started
                except httpx.HTTPError:
                    time.sleep(0.005)
        raise TimeoutError(f"{record.tag} did not answer within {START_TIMEOUT:g} s")
    finally:
        container.remove(force=True)


def rebuild_after_app_change(
    settings: Settings, docker_engine: DockerClient, base: BaseRecord
) -> dict[str, object]:
    """Clone the checkout, build, change app code only, rebuild: time and changed layers."""
    with tempfile.TemporaryDirectory(prefix="zeroport-rebuild-") as scratch:
        clone = Path(scratch) / "zeroport"
        env = settings.tool_env()
        proc.run(["git", "clone", "--quiet", str(paths.ROOT), str(clone)], env=env, timeout=120)
        provenance = Provenance.of_checkout(settings, clone)
        again = functools.partial(
            build,
            settings,
            docker_engine,
            platform=f"linux/{settings.host_arch}",
            base_ref=base.ref,
            provenance=provenance,
            root=clone,
            name="zeroport-bench",
        )
        before = again()
        routes = clone / "app" / "routes.py"
        routes.write_text(routes.read_text() + "\n# a change to app code only\n")
        started = time.perf_counter()
        after = again()
        seconds = time.perf_counter() - started
        for record in (before, after):
            docker_engine.images.remove(record.tag, force=True)
    changed = [
        i for i, (a, b) in enumerate(zip(before.layers, after.layers, strict=True)) if a != b
    ]
    return {"seconds": round(seconds, 1), "changed_layers": changed, "layers": len(after.layers)}


def clean_builds(
    settings: Settings, docker_engine: DockerClient, base: BaseRecord
) -> dict[str, object]:
    """Two builds with no cache: are the layers and the image ID the same?"""
    provenance = Provenance.of_checkout(settings)
    platform = f"linux/{settings.host_arch}"
    builds = [
        build(
            settings,
            docker_engine,
            platform=platform,
            base_ref=base.ref,
            provenance=provenance,
            no_cache=True,
        )
        for _ in range(2)
    ]
    return {
        "same_layers": builds[0].layers == builds[1].layers,
        "same_id": builds[0].id == builds[1].id,
        "id": builds[0].id,
    }


def main(argv: list[str] | None = None) -> int:
    """Measure and print the image's numbers; 0 when measured (targets are reported, not gated)."""
    parser = argparse.ArgumentParser(prog="python -m scripts.bench.image")
    parser.add_argument("--rebuild", action="store_true", help="time an app-only rebuild")
    parser.add_argument("--clean-builds", action="store_true", help="two no-cache builds")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    docker_engine = engine.client(settings)
    record = records.read_record()
    port = engine.free_port()
    starts = [first_200(docker_engine, record, port) for _ in range(STARTS)]
    result: dict[str, object] = {
        "recorded": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
        "image": record.tag,
        "size_mb": round(record.size / 1e6, 2),
        "gzip_mb": round(gzip_size(docker_engine, record) / 1e6, 2),
        "first_200_s": {
            "median": round(statistics.median(starts), 3),
            "runs": [round(s, 3) for s in starts],
        },
    }
    base = BaseRecord.read()
    if args.rebuild:
        result["rebuild"] = rebuild_after_app_change(settings, docker_engine, base)
    if args.clean_builds:
        result["clean_builds"] = clean_builds(settings, docker_engine, base)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(
        f"targets: size <= {TARGET_SIZE_MB:g} MB: {result['size_mb']} MB; gzip <= "
        f"{TARGET_GZIP_MB:g} MB: {result['gzip_mb']} MB; first 200 <= {TARGET_FIRST_200_S:g} s: "
        f"{statistics.median(starts):.3f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
