"""The Cloudflare steps: the tunnel's config files, and provisioning from ``tunnel.yaml``.

``tunnel_config`` renders the declarative spec into cloudflared's two forms and validates them
with cloudflared's own rules (:mod:`tunnel.validate`): ``build/tunnel/config.yml`` for a
locally-managed tunnel and ``build/tunnel/ingress.json``, the body the API's configurations
endpoint takes for a remotely-managed one. ``tunnel`` provisions the account (tunnel, DNS, WAF,
rate limits) and writes the tunnel token to ``secrets/tunnel-token`` (mode 0600);
``tunnel_destroy`` removes from the account what ``tunnel`` created (the work is
:func:`tunnel.destroy.destroy`; the token file stays, useless, until the next ``tunnel``).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from scripts.core import paths
from scripts.core.errors import VerifyError
from scripts.core.options import flag_var
from scripts.deploy import stack
from tunnel import model, validate
from tunnel.errors import PlanRefused
from tunnel.settings import CloudflareSettings
from tunnel.spec import load_spec

logger = logging.getLogger(__name__)

SPEC = paths.ROOT / "tunnel.yaml"
TUNNEL_DIR = paths.BUILD / "tunnel"
CONFIG_YML = TUNNEL_DIR / "config.yml"
INGRESS_JSON = TUNNEL_DIR / "ingress.json"
TOKEN_FILE = paths.SECRETS / "tunnel-token"


def config_step(spec_path: Path = SPEC) -> None:
    """doit tunnel_config: render and validate the ingress from the spec."""
    spec = load_spec(spec_path)
    config = spec.ingress_config()
    problems = validate.check_config(config, source=str(spec_path))
    if problems:
        raise VerifyError("; ".join(str(problem) for problem in problems))
    TUNNEL_DIR.mkdir(parents=True, exist_ok=True)
    CONFIG_YML.write_text(model.render_yaml(config))
    INGRESS_JSON.write_text(json.dumps(model.render_remote(config), indent=2) + "\n")
    logger.info(
        "tunnel %s: %d ingress rules valid -> %s, %s",
        spec.tunnel,
        len(config.ingress),
        CONFIG_YML.relative_to(paths.ROOT),
        INGRESS_JSON.relative_to(paths.ROOT),
    )


def provision_step(dry_run: str = "0", spec_path: Path = SPEC) -> None:
    """doit tunnel: make the Cloudflare account match the spec (``dry_run=1``: plan only)."""
    # Imported here, not at the top: the Cloudflare SDK takes ~0.35 s to import, and dodo.py
    # imports this module for every doit command, most of which never provision anything.
    from tunnel import provision

    plan_only = flag_var({"dry_run": dry_run}, "dry_run", default=False)
    spec = load_spec(spec_path)
    try:
        report = provision.provision(
            spec,
            CloudflareSettings.from_env(),
            dry_run=plan_only,
            token_file=None if plan_only else TOKEN_FILE,
        )
    except PlanRefused as exc:
        # doit shows the failure as one line; every refusal is worth reading before a rerun.
        for refusal in exc.refusals:
            logger.error("%s", refusal)
        raise
    for line in report.lines():
        logger.info("%s", line)
    if not plan_only:
        hand_over(TOKEN_FILE, stack.connector_user())


def destroy_step(dry_run: str = "0", spec_path: Path = SPEC) -> None:
    """doit tunnel_destroy: remove the tunnel, its CNAME and its rules (``dry_run=1``: plan)."""
    from tunnel import destroy  # the SDK import, as in provision_step

    plan_only = flag_var({"dry_run": dry_run}, "dry_run", default=False)
    report = destroy.destroy(load_spec(spec_path), CloudflareSettings.from_env(), dry_run=plan_only)
    for line in report.lines():
        logger.info("%s", line)


def hand_over(token_file: Path, user: str) -> None:
    """Make the token file cloudflared's (it reads it as ``user`` through a bind mount).

    Only root can give a file away; anyone else is told the one command that does it.
    """
    uid_text, _, gid_text = user.partition(":")
    uid, gid = int(uid_text), int(gid_text or uid_text)
    if stack.readable_by(token_file, user):
        return
    try:
        os.chown(token_file, uid, gid)
    except PermissionError:
        logger.warning(
            "cloudflared (uid %s) cannot read %s yet; run: sudo chown %s %s",
            uid,
            token_file,
            user,
            token_file,
        )
        return
    logger.info("%s now belongs to cloudflared's user %s (mode 0600)", token_file, user)
