"""What a server process holds, read from inside its container: descriptors, CLOSE-WAIT, RSS.

The engine's stats give a container's memory but not its descriptors or the state of its
sockets. So the probe runs in the container itself (``docker exec`` of the image's own
``/usr/bin/python3``, the image has no shell), where ``/proc`` is always Linux's and the
network namespace is the container's: it works wherever the engine runs, Docker Desktop
included. It sums over PID 1's descendants (the service under the init, and its workers), or
PID 1 itself when it has none; processes started by ``docker exec`` (the probe, a health check)
are nobody's children there, so they never count.

A socket in CLOSE-WAIT is one whose client has closed while the service still holds it open:
the sign of connections not let go (ADR 0013).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from docker.models.containers import Container

from scripts.core.errors import DeployError

#: Run by the container's Python as ``python3 -c PROBE [PID ...]`` (no PIDs: PID 1's tree, see
#: above). Standard library only; prints one JSON object.
PROBE = r"""
import json, os, sys


def parent(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("PPid:"))
    except (OSError, StopIteration):
        return None


if sys.argv[1:]:
    pids = [int(arg) for arg in sys.argv[1:]]
else:
    parents = {int(p): parent(p) for p in os.listdir("/proc") if p.isdigit()}
    tree, grown = {1}, True
    while grown:
        found = {pid for pid, up in parents.items() if up in tree} - tree
        tree |= found
        grown = bool(found)
    pids = sorted(tree - {1}) or [1]
seen = fds = rss = close_wait = 0
sockets = set()
tables = []
for pid in pids:
    try:
        links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        with open(f"/proc/{pid}/status") as status:
            kib = [line.split()[1] for line in status if line.startswith("VmRSS:")]
    except OSError:
        continue
    seen += 1
    fds += len(links)
    rss += int(kib[0]) * 1024 if kib else 0
    sockets |= {link[8:-1] for link in links if link.startswith("socket:[")}
    tables = tables or [f"/proc/{pid}/net/tcp", f"/proc/{pid}/net/tcp6"]
for table in tables:
    try:
        with open(table) as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                # st 08 is TCP_CLOSE_WAIT (include/net/tcp_states.h); field 9 is the inode
                if fields[3] == "08" and fields[9] in sockets:
                    close_wait += 1
    except OSError:
        pass
print(json.dumps({"processes": seen, "fds": fds, "rss": rss, "close_wait": close_wait}))
"""
PYTHON = "/usr/bin/python3"


@dataclass(frozen=True, kw_only=True)
class Holdings:
    """What the server processes held at one moment."""

    #: Server processes seen (Hypercorn's workers, or the one server).
    processes: int
    #: Open file descriptors, summed over them.
    fds: int
    #: Resident memory summed over them, in bytes.
    rss: int
    #: Their TCP sockets in CLOSE-WAIT: peers that hung up on a socket still open here.
    close_wait: int

    @classmethod
    def from_output(cls, output: str) -> Holdings:
        """Parse the probe's JSON line."""
        data = json.loads(output)
        return cls(
            processes=int(data["processes"]),
            fds=int(data["fds"]),
            rss=int(data["rss"]),
            close_wait=int(data["close_wait"]),
        )


def probe(container: Container) -> Holdings:
    """Run the probe in ``container``; :class:`DeployError` when it cannot."""
    code, output = container.exec_run([PYTHON, "-c", PROBE], demux=False)
    text = output.decode("utf-8", "replace").strip() if isinstance(output, bytes) else ""
    if code != 0:
        raise DeployError(
            f"could not read the service's descriptors in {container.name} "
            f"({PYTHON} exited {code}: {text[-200:]}); the image must ship {PYTHON}"
        )
    holdings = Holdings.from_output(text.splitlines()[-1])
    if holdings.processes == 0:
        raise DeployError(f"no server process found in {container.name} to probe")
    return holdings
