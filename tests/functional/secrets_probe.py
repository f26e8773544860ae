"""The attacker's probe: what a script can read of the supervisor's secrets, as a report.

Run by a test's script as ``python3 secrets_probe.py SUPERVISOR_PID REPORT``.  The secrets
planted by the test all start with a marker that the probe builds from ``MARKER_HEAD`` and
``MARKER_TAIL`` (two variables, so that no file or environment the script holds carries the
marker whole).  For every process it can see, it reads ``environ`` (and base64 values in
it) and ``cmdline``; and for its ancestors, and (unless it is root) every process of its own
user, the readable parts of its memory (``/proc/PID/mem`` at the addresses of
``/proc/PID/maps``).  It writes the secrets it found there into the report, with what each
access of the supervisor's own process gave, a ptrace attach to it included.
"""

from __future__ import annotations

import base64
import binascii
import ctypes
import json
import os
import re
import sys

_MAX_REGION = 256 * 1024 * 1024
_PTRACE_ATTACH, _PTRACE_DETACH = 16, 17
_WALL = 0x40000000


def main() -> None:
    supervisor, report_path = int(sys.argv[1]), sys.argv[2]
    marker = (os.environ["MARKER_HEAD"] + os.environ["MARKER_TAIL"]).encode()
    pattern = re.compile(re.escape(marker) + rb"-[a-z]+")
    found: set[tuple[str, str]] = set()
    access: dict[str, str] = {}
    ancestors = _ancestors()
    for pid in _pids():
        if pid == os.getpid():
            continue
        for part in ("environ", "cmdline"):
            data, outcome = _read(f"/proc/{pid}/{part}")
            if pid == supervisor:
                access[part] = outcome
            for chunk in (data, *_decoded(data)):
                found |= {(f"{pid}/{part}", m.decode()) for m in pattern.findall(chunk)}
        if pid in ancestors or (os.getuid() != 0 and _owner(pid) == os.getuid()):
            read, outcome = _search_memory(pid, pattern, found)
            if pid == supervisor:
                access["mem"] = f"{outcome}, {read} bytes read"
    for part in ("maps", "fd", "status"):
        path = f"/proc/{supervisor}/{part}"
        try:
            (os.listdir if part == "fd" else _read_text)(path)
            access[part] = "read"
        except OSError as exc:
            access[part] = _name(exc)
    access["ptrace"] = _attach(supervisor)
    report = {
        "found": sorted(f"{where}: {secret}" for where, secret in found),
        "access": access,
        "uid": os.getuid(),
        "supervisor_cmdline": _read(f"/proc/{supervisor}/cmdline")[0].decode(errors="replace"),
        "fds": {str(pid): _fd_targets(pid) for pid in (os.getpid(), os.getppid())},
    }
    with open(report_path, "w", encoding="utf-8") as out:
        json.dump(report, out, indent=1)


def _pids() -> list[int]:
    return sorted(int(name) for name in os.listdir("/proc") if name.isdigit())


def _ancestors() -> set[int]:
    pids, pid = set(), os.getppid()
    while pid > 1:
        pids.add(pid)
        stat = _read_text(f"/proc/{pid}/stat")
        pid = int(stat.rpartition(")")[2].split()[1])
    return pids


def _owner(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def _read(path: str) -> tuple[bytes, str]:
    try:
        with open(path, "rb") as source:
            return source.read(), "read"
    except OSError as exc:
        return b"", _name(exc)


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as source:
        return source.read()


def _decoded(environ: bytes) -> list[bytes]:
    """The base64 values of an environment (``FUNCTION_CONFIG``, ``FDL``) decoded."""
    values = []
    for entry in environ.split(b"\0"):
        _, _, value = entry.partition(b"=")
        try:
            values.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    return values


def _search_memory(
    pid: int, pattern: re.Pattern[bytes], found: set[tuple[str, str]]
) -> tuple[int, str]:
    try:
        maps = _read_text(f"/proc/{pid}/maps")
        mem = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    except OSError as exc:
        return 0, _name(exc)
    total = 0
    try:
        for line in maps.splitlines():
            fields = line.split()
            if len(fields) < 2 or not fields[1].startswith("r"):
                continue
            start, end = (int(address, 16) for address in fields[0].split("-"))
            try:
                data = os.pread(mem, min(end - start, _MAX_REGION), start)
            except OSError:
                continue
            total += len(data)
            found |= {(f"{pid}/mem", m.decode()) for m in pattern.findall(data)}
    finally:
        os.close(mem)
    return total, "read" if total else "nothing readable"


def _attach(pid: int) -> str:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.restype = ctypes.c_long
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    if libc.ptrace(_PTRACE_ATTACH, pid, None, None) == 0:
        # Let it go once it has stopped for the tracer, or it stays stopped.
        os.waitpid(pid, _WALL)
        libc.ptrace(_PTRACE_DETACH, pid, None, None)
        return "attached"
    return os.strerror(ctypes.get_errno())


def _fd_targets(pid: int) -> list[str]:
    folder = f"/proc/{pid}/fd"
    targets = []
    for fd in os.listdir(folder):
        try:
            targets.append(os.readlink(f"{folder}/{fd}"))
        except OSError:
            continue
    return targets


def _name(exc: OSError) -> str:
    return exc.__class__.__name__


if __name__ == "__main__":
    main()
