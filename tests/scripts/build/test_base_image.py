"""The builder's base image: the debootstrap recipe, digest pinning, the record, the fallbacks."""

from __future__ import annotations

import sysconfig
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType, SimpleNamespace
from typing import Any

import docker.errors
import pytest

from scripts.build import base_image
from scripts.build.base_image import Recipe, _pinned, _repository
from scripts.core import paths, proc
from scripts.core.errors import EngineError, ReportError, ToolFailed
from scripts.core.records import BaseRecord
from scripts.core.settings import Settings

DIGEST = "sha256:" + "d" * 64


def test_the_committed_recipe_builds_trixie_minbase_from_the_mirror() -> None:
    recipe = Recipe.load()
    assert recipe.suite == "trixie"
    assert recipe.variant == "minbase"
    assert recipe.include == ("ca-certificates",)
    assert recipe.tag == "zeroport-base/debian:trixie-minbase"
    assert "usr/share/doc" in recipe.remove
    assert recipe.debootstrap_argv(Path("/scratch/rootfs")) == [
        "debootstrap",
        "--variant=minbase",
        "--include=ca-certificates",
        "trixie",
        "/scratch/rootfs",
        recipe.mirror,
    ]


def test_a_pinned_snapshot_is_read_from_snapshot_debian_org() -> None:
    recipe = replace(Recipe.load(), snapshot="20251101T000000Z", include=())
    assert recipe.source() == "https://snapshot.debian.org/archive/debian/20251101T000000Z/"
    argv = recipe.debootstrap_argv(Path("/r"))
    assert argv[-1] == recipe.source()
    assert not [arg for arg in argv if arg.startswith("--include")]


def test_recipe_load_reads_any_recipe_file(tmp_path: Path) -> None:
    path = tmp_path / "recipe.toml"
    path.write_text(
        '[debootstrap]\nsuite = "bookworm"\nvariant = "minbase"\n'
        'mirror = "http://mirror.local/debian"\n\n[image]\ntag = "local/base:12"\n'
    )
    recipe = Recipe.load(path)
    assert (recipe.suite, recipe.snapshot, recipe.include, recipe.remove) == (
        "bookworm",
        "",
        (),
        (),
    )
    assert recipe.source() == "http://mirror.local/debian"


@pytest.mark.parametrize(
    ("name", "repository"),
    [
        ("debian:trixie-slim", "debian"),
        ("debian", "debian"),
        ("debian@" + DIGEST, "debian"),
        ("host:5000/team/base:1.2", "host:5000/team/base"),
        ("host:5000/team/base", "host:5000/team/base"),
    ],
)
def test_repository_strips_tag_and_digest_but_not_a_registry_port(
    name: str, repository: str
) -> None:
    assert _repository(name) == repository


def _image(repo_digests: list[str] | None, image_id: str = "sha256:" + "1" * 64) -> Any:
    return SimpleNamespace(attrs={"RepoDigests": repo_digests}, id=image_id)


def test_a_pulled_image_is_recorded_by_digest() -> None:
    image = _image(["debian@" + DIGEST])
    assert _pinned(image, "debian:trixie-slim") == "debian@" + DIGEST


def test_a_digest_of_another_repository_is_not_used() -> None:
    image = _image(["mirror.local/debian@" + DIGEST])
    assert _pinned(image, "debian:trixie-slim") == "debian:trixie-slim"
    assert _pinned(_image(None), "debian:trixie-slim") == "debian:trixie-slim"


def test_a_fully_qualified_docker_hub_name_is_pinned_too() -> None:
    # The engine lists Docker Hub digests under the short name ("debian@sha256:...").
    image = _image(["debian@" + DIGEST])
    pinned = _pinned(image, "docker.io/library/debian:trixie-slim")
    assert pinned.endswith("@" + DIGEST)


def test_base_record_round_trips_and_a_missing_one_says_what_to_run(tmp_path: Path) -> None:
    record = BaseRecord(
        requested="debian:trixie-slim", ref="debian@" + DIGEST, id="sha256:1", source="pulled"
    )
    path = tmp_path / "build" / "base_image.json"
    record.write(path)
    assert BaseRecord.read(path) == record
    with pytest.raises(ReportError, match="is missing; run: doit base_image"):
        BaseRecord.read(tmp_path / "absent.json")
    path.write_text('{"requested": "x"}')
    with pytest.raises(ReportError, match="is not a base-image record"):
        BaseRecord.read(path)


class FakeImages:
    def __init__(self, local: dict[str, Any], pull: Any = None) -> None:
        self.local = local
        self.pull_result = pull
        self.pulled: list[str] = []

    def get(self, name: str) -> Any:
        if name not in self.local:
            raise docker.errors.ImageNotFound(name)
        return self.local[name]

    def pull(self, name: str) -> Any:
        self.pulled.append(name)
        if self.pull_result is None:
            raise docker.errors.APIError("registry unreachable")
        return self.pull_result


def test_ensure_uses_an_image_the_engine_already_has() -> None:
    engine: Any = SimpleNamespace(
        images=FakeImages({"debian:trixie-slim": _image(None, "sha256:a")})
    )
    record = base_image.ensure(Settings(), engine, Recipe.load())
    assert record == BaseRecord(
        requested="debian:trixie-slim", ref="debian:trixie-slim", id="sha256:a", source="local"
    )
    assert engine.images.pulled == []


def test_ensure_pulls_and_pins_when_the_image_is_not_here() -> None:
    images = FakeImages({}, pull=_image(["debian@" + DIGEST], "sha256:b"))
    record = base_image.ensure(Settings(), SimpleNamespace(images=images), Recipe.load())  # type: ignore[arg-type]
    assert record.source == "pulled"
    assert record.ref == "debian@" + DIGEST
    assert images.pulled == ["debian:trixie-slim"]


def test_without_a_registry_off_linux_the_error_says_how_to_get_a_base() -> None:
    settings = Settings(system="Darwin")
    engine: Any = SimpleNamespace(images=FakeImages({}))
    with pytest.raises(EngineError, match="debootstrap runs only on Linux"):
        base_image.ensure(settings, engine, Recipe.load())


def test_the_debian_mirror_setting_is_what_debootstrap_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ZEROPORT_DEBIAN_MIRROR is read into Settings.debian_mirror "for the no-registry fallback";
    # a user behind a local mirror sets it and expects debootstrap to use it.
    monkeypatch.setattr(paths, "BUILD", tmp_path / "build")
    monkeypatch.setattr(proc, "which", lambda tool, env: f"/usr/sbin/{tool}")
    argvs: list[list[str]] = []

    def fake_run(argv: list[str], **kwargs: object) -> proc.Result:
        argvs.append(list(argv))
        raise ToolFailed(argv, 1, "stop here")

    monkeypatch.setattr(proc, "run", fake_run)
    settings = Settings.from_env({"PATH": "/usr/bin", "ZEROPORT_DEBIAN_MIRROR": "http://m.lan/d"})
    assert settings.tool_environ == MappingProxyType(
        {"PATH": f"/usr/bin:{sysconfig.get_path('scripts')}"}
    )
    with pytest.raises(EngineError, match="debootstrap of trixie failed"):
        base_image.build_from_mirror(settings, SimpleNamespace(), Recipe.load())  # type: ignore[arg-type]
    assert argvs[0][0] == "debootstrap"
    assert argvs[0][-1] == "http://m.lan/d"
