"""A local Cloudflare API for the tests: a real HTTP server on 127.0.0.1, spoken to by the SDK.

The official ``cloudflare`` SDK reaches it through ``CLOUDFLARE_BASE_URL``, exactly as it would
reach the real API. The SDK's models cannot keep this server honest (every field is optional
and extra keys are accepted, so ``{}`` parses), so each answer is written to Cloudflare's
published shapes, with the source beside each one:

* the v4 envelope (``success``, ``errors``, ``messages``, ``result``, ``result_info``):
  cloudflare/api-schemas ``common.yaml`` (api-response-common, -collection, -common-failure);
* the tunnel object: the create and get answers of
  developers.cloudflare.com/cloudflare-one/connections/connect-networks/get-started/
  create-remote-tunnel-api/ (``remote_config`` and no ``config_src``; the create answer also
  carries ``token`` and ``credentials_file``);
* everything else: the generated models of cloudflare-python 5.9.0 (``types/zones/zone.py``,
  ``types/dns/record_response.py``, ``types/rulesets/phase_get_response.py``,
  ``types/zero_trust/tunnels/cloudflared/configuration_get_response.py``), which are built from
  the OpenAPI schema, named at each handler.

It enforces the zone plan's limits from its own table (:mod:`tests.tunnel.entitlements`),
written from Cloudflare's availability tables apart from the checker's table in
``tunnel/plans.py``. It injects faults (:meth:`CloudflareApi.fail`), counts writes, and keeps
every request, so tests can assert "zero writes" and "the token was never in the output".
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.tunnel.entitlements import ruleset_errors

ACCOUNT_ID = "0123456789abcdef0123456789abcdef"
ZONE_ID = "fedcba9876543210fedcba9876543210"
API_TOKEN = "A" * 20 + "b" * 20
BASE_PATH = "/client/v4"
#: The SDK retries 5xx twice by default; a fault answered this many times gets past it.
BEYOND_RETRIES = 3
#: What the API keeps per rule version rather than per rule.
VOLATILE = frozenset({"id", "version", "last_updated"})

# Plan objects as the zone's ``plan`` field carries them: legacy_id per cloudflare/api-schemas
# common.yaml (plan.legacy_id: free, pro, business, enterprise).
PLAN_NAMES = {
    "free": ("Free Website", 0),
    "pro": ("Pro Website", 20),
    "business": ("Business Website", 200),
    "enterprise": ("Enterprise Website", 5000),
}


class ApiFailure(Exception):
    """An error answer: HTTP status and one Cloudflare error (code, message, pointer)."""

    def __init__(self, status: int, code: int, message: str, pointer: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.errors: list[dict[str, Any]] = [{"code": code, "message": message}]
        if pointer is not None:
            self.errors[0]["source"] = {"pointer": pointer}


@dataclass
class Fault:
    """Answer matching requests with an error, ``times`` times (after doing the work if
    ``applied``: the write happened but its answer was lost)."""

    method: str
    path: re.Pattern[str]
    status: int
    code: int
    message: str
    times: int
    applied: bool = False


@dataclass
class Request:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


@dataclass
class CloudflareApi:
    """The state of one account with one zone, and the handlers that read and change it."""

    plan: str = "free"
    zone_name: str = "example.com"
    tunnels: list[dict[str, Any]] = field(default_factory=list)
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    _tokens: dict[str, str] = field(default_factory=dict)
    _clock: Iterator[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- what tests set up and look at -------------------------------------------------------

    @property
    def writes(self) -> list[Request]:
        """Every request that asked to change something (whether it succeeded or not)."""
        return [r for r in self.requests if r.method != "GET"]

    def fail(
        self,
        method: str,
        path: str,
        *,
        status: int,
        code: int = 10000,
        message: str = "Internal Server Error",
        times: int = 1,
        applied: bool = False,
    ) -> None:
        """Answer ``method`` on paths matching the regex ``path`` (under /client/v4) with an
        error, ``times`` times."""
        self.faults.append(
            Fault(method, re.compile(path), status, code, message, times, applied=applied)
        )

    def add_tunnel(self, name: str, *, config_src: str = "cloudflare") -> dict[str, Any]:
        """A tunnel made elsewhere (the dashboard, ``cloudflared tunnel create``)."""
        return self._create_tunnel({"name": name, "config_src": config_src})

    def add_record(self, kind: str, name: str, content: str, **extra: Any) -> dict[str, Any]:
        """A DNS record made elsewhere."""
        return self._store_record({"type": kind, "name": name, "content": content, **extra})

    def add_rule(self, phase: str, rule: dict[str, Any]) -> dict[str, Any]:
        """A rule made by hand in the dashboard, appended to a phase."""
        current = [dict(r) for r in self.phases.get(phase, {}).get("rules", [])]
        return self._put_phase(phase, {"rules": [*current, rule]})

    def connect(self, tunnel_name: str) -> None:
        """A running cloudflared: give the tunnel an active connection."""
        tunnel = self._tunnel_named(tunnel_name)
        tunnel["connections"].append(
            {
                "colo_name": "ams01",
                "id": str(uuid.uuid4()),
                "uuid": str(uuid.uuid4()),
                "client_id": str(uuid.uuid4()),
                "client_version": "2026.1.2",
                "is_pending_reconnect": False,
                "origin_ip": "198.51.100.7",
                "opened_at": self._now(),
            }
        )
        tunnel["status"] = "healthy"

    def token_of(self, tunnel_name: str) -> str:
        """The token the token endpoint hands out for a tunnel."""
        return self._tokens[self._tunnel_named(tunnel_name)["id"]]

    def live_tunnels(self) -> list[dict[str, Any]]:
        """Tunnels not deleted."""
        return [t for t in self.tunnels if t["deleted_at"] is None]

    def snapshot(self) -> dict[str, Any]:
        """What the account holds, without ids, versions and times: two runs that leave the
        same account compare equal. A record's tunnel id reads as ``<tunnel NAME>``."""
        names = {t["id"]: t["name"] for t in self.live_tunnels()}

        def name_tunnel(text: str) -> str:
            for tunnel_id, name in names.items():
                text = text.replace(tunnel_id, f"<tunnel {name}>")
            return text

        return {
            "tunnels": sorted(
                (t["name"], t["remote_config"], self.configs.get(t["id"], {}).get("config"))
                for t in self.live_tunnels()
            ),
            "records": sorted(
                (r["type"], r["name"], name_tunnel(r["content"]), r["proxied"], r.get("comment"))
                for r in self.records
            ),
            "phases": {
                phase: [
                    {k: v for k, v in rule.items() if k not in VOLATILE}
                    for rule in ruleset["rules"]
                ]
                for phase, ruleset in sorted(self.phases.items())
            },
        }

    # --- dispatch ----------------------------------------------------------------------------

    def handle(self, request: Request) -> tuple[int, dict[str, Any]]:
        """Answer one request: (HTTP status, JSON body)."""
        with self._lock:
            self.requests.append(request)
            if request.headers.get("authorization") != f"Bearer {API_TOKEN}":
                return _failure(ApiFailure(403, 10000, "Authentication error"))
            fault = self._fault_for(request)
            if fault is not None and not fault.applied:
                return _failure(ApiFailure(fault.status, fault.code, fault.message))
            try:
                status, body = self._route(request)
            except ApiFailure as failure:
                return _failure(failure)
            if fault is not None:
                return _failure(ApiFailure(fault.status, fault.code, fault.message))
            return status, body

    def _fault_for(self, request: Request) -> Fault | None:
        for fault in self.faults:
            matches = fault.method == request.method and fault.path.fullmatch(request.path)
            if fault.times > 0 and matches:
                fault.times -= 1
                return fault
        return None

    def _route(self, request: Request) -> tuple[int, dict[str, Any]]:
        method, query, body = request.method, request.query, request.body
        parts = request.path.strip("/").split("/")
        match method, parts:
            case "GET", ["zones"]:
                return _page([self._zone()] if query.get("name") == self.zone_name else [])
            case "GET", ["accounts", _, "cfd_tunnel"]:
                return _page(self._list_tunnels(query))
            case "POST", ["accounts", _, "cfd_tunnel"]:
                return _ok(self._create_tunnel(body, answer=True))
            case "DELETE", ["accounts", _, "cfd_tunnel", tunnel_id]:
                return _ok(self._delete_tunnel(tunnel_id))
            case "GET", ["accounts", _, "cfd_tunnel", tunnel_id, "configurations"]:
                return _ok(self._config(tunnel_id))
            case "PUT", ["accounts", _, "cfd_tunnel", tunnel_id, "configurations"]:
                return _ok(self._put_config(tunnel_id, body))
            case "GET", ["accounts", _, "cfd_tunnel", tunnel_id, "token"]:
                return _ok(self._tokens[self._tunnel(tunnel_id)["id"]])
            case "DELETE", ["accounts", _, "cfd_tunnel", tunnel_id, "connections"]:
                self._tunnel(tunnel_id)["connections"] = []
                return _ok({})
            case "GET", ["zones", _, "dns_records"]:
                return _page([self._record_answer(r) for r in self._find_records(query)])
            case "POST", ["zones", _, "dns_records"]:
                return _ok(self._record_answer(self._store_record(body)))
            case "PUT", ["zones", _, "dns_records", record_id]:
                return _ok(self._record_answer(self._store_record(body, replacing=record_id)))
            case "DELETE", ["zones", _, "dns_records", record_id]:
                self.records.remove(self._record(record_id))
                # DELETE answers only the id (types/dns/record_delete_response.py).
                return _ok({"id": record_id})
            case "GET", ["zones", _, "rulesets", "phases", phase, "entrypoint"]:
                if phase not in self.phases:
                    # The real answer for a phase with no entry point yet, as quoted in
                    # github.com/ibm-mas/ansible-devops/pull/2403.
                    raise ApiFailure(
                        404, 10003, f"could not find entrypoint ruleset in the {phase} phase"
                    )
                return _ok(self.phases[phase])
            case "PUT", ["zones", _, "rulesets", "phases", phase, "entrypoint"]:
                return _ok(self._put_phase(phase, body))
        raise ApiFailure(400, 7003, "No route for the URI")  # common.yaml's failure example

    # --- zones -------------------------------------------------------------------------------

    def _zone(self) -> dict[str, Any]:
        # Fields of types/zones/zone.py (required: id, account, created_on, development_mode,
        # meta, modified_on, name, name_servers, original_*, owner, plan).
        label, price = PLAN_NAMES[self.plan]
        return {
            "id": ZONE_ID,
            "name": self.zone_name,
            "status": "active",
            "paused": False,
            "type": "full",
            "development_mode": 0,
            "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
            "original_name_servers": None,
            "original_registrar": None,
            "original_dnshost": None,
            "created_on": "2026-01-01T00:00:00.000000Z",
            "modified_on": "2026-01-01T00:00:00.000000Z",
            "activated_on": "2026-01-01T00:00:00.000000Z",
            "meta": {"step": 4, "custom_certificate_quota": 0, "page_rule_quota": 3},
            "owner": {"id": None, "type": "user", "name": None},
            "account": {"id": ACCOUNT_ID, "name": "Example account"},
            "permissions": ["#dns_records:edit", "#waf:edit"],
            "plan": {
                "id": uuid.uuid5(uuid.NAMESPACE_DNS, self.plan).hex,
                "name": label,
                "price": price,
                "currency": "USD",
                "frequency": "monthly" if price else "",
                "is_subscribed": True,
                "can_subscribe": False,
                "legacy_id": self.plan,
                "legacy_discount": False,
                "externally_managed": False,
            },
        }

    # --- tunnels -----------------------------------------------------------------------------

    def _now(self) -> str:
        return f"2026-12-01T10:{next(self._clock) % 60:02d}:00.000000Z"

    def _list_tunnels(self, query: dict[str, str]) -> list[dict[str, Any]]:
        out = []
        for tunnel in self.tunnels:
            if "name" in query and tunnel["name"] != query["name"]:
                continue
            if query.get("is_deleted") == "false" and tunnel["deleted_at"] is not None:
                continue
            out.append(dict(tunnel))
        return out

    def _tunnel(self, tunnel_id: str) -> dict[str, Any]:
        for tunnel in self.tunnels:
            if tunnel["id"] == tunnel_id and tunnel["deleted_at"] is None:
                return tunnel
        raise ApiFailure(404, 1003, "Tunnel not found")

    def _tunnel_named(self, name: str) -> dict[str, Any]:
        return next(t for t in self.live_tunnels() if t["name"] == name)

    def _create_tunnel(self, body: dict[str, Any], *, answer: bool = False) -> dict[str, Any]:
        name = body["name"]
        if any(t["name"] == name for t in self.live_tunnels()):
            # The API's words (github.com/linuxserver/docker-mods/issues/280).
            raise ApiFailure(
                400,
                1013,
                "You already have a tunnel with this name. Delete the existing tunnel, or "
                "choose a different name for your new tunnel",
            )
        now = self._now()
        tunnel_id = str(uuid.uuid4())
        # The create answer of the docs' "Create a tunnel (API)" page: remote_config, and no
        # config_src, whatever was asked. The default is a locally-managed tunnel.
        tunnel: dict[str, Any] = {
            "id": tunnel_id,
            "account_tag": ACCOUNT_ID,
            "created_at": now,
            "deleted_at": None,
            "name": name,
            "connections": [],
            "conns_active_at": None,
            "conns_inactive_at": now,
            "tun_type": "cfd_tunnel",
            "metadata": {},
            "status": "inactive",
            "remote_config": body.get("config_src", "local") == "cloudflare",
        }
        self.tunnels.append(tunnel)
        secret = base64.b64encode(secrets.token_bytes(32)).decode()
        token = json.dumps({"a": ACCOUNT_ID, "t": tunnel_id, "s": secret}).encode()
        self._tokens[tunnel_id] = base64.b64encode(token).decode()
        if not answer:
            return tunnel
        credentials = {
            "AccountTag": ACCOUNT_ID,
            "TunnelID": tunnel_id,
            "TunnelName": name,
            "TunnelSecret": secret,
        }
        return {**tunnel, "credentials_file": credentials, "token": self._tokens[tunnel_id]}

    def _delete_tunnel(self, tunnel_id: str) -> dict[str, Any]:
        tunnel = self._tunnel(tunnel_id)
        if tunnel["connections"]:
            # Code 1022 is the API's refusal to delete a connected tunnel
            # (github.com/tuanngocptn/nport/pull/16); the wording here is ours.
            raise ApiFailure(400, 1022, "Cannot delete a tunnel with active connections")
        tunnel["deleted_at"] = self._now()
        return dict(tunnel)

    def _config(self, tunnel_id: str) -> dict[str, Any]:
        # types/zero_trust/tunnels/cloudflared/configuration_get_response.py
        tunnel = self._tunnel(tunnel_id)
        stored = self.configs.get(tunnel_id)
        if stored is None:
            return {"account_id": ACCOUNT_ID, "tunnel_id": tunnel["id"], "version": 0}
        return dict(stored)

    def _put_config(self, tunnel_id: str, body: dict[str, Any]) -> dict[str, Any]:
        tunnel = self._tunnel(tunnel_id)
        if not tunnel["remote_config"]:
            raise ApiFailure(400, 1056, "Cannot configure a locally-managed tunnel remotely")
        version = int(self.configs.get(tunnel_id, {}).get("version", 0)) + 1
        self.configs[tunnel_id] = {
            "account_id": ACCOUNT_ID,
            "tunnel_id": tunnel_id,
            "version": version,
            "config": body["config"],
            "source": "cloudflare",
            "created_at": self._now(),
        }
        return dict(self.configs[tunnel_id])

    # --- DNS ---------------------------------------------------------------------------------

    def _find_records(self, query: dict[str, str]) -> list[dict[str, Any]]:
        wanted = query.get("name.exact") or query.get("name")
        return [r for r in self.records if wanted is None or r["name"] == wanted]

    def _record(self, record_id: str) -> dict[str, Any]:
        for record in self.records:
            if record["id"] == record_id:
                return record
        raise ApiFailure(404, 81044, "Record does not exist.")

    def _store_record(
        self, body: dict[str, Any], *, replacing: str | None = None
    ) -> dict[str, Any]:
        old = self._record(replacing) if replacing else None
        kind, name = body["type"], body["name"]
        # A CNAME cannot share its name with an A, AAAA or CNAME record: error 81053
        # (github.com/HermanMartinus/bearblog/issues/105; developers.cloudflare.com/dns/
        # manage-dns-records/troubleshooting/records-with-same-name/).
        exclusive = {"A", "AAAA", "CNAME"}
        for other in self.records:
            if other is old or other["name"] != name:
                continue
            if (
                kind in exclusive
                and other["type"] in exclusive
                and "CNAME" in (kind, other["type"])
            ):
                raise ApiFailure(
                    400, 81053, "An A, AAAA, or CNAME record with that host already exists."
                )
        now = self._now()
        # PUT overwrites: every field not sent goes back to its default (records.update:
        # "Overwrite an existing DNS record"). Nothing of the old record is merged in.
        record = {
            "id": old["id"] if old else uuid.uuid4().hex,
            "name": name,
            "type": kind,
            "content": body.get("content", ""),
            "proxiable": kind in exclusive,
            "proxied": bool(body.get("proxied", False)),
            "ttl": body.get("ttl", 1),
            "settings": body.get("settings", {}),
            "meta": {},
            "comment": body.get("comment"),
            "tags": body.get("tags", []),
            "created_on": old["created_on"] if old else now,
            "modified_on": now,
        }
        if old is not None:
            self.records[self.records.index(old)] = record
        else:
            self.records.append(record)
        return record

    @staticmethod
    def _record_answer(record: dict[str, Any]) -> dict[str, Any]:
        # types/dns/record_response.py: comment_modified_on only when there is a comment.
        answer = {k: v for k, v in record.items() if not (k == "comment" and v is None)}
        if record.get("comment"):
            answer["comment_modified_on"] = record["modified_on"]
        return answer

    # --- rulesets ----------------------------------------------------------------------------

    def _put_phase(self, phase: str, body: dict[str, Any]) -> dict[str, Any]:
        rules = list(body.get("rules") or [])
        problems = ruleset_errors(self.plan, phase, rules)
        if problems:
            failure = ApiFailure(400, 20217, problems[0][1], problems[0][0])
            failure.errors = [
                {"code": 20217, "message": message, "source": {"pointer": pointer}}
                for pointer, message in problems
            ]
            raise failure
        previous = self.phases.get(phase)
        old_rules = {r["id"]: r for r in previous["rules"]} if previous else {}
        now = self._now()
        stored = []
        for rule in rules:
            old = old_rules.get(rule.get("id", ""))
            rule_id = old["id"] if old else uuid.uuid4().hex
            content = {k: v for k, v in rule.items() if k not in VOLATILE}
            content.setdefault("ref", rule_id)  # a rule's ref is its id unless one is given
            content.setdefault("enabled", True)
            if "ratelimit" in content:
                # Zero-valued rate-limit fields are left out of the answers
                # (github.com/cloudflare/cf-terraforming/issues/724, terraform-provider-
                # cloudflare/issues/2445: mitigation_timeout 0 comes back missing).
                content["ratelimit"] = {k: v for k, v in content["ratelimit"].items() if v}
            same = (
                old is not None and {k: v for k, v in old.items() if k not in VOLATILE} == content
            )
            if old is None:
                version = "1"
            else:
                version = old["version"] if same else str(int(old["version"]) + 1)
            last_updated = old["last_updated"] if same and old else now
            stored.append(
                {"id": rule_id, "version": version, **content, "last_updated": last_updated}
            )
        # The entry point ruleset: types/rulesets/phase_get_response.py (id, kind, last_updated,
        # name, phase, rules, version, description).
        self.phases[phase] = {
            "id": previous["id"] if previous else uuid.uuid4().hex,
            "name": "default",
            "description": "",
            "kind": "zone",
            "phase": phase,
            "version": str(int(previous["version"]) + 1) if previous else "1",
            "last_updated": now,
            "rules": stored,
        }
        return self.phases[phase]


def _ok(result: Any) -> tuple[int, dict[str, Any]]:
    return 200, {"success": True, "errors": [], "messages": [], "result": result}


def _page(items: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    status, body = _ok(items)
    count = len(items)
    body["result_info"] = {"page": 1, "per_page": 20, "count": count, "total_count": count}
    return status, body


def _failure(failure: ApiFailure) -> tuple[int, dict[str, Any]]:
    return failure.status, {
        "success": False,
        "errors": failure.errors,
        "messages": [],
        "result": None,
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _serve(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=url.path.removeprefix(BASE_PATH) or "/",
            query=dict(parse_qsl(url.query)),
            body=json.loads(raw) if raw else None,
            headers={k.lower(): v for k, v in self.headers.items()},
        )
        status, body = self.server.api.handle(request)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("cf-ray", f"{secrets.token_hex(8)}-AMS")
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return  # the tests read CloudflareApi.requests instead


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, api: CloudflareApi) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.api = api


@contextmanager
def serve(api: CloudflareApi) -> Iterator[str]:
    """Serve ``api`` on 127.0.0.1 (a free port) until the block ends; yields its base URL."""
    server = _Server(api)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host!s}:{port}{BASE_PATH}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
