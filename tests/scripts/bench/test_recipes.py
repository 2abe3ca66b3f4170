"""The benchmark images' tags: a changed recipe or base builds anew (no Docker)."""

from __future__ import annotations

from pathlib import Path

from scripts.bench import loadgen, recipes

BASE = "zeroport-base/debian:trixie-minbase"


def test_the_tag_follows_every_file_of_the_recipe_and_the_base(tmp_path: Path) -> None:
    dockerfile, script = tmp_path / "Dockerfile", tmp_path / "app.py"
    dockerfile.write_text("FROM x\n")
    script.write_text("print(1)\n")
    first = recipes.tag("zeroport-x", BASE, [dockerfile, script])

    assert first == recipes.tag("zeroport-x", BASE, [dockerfile, script])
    assert first.startswith("zeroport-x:")
    assert first != recipes.tag(
        "zeroport-x", "debian:trixie-slim@sha256:" + "0" * 64, [dockerfile, script]
    )
    script.write_text("print(2)\n")
    assert first != recipes.tag("zeroport-x", BASE, [dockerfile, script])


def test_the_load_generators_recipe_is_its_whole_directory() -> None:
    assert {path.name for path in loadgen.recipe()} == {"Dockerfile", "spread.lua"}
