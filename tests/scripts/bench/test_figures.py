"""The README's measured table comes from the reports: what a reader sees is what was measured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.bench import figures
from scripts.bench.figures import Row
from scripts.bench.report import MIB, BenchResult
from scripts.core.errors import ReportError
from tests.scripts.bench.support import hold, point, result, round_, soak

#: ``python -m scripts.bench.image --rebuild --clean-builds`` as it writes build/bench/image.json.
IMAGE_REPORT = {
    "recorded": "20261203T212800Z",
    "image": "zeroport:d004b5bc9494",
    "size_mb": 17.5,
    "gzip_mb": 9.5,
    "first_200_s": {"median": 0.754, "runs": [0.754, 0.74, 0.682, 0.858, 0.792]},
    "rebuild": {"seconds": 14.0, "changed_layers": [2], "layers": 3},
    "clean_builds": {"same_layers": True, "same_id": True, "id": "sha256:d004"},
}


def test_a_target_met_is_stated_and_a_miss_says_by_how_much() -> None:
    assert figures.verdict(17.5, 20, at_most=True, unit=" MB", digits=1) == "≤ 20 MB"
    assert figures.verdict(1.31, 1.5, at_most=False, unit="×") == "≥ 1.5×: **missed by 0.19×**"
    assert figures.verdict(134.8, 120, at_most=True, unit=" MiB", digits=1) == (
        "≤ 120 MiB: **missed by 14.8 MiB**"
    )


def test_the_image_rows_say_what_was_met_and_how_far_the_seed_target_is() -> None:
    rows = {row.what: row for row in figures.image_rows(IMAGE_REPORT, "2026-12-03")}
    size = rows["runtime image size"]
    assert (size.figure, size.target) == (
        "17.5 MB",
        "≤ 20 MB; the seed's < 15 MB: **missed by 2.5 MB**",
    )
    assert rows["`docker run` → first 200"].figure == "0.75 s (median of 5)"
    assert rows["rebuild after an app-only change"].figure == "14.0 s; layer 2 of 3 changed"
    assert rows["two clean builds"].figure == "same layers, same image ID"
    assert {row.command for row in rows.values()} == {figures.IMAGE_COMMAND}


def service_run(service_rps: float, stock_rps: float) -> BenchResult:
    bench = result(service_rps=service_rps)
    bench.targets = ["service", "stock", "ceiling"]
    bench.points.append(point("stock", 64, stock_rps, 60.0))
    bench.rounds = [round_(service_rps, 4000, 40, 20, stock=stock_rps)]
    bench.holds = [hold("idle", mem_peak=130 * MIB)]
    return bench


def test_the_service_rows_are_judged_by_the_gates_own_targets() -> None:
    bench = service_run(2886, 2064)
    rows = {row.what.split(" (")[0]: row for row in figures.service_rows(bench, "2026-12-03")}
    throughput = rows["service vs stock Quart on the `hypercorn` CLI"]
    assert throughput.figure == "1.40× stock (2,886 vs 2,064 rps)"
    assert throughput.target == "≥ 1.5×: **missed by 0.10×**"
    assert rows["p99, service vs stock"].target == "≤ 0.6×: **missed by 0.07×**"  # 40 vs 60 ms
    assert rows["peak memory holding 10,000 idle connections"].figure == "130.0 MiB"
    assert rows["service memory at 64 connections"].target == "≤ 50 MiB"


def test_the_bench_rows_show_the_holds_the_scaling_and_the_soak() -> None:
    bench = result(service_rps=2586)
    bench.holds = [hold("busy"), hold("idle", answered=10_000)]
    bench.soak = soak(0.0)
    bench.gate = {"ok": False, "baseline": "20261203T225225Z"}
    rows = figures.bench_rows(bench, "2026-12-03")
    assert rows[0].target == "gate against the baseline of 2026-12-03: **failed**"
    text = "\n".join(row.markdown() for row in rows)
    assert "| service container, 64 connections, 1.0 CPU | 2,586 rps, 0.65 of the ceiling's" in text
    assert "| 10,000 idle connections held 10 s | kept running and answering; 10,000 answered" in (
        text
    )
    assert "| 1 → 2 swarm replicas | 1,500 → 2,400 rps, scaling efficiency 0.80 | ≥ 0.6 |" in text
    assert "slope 0.00 MiB/min | ≤ 2 MiB/min |" in text


def test_a_climbing_soak_is_shown_as_a_miss() -> None:
    bench = result()
    bench.soak = soak(5.0)
    (row,) = figures.soak_rows(bench, "2026-12-03")
    assert "**missed by" in row.target
    assert row.command == figures.SOAK_COMMAND


def test_the_security_rows_count_the_checks_and_quote_the_churn_evidence(tmp_path: Path) -> None:
    report = {
        "started": "2026-12-03T23:51:24Z",  # the security report's form
        "counts": {"checks": 90, "failed": 1},
        "grades": {"GET /": {"letter": "A+", "score": 100, "findings": []}},
        "sections": {
            "attacks": [
                {"id": "ATK-CHURN-RELEASED", "ok": True, "evidence": "CLOSE-WAIT 0"},
                {"id": "ATK-CHURN-MEMORY", "ok": True, "evidence": "RSS +0.4 MiB"},
            ]
        },
    }
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    security, churn = figures.update({"security": path}, measured=tmp_path / "measured.json")
    assert security.measured == "2026-12-03"
    assert security.figure == "89 of 90 checks pass; header grade A+ (GET /)"
    assert churn.figure == "CLOSE-WAIT 0; RSS +0.4 MiB"


def test_rerunning_one_benchmark_replaces_only_its_rows(tmp_path: Path) -> None:
    measured = tmp_path / "measured.json"
    image = tmp_path / "image.json"
    image.write_text(json.dumps(IMAGE_REPORT))
    security_row = planted_row("w", "f", source="security")
    measured.write_text(json.dumps({"rows": [vars(security_row)]}))

    rows = figures.update({"image": image, "bench": tmp_path / "absent.json"}, measured=measured)

    assert [row.source for row in rows] == ["image"] * 5 + ["security"]
    assert figures.read_rows(measured) == rows
    assert rows[0].measured == "2026-12-03"


def test_a_report_of_the_wrong_kind_is_named(tmp_path: Path) -> None:
    image = tmp_path / "image.json"
    image.write_text(json.dumps({"size_mb": 17.5}))
    with pytest.raises(ReportError, match=r"image.json is not a image report .*rerun it"):
        figures.update({"image": image}, measured=tmp_path / "measured.json")


def test_the_readme_table_is_replaced_between_its_markers_only() -> None:
    rows = figures.image_rows(IMAGE_REPORT, "2026-12-03")
    readme = f"# zeroport\n\nbefore\n\n{figures.table([])}\n\nafter\n"
    rendered = figures.render_into(readme, rows)
    assert rendered.startswith("# zeroport\n\nbefore\n\n")
    assert rendered.endswith("\n\nafter\n")
    assert figures.readme_table(rendered) == figures.table(rows)


def test_a_readme_without_the_markers_says_where_they_go() -> None:
    with pytest.raises(ReportError, match="put both markers"):
        figures.readme_table("# zeroport\n")


def planted_row(what: str, figure: str, *, source: str = "image") -> Row:
    return Row(source=source, what=what, figure=figure, target="", command="c", measured="d")


def test_a_figure_mark_is_rewritten_with_its_rows_figure() -> None:
    row = planted_row("runtime image size", "17.5 MB")
    text = "Today: <!-- figure: runtime-image-size -->25.3 MB<!-- /figure --> in all."
    assert figures.marks_into(text, [row]) == (
        "Today: <!-- figure: runtime-image-size -->17.5 MB<!-- /figure --> in all."
    )


def test_a_figure_mark_that_names_no_row_is_an_error_naming_the_keys() -> None:
    row = planted_row("`docker save \\| gzip -9`", "9.5 MB")
    with pytest.raises(ReportError, match=r"'image-size' that no row.*docker-save-gzip-9"):
        figures.marks_into("<!-- figure: image-size -->1 MB<!-- /figure -->", [row], doc="x.md")
