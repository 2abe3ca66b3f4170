"""The image step's pure parts: restamping a ``docker save`` archive, platforms, provenance."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from scripts.build import image
from scripts.build.image import Provenance, parse_platforms, rewrite_config_times
from scripts.core import records
from scripts.core.engine import BuildCli
from scripts.core.errors import BuildError, ParamError, ReportError, ToolFailed
from scripts.core.records import ImageRecord
from scripts.core.settings import Settings

EPOCH = 1_700_000_000
STAMP = "2023-11-14T22:13:20Z"
OLD_CONFIG = "0123abcd.json"


def _saved_image(created: str = "2026-11-29T10:00:00.123456789Z") -> bytes:
    """A ``docker save`` archive (the 20.10 layout) of a one-layer image built at ``created``."""
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": {"User": "1000:1000", "Entrypoint": ["/usr/bin/python3", "-m", "app"]},
        "history": [
            {"created": created, "created_by": "COPY base / # buildkit"},
            {"created": created, "created_by": "USER 1000:1000", "empty_layer": True},
        ],
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "a" * 64]},
    }
    members = {
        OLD_CONFIG: json.dumps(config).encode(),
        "layer1/layer.tar": b"layer bytes",
        "layer1/VERSION": b"1.0",
        "manifest.json": json.dumps(
            [
                {
                    "Config": OLD_CONFIG,
                    "RepoTags": ["zeroport:build-amd64"],
                    "Layers": ["layer1/layer.tar"],
                }
            ]
        ).encode(),
        "repositories": b'{"zeroport": {"build-amd64": "layer1"}}',
    }
    output = io.BytesIO()
    with tarfile.open(fileobj=output, mode="w") as archive:
        directory = tarfile.TarInfo("layer1")
        directory.type = tarfile.DIRTYPE
        directory.mtime = 1_800_000_000
        archive.addfile(directory)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_800_000_000
            archive.addfile(info, io.BytesIO(data))
    return output.getvalue()


def _read(archive: bytes) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            handle = tar.extractfile(member) if member.isfile() else None
            out[member.name] = handle.read() if handle else b""
    return out


def test_restamped_config_carries_the_commit_time_everywhere() -> None:
    rewritten, _ = rewrite_config_times(_saved_image(), EPOCH, "zeroport:restamped")
    files = _read(rewritten)
    manifest = json.loads(files["manifest.json"])
    assert len(manifest) == 1
    config_name = manifest[0]["Config"]
    config = json.loads(files[config_name])
    assert config["created"] == STAMP
    assert [entry["created"] for entry in config["history"]] == [STAMP, STAMP]
    assert config["config"]["User"] == "1000:1000"  # nothing else changes
    assert manifest[0]["RepoTags"] == ["zeroport:restamped"]
    assert manifest[0]["Layers"] == ["layer1/layer.tar"]
    assert files["layer1/layer.tar"] == b"layer bytes"


def test_the_image_id_is_the_digest_of_the_config_it_points_at() -> None:
    rewritten, image_id = rewrite_config_times(_saved_image(), EPOCH, "zeroport:x")
    files = _read(rewritten)
    config_name = json.loads(files["manifest.json"])[0]["Config"]
    digest = hashlib.sha256(files[config_name]).hexdigest()
    assert image_id == f"sha256:{digest}"
    assert config_name == f"{digest}.json"
    assert OLD_CONFIG not in files  # the old config would make docker load two images
    assert "repositories" not in files


def test_two_builds_at_different_times_give_the_same_bytes_and_id() -> None:
    first = rewrite_config_times(_saved_image("2026-11-29T10:00:00Z"), EPOCH, "zeroport:x")
    second = rewrite_config_times(_saved_image("2026-12-01T08:30:00Z"), EPOCH, "zeroport:x")
    assert first == second
    assert rewrite_config_times(_saved_image(), EPOCH + 1, "zeroport:x")[1] != first[1]


def test_an_archive_of_two_images_is_refused() -> None:
    files = _read(_saved_image())
    manifest = json.loads(files["manifest.json"])
    output = io.BytesIO()
    with tarfile.open(fileobj=output, mode="w") as archive:
        for name, data in {**files, "manifest.json": json.dumps(manifest * 2).encode()}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    with pytest.raises(BuildError, match="expected one image in the saved archive, found 2"):
        rewrite_config_times(output.getvalue(), EPOCH, "zeroport:x")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("linux/amd64", ("linux/amd64",)),
        ("linux/amd64,linux/arm64", ("linux/amd64", "linux/arm64")),
        (" linux/arm64 , ", ("linux/arm64",)),
    ],
)
def test_parse_platforms(value: str, expected: tuple[str, ...]) -> None:
    assert parse_platforms(value) == expected


@pytest.mark.parametrize("value", ["", ",", "linux/riscv64", "linux/amd64,windows/amd64"])
def test_an_unsupported_platform_names_the_supported_ones(value: str) -> None:
    with pytest.raises(ParamError, match="platforms must be a comma-separated list of linux/amd64"):
        parse_platforms(value)


def test_provenance_created_is_rfc3339_utc() -> None:
    provenance = Provenance(version="0.1.0", revision="abc", epoch=EPOCH)
    assert provenance.created == STAMP
    assert Provenance(version="0", revision="r", epoch=0).created == "1970-01-01T00:00:00Z"


def test_binfmt_ready_reads_the_kernels_entry(tmp_path: Path) -> None:
    (tmp_path / "qemu-aarch64").write_text("enabled\ninterpreter /usr/bin/qemu-aarch64-static\n")
    (tmp_path / "qemu-x86_64").write_text("disabled\ninterpreter /usr/bin/qemu-x86_64-static\n")
    assert image.binfmt_ready("arm64", tmp_path)
    assert not image.binfmt_ready("amd64", tmp_path)
    assert not image.binfmt_ready("riscv64", tmp_path)
    assert not image.binfmt_ready("arm64", tmp_path / "not-mounted")


def _record(platform: str) -> ImageRecord:
    return ImageRecord(
        tag="zeroport:0123456789ab",
        id="sha256:" + "0" * 64,
        platform=platform,
        size=42_000_000,
        layers=("sha256:" + "1" * 64, "sha256:" + "2" * 64),
        base="debian@sha256:" + "3" * 64,
        version="0.1.0",
        revision="abc",
        created=STAMP,
    )


def test_image_record_round_trips_with_the_host_platform_first(tmp_path: Path) -> None:
    records = [_record("linux/amd64"), _record("linux/arm64")]
    path = tmp_path / "build" / "image.json"
    records.write_record(records, path)
    assert records.read_record(path) == records[0]
    assert records.read_platform_records(path) == records


def test_a_missing_or_broken_image_record_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="is missing; build the image first: doit image"):
        records.read_record(tmp_path / "image.json")
    (tmp_path / "image.json").write_text("{")
    with pytest.raises(ReportError, match="is not JSON"):
        records.read_record(tmp_path / "image.json")
    with pytest.raises(ReportError, match="not an image record"):
        ImageRecord.from_json({"tag": "x"})


#: What a build that failed in the builder printed here (DOCKER_BUILDKIT=1 docker build,
#: trimmed): BuildKit prefixes each line of a step's output with "#<step> <seconds> ".
FAILED_BUILD = """\
#14 [assemble 4/4] RUN cd /builder && python3 -m builder assemble --arch "amd64" ...
#14 9.512 builder: traced run passed 19 checks
#14 9.820 builder: error: GET /feed: expected an answer that is not a 5xx, got 500; the \
service logged: ModuleNotFoundError: No module named 'zeroport_absent'
#14 ERROR: executor failed running [/bin/sh -c cd /builder && python3 -m builder assemble]: \
exit code: 1
------
 > [assemble 4/4] RUN cd /builder && python3 -m builder assemble --arch "amd64" ...:
