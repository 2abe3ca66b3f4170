"""Make a Cloudflare account match a :class:`~tunnel.spec.TunnelSpec`: check first, then converge.

A run has three stages.

1. **Read** (:func:`tunnel.account.read_state`): the zone and its plan, the tunnel of the spec's
   name, its remote ingress, every DNS record at the hostname, both WAF phase entry points.
2. **Check**, still without writing: a tunnel of that name must be remotely managed; nothing at
   the hostname may block the CNAME (an A, AAAA or NS record, or a CNAME this project did not
   create); every rule the run would leave in each WAF phase must fit the zone's plan
   (:mod:`tunnel.plans`). Any of these stops the run with **zero writes**.
3. **Write**, in an order where each step leaves a state the next run completes:

   a. create the named tunnel, remotely managed (``config_src: cloudflare``), if missing;
   b. fetch its token and write it to a 0600 file at once (never printed or logged), so tunnel
      mode can deploy even if a later step fails;
   c. PUT its remote ingress configuration, if it differs;
   d. create or correct the proxied CNAME ``<hostname> -> <tunnel-id>.cfargotunnel.com``;
   e. PUT each WAF phase whose rules differ, the rules of others kept in place.

A write that fails raises a :class:`~tunnel.errors.ProvisionError` listing exactly what was
already changed; running again completes the job, and the account then looks exactly as a clean
run leaves it. A dry run (``plan``) stops after the checks and returns what it would change.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from cloudflare import Cloudflare

from tunnel.account import REMOTE, AccountState, Tunnel, read_state
from tunnel.cfapi import Api, make_client
from tunnel.errors import Conflict, PlanRefused, ProvisionError
from tunnel.model import render_remote
from tunnel.plans import check_plan, limits_for
from tunnel.settings import CloudflareSettings
from tunnel.spec import TunnelSpec
from tunnel.waf import CUSTOM_PHASE, PHASES, RATELIMIT_PHASE, Merge, merge_rules, rule_to_api

__all__ = ["ProvisionReport", "dns_comment", "provision", "write_secret"]

logger = logging.getLogger(__name__)

NEW_TUNNEL = "<new tunnel id>"
#: Record types that cannot share a name with a CNAME at Cloudflare
#: (developers.cloudflare.com/dns/manage-dns-records/troubleshooting/records-with-same-name/).
CNAME_CONFLICTS = ("A", "AAAA", "CNAME", "NS")


@dataclass(frozen=True, kw_only=True)
class ProvisionReport:
    """What a run changed (or, in a dry run, would change) and what was already right."""

    dry_run: bool
    tunnel_id: str | None
    changes: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    token_file: Path | None = None

    def lines(self) -> list[str]:
        """The report as lines for a terminal; never contains the tunnel token."""
        verb = "would change" if self.dry_run else "changed"
        out = [f"{verb}: {change}" for change in self.changes]
        out += [f"ok: {item}" for item in self.unchanged]
        if not self.changes:
            out.append("nothing to change")
        return out


def dns_comment(spec: TunnelSpec) -> str:
    """The comment on the CNAME this project creates: how a later run knows the record is its."""
    return f"zeroport: tunnel {spec.tunnel}"


def owns_record(spec: TunnelSpec, record: dict[str, Any], tunnel: Tunnel | None) -> bool:
    """Whether a DNS record at the hostname is the CNAME this project made for ``spec``."""
    if record.get("type") != "CNAME":
        return False
    points_at_tunnel = tunnel is not None and record.get("content") == tunnel.cname_target
    return points_at_tunnel or record.get("comment") == dns_comment(spec)


class _Provisioner:
    def __init__(self, spec: TunnelSpec, api: Api, state: AccountState) -> None:
        self.spec = spec
        self.api = api
        self.state = state
        self.merges = self._merges()

    # --- checks (no writes) ----------------------------------------------------------------

    def check(self) -> None:
        """Refuse, before any write, what would fail or clobber something not ours."""
        spec, tunnel = self.spec, self.state.tunnel
        if tunnel is not None and tunnel.managed != REMOTE:
            how = (
                "is locally managed"
                if tunnel.managed == "local"
                else "is not marked remotely managed by the API (no config_src, no remote_config)"
            )
            raise Conflict(
                f"tunnel {spec.tunnel!r} ({tunnel.id}) {how}, so its ingress lives in a "
                "config.yml on the connector and pushing one would not reach it; rename the "
                "tunnel in tunnel.yaml, or migrate it to remote management in the Zero Trust "
                "dashboard"
            )
        for record in self.state.records:
            kind = str(record.get("type"))
            if kind in CNAME_CONFLICTS and not owns_record(spec, record, tunnel):
                what = f"a DNS {kind} record ({record.get('content')})"
                raise Conflict(
                    f"{spec.hostname} already has {what} that this project did not create and "
                    "that cannot coexist with the tunnel's CNAME; delete that record in the "
                    "dashboard, or choose another hostname in tunnel.yaml"
                )
        limits = limits_for(self.state.plan)
        refusals = check_plan(
            limits,
            {merge.phase: merge.rules for merge in self.merges},
            ref_prefix=spec.ref_prefix,
        )
        if refusals:
            raise PlanRefused(refusals)

    # --- plan ------------------------------------------------------------------------------

    def _merges(self) -> list[Merge]:
        wanted = {CUSTOM_PHASE: self.spec.custom_rules, RATELIMIT_PHASE: self.spec.rate_limits}
        out = []
        for phase in PHASES:
            desired = [rule_to_api(r, ref_prefix=self.spec.ref_prefix) for r in wanted[phase]]
            existing = self.state.rules(phase)
            out.append(merge_rules(phase, existing, desired, ref_prefix=self.spec.ref_prefix))
        return out

    def desired_config(self) -> dict[str, Any]:
        inner: dict[str, Any] = render_remote(self.spec.ingress_config())["config"]
        return inner

    def config_differs(self) -> bool:
        desired = self.desired_config()
        current = self.state.remote_config
        return any(
            _prune(current.get(key)) != _prune(desired.get(key))
            for key in ("ingress", "originRequest")
        )

    def our_record(self) -> dict[str, Any] | None:
        found = [r for r in self.state.records if owns_record(self.spec, r, self.state.tunnel)]
        return found[0] if found else None

    def cname_target(self) -> str:
        tunnel = self.state.tunnel
        return tunnel.cname_target if tunnel is not None else f"{NEW_TUNNEL}.cfargotunnel.com"

    def dns_change(self) -> str | None:
        record = self.our_record()
        target = self.cname_target()
        if record is None:
            return f"create proxied CNAME {self.spec.hostname} -> {target}"
        if record.get("content") != target or record.get("proxied") is not True:
            return (
                f"change CNAME {self.spec.hostname} from {record.get('content')} "
                f"(proxied={record.get('proxied')}) to {target} (proxied=True)"
            )
        return None

    def plan(self) -> tuple[list[str], list[str]]:
        spec, tunnel = self.spec, self.state.tunnel
        changes: list[str] = []
        unchanged = [f"every rule fits the zone's plan ({self.state.plan_name})"]
        if tunnel is None:
            changes.append(f"create tunnel {spec.tunnel!r} (remotely managed)")
        else:
            unchanged.append(f"tunnel {spec.tunnel!r} exists ({tunnel.id})")
        if tunnel is None or self.config_differs():
            changes.append(
                f"put remote ingress of {spec.tunnel!r}: {spec.hostname} -> {spec.service}, "
                f"else {spec.fallback}"
            )
        else:
            unchanged.append(f"remote ingress of {spec.tunnel!r} is up to date")
        dns = self.dns_change()
        if dns:
            changes.append(dns)
        else:
            unchanged.append(f"CNAME {spec.hostname} -> {self.cname_target()} (proxied)")
        for merge in self.merges:
            changes.extend(merge.changes)
            if not merge.changes:
                unchanged.append(
                    f"{merge.phase}: rules up to date ({merge.kept} rules not ours kept)"
                )
            elif merge.kept:
                changes.append(f"{merge.phase}: keep {merge.kept} rules this spec does not own")
        return changes, unchanged

    # --- writes ----------------------------------------------------------------------------

    def ensure_tunnel(self) -> Tunnel:
        if self.state.tunnel is not None:
            return self.state.tunnel
        spec, api = self.spec, self.api
        logger.info("creating tunnel %s", spec.tunnel)
        created = api.call(
            f"create tunnel {spec.tunnel}",
            lambda: api.client.zero_trust.tunnels.cloudflared.create(
                account_id=api.account_id, name=spec.tunnel, config_src="cloudflare"
            ),
        )
        if not created.id:
            raise ProvisionError("Cloudflare created the tunnel but returned no id", api.done)
        tunnel = Tunnel(id=created.id, name=spec.tunnel, managed=REMOTE)
        self.state.tunnel = tunnel
        self.state.remote_config = {}
        api.changed(
            f"created tunnel {spec.tunnel!r} ({created.id}); to undo: "
            "python -m tunnel destroy tunnel.yaml"
        )
        return tunnel

    def write_token(self, tunnel: Tunnel, token_file: Path) -> bool:
        api = self.api
        token = api.call(
            f"fetch the token of tunnel {self.spec.tunnel}",
            lambda: api.client.zero_trust.tunnels.cloudflared.token.get(
                tunnel_id=tunnel.id, account_id=api.account_id
            ),
        )
        try:
            return write_secret(token_file, str(token))
        except OSError as exc:
            raise ProvisionError(
                f"could not write the tunnel token to {token_file}: {exc.strerror}; "
                "fix the path or its permissions and run again",
                api.done,
            ) from None

    def apply_ingress(self, tunnel: Tunnel, *, created_now: bool) -> None:
        if not self.config_differs():
            return
        spec, api = self.spec, self.api
        api.call(
            f"put the configuration of tunnel {spec.tunnel}",
            lambda: api.client.zero_trust.tunnels.cloudflared.configurations.update(
                tunnel_id=tunnel.id,
                account_id=api.account_id,
                config=cast(Any, self.desired_config()),
            ),
        )
        if created_now:
            api.changed(f"set the remote ingress of the new tunnel {spec.tunnel!r}")
        else:
            api.changed(
                f"replaced the remote ingress of tunnel {spec.tunnel!r} (previous version "
                f"{self.state.remote_version}, was {self.state.remote_config or 'empty'})"
            )

    def apply_dns(self) -> None:
        if self.dns_change() is None:
            return
        spec, api = self.spec, self.api
        target = self.cname_target()
        record = self.our_record()
        # Both calls send the whole record: PUT replaces it, so anything left out is reset.
        fields: dict[str, Any] = {
            "zone_id": self.state.zone_id,
            "type": "CNAME",
            "name": spec.hostname,
            "content": target,
            "proxied": True,
            "ttl": 1,
            "comment": dns_comment(spec),
        }
        if record is None:
            created = api.call(
                f"create the DNS record {spec.hostname}",
                lambda: api.client.dns.records.create(**fields),
            )
            api.changed(
                f"created proxied CNAME {spec.hostname} -> {target} "
                f"(record {getattr(created, 'id', None)})"
            )
            return
        record_id = str(record["id"])
        api.call(
            f"update the DNS record {spec.hostname}",
            lambda: api.client.dns.records.update(dns_record_id=record_id, **fields),
        )
        api.changed(
            f"changed CNAME {spec.hostname} from {record.get('content')} "
            f"(proxied={record.get('proxied')}) to {target} (proxied=True)"
        )

    def apply_phase(self, merge: Merge) -> None:
        api = self.api
        previous = self.state.phases.get(merge.phase, {})
        logger.info("putting %d rules into phase %s", len(merge.rules), merge.phase)
        api.call(
            f"update the {merge.phase} rules of zone {self.spec.zone}",
            lambda: api.client.rulesets.phases.update(
                cast(Any, merge.phase), zone_id=self.state.zone_id, rules=cast(Any, merge.rules)
            ),
        )
        version = previous.get("version", "none")
        api.changed(
            f"replaced the {merge.phase} rules ({'; '.join(merge.changes)}; previous ruleset "
            f"version {version})"
        )


def _prune(value: object) -> object:
    """Drop empty values at any depth: the API echoes ``"originRequest": {}`` and the like."""
    if isinstance(value, dict):
        pruned = {key: _prune(item) for key, item in value.items()}
        return {key: item for key, item in pruned.items() if item not in (None, "", {}, [])} or None
    if isinstance(value, list):
        return [_prune(item) for item in value] or None
    return value


def write_secret(path: Path, secret: str) -> bool:
    """Write ``secret`` to ``path`` with mode 0600 (atomically); False if it was already there."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.is_file() and path.read_text(encoding="utf-8") == secret:
        path.chmod(0o600)
        return False
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secret)
    tmp.chmod(0o600)
    tmp.replace(path)
    return True


