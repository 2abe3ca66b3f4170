"""Cloudflare Access at the origin: only a valid RS256 token from the team gets through."""

from __future__ import annotations

import io
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from app.access import KEYS_TTL, REFETCH_INTERVAL, SigningKeys, require_pyjwt
from app.config import Settings
from app.errors import AccessDenied, KeysUnavailable, MissingExtra
from app.service import Service, create_app
from tests.app.support import log_entries

TEAM = "https://myteam.cloudflareaccess.com"
AUD = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2"
CERTS = f"{TEAM}/cdn-cgi/access/certs"


@dataclass
class Keys:
    """Two RSA key pairs: the team's (kid "k1") and an impostor's."""

    team: rsa.RSAPrivateKey
    impostor: rsa.RSAPrivateKey

    def jwks(self) -> bytes:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.team.public_key()))
        jwk.update(kid="k1", alg="RS256", use="sig")
        return json.dumps({"keys": [jwk], "public_cert": {"kid": "k1", "cert": "..."}}).encode()


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(
        team=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        impostor=rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )


@dataclass
class Fetcher:
    """Serves the JWKS from memory and counts the downloads; can be told to fail."""

    document: bytes
    calls: list[str] = field(default_factory=list)
    failing: bool = False

    async def __call__(self, url: str) -> bytes:
        self.calls.append(url)
        if self.failing:
            raise OSError("network unreachable")
        return self.document


def token(
    key: rsa.RSAPrivateKey,
    *,
    kid: str = "k1",
    aud: str = AUD,
    iss: str = TEAM,
    expires_in: float = 300,
    algorithm: str = "RS256",
) -> str:
    now = int(time.time())
    claims = {
        "aud": [aud],
        "iss": iss,
        "sub": "7335d417-61da-459d-899c-0a01c76a2f94",
        "email": "user@example.com",
        "iat": now - 10,
        "nbf": now - 10,
        "exp": now + int(expires_in),
    }
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})


def service(fetcher: Fetcher) -> Service:
    settings = Settings(access_team_domain=TEAM, access_audiences=(AUD,), access_log=False)
    return create_app(settings, fetch_keys=fetcher)


async def status_for(app: Service, assertion: str | None, path: str = "/") -> int:
    headers = {} if assertion is None else {"Cf-Access-Jwt-Assertion": assertion}
    response = await app.test_client().get(path, headers=headers)
    return response.status_code


async def test_a_valid_token_gets_through(keys: Keys) -> None:
    fetcher = Fetcher(keys.jwks())

    assert await status_for(service(fetcher), token(keys.team)) == 200
    assert fetcher.calls == [CERTS]


def _hs256(keys: Keys) -> str:
    now = int(time.time())
    claims = {"aud": AUD, "iss": TEAM, "iat": now, "exp": now + 60}
    return jwt.encode(claims, "k" * 64, algorithm="HS256", headers={"kid": "k1"})


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda k: token(k.team, expires_in=-120), "token expired"),
        (lambda k: token(k.team, aud="0" * 64), "token audience is not this application"),
        (
            lambda k: token(k.team, iss="https://other.cloudflareaccess.com"),
            "token issuer is not the team domain",
        ),
        (lambda k: token(k.impostor), "token signature does not verify"),
        (lambda k: token(k.team, kid="k2"), "token signed with an unknown key id"),
        (lambda k: "not.a.token", "token is not a JWT"),
        (lambda k: "", "no Cf-Access-Jwt-Assertion header"),
        (_hs256, "token algorithm 'HS256' is not RS256"),
        (
            lambda k: jwt.encode({"aud": AUD, "iss": TEAM}, None, algorithm="none"),
            "token algorithm 'none' is not RS256",
        ),
    ],
    ids=[
        "expired",
        "wrong-audience",
        "wrong-issuer",
        "bad-signature",
        "unknown-kid",
        "not-a-jwt",
        "empty",
        "hs256",
        "alg-none",
    ],
)
async def test_anything_else_gets_403(
    keys: Keys, make: Any, reason: str, json_logs: io.StringIO
) -> None:
    assert await status_for(service(Fetcher(keys.jwks())), make(keys)) == 403

    denials = [e["message"] for e in log_entries(json_logs) if e["logger"] == "app.access"]
    assert denials == [f"access denied: {reason}"]


