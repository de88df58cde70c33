"""The benchmark's shoppers as requests: buyers of a hot product, browsers and ordinary
checkouts, each a partial of a module function so that a load generator in another process
can be given it; and the order numbers buyers were given."""

from __future__ import annotations

import functools
import json

import urllib3

from bench.loadgen import RunResult

CARD_OK = "4242424242424242"
CARD_DECLINED = "4000000000000002"  # the legacy API declines it


def _buyer_send(
    base: str, run: str, product_path: str, pool: urllib3.PoolManager, i: int, *, decline_every: int = 0
) -> tuple[int, bytes]:
    declined = decline_every and i % decline_every == 0
    body = json.dumps(
        {
            "quantity": 1,
            "customer": {"name": f"Buyer {i}", "email": f"buyer{i}.{run}@example.com"},
            "payment": {"card_number": CARD_DECLINED if declined else CARD_OK},
        }
    )
    response = pool.request(
        "POST",
        f"{base}{product_path}orders",
        body=body,
        headers={
            "Content-Type": "application/json",
            "Idempotency-Key": f"{run}-{i}",
            # Each buyer is another client to the throttle (the header, not an address).
            "X-Forwarded-For": f"198.51.{(i >> 8) & 255}.{i & 255}",
        },
    )
    return response.status, response.data


def _browse_send(base: str, paths: list[str], pool: urllib3.PoolManager, i: int) -> tuple[int, bytes]:
    response = pool.request("GET", base + paths[i % len(paths)], preload_content=True)
    return response.status, b""


def _checkout_send(
    base: str, run: str, product_paths: list[str], pool: urllib3.PoolManager, i: int
) -> tuple[int, bytes]:
    return _buyer_send(base, run, product_paths[i % len(product_paths)], pool, i)


# The requests are partials of module functions, so that a load generator of its own (another
# process, see `open_loop_apart`) can be given them.
def buyer_request(base: str, run: str, *, product_path: str, decline_every: int = 0):
    """Buyer `i` of a run; every `decline_every`-th pays with a card the legacy API declines."""
    return functools.partial(_buyer_send, base, run, product_path, decline_every=decline_every)


def browse_request(base: str, paths: list[str]):
    return functools.partial(_browse_send, base, paths)


def checkout_request(base: str, run: str, product_paths: list[str]):
    """Ordinary shoppers who buy other products, answered by the monolith."""
    return functools.partial(_checkout_send, base, run, product_paths)


def accepted_numbers(result: RunResult) -> list[str]:
    numbers = []
    for sample in result.samples:
        if sample.status == 202:
            try:
                numbers.append(json.loads(sample.body)["number"])
            except (ValueError, KeyError):
                numbers.append("<unreadable>")
    return numbers
