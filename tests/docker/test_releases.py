"""Releases and rollback: deploy v1, deploy v2, roll back, and v1 runs again, healthy."""

from __future__ import annotations

from pathlib import Path

import httpx
from docker import DockerClient

from scripts.core import records
from scripts.core.options import StackOptions
from scripts.core.records import ImageRecord
from scripts.core.settings import Settings
from scripts.deploy import releases, rollback, stack
from tests.docker.conftest import free_port


def deploy(
    settings: Settings,
    docker_engine: DockerClient,
    options: StackOptions,
    image: ImageRecord,
    history: Path,
) -> records.StackRecord:
    record = stack.up(settings, docker_engine, options, image)
    releases.record(record, revision=image.revision, path=history)
    return record


def test_rollback_runs_the_previous_release_again(
    settings: Settings,
    docker_engine: DockerClient,
    built: ImageRecord,
    variant: ImageRecord,
    project: str,
    tmp_path: Path,
) -> None:
    history = tmp_path / "releases.json"
    options = StackOptions(project=project, port=free_port(), health_timeout=60)
    deploy(settings, docker_engine, options, built, history)
    current = deploy(settings, docker_engine, options, variant, history)
    assert current.image_id == variant.id

    back = rollback.rollback(settings, docker_engine, current, history)

    (app,) = docker_engine.containers.list(
        filters={
            "label": [f"com.docker.compose.project={project}", "com.docker.compose.service=app"]
        }
    )
    assert app.image.id == built.id
    assert (app.attrs["State"].get("Health") or {}).get("Status") == "healthy"
    assert httpx.get(f"{back.url}/", timeout=5).text == "Hello World"
    recorded = releases.load(history)
    assert [r.image_id for r in recorded] == [built.id, variant.id, built.id]
    assert recorded[-1].rollback_to == 1
