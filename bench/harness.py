"""What every benchmark shares: the sandbox and the dashboard as real servers on loopback,
a signed-in session, timing helpers and Markdown tables.

The sandbox runs as `manage.py run_sandbox` and the dashboard under gunicorn with
`DEBUG=false` (bench/bench_settings.py), each in its own process, so the code being
measured never shares a GIL with the server it talks to or with the client timing it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
# Every sandbox the page benchmarks talk to holds this many customers (as in issue 13).
PAGE_SANDBOX_CUSTOMERS = 20_000
QUICK_SANDBOX_CUSTOMERS = 1_000


# --- Servers ---------------------------------------------------------------------------------


@dataclass
class Sandbox:
    url: str
    token: str

    def set_latency(self, latency_ms: float) -> None:
        """The sandbox adds this much to every API answer from now on."""
        response = httpx.post(
            f"{self.url}/_sandbox/faults", json={"latency_s": latency_ms / 1000}, timeout=10
        )
        response.raise_for_status()

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"},
            timeout=60,
        )


def _sandbox_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METRONOME_", "DEBUG"))}
    env["DJANGO_SETTINGS_MODULE"] = "dashboard.settings"
    return env


@contextlib.contextmanager
def sandbox(customers: int, latency_ms: float = 0) -> Iterator[Sandbox]:
    """`manage.py run_sandbox` on a free loopback port, in its own process."""
    from customers.sandbox import SANDBOX_TOKEN

    process = subprocess.Popen(
        [
            PYTHON,
            "manage.py",
            "run_sandbox",
            "--port",
            "0",
            "--customers",
            str(customers),
            "--latency-ms",
            str(latency_ms),
        ],
        cwd=ROOT,
        env=_sandbox_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        found = re.search(r" at (http://\S+)", first_line)
        if not found:
            raise RuntimeError(f"the sandbox did not start: {first_line!r}")
        yield Sandbox(url=found.group(1), token=SANDBOX_TOKEN)
    finally:
        process.terminate()
        process.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Dashboard:
    url: str
    session_cookie: str
    workdir: Path
    pid: int = 0  # gunicorn's arbiter; its workers are its children

    def client(self, timeout: float = 60) -> httpx.Client:
        # The session cookie is Secure (DEBUG is off), so a cookie jar would not send it over
        # plain HTTP on loopback: it goes in the header instead.
        return httpx.Client(
            base_url=self.url,
            headers={"Cookie": f"sessionid={self.session_cookie}"},
            timeout=timeout,
        )


def dashboard_env(sandbox_url: str, workdir: Path) -> dict[str, str]:
    """Production settings, except loopback HTTP and the sandbox instead of Metronome."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METRONOME_", "DEBUG"))}
    env.update(
        DJANGO_SETTINGS_MODULE="bench.bench_settings",
        DEBUG="false",
        SECRET_KEY="bench-only-" + "x" * 50,
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="false",
        METRONOME_SANDBOX="true",
        METRONOME_BASE_URL=sandbox_url,
        DATABASE_URL=f"sqlite:///{workdir / 'bench.sqlite3'}",
        BENCH_STATIC_ROOT=str(workdir / "static"),
        # As in production: one JSON line per request (to gunicorn.log in the workdir).
        LOG_LEVEL="INFO",
        PYTHONPATH=str(ROOT),
    )
    return env


# A session for a Finance user, made the way login would make it, printed as its key.
_SIGN_IN = """
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import Group, User
from django.contrib.sessions.backends.db import SessionStore
user, _ = User.objects.get_or_create(username="bench")
user.groups.add(Group.objects.get(name="Finance"))
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[-1]
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print(session.session_key)
"""


