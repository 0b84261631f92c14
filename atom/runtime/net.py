"""Small network helpers."""

import random
import socket
import threading

# Ports handed out by this process: a service told to listen on one binds it seconds later, and
# two services started together must not be given the same.
_GIVEN: set[int] = set()
_LOCK = threading.Lock()
_RNG = random.SystemRandom()  # not the global RNG, which tests seed


def _ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now, below the range the OS draws outgoing connections'
    ports from (so none of those takes it before its server binds it), never one this process
    handed out before."""
    lo, _ = _ephemeral_range()
    low = 20000 if lo > 21000 else 1024
    with _LOCK:
        for _ in range(200):
            port = _RNG.randint(low, lo - 1)
            if port in _GIVEN:
                continue
            with socket.socket() as s:
                try:
                    s.bind((host, port))
                except OSError:
                    continue
            _GIVEN.add(port)
            return port
    with socket.socket() as s:  # a crowded machine: let the OS choose
        s.bind((host, 0))
        return s.getsockname()[1]


def port_open(host: str, port: int, timeout_s: float = 0.2) -> bool:
    with socket.socket() as s:
        s.settimeout(timeout_s)
        return s.connect_ex((host, port)) == 0
