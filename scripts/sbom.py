"""The image's bill of materials, in CycloneDX, read from the image itself.

The runtime carries the same metadata scanners read: a dpkg ``status.d`` entry for every Debian
package a file was taken from, and the ``dist-info/METADATA`` of every Python distribution.
This step exports the image's filesystem through the engine, reads those files and writes
``build/sbom.cdx.json`` (CycloneDX 1.6) with a package URL for each component, so any SBOM
tool (or ``trivy sbom``) can take it from there.
"""

from __future__ import annotations

import io
import logging
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path
from typing import cast

from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from docker import DockerClient
from packageurl import PackageURL

from scripts import engine, paths
from scripts.errors import ReportError
from scripts.image import ImageRecord, read_record
from scripts.settings import Settings

logger = logging.getLogger(__name__)

SBOM = paths.BUILD / "sbom.cdx.json"
STATUS_DIR = "var/lib/dpkg/status.d/"
DEBIAN_RELEASE = "etc/debian_version"


@dataclass(frozen=True)
class Package:
    """One component found in the image."""

    kind: str  # "deb" or "pypi"
    name: str
    version: str
    arch: str = ""

    def purl(self, distro: str) -> PackageURL:
        """The component's package URL."""
        if self.kind == "deb":
            qualifiers = {"arch": self.arch, "distro": distro} if distro else {"arch": self.arch}
            return PackageURL("deb", "debian", self.name, self.version, qualifiers)
        return PackageURL("pypi", None, self.name.lower().replace("_", "-"), self.version)


def image_files(docker_engine: DockerClient, image: str) -> Iterator[tuple[str, bytes]]:
    """``(path, content)`` of the metadata files in ``image``'s filesystem."""
    container = docker_engine.containers.create(image)
    try:
        # The SDK streams the export as bytes chunks (its stubs say str).
        chunks = cast("Iterator[bytes]", container.export())
        stream = io.BytesIO(b"".join(chunks))
    finally:
        container.remove(force=True)
    with tarfile.open(fileobj=stream) as archive:
        for member in archive.getmembers():
            name = member.name.lstrip("./")
            wanted = (
                name.startswith(STATUS_DIR)
                or name.endswith(".dist-info/METADATA")
                or name == DEBIAN_RELEASE
            )
            handle = archive.extractfile(member) if wanted and member.isfile() else None
            if handle is not None:
                yield name, handle.read()


def packages(files: Iterator[tuple[str, bytes]]) -> tuple[list[Package], str]:
    """The packages the metadata files describe, and the Debian release (``debian-13``)."""
    found: list[Package] = []
    distro = ""
    for name, content in files:
        text = content.decode("utf-8", errors="replace")
        if name == DEBIAN_RELEASE:
            distro = "debian-" + text.strip().split(".", 1)[0]
        elif name.startswith(STATUS_DIR):
            fields = HeaderParser().parsestr(text)
            found.append(
                Package("deb", fields["Package"], fields["Version"], fields["Architecture"])
            )
        else:
            fields = HeaderParser().parsestr(text)
            found.append(Package("pypi", fields["Name"], fields["Version"]))
    if not found:
        raise ReportError("the image holds no package metadata (status.d or dist-info)")
    return sorted(found, key=lambda p: (p.kind, p.name)), distro


def bom(image: ImageRecord, found: list[Package], distro: str) -> str:
    """The CycloneDX 1.6 JSON document for ``image``."""
    document = Bom()
    root = Component(
        name=image.tag.split(":", 1)[0],
        version=image.version,
        type=ComponentType.CONTAINER,
        bom_ref=image.id,
    )
    document.metadata.component = root
    components = []
    for package in found:
        purl = package.purl(distro)
        components.append(
            Component(
                name=package.name,
                version=package.version,
                type=_component_type(package),
                purl=purl,
                bom_ref=purl.to_string(),
            )
        )
    document.components.update(components)
    # The image depends on every package in it; without the edges the graph is incomplete.
    document.register_dependency(root, components)
    return str(JsonV1Dot6(document).output_as_string(indent=2))


def step(output: Path = SBOM) -> None:
    """doit sbom: write build/sbom.cdx.json for the recorded image."""
    settings = Settings.from_env()
    image = read_record()
    found, distro = packages(image_files(engine.client(settings), image.tag))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(bom(image, found, distro) + "\n")
    debs = sum(1 for p in found if p.kind == "deb")
    logger.info(
        "SBOM of %s: %d Debian and %d Python packages -> %s",
        image.tag,
        debs,
        len(found) - debs,
        output,
    )


def _component_type(package: Package) -> ComponentType:
    # base-files is the package that says which Debian this is (os-release).
    if package.kind == "deb" and package.name == "base-files":
        return ComponentType.OPERATING_SYSTEM
    return ComponentType.LIBRARY
