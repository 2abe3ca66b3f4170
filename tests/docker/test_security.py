"""The security step against real images and containers.

* A planted bad image (from the local Debian base: root, a shell and apt, a setuid file, a
  secret in an env var and one in a layer that a later layer deletes, no health check) fails
  each matching audit check; run unhardened, its container fails the container checks.
* The project's image passes every image check, and a container with the compose file's
  settings passes every container check.
* The tunnel topology's isolation holds (stand-in connector, sentinel on the egress network).
* ``doit security``'s run against a throwaway local stack writes its report, and no answer to
  any attack carries a trace or a version.

Everything created here carries a name or project of this module's and is removed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import docker.errors
import pytest
from docker import DockerClient
from docker.models.containers import Container

from scripts.bench.servers import server_kwargs
from scripts.core import engine, proc
from scripts.core.checks import Check
from scripts.core.engine import wait_healthy
from scripts.core.options import StackOptions
from scripts.core.records import BaseRecord, ImageRecord
from scripts.core.settings import Settings
from scripts.deploy import stack
from scripts.security import run as security
from scripts.security.cases import cases
from scripts.security.container_audit import ExpectedPorts, audit_image, container_checks
from scripts.security.isolation import isolation_checks
from tests.docker.conftest import free_port
from tests.docker.test_canaries import SECURITY_OPTIONS

PLANTED_TAG = "zeroport-test:planted-bad"
LOCAL = ExpectedPorts(published={"8080/tcp": frozenset({"127.0.0.1"})})
PLANTED_DOCKERFILE = """\
FROM {base}
COPY credentials /root/.aws/credentials
RUN rm /root/.aws/credentials
RUN find / -xdev -type f -perm /6000 -exec chmod ug-s {{}} + \
    && cp /bin/true /usr/local/bin/planted-setuid && chmod 4755 /usr/local/bin/planted-setuid
ENV APP_SECRET_KEY=planted-not-a-real-secret
CMD ["sleep", "120"]
"""


def failing(checks: list[Check]) -> set[str]:
    return {check.id.split("[")[0] for check in checks if not check.ok}


@pytest.fixture(scope="module")
def planted(
    settings: Settings,
    docker_engine: DockerClient,
    base: BaseRecord,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """The planted bad image, built with the pipeline's BuildKit CLI; removed afterwards."""
    context = tmp_path_factory.mktemp("planted")
    (context / "Dockerfile").write_text(PLANTED_DOCKERFILE.format(base=base.ref))
    # Assembled here so that no file in the checkout holds a key-shaped string.
    (context / "credentials").write_text("[default]\naws_access_key_id = AKIA" + "Z" * 16 + "\n")
    cli = engine.build_cli(settings)
    proc.run(
        [*cli.argv, "--file", str(context / "Dockerfile"), "--tag", PLANTED_TAG, str(context)],
        env=settings.tool_env(**cli.env),
        timeout=300,
    )
    yield PLANTED_TAG
    with contextlib.suppress(docker.errors.ImageNotFound):
        docker_engine.images.remove(PLANTED_TAG, force=True)


@contextlib.contextmanager
def running(docker_engine: DockerClient, name: str, **kwargs: Any) -> Iterator[Container]:
    """A container of this test's, removed afterwards whatever happens."""
    with contextlib.suppress(docker.errors.NotFound):
        docker_engine.containers.get(name).remove(force=True)
    container = docker_engine.containers.run(name=name, detach=True, **kwargs)
    try:
        yield container
    finally:
        container.remove(force=True)


def test_the_planted_bad_image_fails_each_matching_check(
    docker_engine: DockerClient, planted: str
) -> None:
    checks = {check.id: check for check in audit_image(docker_engine, planted, LOCAL)}
    assert failing(list(checks.values())) == {
        "IMG-USER",  # no USER: root
        "IMG-HEALTHCHECK",
        "IMG-SECRETS-CONFIG",  # APP_SECRET_KEY=...
        "IMG-NO-SHELL",  # Debian's /bin/sh, bash, dash
        "IMG-NO-PACKAGE-MANAGER",  # apt, dpkg
        "IMG-NO-SETUID",  # the planted file (Debian's own setuid bits are cleared first)
        "IMG-SECRETS-LAYERS",  # the credentials file a later layer deleted
    }
    assert checks["IMG-NO-SETUID"].evidence == "/usr/local/bin/planted-setuid (-rwsr-xr-x)"
    assert "/bin/sh" in checks["IMG-NO-SHELL"].evidence
    assert "/usr/bin/apt-get" in checks["IMG-NO-PACKAGE-MANAGER"].evidence
    assert "APP_SECRET_KEY is set to a literal value" in checks["IMG-SECRETS-CONFIG"].evidence
    assert "planted-not-a-real-secret" not in checks["IMG-SECRETS-CONFIG"].evidence
    assert "root/.aws/credentials" in checks["IMG-SECRETS-LAYERS"].evidence
    assert "aws-access-key-id" in checks["IMG-SECRETS-LAYERS"].evidence