def prepare_database(env: dict[str, str], *, sync_index: bool = False) -> str:
    """Migrate a fresh SQLite database, collect static files, sign a user in: the session key.
    `sync_index`: also sync the customer index from the sandbox, as `sync_customers --every`
    keeps it in production (pasted-ID searches ask Metronome only what can match)."""

    def manage(*args: str) -> str:
        done = subprocess.run(
            [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {args[0]} failed:\n{done.stderr[-3000:]}")
        return done.stdout

    manage("migrate", "--noinput")
    manage("collectstatic", "--noinput")
    if sync_index:
        manage("sync_customers")
    return manage("shell", "-c", _SIGN_IN).strip().splitlines()[-1]


@contextlib.contextmanager
def dashboard(
    sandbox_url: str, *, sync_index: bool = False, settings: dict[str, str] | None = None
) -> Iterator[Dashboard]:
    """The dashboard under gunicorn (gunicorn.conf.py, DEBUG off) on a loopback port;
    `settings`: environment variables set for it on top of the production ones."""
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        workdir = Path(tmp)
        env = {**dashboard_env(sandbox_url, workdir), **(settings or {})}
        session = prepare_database(env, sync_index=sync_index)
        port = free_port()
        env["GUNICORN_BIND"] = f"127.0.0.1:{port}"
        log = open(workdir / "gunicorn.log", "w")  # noqa: SIM115 (closed below)
        process = subprocess.Popen(
            [PYTHON, "-m", "gunicorn", "dashboard.wsgi", "-c", "gunicorn.conf.py"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_until_up(url, process, workdir / "gunicorn.log")
            yield Dashboard(url=url, session_cookie=session, workdir=workdir, pid=process.pid)
        finally:
            process.terminate()
            process.wait(timeout=60)
            log.close()


def _wait_until_up(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.TransportError):
            httpx.get(f"{url}/accounts/login/", timeout=2)
            return
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer within 60 s")


# --- Timing ----------------------------------------------------------------------------------


def alternate(
    contenders: dict[str, Callable[[], object]],
    rounds: int,
    cpu: dict[str, list[float]] | None = None,
    probes: dict[str, Callable[[], Callable[[], None]]] | None = None,
) -> dict[str, list[float]]:
    """Wall seconds of each contender, run A B C, then B C A, ... so drift hits all alike.

    With `cpu`, also this process's CPU seconds per run (all threads): on a shared machine
    CPU time holds steady where wall time waits for a core. `probes`: for a contender, what
    to start just before each of its runs, which returns what to call just after; both
    outside the time measured (reading /proc takes milliseconds)."""
    names = list(contenders)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            probe = probes.get(name) if probes else None
            stop = probe() if probe else None
            started, started_cpu = time.perf_counter(), time.process_time()
            contenders[name]()
            times[name].append(time.perf_counter() - started)
            if cpu is not None:
                cpu.setdefault(name, []).append(time.process_time() - started_cpu)
            if stop:
                stop()
    return times


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system, every thread) a process and its descendants have used so
    far: a gunicorn arbiter and its workers, a sandbox. Those still running count their own
    time and that of children they have reaped (so one that ends between two readings is not
    lost). Linux only (/proc); 0.0 where there is none."""
    clock_ticks = os.sysconf("SC_CLK_TCK")
    used: dict[int, float] = {}
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            # After the name in parentheses (which may hold spaces): the parent's ID is the
            # 2nd field, utime and stime the 12th and 13th, the reaped children's the next two.
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            used[int(entry.name)] = sum(int(field) for field in fields[11:15]) / clock_ticks
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        total += used.get(current, 0.0)
        pending += children.get(current, [])
    return total


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: with 100 samples, p99 is the second-worst."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def run_json(args: Sequence[str], env: dict[str, str] | None = None, timeout: float = 3600) -> dict:
    """Run a Python child process whose last stdout line is JSON; return that JSON."""
    done = subprocess.run(
        [PYTHON, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"{args} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- Markdown --------------------------------------------------------------------------------


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(met: bool) -> str:
    return "**met**" if met else "**missed**"


def miss_note(goal: str, profile: str, would_take: str) -> str:
    """What BENCHMARKS.md says under a missed goal: where the time went in this run (figures
    measured in it) and what meeting the goal would take."""
    return f"**Missed: {goal}.** {profile}\n\n*What it would take:* {would_take}"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"
