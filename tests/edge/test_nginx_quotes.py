"""Exported nginx configurations that nginx must load and decide with: a route whose pattern
holds a double quote (a character CloudFront takes), and a tracing rate below split_clients'
smallest share."""

from __future__ import annotations

import pytest

from edge import selectors
from edge.exporters import nginx
from edge.models import Origin, Route
from tests.edge.conftest import create_routes, ensure_origins
from tests.edge.test_nginx import export_to

pytestmark = pytest.mark.django_db

QUOTED = '/t/say/"hi"/*'


@pytest.fixture
def quoted_route(echo_origins):
    create_routes([dict(name="quoted", pattern=QUOTED, origin="hotpath")])


def test_a_pattern_with_a_double_quote_loads_and_routes(quoted_route, nginx):
    export_to(nginx)
    nginx.test_config()
    nginx.start()

    routed = nginx.get("/t/say/%22hi%22/there")
    other = nginx.get("/t/say/hi/there")

    assert (routed.status, routed.getheader("X-Edge-Route"), routed.getheader("X-Origin")) == (200, "quoted", "hotpath")
    assert other.getheader("X-Edge-Route") == "default"


@pytest.mark.parametrize("rate", ["0.00001", "0.00004"])
def test_a_tracing_rate_below_a_hundredth_of_a_percent_loads_as_never_sampled(echo_origins, nginx, settings, rate):
    settings.TRACING_SAMPLE_RATE = float(rate)
    export_to(nginx)

    assert "$edge_trace_sampled { default 0; }" in nginx.include.read_text()
    nginx.test_config()


@pytest.mark.django_db
def test_the_export_refuses_an_origin_that_is_not_a_host_or_a_redirect_with_a_line_break():
    """The models refuse both first; a row written around them never reaches nginx."""
    ensure_origins()
    Origin.objects.filter(name="monolith").update(domain="127.0.0.1:9;\n}\nserver {")
    with pytest.raises(ValueError, match="is not a host"):
        nginx.server_config(selectors.route_table())
    Origin.objects.filter(name="monolith").update(domain="127.0.0.1")
    route = Route.objects.create(name="crlf", pattern="/crlf/*", enabled=True, redirect_url="/sale")
    Route.objects.filter(pk=route.pk).update(redirect_url="/sale\r\nSet-Cookie: a=b")
    with pytest.raises(ValueError, match="control character"):
        nginx.server_config(selectors.route_table())


def test_nginx_closes_an_idle_connection_to_an_origin_before_the_origin_would(echo_origins):
    """A keep-alive connection the origin closes as nginx sends a request on it is a 502, and
    nginx does not send a POST again: nginx lets its idle connections go first, both below
    gunicorn's keep-alive (config/gunicorn.py) and granian's 30 s wait for a request."""
    import re
    import runpy

    from django.conf import settings

    config = nginx.server_config(selectors.route_table())
    upstreams = len(re.findall(r"^upstream \S+ \{$", config, flags=re.M))
    assert upstreams and config.count(f"    keepalive_timeout {nginx.UPSTREAM_IDLE_SECONDS}s;") == upstreams
    gunicorn = runpy.run_path(str(settings.BASE_DIR / "config" / "gunicorn.py"))
    assert gunicorn["keepalive"] > nginx.UPSTREAM_IDLE_SECONDS < 30
