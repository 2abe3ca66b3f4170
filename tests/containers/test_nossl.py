"""The ssl stand-in of an image without OpenSSL: every name, imports that work, TLS refused.

It is rendered from this interpreter's own ssl module, as the builder renders it from its own,
and run in a fresh interpreter where it shadows the real one, as it does in the image.
"""

from __future__ import annotations

import enum
import inspect
import ssl
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
from builder import nossl

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def standin() -> types.ModuleType:
    module = types.ModuleType("ssl")
    exec(compile(nossl.render(ssl), "ssl.py", "exec"), module.__dict__)  # noqa: S102 - our own source
    return module


@pytest.fixture
def shadowing(tmp_path: Path) -> Path:
    """A directory whose ssl.py is the stand-in: first on PYTHONPATH, it hides the real one."""
    (tmp_path / "ssl.py").write_text(nossl.render(ssl))
    return tmp_path


def _run(code: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={"PYTHONPATH": f"{path}:{ROOT}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_public_name_of_ssl_is_there_with_its_value(standin: types.ModuleType) -> None:
    for name in dir(ssl):
        value = getattr(ssl, name)
        ours = inspect.isclass(value) or isinstance(value, bool | int | str)
        if (
            name.startswith("__")
            or not ours
            or getattr(value, "__module__", "ssl")
            not in {
                "ssl",
                "_ssl",
                "builtins",
            }
        ):
            continue
        assert hasattr(standin, name), name
        if isinstance(value, enum.Enum):
            assert int(getattr(standin, name)) == int(value), name
    assert standin.TLSVersion.TLSv1_2 == ssl.TLSVersion.TLSv1_2
    assert standin.OP_NO_COMPRESSION == ssl.OP_NO_COMPRESSION
    assert issubclass(standin.SSLWantReadError, standin.SSLError)
    assert issubclass(standin.SSLError, OSError)


def test_it_says_there_is_no_openssl(standin: types.ModuleType) -> None:
    assert standin.HAS_SNI is False
    assert standin.HAS_TLSv1_3 is False
    assert standin.OPENSSL_VERSION_NUMBER == 0
    assert "without OpenSSL" in standin.OPENSSL_VERSION


def test_a_context_can_be_configured_but_never_used(standin: types.ModuleType) -> None:
    context = standin.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    context.minimum_version = standin.TLSVersion.TLSv1_2
    assert context.verify_mode == standin.CERT_REQUIRED
    assert context.check_hostname is True
    for use in (
        lambda: context.wrap_socket(None, server_hostname="example.com"),
        lambda: context.wrap_bio(None, None),
        lambda: context.load_cert_chain("cert.pem"),
        lambda: context.load_verify_locations("ca.pem"),
        lambda: standin.create_default_context(cafile="ca.pem"),
        standin.MemoryBIO,
        lambda: standin.get_server_certificate(("example.com", 443)),
    ):
        with pytest.raises(standin.TLSUnavailable, match=r'openssl = "keep"'):
            use()


def test_a_missing_name_says_why(standin: types.ModuleType) -> None:
    with pytest.raises(AttributeError, match=r"no attribute 'not_a_name'.*without OpenSSL"):
        _ = standin.not_a_name


def test_the_servers_and_clients_import_and_plain_http_still_works(shadowing: Path) -> None:
    result = _run(
        """
        import ssl, asyncio, http.client, urllib.request
        import hypercorn.config, hypercorn.asyncio.run, uvloop, prometheus_client.exposition
        assert "without OpenSSL" in ssl.OPENSSL_VERSION, ssl.__file__
        urllib.request.build_opener()  # every opener makes a TLS context, even for http://
        hypercorn.config.Config()
        print("ok")
        """,
        shadowing,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_an_https_request_fails_loudly_naming_the_fix(shadowing: Path) -> None:
    result = _run(
        """
        import socket, urllib.request
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        urllib.request.urlopen(f"https://127.0.0.1:{port}/", timeout=5)
        """,
        shadowing,
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ssl.TLSUnavailable: SSLContext.wrap_socket: TLS is not available")
    assert "[tool.zeroport.image]" in last


def test_hypercorn_serving_tls_fails_at_start(shadowing: Path) -> None:
    result = _run(
        """
        import hypercorn.config
        config = hypercorn.config.Config()
        config.certfile, config.keyfile = "cert.pem", "key.pem"
        config.create_ssl_context()
        """,
        shadowing,
    )
    assert result.returncode == 1
    assert "SSLContext.load_cert_chain: TLS is not available" in result.stderr
