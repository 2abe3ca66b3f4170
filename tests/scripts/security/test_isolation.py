"""Who listens on the host (``ss -ltnp``), and whether any of it is for the app."""

from __future__ import annotations

import sys
from pathlib import Path

from scripts.core.settings import Settings
from scripts.security.isolation import (
    Listener,
    host_listener_check,
    host_listeners,
    listeners_for,
    parse_ss,
    proxy_target,
)

SS_OUTPUT = """\
State  Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess
LISTEN 0      4096   127.0.0.1:2377  0.0.0.0:* users:(("dockerd",pid=2897,fd=26))
LISTEN 0      4096   127.0.0.1:8080  0.0.0.0:* users:(("docker-proxy",pid=15697,fd=4))
LISTEN 0      1024   127.0.0.1:18410 0.0.0.0:* users:(("python",pid=22376,fd=3))
LISTEN 0      128      0.0.0.0:2024  0.0.0.0:*
"""
PROXY = (
    "/usr/sbin/docker-proxy -proto tcp -host-ip 127.0.0.1 -host-port 8080 "
    "-container-ip 172.20.0.2 -container-port 8080"
)


def test_listeners_and_their_programs_are_read_with_or_without_the_header() -> None:
    listeners = parse_ss(SS_OUTPUT)
    assert [(it.address, it.program, it.pid) for it in listeners] == [
        ("127.0.0.1:2377", "dockerd", 2897),
        ("127.0.0.1:8080", "docker-proxy", 15697),
        ("127.0.0.1:18410", "python", 22376),
        ("0.0.0.0:2024", "", None),
    ]
    assert parse_ss(SS_OUTPUT.split("\n", 1)[1]) == listeners
    assert parse_ss("") == []


def test_the_proxys_target_is_read_from_its_command_line() -> None:
    assert proxy_target(PROXY) == "172.20.0.2:8080"
    assert proxy_target("/usr/bin/python3 -m app") == ""


def test_a_proxy_to_the_app_fails_and_a_stranger_does_not() -> None:
    to_app = Listener(
        address="127.0.0.1:8080", program="docker-proxy", forwards_to="172.20.0.2:8080"
    )
    to_other = Listener(
        address="127.0.0.1:8081", program="docker-proxy", forwards_to="172.17.0.5:80"
    )
    stranger = Listener(address="127.0.0.1:9404", program="python", pid=7)
    assert listeners_for([to_app, to_other, stranger], [], {"172.20.0.2"}) == [to_app]
    check = host_listener_check("Linux", [to_other], [to_other, stranger], {"172.20.0.2"})
    assert check.ok
    assert "opened meanwhile by others: 127.0.0.1:9404 (python)" in check.evidence
    assert not host_listener_check("Linux", [], [to_app], {"172.20.0.2"}).ok


def test_a_new_listener_of_unknown_program_counts_against_the_app() -> None:
    """Without the privilege to see its program, a listener that appeared cannot be cleared."""
    unknown = Listener(address="0.0.0.0:31000")
    assert listeners_for([unknown], [], {"172.20.0.2"}) == [unknown]
    assert listeners_for([unknown], [unknown], {"172.20.0.2"}) == []


def test_host_listeners_name_the_container_each_proxy_serves(tmp_path: Path) -> None:
    """``ss`` stood in by a script; /proc by a directory holding the proxy's command line."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "ss.out").write_text(SS_OUTPUT)
    fake_ss = bin_dir / "ss"
    fake_ss.write_text(f"#!{sys.executable}\nprint(open({str(tmp_path / 'ss.out')!r}).read())\n")
    fake_ss.chmod(0o755)
    proc = tmp_path / "proc"
    (proc / "15697").mkdir(parents=True)
    (proc / "15697" / "cmdline").write_bytes(PROXY.replace(" ", "\0").encode() + b"\0")
    settings = Settings.from_env({"PATH": str(bin_dir)})
    listeners = {it.address: it for it in host_listeners(settings, proc)}
    assert listeners["127.0.0.1:8080"].forwards_to == "172.20.0.2:8080"
    assert listeners["127.0.0.1:2377"].forwards_to == ""
