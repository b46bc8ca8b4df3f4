"""The image as operators run it (issue 22's operators' findings): `.env.example` copied as
compose.yaml's header says, an empty setting meaning "not set", the image's entrypoint,
HEALTHCHECK and command run on this host with that configuration, migrate waiting for the
database, and the deployment files that no test here can start (nginx, compose)."""

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = (ROOT / "Dockerfile").read_text()
VENV_BIN = str(Path(sys.executable).parent)


def env_file(path: Path) -> dict[str, str]:
    """NAME=value lines as compose's `env_file` and `docker run --env-file` read them: an
    empty value is set, to ""."""
    variables = {}
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            variables[match[1]] = match[2]
    return variables


def dockerfile_json(instruction: str) -> list[str]:
    """The exec-form arguments of the Dockerfile's last INSTRUCTION (CMD, ENTRYPOINT, the
    HEALTHCHECK's CMD)."""
    joined = DOCKERFILE.replace("\\\n", " ")
    lines = [line for line in joined.splitlines() if line.startswith(instruction + " ")]
    line = lines[-1].split(" CMD ", 1)[-1] if instruction == "HEALTHCHECK" else lines[-1]
    return json.loads(line[line.index("[") :])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def base_env(*files: dict[str, str], **variables: str) -> dict[str, str]:
    """PATH and HOME, then each env file, then `variables`, later ones winning."""
    merged = {"PATH": f"{VENV_BIN}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}
    for variables_of_file in files:
        merged |= variables_of_file
    return merged | variables


# --- Empty means "not set" -----------------------------------------------------------------


def entrypoint_env(**variables: str) -> dict[str, str]:
    entrypoint = [str(ROOT / part.removeprefix("/app/")) for part in dockerfile_json("ENTRYPOINT")]
    shown = subprocess.run(
        [*entrypoint, "env"], env=base_env(**variables), capture_output=True, text=True, check=True
    )
    return dict(line.split("=", 1) for line in shown.stdout.splitlines() if "=" in line)


def test_the_images_defaults_apply_when_an_env_file_leaves_them_empty():
    image = entrypoint_env(GUNICORN_BIND="", DATA_DIR="", DEBUG="", PORT="")
    assert image["GUNICORN_BIND"] == "0.0.0.0:8000"
    assert image["DATA_DIR"] == "/data"
    assert image["DEBUG"] == "false"


def test_the_images_defaults_give_way_to_a_value():
    image = entrypoint_env(GUNICORN_BIND="0.0.0.0:9000", DATA_DIR="/srv", DEBUG="true")
    assert (image["GUNICORN_BIND"], image["DATA_DIR"], image["DEBUG"]) == (
        "0.0.0.0:9000",
        "/srv",
        "true",
    )
    assert entrypoint_env(PORT="8123")["GUNICORN_BIND"] == "0.0.0.0:8123"


def test_the_env_example_sets_no_development_value_and_no_proxy_trust():
    example = env_file(ENV_EXAMPLE)
    assert example["DEBUG"] == ""
    assert example["SECURE_PROXY_SSL_HEADER"] == ""
    for name in ("GUNICORN_BIND", "DATA_DIR", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL"):
        assert example[name] == "", name


@pytest.mark.slow
def test_gunicorn_on_a_host_with_the_env_example_as_is_runs_production_settings(tmp_path):
    # As the README's host deployment after `cp .env.example .env`, before filling it in:
    # production settings, so it refuses to start without a SECRET_KEY instead of serving
    # Django's debug pages.
    started = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--no-control-socket", "dashboard.wsgi"],
        cwd=ROOT,
        env=base_env(env_file(ENV_EXAMPLE), GUNICORN_BIND=f"127.0.0.1:{free_port()}"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is false." in started.stdout + started.stderr


@pytest.mark.slow
def test_the_image_configuration_from_the_env_example_listens_on_every_address_and_is_healthy(
    tmp_path,
):
    # `cp .env.example .env`, the settings compose.yaml's header names filled in (on the
    # sandbox: METRONOME_SANDBOX=true instead of a token), run as the image runs: its
    # entrypoint, then its CMD (migrate, then gunicorn). DATA_DIR stands in for the /data
    # volume, PORT for a free port; every other line of the example stays as it is.
    port = free_port()
    env = base_env(
        env_file(ENV_EXAMPLE),
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1",
        METRONOME_SANDBOX="true",
        SANDBOX_CUSTOMERS="50",
        DATA_DIR=str(tmp_path),
        PORT=str(port),
        PYTHONUNBUFFERED="1",
    )
    entrypoint = [str(ROOT / part.removeprefix("/app/")) for part in dockerfile_json("ENTRYPOINT")]
    log = tmp_path / "container.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*entrypoint, *dockerfile_json("CMD")],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        healthcheck = dockerfile_json("HEALTHCHECK")
        for _ in range(600):
            assert process.poll() is None, log.read_text()[-3000:]
            checked = subprocess.run(healthcheck, cwd=ROOT, env=env, capture_output=True)
            if checked.returncode == 0:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"never healthy: {log.read_text()[-3000:]}")

        output = log.read_text()
        assert f"Listening at: http://0.0.0.0:{port}" in output
        assert (tmp_path / "db.sqlite3").exists()
        # Production: plain HTTP is sent to HTTPS, not served a debug page.
        page = httpx.get(f"http://127.0.0.1:{port}/accounts/login/")
        assert page.status_code == 301
        assert page.headers["location"] == f"https://127.0.0.1:{port}/accounts/login/"
        # Every line the container wrote, migrate's included, is one JSON object.
        lines = [line for line in output.splitlines() if line.strip()]
        assert any("Applying customers.0001_initial... OK" in line for line in lines)
        for line in lines:
            assert isinstance(json.loads(line), dict), line
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_healthcheck_fails_without_raising_when_nothing_listens():
    port = free_port()
    checked = subprocess.run(
        dockerfile_json("HEALTHCHECK"),
        cwd=ROOT,
        env=base_env(GUNICORN_BIND="", PORT=str(port)),
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 1
    assert "unhealthy:" in checked.stderr and "Traceback" not in checked.stderr


# --- migrate waits for the database ---------------------------------------------------------


@pytest.mark.slow
def test_migrate_gives_up_on_a_database_that_never_answers_with_a_clear_message():
    port = free_port()
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "--wait", "1"],
        cwd=ROOT,
        env=base_env(
            DATABASE_URL=f"postgres://dashboard:hunter2-secret@127.0.0.1:{port}/dashboard",
            LOG_FORMAT="plain",
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert f"Waiting for the database at 127.0.0.1:{port}/dashboard (try 1)" in output
    assert f"The database at 127.0.0.1:{port}/dashboard did not answer in 1 s" in output
    assert "DATABASE_WAIT_SECONDS" in output
    assert "hunter2" not in output and "Traceback" not in output


def forward_later(listen_port: int, target: tuple[str, int], delay: float) -> threading.Event:
    """Start forwarding 127.0.0.1:listen_port to `target` after `delay` seconds: a database
    that comes up while migrate waits. Set the returned event to stop."""
    stop = threading.Event()

    def pipe(source: socket.socket, sink: socket.socket) -> None:
        with source, sink:
            while data := source.recv(65536):
                sink.sendall(data)

    def serve() -> None:
        time.sleep(delay)
        with socket.create_server(("127.0.0.1", listen_port)) as server:
            server.settimeout(0.2)
            while not stop.is_set():
                try:
                    client, _ = server.accept()
                except TimeoutError:
                    continue
                upstream = socket.create_connection(target)
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=pipe, args=(a, b), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return stop


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="needs DATABASE_URL=postgres://... (CI's PostgreSQL run sets it)",
)
def test_migrate_waits_for_a_database_that_comes_up_after_it_started():
    import environ
    import psycopg

    config = environ.Env.db_url_config(os.environ["DATABASE_URL"])
    host, db_port = config["HOST"] or "127.0.0.1", int(config["PORT"] or 5432)
    name = f"dashboard_wait_{secrets.token_hex(4)}"
    admin = psycopg.connect(
        host=host,
        port=db_port,
        user=config["USER"],
        password=config["PASSWORD"],
        dbname="postgres",
        autocommit=True,
    )
    admin.execute(f'CREATE DATABASE "{name}"')
    port = free_port()
    stop = forward_later(port, (host, db_port), 3)
    try:
        url = f"postgres://{config['USER']}:{config['PASSWORD']}@127.0.0.1:{port}/{name}"
        result = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "--wait", "60"],
            cwd=ROOT,
            env=base_env(DATABASE_URL=url, LOG_FORMAT="plain"),
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        stop.set()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Waiting for the database at 127.0.0.1" in result.stdout


# --- What no test here can start: reviewed by reading ---------------------------------------


def test_nginx_resolves_the_instances_at_run_time_and_fails_over_fast():
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    assert re.search(r"^resolver \$\{NGINX_LOCAL_RESOLVERS\} valid=\d+s", conf, re.M)
    assert "zone dashboard" in conf
    servers = re.findall(r"^\s*server (app\d):8000 (.*);", conf, re.M)
    assert [name for name, _ in servers] == ["app1", "app2"]
    for _, options in servers:
        assert "resolve" in options.split()
        assert "max_fails=1" in options and "fail_timeout=" in options
    assert re.search(r"proxy_connect_timeout [1-5]s;", conf)
    assert "proxy_next_upstream error timeout" in conf
    compose = (ROOT / "compose.yaml").read_text()
    assert "/etc/nginx/templates/default.conf.template" in compose
    assert 'NGINX_ENTRYPOINT_LOCAL_RESOLVERS: "1"' in compose


def test_compose_repeats_the_healthcheck_that_the_oci_format_drops():
    compose = (ROOT / "compose.yaml").read_text()
    assert 'test: ["CMD", "python", "deploy/healthcheck.py"]' in compose
    assert '["python", "deploy/healthcheck.py"]' in DOCKERFILE
    assert "OCI format" in DOCKERFILE


def test_pip_is_pinned_with_hashes_and_never_upgraded_unpinned():
    lock = (ROOT / "requirements-pip.txt").read_text()
    assert re.search(r"^pip==[\d.]+ \\\n\s+--hash=sha256:[0-9a-f]{64}", lock, re.M)
    makefile = (ROOT / "Makefile").read_text()
    assert "--upgrade pip" not in makefile and "--upgrade pip" not in DOCKERFILE
    assert "--require-hashes -r requirements-pip.txt" in makefile
    assert "requirements-pip.txt" in DOCKERFILE