async def test_a_missing_token_gets_403_with_the_usual_headers(keys: Keys) -> None:
    response = await service(Fetcher(keys.jwks())).test_client().get("/")

    assert response.status_code == 403
    assert await response.get_data() == b"403 Forbidden\n"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "X-Request-ID" in response.headers


async def test_the_reason_is_logged_not_sent(keys: Keys, json_logs: io.StringIO) -> None:
    response = (
        await service(Fetcher(keys.jwks()))
        .test_client()
        .get("/", headers={"Cf-Access-Jwt-Assertion": token(keys.team, expires_in=-120)})
    )

    assert b"expired" not in await response.get_data()
    (entry,) = [e for e in log_entries(json_logs) if e["logger"] == "app.access"]
    assert entry["message"] == "access denied: token expired"
    assert entry["request_id"] == response.headers["X-Request-ID"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
async def test_health_endpoints_stay_open(keys: Keys, path: str) -> None:
    fetcher = Fetcher(keys.jwks())
    app = service(fetcher)
    async with app.test_app():
        assert await status_for(app, None, path) == 200
    assert fetcher.calls == []


async def test_keys_are_fetched_once_and_cached(keys: Keys) -> None:
    fetcher = Fetcher(keys.jwks())
    app = service(fetcher)

    for _ in range(5):
        assert await status_for(app, token(keys.team)) == 200

    assert len(fetcher.calls) == 1


async def test_unknown_key_ids_refetch_at_most_once_per_interval(keys: Keys) -> None:
    fetcher = Fetcher(keys.jwks())
    clock = Clock()
    signing_keys = SigningKeys(CERTS, fetcher, clock=clock)

    await signing_keys.get("k1")
    clock.now += REFETCH_INTERVAL + 1
    for _ in range(3):
        with pytest.raises(AccessDenied, match="unknown key id"):
            await signing_keys.get("rotated")

    assert len(fetcher.calls) == 2  # the first load, then one refetch for the new id


async def test_keys_unavailable_means_403_and_one_retry_per_interval(keys: Keys) -> None:
    fetcher = Fetcher(keys.jwks(), failing=True)
    clock = Clock()
    signing_keys = SigningKeys(CERTS, fetcher, clock=clock)

    for _ in range(5):
        with pytest.raises(KeysUnavailable):
            await signing_keys.get("k1")
    assert len(fetcher.calls) == 1  # an unreachable endpoint is not hammered
    fetcher.failing = False
    clock.now += REFETCH_INTERVAL + 1

    assert await signing_keys.get("k1") is not None
    assert len(fetcher.calls) == 2


async def test_known_keys_outlive_a_failed_refresh(keys: Keys) -> None:
    fetcher = Fetcher(keys.jwks())
    clock = Clock()
    signing_keys = SigningKeys(CERTS, fetcher, clock=clock)
    key = await signing_keys.get("k1")

    fetcher.failing = True
    clock.now += KEYS_TTL + 1

    assert await signing_keys.get("k1") is key


async def test_a_garbled_jwks_is_unavailable_keys(keys: Keys) -> None:
    signing_keys = SigningKeys(CERTS, Fetcher(b"<html>captive portal</html>"))

    with pytest.raises(KeysUnavailable):
        await signing_keys.get("k1")


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def without_pyjwt(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in sys.modules if n == "jwt" or n.startswith("jwt.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "jwt", None)
    monkeypatch.setitem(sys.modules, "jwt.algorithms", None)


@pytest.mark.usefixtures("without_pyjwt")
def test_without_pyjwt_start_up_names_the_missing_extra() -> None:
    with pytest.raises(MissingExtra) as caught:
        require_pyjwt()

    message = str(caught.value)
    assert "`access` extra" in message
    assert "`doit image extras=1`" in message
    assert "`uv sync --extra access`" in message
    assert "\n" not in message
    with pytest.raises(MissingExtra):
        create_app(Settings(access_team_domain=TEAM, access_audiences=(AUD,)))
