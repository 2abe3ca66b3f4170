"""``doit scan`` and ``nox -s audit``: every auditor (trivy, hadolint, bandit, compose-lint,
pip-audit), the accepted risks of ``.trivyignore.yaml``, one report and one gate
(``python -m scripts.scan.audit``)."""

from scripts.scan.secrets_scan import (
    secret_file_kind,
    secret_in_command,
    secret_kinds,
    secret_setting,
)
from scripts.scan.trivy import write_sbom as write_trivy_sbom

__all__ = [
    "secret_file_kind",
    "secret_in_command",
    "secret_kinds",
    "secret_setting",
    "write_trivy_sbom",
]
