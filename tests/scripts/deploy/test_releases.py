"""The release history (``build/releases.json``) and what a rollback goes back to."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from scripts.core.errors import ReleaseError
from scripts.deploy import releases
from scripts.deploy.releases import Release, load, previous


def _deploy(path: Path, image_id: str, rollback_to: int | None = None) -> Release:
    deployed = SimpleNamespace(
        image=f"zeroport:{image_id[:6]}", image_id=image_id, mode="local", target="compose"
    )
    return releases.record(deployed, revision=f"rev-{image_id}", rollback_to=rollback_to, path=path)


@pytest.fixture
def history(tmp_path: Path) -> Path:
    return tmp_path / "build" / "releases.json"


def test_releases_are_numbered_from_one_in_order(history: Path) -> None:
    first = _deploy(history, "aaaaaa1")
    second = _deploy(history, "bbbbbb2")
    assert (first.number, second.number) == (1, 2)
    assert [r.image_id for r in load(history)] == ["aaaaaa1", "bbbbbb2"]
    assert second.tag == "zeroport:bbbbbb"
    assert second.id == "bbbbbb2"
    assert second.deployed.endswith("Z")


def test_recording_the_running_image_again_adds_nothing(history: Path) -> None:
    _deploy(history, "aaaaaa1")
    again = _deploy(history, "aaaaaa1")
    assert again.number == 1
    assert len(load(history)) == 1


def test_the_same_image_after_another_one_is_a_new_release(history: Path) -> None:
    _deploy(history, "aaaaaa1")
    _deploy(history, "bbbbbb2")
    assert _deploy(history, "aaaaaa1").number == 3


def test_previous_is_the_release_before_the_current_one(history: Path) -> None:
    _deploy(history, "aaaaaa1")
    _deploy(history, "bbbbbb2")
    assert previous(history).number == 1


def test_after_a_rollback_the_next_rollback_goes_further_back(history: Path) -> None:
    _deploy(history, "aaaaaa1")
    _deploy(history, "bbbbbb2")
    _deploy(history, "cccccc3")
    target = previous(history)
    assert target.number == 2
    rolled = _deploy(history, target.image_id, rollback_to=target.number)
    assert (rolled.number, rolled.rollback_to) == (4, 2)
    assert previous(history).number == 1
    _deploy(history, "aaaaaa1", rollback_to=1)
    with pytest.raises(ReleaseError, match="nothing to roll back to"):
        previous(history)


def test_a_rollback_is_recorded_even_when_it_runs_the_newest_image_id(history: Path) -> None:
    _deploy(history, "aaaaaa1")
    rolled = _deploy(history, "aaaaaa1", rollback_to=1)
    assert rolled.number == 2
    assert load(history)[-1].rollback_to == 1


def test_previous_skips_releases_of_the_image_that_runs_now(history: Path) -> None:
    _deploy(history, "aaaaaa1")
    _deploy(history, "bbbbbb2")
    _deploy(history, "aaaaaa1")
    assert previous(history).image_id == "bbbbbb2"


def test_no_history_means_nothing_to_roll_back_to(history: Path) -> None:
    assert load(history) == []
    with pytest.raises(ReleaseError, match="no release has been deployed yet"):
        previous(history)


def test_the_first_release_has_nothing_before_it(history: Path) -> None:
    _deploy(history, "aaaaaa1")
    with pytest.raises(ReleaseError, match=r"release 1 \(zeroport:aaaaaa\) is the first one"):
        previous(history)


@pytest.mark.parametrize("content", ["not json", '{"number": 1}', '[{"number": 1}]'])
def test_an_unreadable_history_says_what_to_do(history: Path, content: str) -> None:
    history.parent.mkdir(parents=True)
    history.write_text(content)
    with pytest.raises(ReleaseError, match=r"is not a release history .* fix or remove it"):
        load(history)


def test_the_file_is_json_newest_last(history: Path) -> None:
    _deploy(history, "aaaaaa1")
    _deploy(history, "bbbbbb2")
    data = json.loads(history.read_text())
    assert [item["number"] for item in data] == [1, 2]
    assert data[1]["revision"] == "rev-bbbbbb2"
