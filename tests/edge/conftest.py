"""Fixtures of the edge tests: the shared route table in the database, nginx on loopback,
echo backends standing in for the origins."""

from __future__ import annotations

import http.client
import importlib
import shutil
import subprocess
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.apps import apps
from django.utils import timezone

import procs
from edge import services
from edge.exporters.nginx import LOG_FORMAT, main_context
from edge.models import Origin, Route
from tests.conftest import free_port, wait_for_port
from tests.edge.cases import CANARY_SECRET, ROUTES

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "nginx" in item.fixturenames and NGINX is None:
            item.add_marker(pytest.mark.skip(reason="needs nginx: apt-get install nginx"))


def ensure_origins() -> None:
    """The origins the data migration creates (a transactional test's flush removes them)."""
    migration = importlib.import_module("edge.migrations.0002_default_origins")
    migration.create_origins(apps, None)


def _route_fields(spec: dict, now) -> dict:
    fields = {"enabled": spec.get("enabled", True)}
    if "window" in spec:
        start, end = spec["window"]
        fields["window_start"] = now + timedelta(hours=start) if start is not None else None
        fields["window_end"] = now + timedelta(hours=end) if end is not None else None
    if "canary" in spec:
        fields["canary_percent"] = spec["canary"]
    if "redirect" in spec:
        fields["redirect_url"], fields["redirect_status"] = spec["redirect"]
    return fields


def create_routes(routes=ROUTES, *, now=None) -> None:
    """The routes as a merchant creates them: validated, audited, each with its ROUTE event."""
    ensure_origins()
    now = now or timezone.now()
    for spec in routes:
        services.route_create(
            actor="test",
            name=spec["name"],
            pattern=spec["pattern"],
            origin=spec.get("origin"),
            **_route_fields(spec, now),
        )


def save_routes(routes=ROUTES, *, now=None) -> None:
    """The same routes, each validated as `route_create` validates it and placed as it places
    them, then saved in one statement without their audit entries and events: for the tests
    that only match requests against the table (a thirtieth of the cost, run a few hundred
    times)."""
    ensure_origins()
    now = now or timezone.now()
    origins = {origin.name: origin for origin in Origin.objects.all()}
    table = []
    for position, spec in enumerate(routes, start=1):
        origin = origins[spec["origin"]] if spec.get("origin") else None
        route = Route(
            name=spec["name"],
            pattern=spec["pattern"],
            origin=origin,
            position=position * 10,
            **_route_fields(spec, now),
        )
        route.full_clean(validate_unique=False)
        table.append(route)
    Route.objects.bulk_create(table)


@pytest.fixture(autouse=True)
def edge_canary_secret(settings):
    """The tester header of the shared cases counts only with this secret."""
    settings.EDGE_CANARY_SECRET = CANARY_SECRET


@pytest.fixture
def edge_routes(db):
    create_routes()


@pytest.fixture
def shared_routes(db):
    save_routes()


class EchoHandler(BaseHTTPRequestHandler):
    """An origin that says who it is and what it was asked."""

    origin = "?"

    def do_GET(self):
        body = f"{self.origin} {self.path}".encode()
        self.send_response(200)
        self.send_header("X-Origin", self.origin)
        self.send_header("X-Seen-Path", self.path)
        self.send_header("X-Seen-Trace", self.headers.get("X-Amzn-Trace-Id", ""))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture
def echo_origins(db):
    """One loopback backend per origin; the origins in the database point at them."""
    ensure_origins()
    servers = []
    for origin in Origin.objects.all():
        handler = type(f"Echo_{origin.name}", (EchoHandler,), {"origin": origin.name})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        Origin.objects.filter(pk=origin.pk).update(
            domain="127.0.0.1", port=server.server_address[1], protocol="http", path=""
        )
    yield
    for server in servers:
        server.shutdown()
        server.server_close()


class Nginx:
    def __init__(self, root: Path, conf: Path, port: int):
        self.root, self.conf, self.port = root, conf, port
        self.process: procs.Process | None = None

    @property
    def include(self) -> Path:
        return self.root / "edge.conf"

    def start(self) -> None:
        argv = [NGINX, "-p", str(self.root), "-c", str(self.conf), "-g", "daemon off;"]
        self.process = procs.start(argv, name="nginx", log=self.root / "stderr.log")
        wait_for_port(self.port, process=self.process)

    def test_config(self) -> None:
        subprocess.run([NGINX, "-t", "-q", "-p", str(self.root), "-c", str(self.conf)], check=True)

    def reload(self) -> None:
        subprocess.run([NGINX, "-p", str(self.root), "-c", str(self.conf), "-s", "reload"], check=True)

    def get(self, path: str, headers: dict | None = None) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path, headers={"Connection": "close", **(headers or {})})
            response = conn.getresponse()
            response.body = response.read()  # type: ignore[attr-defined]
            return response
        finally:
            conn.close()

    def stop(self) -> None:
        procs.stop(self.process)


@pytest.fixture
def nginx(tmp_path):
    """An nginx on a free loopback port, configured in tmp_path, including `edge.conf`."""
    root = tmp_path / "nginx"
    (root / "logs").mkdir(parents=True)
    port = free_port()
    conf = root / "nginx.conf"
    temp = "\n".join(
        f"    {name}_temp_path {root / name};" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf.write_text(
        main_context()
        + f"""error_log {root / "logs" / "error.log"} warn;
pid {root / "nginx.pid"};
worker_processes 2;
events {{ worker_connections 256; }}
http {{
{temp}
    include {root / "edge.conf"};
    access_log {root / "logs" / "access.log"} {LOG_FORMAT};
}}
"""
    )
    server = Nginx(root, conf, port)
    yield server
    server.stop()


class _Rollback(Exception):
    pass


@pytest.fixture(scope="module")
def shared_export(django_db_setup, django_db_blocker, tmp_path_factory):
    """The shared routes exported once for a module (table, CloudFront config, zip bytes);
    the database is left as it was."""
    from django.db import transaction
    from django.test import override_settings

    from edge import selectors
    from edge.exporters.export import export

    out = tmp_path_factory.mktemp("edge-export")
    with django_db_blocker.unblock(), override_settings(EDGE_CANARY_SECRET=CANARY_SECRET):
        try:
            with transaction.atomic():
                create_routes()
                table = selectors.route_table()
                export(["cloudfront", "lambda-edge"], out)
                raise _Rollback
        except _Rollback:
            pass
    return table, out
