"""The CycloneDX SBOM, read from the metadata files the runtime image carries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from builder.debs import Package as DebPackage

from scripts.build import sbom
from scripts.build.sbom import Package, bom, packages
from scripts.core import engine, paths
from scripts.core.errors import GateFailed, ReportError, ToolMissing
from scripts.core.records import ImageRecord

LIBC_STATUS = DebPackage(
    "libc6",
    {
        "Package": "libc6",
        "Version": "2.41-12",
        "Architecture": "amd64",
        "Maintainer": "GNU Libc Maintainers <debian-glibc@lists.debian.org>",
        "Description": "GNU C Library: Shared libraries\n Contains the standard libraries.",
    },
    (),
).status_entry()

IMAGE = ImageRecord(
    tag="zeroport:0123456789ab",
    id="sha256:" + "0" * 64,
    platform="linux/amd64",
    size=1,
    layers=(),
    base="debian@sha256:" + "1" * 64,
    version="0.1.0",
    revision="abc",
    created="2026-11-29T10:00:00Z",
)


def image_files() -> Iterator[tuple[str, bytes]]:
    """What ``image_files`` yields for a runtime: status.d entries, METADATA, debian_version."""
    yield "var/lib/dpkg/status.d/libc6", LIBC_STATUS.encode()
    yield (
        "var/lib/dpkg/status.d/base-files",
        b"Package: base-files\nStatus: install ok installed\nVersion: 13.8\nArchitecture: amd64\n",
    )
    yield "etc/debian_version", b"13.1\n"
    yield (
        "opt/app/site/prometheus_client-0.21.0.dist-info/METADATA",
        b"Metadata-Version: 2.1\nName: prometheus_client\nVersion: 0.21.0\n\nlong description\n",
    )
    yield (
        "opt/app/site/Quart-0.20.0.dist-info/METADATA",
        b"Metadata-Version: 2.1\nName: Quart\nVersion: 0.20.0\n",
    )


def test_packages_reads_debian_status_python_metadata_and_the_release() -> None:
    found, distro = packages(image_files())
    assert distro == "debian-13"
    assert found == [
        Package("deb", "base-files", "13.8", "amd64"),
        Package("deb", "libc6", "2.41-12", "amd64"),
        Package("pypi", "Quart", "0.20.0"),
        Package("pypi", "prometheus_client", "0.21.0"),
    ]


def test_an_image_without_metadata_is_a_report_error() -> None:
    with pytest.raises(ReportError, match="holds no package metadata"):
        packages(iter([("etc/debian_version", b"13.1\n")]))


INCOMPLETE_GRAPH = "ignore:The Component this BOM is describing"


@pytest.mark.filterwarnings(INCOMPLETE_GRAPH)
def test_bom_has_a_package_url_for_every_component() -> None:
    found, distro = packages(image_files())
    document = json.loads(bom(IMAGE, found, distro))
    assert document["specVersion"] == "1.6"
    purls = {component["purl"] for component in document["components"]}
    assert purls == {
        "pkg:deb/debian/base-files@13.8?arch=amd64&distro=debian-13",
        "pkg:deb/debian/libc6@2.41-12?arch=amd64&distro=debian-13",
        "pkg:pypi/prometheus-client@0.21.0",
        "pkg:pypi/quart@0.20.0",
    }
    types = {c["name"]: c["type"] for c in document["components"]}
    assert types["base-files"] == "operating-system"
    assert types["libc6"] == "library"
    subject = document["metadata"]["component"]
    assert (subject["name"], subject["version"], subject["type"]) == (
        "zeroport",
        "0.1.0",
        "container",
    )


def test_bom_says_the_image_depends_on_every_component() -> None:
    # Without it, cyclonedx warns while writing that the dependency graph is incomplete, and
    # SBOM consumers see an image that contains nothing.
    found, distro = packages(image_files())
    document = json.loads(bom(IMAGE, found, distro))
    root = document["metadata"]["component"]["bom-ref"]
    graph = {entry["ref"]: set(entry.get("dependsOn", [])) for entry in document["dependencies"]}
    assert graph[root] == {component["bom-ref"] for component in document["components"]}


def trivys(*components: tuple[str, str, str]) -> dict[str, object]:
    """A CycloneDX document shaped as trivy 0.76 writes one for an image (measured here):
    an operating-system component without a package URL, Debian versions with their epoch,
    Python names as the distribution spells them and its package URL normalises them."""
    listed: list[dict[str, object]] = [
        {"bom-ref": "os", "type": "operating-system", "name": "debian", "version": "13.8"}
    ]
    for kind, name, version in components:
        if kind == "deb":
            purl = f"pkg:deb/debian/{name}@{version.split(':')[-1]}?arch=amd64&distro=debian-13.8"
            if ":" in version:
                purl += f"&epoch={version.split(':')[0]}"
        else:
            purl = f"pkg:pypi/{name.lower().replace('_', '-')}@{version}"
        listed.append({"type": "library", "name": name, "version": version, "purl": purl})
    return {"bomFormat": "CycloneDX", "specVersion": "1.7", "components": listed}


SAME = trivys(
    ("deb", "base-files", "13.8"),
    ("deb", "libc6", "2.41-12"),
    ("pypi", "prometheus_client", "0.21.0"),
    ("pypi", "Quart", "0.20.0"),
)


def ours() -> dict[str, object]:
    found, distro = packages(image_files())
    return dict(json.loads(bom(IMAGE, found, distro)))


def test_the_same_packages_read_by_trivy_make_no_difference() -> None:
    mine = sbom.component_versions(ours())

    assert mine == sbom.component_versions(SAME)
    assert mine[("pypi", "prometheus-client")] == "0.21.0"
    assert sbom.differences(mine, sbom.component_versions(SAME)) == []


def test_an_epoch_in_a_debian_version_is_compared_as_the_version_says() -> None:
    theirs = sbom.component_versions(trivys(("deb", "zlib1g", "1:1.3.dfsg-1")))
    assert theirs == {("deb", "zlib1g"): "1:1.3.dfsg-1"}


def test_a_package_one_reader_misses_or_reads_at_another_version_is_named() -> None:
    theirs = trivys(
        ("deb", "base-files", "13.8"),
        ("deb", "libc6", "2.41-13"),
        ("pypi", "Quart", "0.20.0"),
        ("pypi", "uvloop", "0.23.0"),
    )

    assert sbom.differences(sbom.component_versions(ours()), sbom.component_versions(theirs)) == [
        "deb libc6 2.41-12 here, 2.41-13 in trivy's",
        "pypi prometheus-client 0.21.0 only in sbom.cdx.json",
        "pypi uvloop 0.23.0 only in trivy's",
    ]


@pytest.fixture
def stepping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sbom, "read_record", lambda: IMAGE)
    monkeypatch.setattr(engine, "client", lambda settings: SimpleNamespace())
    monkeypatch.setattr(sbom, "image_files", lambda docker_engine, tag: image_files())


@pytest.mark.filterwarnings(INCOMPLETE_GRAPH)
@pytest.mark.usefixtures("stepping")
def test_step_writes_the_bom_and_passes_when_trivy_agrees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sbom.trivy, "write_sbom", lambda image, **_: SAME)
    output = tmp_path / "out" / "sbom.cdx.json"
    assert not output.is_relative_to(paths.ROOT)

    sbom.step(output)

    assert json.loads(output.read_text())["bomFormat"] == "CycloneDX"


@pytest.mark.filterwarnings(INCOMPLETE_GRAPH)
@pytest.mark.usefixtures("stepping")
def test_step_fails_naming_what_trivy_reads_differently(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hidden = trivys(
        *[("deb", "base-files", "13.8"), ("deb", "libc6", "2.41-12")],
        ("pypi", "prometheus_client", "0.21.0"),
        ("pypi", "Quart", "0.20.0"),
        ("deb", "libssl3t64", "3.5.9-1"),
    )
    monkeypatch.setattr(sbom.trivy, "write_sbom", lambda image, **_: hidden)

    with pytest.raises(GateFailed, match=r"deb libssl3t64 3\.5\.9-1 only in trivy's"):
        sbom.step(tmp_path / "sbom.cdx.json")


@pytest.mark.filterwarnings(INCOMPLETE_GRAPH)
@pytest.mark.usefixtures("stepping")
def test_without_trivy_the_step_fails_unless_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing(image: str, **_: object) -> dict[str, object]:
        raise ToolMissing("trivy", "uv sync --group audit")

    monkeypatch.setattr(sbom.trivy, "write_sbom", missing)

    with pytest.raises(ToolMissing):
        sbom.step(tmp_path / "sbom.cdx.json")
    sbom.step(tmp_path / "sbom.cdx.json", allow_missing="pip-audit,trivy")
    assert (tmp_path / "sbom.cdx.json").is_file()
