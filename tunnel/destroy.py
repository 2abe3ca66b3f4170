"""Remove from a Cloudflare account exactly what provisioning a spec created, and nothing else.

What the project owns, and only that, goes; each step runs only if its object is there, so a
run that stopped half-way is finished by the next one:

1. the CNAME at the spec's hostname that points at the tunnel (or carries the project's
   comment): the public name stops reaching the tunnel first;
2. the WAF custom rules and rate-limiting rules whose ref starts with the spec's prefix (every
   other rule of both phases stays, in its place);
3. the tunnel, remotely managed, of the spec's name: first its connections are cleaned up
   (Cloudflare refuses to delete a tunnel that still has some), then the tunnel.

Everything else in the account and the zone stays: other records at the hostname, other
tunnels, a locally-managed tunnel of the same name (the project never creates those).
Stop the connectors first (``doit down``), or they reconnect between steps 3a and 3b.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import cloudflare
from cloudflare import Cloudflare

from tunnel.account import REMOTE, AccountState, read_state
from tunnel.cfapi import Api, error_codes, make_client, map_error
from tunnel.errors import Conflict
from tunnel.provision import ProvisionReport, owns_record
from tunnel.settings import CloudflareSettings
from tunnel.spec import TunnelSpec
from tunnel.waf import PHASES, Merge, merge_rules

__all__ = ["destroy"]

logger = logging.getLogger(__name__)

#: The API's code for "this tunnel still has connections" (github.com/tuanngocptn/nport/pull/16).
ACTIVE_CONNECTIONS = 1022


class _Teardown:
    def __init__(self, spec: TunnelSpec, api: Api, state: AccountState) -> None:
        self.spec = spec
        self.api = api
        self.state = state
        self.records = [r for r in state.records if owns_record(spec, r, state.tunnel)]
        self.merges = [
            merge_rules(phase, state.rules(phase), [], ref_prefix=spec.ref_prefix)
            for phase in PHASES
        ]

    def owned_refs(self, phase: str) -> list[str]:
        """The refs of the spec's rules now in ``phase``."""
        refs = (str(rule.get("ref", "")) for rule in self.state.rules(phase))
        return [ref for ref in refs if ref.startswith(self.spec.ref_prefix)]

    def plan(self) -> tuple[list[str], list[str]]:
        spec, tunnel = self.spec, self.state.tunnel
        changes: list[str] = []
        kept: list[str] = []
        for record in self.records:
            changes.append(f"delete CNAME {spec.hostname} -> {record.get('content')}")
        if not self.records:
            kept.append(f"no CNAME of this project at {spec.hostname}")
        others = [r for r in self.state.records if r not in self.records]
        if others:
            kinds = ", ".join(sorted({str(r.get("type")) for r in others}))
            kept.append(f"{len(others)} other DNS record(s) at {spec.hostname} ({kinds}) stay")
        for merge in self.merges:
            removed = self.owned_refs(merge.phase)
            if removed:
                changes.append(f"{merge.phase}: delete {', '.join(removed)}")
            kept.append(f"{merge.phase}: {merge.kept} rules not ours stay")
        if tunnel is None:
            kept.append(f"no tunnel named {spec.tunnel!r}")
        elif tunnel.managed != REMOTE:
            kept.append(
                f"tunnel {spec.tunnel!r} ({tunnel.id}) is not remotely managed, so this project "
                "did not create it: it stays"
            )
        else:
            changes.append(f"clean up the connections of tunnel {spec.tunnel!r} ({tunnel.id})")
            changes.append(f"delete tunnel {spec.tunnel!r} ({tunnel.id})")
        return changes, kept

    def apply(self) -> None:
        spec, api, state = self.spec, self.api, self.state
        for record in self.records:
            with api.calling(f"delete the DNS record {spec.hostname}"):
                api.client.dns.records.delete(str(record["id"]), zone_id=state.zone_id)
            api.changed(f"deleted CNAME {spec.hostname} -> {record.get('content')}")
        for merge in self.merges:
            if merge.changed:
                self.remove_rules(merge)
        tunnel = state.tunnel
        if tunnel is None or tunnel.managed != REMOTE:
            return
        api.call(
            f"clean up the connections of tunnel {spec.tunnel}",
            lambda: api.client.zero_trust.tunnels.cloudflared.connections.delete(
                tunnel.id, account_id=api.account_id
            ),
        )
        api.changed(f"cleaned up the connections of tunnel {spec.tunnel!r}")
        try:
            api.client.zero_trust.tunnels.cloudflared.delete(tunnel.id, account_id=api.account_id)
        except cloudflare.APIStatusError as exc:
            if ACTIVE_CONNECTIONS in error_codes(exc):
                raise Conflict(
                    f"Cloudflare will not delete tunnel {spec.tunnel!r}: a connector connected "
                    "again after the cleanup (error 1022); stop cloudflared (doit down "
                    "mode=tunnel) and run the teardown again",
                    api.done,
                ) from None
            raise map_error(exc, f"delete tunnel {spec.tunnel}").with_done(api.done) from None
        except cloudflare.CloudflareError as exc:
            raise map_error(exc, f"delete tunnel {spec.tunnel}").with_done(api.done) from None
        api.changed(f"deleted tunnel {spec.tunnel!r} ({tunnel.id})")

    def remove_rules(self, merge: Merge) -> None:
        api = self.api
        removed = self.owned_refs(merge.phase)
        api.call(
            f"update the {merge.phase} rules of zone {self.spec.zone}",
            lambda: api.client.rulesets.phases.update(
                cast(Any, merge.phase), zone_id=self.state.zone_id, rules=cast(Any, merge.rules)
            ),
        )
        api.changed(f"{merge.phase}: deleted {', '.join(removed)} ({merge.kept} rules stay)")


def destroy(
    spec: TunnelSpec,
    settings: CloudflareSettings,
    *,
    dry_run: bool = False,
    client: Cloudflare | None = None,
) -> ProvisionReport:
    """Remove the spec's CNAME, rules and tunnel (each only if present); ``dry_run``: plan only."""
    api = Api(client or make_client(settings), settings.account_id)
    state = read_state(api, spec)
    teardown = _Teardown(spec, api, state)
    changes, kept = teardown.plan()
    tunnel_id = state.tunnel.id if state.tunnel else None
    if dry_run:
        logger.info("dry run: %d removal(s) planned, nothing written", len(changes))
        return ProvisionReport(dry_run=True, tunnel_id=tunnel_id, changes=changes, unchanged=kept)
    teardown.apply()
    return ProvisionReport(
        dry_run=False, tunnel_id=tunnel_id, changes=list(api.done), unchanged=kept
    )