def test_the_planted_image_run_unhardened_fails_the_container_checks(
    docker_engine: DockerClient, planted: str
) -> None:
    with running(docker_engine, "zpsectest-planted", image=planted) as container:
        container.reload()
        checks = container_checks(container.attrs, LOCAL)
    assert failing(checks) == {
        "CTR-USER",
        "CTR-READ-ONLY",
        "CTR-CAP-DROP-ALL",
        "CTR-NO-NEW-PRIVILEGES",
        "CTR-HEALTHY",
        "CTR-MEMORY-LIMIT",
        "CTR-PIDS-LIMIT",
        "CTR-SECRETS-ENV",
    }


def test_the_projects_image_passes_every_image_check(
    docker_engine: DockerClient, built: ImageRecord
) -> None:
    checks = audit_image(docker_engine, built.tag, LOCAL)
    assert {check.id for check in checks} >= {"IMG-NO-SHELL", "IMG-NO-SETUID", "IMG-SECRETS-LAYERS"}
    assert [check for check in checks if not check.ok] == []


def test_a_container_with_the_compose_settings_passes_every_container_check(
    settings: Settings, docker_engine: DockerClient, built: ImageRecord
) -> None:
    port = free_port()
    options = StackOptions(project="zpsectest", port=port)
    service = stack.render(settings, options, built.tag)["services"]["app"]
    kwargs = server_kwargs(service, image=built.tag, run_id="zpsectest")
    kwargs.pop("detach")
    kwargs["healthcheck"] = {"test": service["healthcheck"]["test"], "interval": 1_000_000_000}
    kwargs["ports"] = {"8080/tcp": ("127.0.0.1", port)}
    with running(docker_engine, "zpsectest-app", **kwargs) as container:
        assert wait_healthy(docker_engine, str(container.id), 60) == "healthy"
        container.reload()
        checks = container_checks(container.attrs, LOCAL)
    assert [check for check in checks if not check.ok] == []
    assert f"127.0.0.1:{port}->8080/tcp" in next(c.evidence for c in checks if "PORTS" in c.id)


def test_the_tunnel_topology_is_isolated(
    settings: Settings, docker_engine: DockerClient, built: ImageRecord
) -> None:
    started = time.monotonic()
    checks = isolation_checks(settings, docker_engine, built.tag, project="zpsectestnet")
    assert [check for check in checks if not check.ok] == []
    ids = {check.id for check in checks}
    assert {"NET-CONNECTOR-REACHES-APP", "NET-APP-NO-EGRESS-BY-ADDRESS"} <= ids
    assert "NET-HOST-NO-LISTENER" in ids or settings.system != "Linux"
    assert time.monotonic() - started < 120
    leftovers = docker_engine.containers.list(
        all=True, filters={"label": "com.docker.compose.project=zpsectestnet"}
    )
    assert leftovers == []
    assert docker_engine.networks.list(names=["zpsectestnet_egress"]) == []


def test_the_security_run_writes_its_report_and_leaks_nothing(
    settings: Settings, docker_engine: DockerClient, built: ImageRecord, tmp_path: Path
) -> None:
    # The options the canaries fail with (test_canaries.py): the real image passes them all.
    options = replace(SECURITY_OPTIONS, fresh_port=free_port(), project="zpsectestrun")
    with security.target_stack(settings, docker_engine, options, built.tag) as target:
        report = security.run(settings, docker_engine, target, options)
    report.write(tmp_path / "report.json", tmp_path / "report.md")

    data = security.read_report(tmp_path / "report.json")
    assert set(data["sections"]) == {"image", "containers", "headers", "waf", "attacks"}
    # The whole report: any failing check in any section fails this test, with its evidence.
    assert [(c.id, c.evidence) for c in report.checks if not c.ok] == []
    assert data["passed"] is True
    attacks = {c.id for c in report.sections["attacks"]}
    case_ids = {f"ATK-{case.id}" for case in cases("127.0.0.1")}
    assert case_ids | {"ATK-SLOWLORIS", "ATK-BURST", "ATK-HEALTHY-AFTER"} <= attacks
    assert {"ATK-CHURN", "ATK-CHURN-RELEASED", "ATK-CHURN-MEMORY"} <= attacks
    assert {c.id for c in report.sections["headers"]} == {
        "HDR-GRADE[GET / (200)]",
        "HDR-GRADE[GET /no-such-page (404)]",
    }
    assert "# Security report" in (tmp_path / "report.md").read_text()
    assert (
        docker_engine.containers.list(
            all=True, filters={"label": "com.docker.compose.project=zpsectestrun"}
        )
        == []
    )
