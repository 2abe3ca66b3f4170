"""What the Cloudflare account holds for a spec, read before anything is written.

:func:`read_state` makes only reads: the zone (with its plan) in the account, the account's
tunnels of the spec's name, that tunnel's remote ingress, every DNS record at the hostname, and
the zone's two WAF phase entry points. Provisioning, its plan and teardown all start from it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, cast

import cloudflare

from tunnel.cfapi import Api, as_dict
from tunnel.errors import ZoneNotFound
from tunnel.spec import TunnelSpec
from tunnel.waf import PHASES

__all__ = ["TUNNEL_DOMAIN", "AccountState", "Tunnel", "read_state"]

logger = logging.getLogger(__name__)

#: A tunnel's public name is <tunnel-id>.cfargotunnel.com; a proxied CNAME points at it.
TUNNEL_DOMAIN = "cfargotunnel.com"
REMOTE = "remote"
LOCAL = "local"
UNKNOWN = "unknown"


@dataclass(frozen=True, kw_only=True)
class Tunnel:
    """One of the account's tunnels, as the list endpoint describes it."""

    id: str
    name: str
    #: "remote" (ingress kept by Cloudflare), "local" (a config.yml on the connector), or
    #: "unknown" when the API said neither.
    managed: str

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Tunnel:
        """Read one tunnel object.

        The API marks a locally-managed tunnel with ``config_src: local``, but the docs' own
        create answer carries only ``remote_config`` (true or false) and no ``config_src``
        (developers.cloudflare.com/cloudflare-one/connections/connect-networks/get-started/
        create-remote-tunnel-api/); either field saying "local" makes it local.
        """
        source = data.get("config_src")
        remote = data.get("remote_config")
        if source == "local" or remote is False:
            managed = LOCAL
        elif source == "cloudflare" or remote is True:
            managed = REMOTE
        else:
            managed = UNKNOWN
        return cls(id=str(data.get("id")), name=str(data.get("name")), managed=managed)

    @property
    def cname_target(self) -> str:
        """The name a proxied CNAME must point at to reach this tunnel."""
        return f"{self.id}.{TUNNEL_DOMAIN}"


@dataclass(kw_only=True)
class AccountState:
    """Everything a run needs to know about the account, from reads only."""

    zone_id: str
    #: The zone's plan: ``legacy_id`` (free, pro, business, enterprise) and its display name.
    plan: str | None = None
    plan_name: str = ""
    tunnel: Tunnel | None = None
    #: The remote ingress of a remotely-managed tunnel (the ``config`` object) and its version.
    remote_config: dict[str, Any] = field(default_factory=dict)
    remote_version: object = None
    #: Every DNS record named exactly like the spec's hostname, whatever its type.
    records: list[dict[str, Any]] = field(default_factory=list)
    #: Each WAF phase's entry point ruleset ({} when the phase has none yet).
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)

    def rules(self, phase: str) -> list[dict[str, Any]]:
        """The rules of a phase's entry point ruleset now."""
        rules = self.phases.get(phase, {}).get("rules") or []
        return [dict(rule) for rule in rules]


def read_state(api: Api, spec: TunnelSpec) -> AccountState:
    """Read zone, plan, tunnel, remote ingress, DNS records and WAF phases; no writes."""
    zone = _read_zone(api, spec)
    plan = zone.get("plan") or {}
    state = AccountState(
        zone_id=str(zone["id"]),
        plan=plan.get("legacy_id"),
        plan_name=str(plan.get("name") or plan.get("legacy_id") or "unknown plan"),
    )
    state.tunnel = _read_tunnel(api, spec)
    if state.tunnel is not None and state.tunnel.managed == REMOTE:
        tunnel_id = state.tunnel.id
        current = api.call(
            f"read the configuration of tunnel {spec.tunnel}",
            lambda: api.client.zero_trust.tunnels.cloudflared.configurations.get(
                tunnel_id=tunnel_id, account_id=api.account_id
            ),
        )
        data = as_dict(current)
        state.remote_config = data.get("config") or {}
        state.remote_version = data.get("version")
    state.records = _read_records(api, spec, state.zone_id)
    for phase in PHASES:
        state.phases[phase] = _read_phase(api, spec, state.zone_id, phase)
    return state


def _read_zone(api: Api, spec: TunnelSpec) -> dict[str, Any]:
    zones = api.call(
        f"look up zone {spec.zone}",
        lambda: api.client.zones.list(name=spec.zone, account={"id": api.account_id}).result,
    )
    matching = [as_dict(zone) for zone in zones if zone.name == spec.zone]
    if not matching:
        raise ZoneNotFound(
            f"zone {spec.zone!r} was not found in account {api.account_id}: add the domain "
            "to this account in the dashboard, or fix 'zone' in the spec"
        )
    return matching[0]


def _read_tunnel(api: Api, spec: TunnelSpec) -> Tunnel | None:
    tunnels = api.call(
        f"look up tunnel {spec.tunnel}",
        lambda: (
            api.client.zero_trust.tunnels.cloudflared.list(
                account_id=api.account_id, name=spec.tunnel, is_deleted=False
            ).result
        ),
    )
    found = [as_dict(t) for t in tunnels if t.name == spec.tunnel and not t.deleted_at]
    return Tunnel.from_api(found[0]) if found else None


def _read_records(api: Api, spec: TunnelSpec, zone_id: str) -> list[dict[str, Any]]:
    records = api.call(
        f"read the DNS records of {spec.hostname}",
        lambda: api.client.dns.records.list(zone_id=zone_id, name={"exact": spec.hostname}).result,
    )
    return [as_dict(r) for r in records if getattr(r, "name", None) == spec.hostname]


def _read_phase(api: Api, spec: TunnelSpec, zone_id: str, phase: str) -> dict[str, Any]:
    with api.calling(f"read the {phase} rules of zone {spec.zone}"):
        try:
            ruleset = api.client.rulesets.phases.get(cast(Any, phase), zone_id=zone_id)
        except cloudflare.NotFoundError:
            logger.info("zone %s has no %s entry point yet", spec.zone, phase)
            return {}  # the phase has no entry point ruleset yet; a PUT creates it
    return as_dict(ruleset)
