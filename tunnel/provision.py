"""Make a Cloudflare account match a :class:`~tunnel.spec.TunnelSpec`, idempotently.

One run first *reads* everything it may change (zone, tunnel, remote ingress, DNS record, the
two WAF phase entry points), builds a plan, and only then writes, in this order:

1. create the named tunnel, remotely managed (``config_src: cloudflare``), if it is missing;
2. PUT its remote ingress configuration, if it differs;
3. create or correct the proxied CNAME ``<hostname> -> <tunnel-id>.cfargotunnel.com``;
4. PUT the WAF custom rules and the rate-limiting rules, merged with the rules there;
5. fetch the tunnel token and write it to a 0600 file (never printed or logged).

Every error the API can give is raised before the first write where it can be (zone missing,
a conflicting DNS record, a locally-managed tunnel of the same name). A write that fails
raises a :class:`~tunnel.errors.ProvisionError` listing exactly what was already changed, with
what it replaced; nothing is ever deleted, so every change can be undone by hand.
A dry run does only the reads and returns the plan.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import cloudflare
import httpx
from cloudflare import Cloudflare

from tunnel.errors import (
    REQUIRED_PERMISSIONS,
    ApiUnavailable,
    Conflict,
    PermissionDenied,
    ProvisionError,
    RateLimited,
    ZoneNotFound,
)
from tunnel.model import render_remote
from tunnel.settings import CloudflareSettings
from tunnel.spec import TunnelSpec
from tunnel.waf import CUSTOM_PHASE, PHASES, RATELIMIT_PHASE, Merge, merge_rules, rule_to_api

__all__ = ["ProvisionReport", "make_client", "provision", "write_secret"]

logger = logging.getLogger(__name__)

TUNNEL_DOMAIN = "cfargotunnel.com"
_T = TypeVar("_T")


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


def make_client(
    settings: CloudflareSettings, *, http_client: httpx.Client | None = None
) -> Cloudflare:
    """A Cloudflare SDK client that authenticates with ``settings.api_token`` only.

    The base URL is ``settings.base_url``: CLOUDFLARE_BASE_URL when it is set, as the SDK
    itself would read it, else the public API.
    """
    client = Cloudflare(
        api_token=settings.api_token,
        base_url=settings.base_url,
        timeout=settings.timeout,
        max_retries=settings.max_retries,
        http_client=http_client,
    )
    # The SDK also reads CLOUDFLARE_API_KEY / CLOUDFLARE_EMAIL from the environment and would
    # prefer them to the token; provisioning must use exactly the token it was given.
    client.api_key = None
    client.api_email = None
    client.user_service_key = None
    return client


def _api_messages(exc: cloudflare.APIStatusError) -> str:
    body = exc.body
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list):
        texts = [
            f"{e.get('message', '')} (code {e.get('code')})" for e in errors if isinstance(e, dict)
        ]
        if texts:
            return "; ".join(texts)
    return exc.response.reason_phrase


def _map_error(exc: cloudflare.CloudflareError, action: str) -> ProvisionError:
    """One-line, actionable error for an SDK exception."""
    permissions = ", ".join(REQUIRED_PERMISSIONS)
    if isinstance(exc, cloudflare.PermissionDeniedError):
        return PermissionDenied(
            f"Cloudflare refused to {action} (HTTP 403): the API token needs the permissions "
            f"{permissions}; add them to the token and run again"
        )
    if isinstance(exc, cloudflare.AuthenticationError):
        return PermissionDenied(
            f"Cloudflare did not accept the API token while trying to {action} (HTTP 401): "
            f"it is invalid, expired or revoked; create one with {permissions}"
        )
    if isinstance(exc, cloudflare.RateLimitError):
        return RateLimited(
            f"Cloudflare rate-limited the API token while trying to {action} (HTTP 429); "
            "wait a few minutes and run again"
        )
    if isinstance(exc, cloudflare.APITimeoutError):
        return ApiUnavailable(
            f"the Cloudflare API timed out while trying to {action}; run again later"
        )
    if isinstance(exc, cloudflare.APIConnectionError):
        return ApiUnavailable(
            f"could not reach the Cloudflare API to {action}: check the network and run again"
        )
    if isinstance(exc, cloudflare.APIStatusError):
        if exc.status_code >= 500:
            return ApiUnavailable(
                f"the Cloudflare API failed to {action} (HTTP {exc.status_code}); "
                "try again later or check www.cloudflarestatus.com"
            )
        return ProvisionError(
            f"Cloudflare rejected the request to {action} (HTTP {exc.status_code}): "
            f"{_api_messages(exc)}"
        )
    return ProvisionError(f"could not {action}: {exc.__class__.__name__}")


@contextmanager
def _calling(action: str, done: list[str]) -> Iterator[None]:
    """Turn SDK errors into ProvisionErrors that list what ``done`` holds so far."""
    try:
        yield
    except cloudflare.CloudflareError as exc:
        raise _map_error(exc, action).with_done(done) from None


def _as_dict(model: object) -> dict[str, Any]:
    if model is None:
        return {}
    to_dict = getattr(model, "to_dict", None)
    if to_dict is None:
        return dict(cast("dict[str, Any]", model))
    return cast("dict[str, Any]", to_dict())


@dataclass(kw_only=True)
class _State:
    """What the reads found."""

    zone_id: str = ""
    tunnel_id: str | None = None
    remote_config: dict[str, Any] = field(default_factory=dict)
    remote_version: object = None
    dns_record: dict[str, Any] | None = None
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)


class _Provisioner:
    def __init__(self, spec: TunnelSpec, settings: CloudflareSettings, client: Cloudflare) -> None:
        self.spec = spec
        self.account_id = settings.account_id
        self.client = client
        self.done: list[str] = []
        self.state = _State()

    def call(self, action: str, fn: Callable[[], _T]) -> _T:
        with _calling(action, self.done):
            return fn()

    # --- reads ---------------------------------------------------------------------------

    def read(self) -> None:
        spec, client = self.spec, self.client
        zones = self.call(
            f"look up zone {spec.zone}",
            lambda: client.zones.list(name=spec.zone, account={"id": self.account_id}).result,
        )
        matching = [zone for zone in zones if zone.name == spec.zone]
        if not matching:
            raise ZoneNotFound(
                f"zone {spec.zone!r} was not found in account {self.account_id}: add the domain "
                "to this account in the dashboard, or fix 'zone' in the spec"
            )
        self.state.zone_id = matching[0].id
        self.read_tunnel()
        self.read_dns()
        for phase in PHASES:
            self.state.phases[phase] = self.read_phase(phase)

    def read_tunnel(self) -> None:
        spec, client = self.spec, self.client
        tunnels = self.call(
            f"look up tunnel {spec.tunnel}",
            lambda: (
                client.zero_trust.tunnels.cloudflared.list(
                    account_id=self.account_id, name=spec.tunnel, is_deleted=False
                ).result
            ),
        )
        found = [t for t in tunnels if t.name == spec.tunnel and not t.deleted_at]
        if not found:
            return
        tunnel = found[0]
        if tunnel.config_src == "local":
            raise Conflict(
                f"tunnel {spec.tunnel!r} ({tunnel.id}) is locally managed, so its ingress lives "
                "in a config.yml on the connector; rename the tunnel in the spec, or migrate it "
                "to remote management in the Zero Trust dashboard"
            )
        self.state.tunnel_id = tunnel.id
        current = self.call(
            f"read the configuration of tunnel {spec.tunnel}",
            lambda: client.zero_trust.tunnels.cloudflared.configurations.get(
                tunnel_id=cast(str, tunnel.id), account_id=self.account_id
            ),
        )
        data = _as_dict(current)
        self.state.remote_config = data.get("config") or {}
        self.state.remote_version = data.get("version")

    def read_dns(self) -> None:
        spec, client = self.spec, self.client
        records = self.call(
            f"read the DNS records of {spec.hostname}",
            lambda: (
                client.dns.records.list(
                    zone_id=self.state.zone_id, name={"exact": spec.hostname}
                ).result
            ),
        )
        found = [_as_dict(r) for r in records if getattr(r, "name", None) == spec.hostname]
        others = [r for r in found if r.get("type") != "CNAME"]
        if others:
            kinds = ", ".join(sorted({str(r.get("type")) for r in others}))
            raise Conflict(
                f"{spec.hostname} already has a DNS {kinds} record, which cannot coexist with the "
                "tunnel's CNAME; delete that record or choose another hostname"
            )
        self.state.dns_record = found[0] if found else None

    def read_phase(self, phase: str) -> dict[str, Any]:
        with _calling(f"read the {phase} rules of zone {self.spec.zone}", self.done):
            try:
                ruleset = self.client.rulesets.phases.get(
                    cast(Any, phase), zone_id=self.state.zone_id
                )
            except cloudflare.NotFoundError:
                return {}  # the phase has no entry point ruleset yet; the PUT creates it
        return _as_dict(ruleset)

    # --- plan ----------------------------------------------------------------------------

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

    def cname_target(self) -> str:
        return f"{self.state.tunnel_id or '<new tunnel id>'}.{TUNNEL_DOMAIN}"

    def dns_change(self) -> str | None:
        record = self.state.dns_record
        target = self.cname_target()
        if record is None:
            return f"create proxied CNAME {self.spec.hostname} -> {target}"
        if record.get("content") != target or record.get("proxied") is not True:
            return (
                f"change CNAME {self.spec.hostname} from {record.get('content')} "
                f"(proxied={record.get('proxied')}) to {target} (proxied=True)"
            )
        return None

    def merges(self) -> list[Merge]:
        wanted = {
            CUSTOM_PHASE: self.spec.custom_rules,
            RATELIMIT_PHASE: self.spec.rate_limits,
        }
        out = []
        for phase in PHASES:
            existing = self.state.phases.get(phase, {}).get("rules") or []
            desired = [rule_to_api(r, ref_prefix=self.spec.ref_prefix) for r in wanted[phase]]
            out.append(merge_rules(phase, existing, desired, ref_prefix=self.spec.ref_prefix))
        return out

    def plan(self) -> tuple[list[str], list[str]]:
        spec = self.spec
        changes: list[str] = []
        unchanged: list[str] = []
        if self.state.tunnel_id is None:
            changes.append(f"create tunnel {spec.tunnel!r} (remotely managed)")
        else:
            unchanged.append(f"tunnel {spec.tunnel!r} exists ({self.state.tunnel_id})")
        if self.state.tunnel_id is None or self.config_differs():
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
        for merge in self.merges():
            changes.extend(merge.changes)
            if not merge.changes:
                unchanged.append(
                    f"{merge.phase}: rules up to date ({merge.kept} rules not ours kept)"
                )
            elif merge.kept:
                changes.append(f"{merge.phase}: keep {merge.kept} rules this spec does not own")
        return changes, unchanged

    # --- writes --------------------------------------------------------------------------

    def apply(self) -> str:
        spec, client = self.spec, self.client
        created_now = self.state.tunnel_id is None
        tunnel_id = self.state.tunnel_id or self.create_tunnel()
        if self.config_differs():
            logger.info("putting the remote ingress of tunnel %s", spec.tunnel)
            self.call(
                f"put the configuration of tunnel {spec.tunnel}",
                lambda: client.zero_trust.tunnels.cloudflared.configurations.update(
                    tunnel_id=tunnel_id,
                    account_id=self.account_id,
                    config=cast(Any, self.desired_config()),
                ),
            )
            if created_now:
                self.done.append(f"set the remote ingress of the new tunnel {spec.tunnel!r}")
            else:
                self.done.append(
                    f"replaced the remote ingress of tunnel {spec.tunnel!r} (previous version "
                    f"{self.state.remote_version}, was {self.state.remote_config or 'empty'})"
                )
        self.apply_dns()
        for merge in self.merges():
            if merge.changed:
                self.apply_phase(merge)
        return tunnel_id

    def create_tunnel(self) -> str:
        spec = self.spec
        logger.info("creating tunnel %s", spec.tunnel)
        created = self.call(
            f"create tunnel {spec.tunnel}",
            lambda: self.client.zero_trust.tunnels.cloudflared.create(
                account_id=self.account_id, name=spec.tunnel, config_src="cloudflare"
            ),
        )
        if not created.id:
            raise ProvisionError("Cloudflare created the tunnel but returned no id", self.done)
        self.state.tunnel_id = created.id
        self.state.remote_config = {}
        self.done.append(
            f"created tunnel {spec.tunnel!r} ({created.id}); to undo, delete it "
            "in the Zero Trust dashboard"
        )
        return created.id

    def apply_dns(self) -> None:
        spec, client = self.spec, self.client
        if self.dns_change() is None:
            return
        target = self.cname_target()
        record = self.state.dns_record
        comment = f"zeroport: tunnel {spec.tunnel}"
        if record is None:
            logger.info("creating CNAME %s -> %s", spec.hostname, target)
            created = self.call(
                f"create the DNS record {spec.hostname}",
                lambda: client.dns.records.create(
                    zone_id=self.state.zone_id,
                    type="CNAME",
                    name=spec.hostname,
                    content=target,
                    proxied=True,
                    ttl=1,
                    comment=comment,
                ),
            )
            record_id = getattr(created, "id", None)
            self.done.append(
                f"created proxied CNAME {spec.hostname} -> {target} (record {record_id}); "
                "to undo, delete that record"
            )
            return
        logger.info("updating CNAME %s -> %s", spec.hostname, target)
        record_id = str(record["id"])
        self.call(
            f"update the DNS record {spec.hostname}",
            lambda: client.dns.records.update(
                dns_record_id=record_id,
                zone_id=self.state.zone_id,
                type="CNAME",
                name=spec.hostname,
                content=target,
                proxied=True,
                ttl=1,
                comment=comment,
            ),
        )
        self.done.append(
            f"changed CNAME {spec.hostname} from {record.get('content')} "
            f"(proxied={record.get('proxied')}) to {target} (proxied=True)"
        )

    def apply_phase(self, merge: Merge) -> None:
        previous = self.state.phases.get(merge.phase, {})
        logger.info("putting %d rules into phase %s", len(merge.rules), merge.phase)
        self.call(
            f"update the {merge.phase} rules of zone {self.spec.zone}",
            lambda: self.client.rulesets.phases.update(
                cast(Any, merge.phase), zone_id=self.state.zone_id, rules=cast(Any, merge.rules)
            ),
        )
        version = previous.get("version", "none")
        self.done.append(
            f"replaced the {merge.phase} rules ({'; '.join(merge.changes)}; previous ruleset "
            f"version {version})"
        )

    def fetch_token(self, tunnel_id: str) -> str:
        token = self.call(
            f"fetch the token of tunnel {self.spec.tunnel}",
            lambda: self.client.zero_trust.tunnels.cloudflared.token.get(
                tunnel_id=tunnel_id, account_id=self.account_id
            ),
        )
        return str(token)


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
    """Make the account match ``spec``; with ``dry_run`` only read and return the plan.

    The tunnel token goes to ``token_file`` (mode 0600) when given, and nowhere else.
    Raises a ProvisionError subclass naming what already changed when a step fails.
    """
    worker = _Provisioner(spec, settings, client or make_client(settings))
    worker.read()
    changes, unchanged = worker.plan()
    if dry_run:
        logger.info("dry run: %d change(s) planned, nothing written", len(changes))
        return ProvisionReport(
            dry_run=True, tunnel_id=worker.state.tunnel_id, changes=changes, unchanged=unchanged
        )
    tunnel_id = worker.apply()
    # The report lists what was actually done (with what it replaced), not the plan.
    changes = list(worker.done)
    if token_file is not None:
        token = worker.fetch_token(tunnel_id)
        try:
            written = write_secret(token_file, token)
        except OSError as exc:
            raise ProvisionError(
                f"could not write the tunnel token to {token_file}: {exc.strerror}; "
                "fix the path or its permissions and run again",
                worker.done,
            ) from None
        if written:
            changes.append(f"wrote the tunnel token to {token_file} (mode 0600)")
        else:
            unchanged.append(f"tunnel token in {token_file} is current")
    return ProvisionReport(
        dry_run=False,
        tunnel_id=tunnel_id,
        changes=changes,
        unchanged=unchanged,
        token_file=token_file,
    )