#14 9.820 builder: error: GET /feed: expected an answer that is not a 5xx, got 500; the \
service logged: ModuleNotFoundError: No module named 'zeroport_absent'
------
executor failed running [/bin/sh -c cd /builder && python3 -m builder assemble]: exit code: 1
"""


def test_builder_errors_are_found_in_buildkit_output_once_each() -> None:
    assert image.builder_errors(FAILED_BUILD) == [
        "builder: error: GET /feed: expected an answer that is not a 5xx, got 500; the service "
        "logged: ModuleNotFoundError: No module named 'zeroport_absent'"
    ]
    assert image.builder_errors("#5 ERROR: failed to fetch\nexecutor failed running") == []


def test_a_build_failed_in_the_builder_leads_with_the_builders_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def failing_run(argv: list[str], **_: object) -> None:
        raise ToolFailed(argv, 1, FAILED_BUILD)

    monkeypatch.setattr(image.tools, "run", failing_run)
    monkeypatch.setattr(
        image.engine, "build_cli", lambda _settings: BuildCli(argv=("docker", "build"), env={})
    )
    provenance = Provenance(version="0.1.0", revision="abc", epoch=EPOCH)
    with pytest.raises(BuildError) as caught:
        image.build(
            Settings.from_env({}),
            None,  # type: ignore[arg-type] # never reached: the build fails first
            platform="linux/amd64",
            base_ref="debian:trixie-slim",
            provenance=provenance,
        )
    message = str(caught.value)
    assert message.startswith(
        "the image build failed in the builder: builder: error: GET /feed: expected an answer"
    )
    assert "No module named 'zeroport_absent'" in message
    assert "executor failed" not in message
    assert "No module named 'zeroport_absent'" in caplog.text


@pytest.mark.parametrize(
    ("extras", "loop", "expected"),
    [
        (False, image.Loop.UVLOOP, "requirements.txt"),
        (False, image.Loop.ASYNCIO, "requirements-asyncio.txt"),
        (True, image.Loop.UVLOOP, "requirements-extras.txt"),
    ],
)
def test_the_options_pick_the_requirements(extras: bool, loop: image.Loop, expected: str) -> None:
    assert image.requirements_for(extras=extras, loop=loop).name == expected


def test_extras_without_uvloop_is_refused_saying_why() -> None:
    with pytest.raises(ParamError, match="the extras image carries uvloop"):
        image.requirements_for(extras=True, loop=image.Loop.ASYNCIO)
    with pytest.raises(ParamError, match="loop must be one of uvloop, asyncio, got 'trio'"):
        image.step(loop="trio")
