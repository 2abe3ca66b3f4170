"""``doit base_image``, ``image``, ``sbom``, ``lock`` and ``push``: making the image and its
records (``build/base_image.json``, ``build/image.json``, ``build/sbom.cdx.json``)."""

from scripts.build.image import Provenance, build

__all__ = ["Provenance", "build"]
