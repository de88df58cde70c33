"""Django's session middleware, with one change: a view may say what its browser is shown when
the session it wrote to was ended meanwhile (signed in or out in another tab, which replaces the
session), instead of Django's "bad request". For a request whose outcome stands whatever the
session holds: an order placed, a card declined."""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.conf import settings
from django.contrib.sessions import middleware
from django.contrib.sessions.exceptions import SessionInterrupted
from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers, patch_vary_headers

_ANSWER = "_answer_if_session_interrupted"
# Headers the view's answer got from the middlewares inside this one and from its decorators.
_KEPT_HEADERS = ("X-Frame-Options", "Content-Security-Policy", "Referrer-Policy", "Cross-Origin-Opener-Policy")


def answer_if_session_interrupted(
    request: HttpRequest, answer: Callable[[], HttpResponse], *, unless_given: bool = False
) -> None:
    """What the browser is shown, should this request's session have been ended before it
    could be saved: its writes are lost, and the browser keeps the session it holds now. With
    `unless_given`, only if the request was given none before."""
    if unless_given and hasattr(request, _ANSWER):
        return
    setattr(request, _ANSWER, answer)


def shown_as_is_if_session_interrupted(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For a view whose answer stands whatever the session holds (an order placed, a card
    declined): the browser is shown it, unless the view named another answer for that case.
    A page with a form should name another: its CSRF token is the session's before the change,
    so its form would be refused."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = view(request, *args, **kwargs)
        answer_if_session_interrupted(request, lambda: response, unless_given=True)
        return response

    return wrapped


class SessionMiddleware(middleware.SessionMiddleware):
    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        try:
            return super().process_response(request, response)
        except SessionInterrupted:
            answer = getattr(request, _ANSWER, None)
            if answer is None:
                raise
            # The browser keeps the session and the CSRF token the other tab's sign-in or
            # sign-out gave it: neither cookie of this request's goes back to it.
            replaced = answer()
            replaced.cookies.pop(settings.SESSION_COOKIE_NAME, None)
            replaced.cookies.pop(settings.CSRF_COOKIE_NAME, None)
            # Made after the inner middlewares' and the view's decorators' steps: what they put
            # on the view's answer is put on this one (it is one browser's, never to be cached).
            for header in _KEPT_HEADERS:
                if header in response and header not in replaced:
                    replaced[header] = response[header]
            add_never_cache_headers(replaced)
            patch_vary_headers(replaced, ("Cookie",))
            return replaced
