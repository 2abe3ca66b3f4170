"""Reading cloudflared's own verdict, with a stand-in program instead of cloudflared."""

from __future__ import annotations

import sys
from pathlib import Path

from tunnel.cloudflared import validate_with_cloudflared


def stand_in(tmp_path: Path, stdout: str, stderr: str, code: int) -> str:
    script = tmp_path / "cloudflared"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "assert sys.argv[1:3] == ['tunnel', '--config']\n"
        "assert sys.argv[4:] == ['ingress', 'validate']\n"
        f"sys.stdout.write({stdout!r}); sys.stderr.write({stderr!r}); sys.exit({code})\n"
    )
    script.chmod(0o755)
    return str(script)


def test_ok(tmp_path: Path) -> None:
    binary = stand_in(tmp_path, "Validating rules from c.yml\nOK\n", "", 0)
    verdict = validate_with_cloudflared(tmp_path / "c.yml", binary=binary)
    assert verdict.ok
    assert verdict.message == "OK"


def test_rejection_reports_cloudflared_last_line(tmp_path: Path) -> None:
    binary = stand_in(
        tmp_path, "Validating rules from c.yml\n", "Validation failed: bad thing\n", 1
    )
    verdict = validate_with_cloudflared(tmp_path / "c.yml", binary=binary)
    assert not verdict.ok
    assert verdict.message == "Validation failed: bad thing"


def test_exit_zero_without_ok_is_not_a_pass(tmp_path: Path) -> None:
    # cloudflared prints "Incorrect Usage" and still exits 0 when flags are misplaced.
    binary = stand_in(tmp_path, "Incorrect Usage: flag provided but not defined\n", "", 0)
    assert not validate_with_cloudflared(tmp_path / "c.yml", binary=binary).ok


def test_timeout(tmp_path: Path) -> None:
    script = tmp_path / "cloudflared"
    script.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(5)\n")
    script.chmod(0o755)
    verdict = validate_with_cloudflared(tmp_path / "c.yml", binary=str(script), timeout=0.5)
    assert verdict == verdict.__class__(ok=False, message="did not finish within 0.5 s")