def provision(
    spec: TunnelSpec,
    settings: CloudflareSettings,
    *,
    dry_run: bool = False,
    token_file: Path | None = None,
    client: Cloudflare | None = None,
) -> ProvisionReport:
    """Make the account match ``spec``; with ``dry_run`` only read, check and return the plan.

    The tunnel token goes to ``token_file`` (mode 0600) when given, and nowhere else.
    Raises a ProvisionError subclass: before any write when a check refuses (Conflict,
    PlanRefused, ZoneNotFound), or naming what already changed when a write fails.
    """
    api = Api(client or make_client(settings), settings.account_id)
    worker = _Provisioner(spec, api, read_state(api, spec))
    worker.check()
    changes, unchanged = worker.plan()
    if dry_run:
        logger.info("dry run: %d change(s) planned, nothing written", len(changes))
        tunnel = worker.state.tunnel
        return ProvisionReport(
            dry_run=True,
            tunnel_id=tunnel.id if tunnel else None,
            changes=changes,
            unchanged=unchanged,
        )
    created_now = worker.state.tunnel is None
    tunnel = worker.ensure_tunnel()
    if token_file is not None:
        if worker.write_token(tunnel, token_file):
            api.changed(f"wrote the tunnel token to {token_file} (mode 0600)")
        else:
            unchanged.append(f"tunnel token in {token_file} is current")
    worker.apply_ingress(tunnel, created_now=created_now)
    worker.apply_dns()
    for merge in worker.merges:
        if merge.changed:
            worker.apply_phase(merge)
    # The report lists what was actually done (with what it replaced), not the plan.
    return ProvisionReport(
        dry_run=False,
        tunnel_id=tunnel.id,
        changes=list(api.done),
        unchanged=unchanged,
        token_file=token_file,
    )
