from django.test import RequestFactory

from config.headers import request_header


def test_a_header_reads_as_request_headers_gives_it():
    request = RequestFactory().post("/", HTTP_IDEMPOTENCY_KEY=" k-1 ", HTTP_X_FORWARDED_FOR="203.0.113.9, 10.0.0.2")
    assert request_header(request, "Idempotency-Key") == request.headers["Idempotency-Key"] == " k-1 "
    assert request_header(request, "x-forwarded-for") == request.headers["X-Forwarded-For"]


def test_a_missing_header_gives_the_default():
    request = RequestFactory().get("/")
    assert request_header(request, "Idempotency-Key") == ""
    assert request_header(request, "Idempotency-Key", None) is None
