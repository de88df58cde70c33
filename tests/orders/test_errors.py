"""The hot path's error answers: JSON when Redis is away, a client's forged forwarding header
is not an address, a body far over the limit is a 413."""

from __future__ import annotations

import pytest

from tests.conftest import free_port
from tests.orders.conftest import PREFIX, nothing_reserved, order_body, post_order


def test_redis_away_is_a_json_503_with_retry_after(client, allocation, settings):
    settings.CACHES = {
        "default": {"BACKEND": "config.cache.PooledRedisCache", "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}
    }

    response = post_order(client, order_body())

    assert response.status_code == 503
    assert response.json()["error"] == "unavailable" and int(response["Retry-After"]) > 0
    assert nothing_reserved(allocation)


@pytest.mark.parametrize("forwarded", ["garbage, 10.0.0.1", "<script>, 10.0.0.1"])
def test_a_forwarded_header_that_is_not_an_address_falls_back_to_the_connection(
    client, allocation, settings, forwarded
):
    settings.ORDERS_CLIENT_IP_HEADER = "X-Forwarded-For"
    settings.ORDERS_TRUSTED_PROXY_HOPS = 2

    response = post_order(client, order_body(), HTTP_X_FORWARDED_FOR=forwarded, REMOTE_ADDR="192.0.2.7")

    assert response.status_code == 202
    assert allocation.product.hot_orders.get().client_ip == "192.0.2.7"


def test_a_one_megabyte_body_is_a_json_413(client, allocation, caplog):
    response = post_order(client, b'{"quantity": 1, "pad": "' + b"x" * 1024 * 1024 + b'"}')

    assert response.status_code == 413 and response.json()["error"] == "too_large"
    assert not [record for record in caplog.records if record.exc_info]
    assert nothing_reserved(allocation)


def test_the_sale_page_asked_for_while_the_cache_is_away_is_a_503_saying_so(client, allocation, settings):
    """A restart of Redis or PostgreSQL is a moment's wait: the sale's page and the shop's say
    so, with Retry-After, rather than "something went wrong" (a 500)."""
    settings.CACHES = {
        "default": {"BACKEND": "config.cache.PooledRedisCache", "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}
    }

    response = client.get(PREFIX)

    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0 and response["Cache-Control"] == "no-store"
    assert "Back in a moment" in response.content.decode()
