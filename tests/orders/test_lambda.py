"""The hot path as an AWS Lambda function behind API Gateway (HTTP API, payload v2): the same
answers as the gunicorn deployment, since both serve the same WSGI application."""

from __future__ import annotations

import json
import subprocess

import pytest
from cryptography.fernet import Fernet

from tests.conftest import PYTHON, ROOT
from tests.orders.conftest import ORDERS_URL, PREFIX, http_json, order_body

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SECRET_KEY = "a-long-random-secret-key-for-the-lambda-test-0123456789"

INVOKE = """
import json, sys
from config.lambda_hotpath import lambda_handler
events = json.load(sys.stdin)
print(json.dumps([lambda_handler(event, None) for event in events]))
"""


def http_api_event(method: str, path: str, *, body=None, headers: dict | None = None) -> dict:
    """An API Gateway HTTP API (payload format 2.0) event, as Lambda receives it."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        # API Gateway terminates HTTPS and says so, as production's redirect to HTTPS expects.
        "headers": {
            "host": "127.0.0.1",
            "content-type": "application/json",
            "x-forwarded-proto": "https",
            "x-forwarded-port": "443",
            "x-forwarded-for": "203.0.113.7",
            **(headers or {}),
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "hotpath",
            "domainName": "127.0.0.1",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "test",
            },
            "requestId": "request-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "22/Nov/2026:12:00:00 +0000",
            "timeEpoch": 1795000000000,
        },
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


def invoke(events: list[dict], env: dict[str, str]) -> list[dict]:
    """Runs the Lambda handler in a fresh process, as a cold Lambda runtime would."""
    done = subprocess.run(
        [PYTHON, "-c", INVOKE], input=json.dumps(events), capture_output=True, text=True, cwd=ROOT, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_lambda_handler_answers_a_hot_path_event_like_the_wsgi_server(processes, process_env, allocation):
    env = {**process_env, "SECRET_KEY": SECRET_KEY, "DJANGO_ENV": "production", "DEBUG": "0"}
    env["LEGACY_API_TOKEN_HOTPATH"] = "hotpath-token-" + SECRET_KEY[:16]
    env["CARD_ENCRYPTION_KEY"] = Fernet.generate_key().decode()
    hotpath = processes.granian("config.wsgi_hotpath", {**env, "DJANGO_ENV": "test"})
    body = order_body()

    placed, page = invoke(
        [
            http_api_event("POST", ORDERS_URL, body=body, headers={"idempotency-key": "lambda-key-1"}),
            http_api_event("GET", PREFIX),
        ],
        env,
    )

    assert placed["statusCode"] == 202
    answer = json.loads(placed["body"])
    assert answer["status"] == "processing" and answer["number"].startswith("T")
    assert {k.lower(): v for k, v in placed["headers"].items()}["location"] == answer["status_url"]
    assert page["statusCode"] == 200 and "Muskie Casting Rod" in page["body"]

    # The same key and body at the gunicorn deployment: the very same order.
    status, replay, _ = http_json("POST", hotpath + ORDERS_URL, body, headers={"Idempotency-Key": "lambda-key-1"})
    assert (status, replay) == (202, answer)
    # And the status, through both.
    [polled] = invoke([http_api_event("GET", answer["status_url"])], env)
    status, via_gunicorn, _ = http_json("GET", hotpath + answer["status_url"])
    assert polled["statusCode"] == status == 200
    assert json.loads(polled["body"]) == via_gunicorn
    assert via_gunicorn["number"] == answer["number"]
    # A wrong token is refused by both alike.
    wrong = answer["status_url"][:-4] + "AAAA"
    [refused] = invoke([http_api_event("GET", wrong)], env)
    assert refused["statusCode"] == http_json("GET", hotpath + wrong)[0] == 404
