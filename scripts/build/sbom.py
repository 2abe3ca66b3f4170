"""The image's bill of materials, in CycloneDX, read from the image itself.

The runtime carries the same metadata scanners read: a dpkg ``status.d`` entry for every Debian
package a file was taken from, and the ``dist-info/METADATA`` of every Python distribution.
This step exports the image's filesystem through the engine, reads those files and writes
``build/sbom.cdx.json`` (CycloneDX 1.6) with a package URL for each component, so any SBOM
tool (or ``trivy sbom``) can take it from there.

Then trivy writes its own CycloneDX SBOM of the same image (``build/scan/trivy-sbom.cdx.json``)
and the two must list the same Debian and Python packages at the same versions: a package the
image's metadata hides from one reader would hide it from a vulnerability scan too. Where
trivy is not installed the comparison fails, unless ``allow_missing=trivy`` says so.
"""

from __future__ import annotations

import io
import json
import logging
import re
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path
from typing import cast

from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from docker import DockerClient
from packageurl import PackageURL

from scripts.core import engine, paths
from scripts.core.errors import GateFailed, ReportError, ToolMissing
from scripts.core.records import ImageRecord, read_record
from scripts.core.settings import Settings
from scripts.scan import write_trivy_sbom

logger = logging.getLogger(__name__)

SBOM = paths.BUILD / "sbom.cdx.json"
#: trivy's SBOM of the same image, for the comparison.
TRIVY_SBOM = paths.SCAN_DIR / "trivy-sbom.cdx.json"
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


#: A component's identity in the comparison: (purl type, normalised name).
Key = tuple[str, str]


def component_versions(document: Mapping[str, object]) -> dict[Key, str]:
    """``(deb|pypi, name) -> version`` for every Debian or Python component of a CycloneDX BOM.

    Names are compared as their package URLs spell them, Python ones normalised as PEP 503
    says (``Flask`` and ``flask``, ``prometheus_client`` and ``prometheus-client`` are one).
    """
    found: dict[Key, str] = {}
    components = document.get("components")
    for component in components if isinstance(components, list) else []:
        if not isinstance(component, dict) or not isinstance(component.get("purl"), str):
            continue
        purl = PackageURL.from_string(component["purl"])
        if purl.type not in {"deb", "pypi"}:
            continue
        name = purl.name
        if purl.type == "pypi":
            name = re.sub(r"[-_.]+", "-", name).lower()
        found[(purl.type, name)] = str(component.get("version") or purl.version or "")
    return found


def differences(ours: Mapping[Key, str], theirs: Mapping[Key, str]) -> list[str]:
    """What one SBOM lists that the other does not, or at another version; empty when equal."""
    lines = []
    for key in sorted(ours.keys() | theirs.keys()):
        kind, name = key
        mine, trivys = ours.get(key), theirs.get(key)
        if trivys is None:
            lines.append(f"{kind} {name} {mine} only in {SBOM.name}")
        elif mine is None:
            lines.append(f"{kind} {name} {trivys} only in trivy's")
        elif mine != trivys:
            lines.append(f"{kind} {name} {mine} here, {trivys} in trivy's")
    return lines


def compare_with_trivy(
    settings: Settings, image: str, document: Mapping[str, object], *, allow_missing: bool
) -> None:
    """Check ``document`` against trivy's SBOM of ``image``; :class:`GateFailed` if they differ."""
    try:
        theirs = write_trivy_sbom(image, output=TRIVY_SBOM, env=settings.tool_env())
    except ToolMissing as error:
        if not allow_missing:
            raise
        logger.warning("SBOM not compared with trivy's: %s (allowed by allow_missing=trivy)", error)
        return
    listed = component_versions(theirs)
    found = differences(component_versions(document), listed)
    if found:
        shown = "; ".join(found[:5]) + (f" (+{len(found) - 5} more)" if len(found) > 5 else "")
        raise GateFailed(
            f"sbom: trivy reads other packages in {image} than {SBOM.name} does: {shown}; "
            f"compare {SBOM.relative_to(paths.ROOT)} with {TRIVY_SBOM.relative_to(paths.ROOT)}"
        )
    logger.info("SBOM matches trivy's: the same %d packages at the same versions", len(listed))


def step(output: Path = SBOM, *, allow_missing: str = "") -> None:
    """doit sbom: write build/sbom.cdx.json for the recorded image; check it against trivy's."""
    settings = Settings.from_env()
    image = read_record()
    found, distro = packages(image_files(engine.client(settings), image.tag))
    output.parent.mkdir(parents=True, exist_ok=True)
    document = bom(image, found, distro)
    output.write_text(document + "\n")
    debs = sum(1 for p in found if p.kind == "deb")
    logger.info(
        "SBOM of %s: %d Debian and %d Python packages -> %s",
        image.tag,
        debs,
        len(found) - debs,
        output,
    )
    allowed = {name.strip() for name in allow_missing.split(",")}
    compare_with_trivy(settings, image.tag, json.loads(document), allow_missing="trivy" in allowed)


def _component_type(package: Package) -> ComponentType:
    # base-files is the package that says which Debian this is (os-release).
    if package.kind == "deb" and package.name == "base-files":
        return ComponentType.OPERATING_SYSTEM
    return ComponentType.LIBRARY
