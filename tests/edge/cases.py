"""The shared table of routing cases every router must decide identically.

`ROUTES` is one route table (25 routes, CloudFront's default quota) exercising every rule
of the pattern language, order, sale windows, canaries and redirects; windows are given
in hours relative to the moment the test runs. `CASES` are requests and what must happen.
Canary cookie values were chosen for where their hash falls (e.g. buyer-26 sits at 30.7%,
just outside a 30% canary).
"""

from __future__ import annotations

from dataclasses import dataclass, field

ROUTES = [
    dict(name="muskie", pattern="/shop/rods/muskie-casting-rod/*", origin="hotpath"),
    dict(name="legacy", pattern="/legacy-api/*", origin="legacy-api"),
    dict(name="jpg", pattern="/t/star/*.jpg", origin="minisite"),
    dict(name="qmark", pattern="/t/q/file?.txt", origin="hotpath"),
    dict(name="no-slash", pattern="t/noslash/*", origin="legacy-api"),
    dict(name="exact", pattern="/t/exact", origin="legacy-api"),
    dict(name="chars", pattern="/t/chars/a$b~c'd@e:f+g&h_i-j.k", origin="hotpath"),
    dict(name="empty-star", pattern="/t/empty*", origin="hotpath"),
    dict(name="two-q", pattern="/t/??/x", origin="legacy-api"),
    dict(name="order-a", pattern="/t/order/*", origin="hotpath"),
    dict(name="order-b", pattern="/t/order/special/*", origin="legacy-api"),
    dict(name="win-open", pattern="/t/win/open/*", origin="hotpath", window=(-1, 1)),
    dict(name="win-future", pattern="/t/win/future/*", origin="hotpath", window=(1, 2)),
    dict(name="win-past", pattern="/t/win/past/*", origin="hotpath", window=(-2, -1)),
    dict(name="win-from", pattern="/t/win/from/*", origin="hotpath", window=(-1, None)),
    dict(name="win-catch", pattern="/t/win/*", origin="legacy-api"),
    dict(name="canary", pattern="/t/canary/*", origin="hotpath", canary=30),
    dict(name="canary-none", pattern="/t/canary0/*", origin="hotpath", canary=0),
    dict(name="canary-all", pattern="/t/canary100/*", origin="hotpath", canary=100),
    dict(name="redirect-301", pattern="/t/old/*", redirect=("https://shop.example.com/new/", 301)),
    dict(name="redirect-308", pattern="/t/moved", redirect=("/shop/", 308)),
    dict(name="redirect-later", pattern="/t/sale-redirect/*", redirect=("/shop/sale/", 302), window=(1, 2)),
    dict(name="redirect-canary", pattern="/t/try/*", redirect=("/shop/new-try/", 307), canary=50),
    dict(name="site", pattern="/t/site/*", origin="minisite"),
    dict(name="off", pattern="/t/off/*", origin="hotpath", enabled=False),
]

IN_30, IN_30_B, OUT_30 = "buyer-3", "buyer-24", "buyer-26"
# EDGE_CANARY_SECRET in the edge tests: a tester's header counts only with it.
CANARY_SECRET = "tester-0123456789-abcdef"
IN_50, OUT_50 = "buyer-1", "buyer-16"


@dataclass(frozen=True)
class Case:
    uri: str
    route: str
    origin: str | None = None
    redirect: tuple[int, str] | None = None
    cookie: str | None = None  # the canary cookie's value
    tester: str | None = None  # the X-Edge-Canary header
    secret: str = ""  # the X-Edge-Canary-Secret header
    why: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        parts = [self.uri]
        if self.cookie:
            parts.append(f"cookie={self.cookie}")
        if self.tester:
            parts.append(f"tester={self.tester}")
            if self.secret != CANARY_SECRET:
                parts.append(f"secret={self.secret or 'none'}")
        return " ".join(parts)


def c(uri, route, origin=None, *, redirect=None, cookie=None, tester=None, secret=None, why=""):
    if origin is None and redirect is None:
        origin = "monolith" if route == "default" else None
    if secret is None:
        secret = CANARY_SECRET if tester else ""
    return Case(uri, route, origin, redirect, cookie, tester, secret, why)


CASES = [
    # The workshop's behaviour: * crosses /, a trailing slash is needed, case matters.
    c("/shop/rods/muskie-casting-rod/", "muskie", "hotpath", why="buy-now page"),
    c("/shop/rods/muskie-casting-rod/orders", "muskie", "hotpath", why="order POST path"),
    c("/shop/rods/muskie-casting-rod/orders/abc/status", "muskie", "hotpath", why="* crosses /"),
    c("/shop/rods/muskie-casting-rod", "default", why="no trailing slash: the pattern needs one"),
    c("/shop/rods/muskie-casting-rod/?utm=1", "muskie", "hotpath", why="query ignored"),
    c("/shop/rods/Muskie-casting-rod/", "default", why="case-sensitive"),
    c("/SHOP/rods/muskie-casting-rod/", "default", why="case-sensitive"),
    c("/shop/rods/tourney-casting-rod/", "default", why="another product stays on the monolith"),
    c("/shop/rods/", "default"),
    c("/shop/", "default"),
    c("/", "default"),
    c("/shop/rods/muskie-casting-rod-xl/", "default", why="a longer slug is not the product"),
    c("/legacy-api/ping", "legacy", "legacy-api"),
    c("/legacy-api/orders/12", "legacy", "legacy-api"),
    c("/legacy-api", "default"),
    c("/legacy-apix/ping", "default"),
    # * inside a pattern, anchored at both ends, . literal.
    c("/t/star/a.jpg", "jpg", "minisite"),
    c("/t/star/deep/er/b.jpg", "jpg", "minisite", why="* crosses /"),
    c("/t/star/.jpg", "jpg", "minisite", why="* matches nothing"),
    c("/t/star/a.JPG", "default", why="case-sensitive extension"),
    c("/t/star/a.jpg.png", "default", why="anchored at the end"),
    c("/t/star/a.jpg?x=.png", "jpg", "minisite", why="query ignored"),
    c("/t/star/ajpg", "default", why=". is literal"),
    # ? is exactly one character, / included.
    c("/t/q/file1.txt", "qmark", "hotpath"),
    c("/t/q/file.txt", "default", why="? needs one character"),
    c("/t/q/file12.txt", "default", why="? is only one character"),
    c("/t/q/file/.txt", "qmark", "hotpath", why="? matches /"),
    c("/t/q/fileA.txt?x=1", "qmark", "hotpath"),
    # The leading slash of a pattern is optional.
    c("/t/noslash/a", "no-slash", "legacy-api"),
    c("/t/noslash/", "no-slash", "legacy-api"),
    c("/t/noslash", "default"),
    # A pattern without wildcards is exact.
    c("/t/exact", "exact", "legacy-api"),
    c("/t/exact/", "default"),
    c("/t/exact?next=/t/order/x", "exact", "legacy-api", why="query ignored"),
    c("/t/exactly", "default"),
    # Every punctuation character CloudFront allows (except ", which no client sends raw).
    c("/t/chars/a$b~c'd@e:f+g&h_i-j.k", "chars", "hotpath"),
    c("/t/chars/a$b~c'd@e:f+g&h_i-jXk", "default", why=". is literal"),
    c("/t/empty", "empty-star", "hotpath", why="* matches nothing"),
    c("/t/empty/more/x", "empty-star", "hotpath"),
    c("/t/EMPTY", "default"),
    c("/t/ab/x", "two-q", "legacy-api"),
    c("/t/a/x", "default", why="?? needs two characters"),
    c("/t/abc/x", "default", why="?? takes exactly two"),
    # Order: the first match wins, even over a more specific later route.
    c("/t/order/x", "order-a", "hotpath"),
    c("/t/order/special/x", "order-a", "hotpath", why="first match wins"),
    c("/t/order", "default"),
    # Sale windows: a closed window passes the request to the next route.
    c("/t/win/open/a", "win-open", "hotpath"),
    c("/t/win/future/a", "win-catch", "legacy-api", why="window not started"),
    c("/t/win/past/a", "win-catch", "legacy-api", why="window over"),
    c("/t/win/from/a", "win-from", "hotpath", why="open-ended window"),
    c("/t/win/other", "win-catch", "legacy-api"),
    c("/t/win/open", "win-catch", "legacy-api", why="no trailing slash"),
    # Canary: the cookie keeps a buyer on one side; the tester header overrides it.
    c("/t/canary/a", "canary", "hotpath", cookie=IN_30),
    c("/t/canary/b/c", "canary", "hotpath", cookie=IN_30_B),
    c("/t/canary/a", "default", cookie=OUT_30, why="30.7% is outside 30%"),
    c("/t/canary/a", "default", cookie="buyer-0"),
    c("/t/canary/a", "canary", "hotpath", cookie=OUT_30, tester="in"),
    c("/t/canary/a", "default", cookie=IN_30, tester="out"),
    c("/t/canary/a", "canary", "hotpath", cookie=OUT_30, tester="IN", why="header value case-insensitive"),
    c("/t/canary/a", "canary", "hotpath", tester="in", why="no cookie yet"),
    # The tester header counts only with the canary secret: anybody can send a header.
    c("/t/canary/a", "canary", "hotpath", cookie=IN_30, tester="out", secret="", why="no secret: ignored"),
    c("/t/canary/a", "canary", "hotpath", cookie=IN_30, tester="out", secret="guess", why="wrong secret"),
    c("/t/canary/a", "default", cookie=OUT_30, tester="in", secret=CANARY_SECRET[:-1], why="a prefix is wrong"),
    c("/t/canary100/a", "canary-all", "hotpath", cookie=IN_30, tester="out", secret="", why="no secret"),
    c("/t/canary0/a", "default", cookie=IN_30, why="0% takes nobody"),
    c("/t/canary0/a", "canary-none", "hotpath", tester="in"),
    c("/t/canary100/a", "canary-all", "hotpath", cookie=OUT_30, why="100% takes everybody"),
    c("/t/canary100/a", "default", cookie=IN_30, tester="out"),
    # Redirects, with their status; a redirect route can have a window and a canary too.
    c("/t/old/page", "redirect-301", redirect=(301, "https://shop.example.com/new/")),
    c("/t/old/page?x=1", "redirect-301", redirect=(301, "https://shop.example.com/new/")),
    c("/t/moved", "redirect-308", redirect=(308, "/shop/")),
    c("/t/moved/", "default"),
    c("/t/sale-redirect/x", "default", why="redirect window not started"),
    c("/t/try/x", "redirect-canary", redirect=(307, "/shop/new-try/"), cookie=IN_50),
    c("/t/try/x", "default", cookie=OUT_50),
    c("/t/try/x", "redirect-canary", redirect=(307, "/shop/new-try/"), tester="in"),
    c("/t/site/page", "site", "minisite"),
    # Paths are matched as the origins resolve them: escapes decoded, dot segments removed
    # (CloudFront, which matches them as written, first sends the buyer to the normal form).
    c("/shop/rods/muskie%2Dcasting-rod/orders", "muskie", "hotpath", why="an escaped unreserved character"),
    c("/shop/rods/muskie%2dcasting-rod/orders", "muskie", "hotpath", why="lower-case escape"),
    c("/shop/%72ods/muskie-casting-rod/", "muskie", "hotpath", why="an escaped letter"),
    c("/shop/rods%2Fmuskie-casting-rod/orders", "muskie", "hotpath", why="%2F is a slash to Django"),
    c("/shop/rods/muskie-casting-rod%2F", "muskie", "hotpath", why="an escaped trailing slash"),
    c("/shop/rods/x/../muskie-casting-rod/orders", "muskie", "hotpath", why="dot-dot segment"),
    c("/shop/rods/./muskie-casting-rod/orders", "muskie", "hotpath", why="dot segment"),
    c("/shop/rods/x/%2E%2E/muskie-casting-rod/", "muskie", "hotpath", why="escaped dot-dot segment"),
    c("/shop/rods/muskie-casting-rod/orders?next=%2E%2E", "muskie", "hotpath", why="query untouched"),
    c("/shop/rods/muskie-casting-rod/%2E%2E/tourney-casting-rod/", "default", why="dots leave the product"),
    c("/shop/rods//muskie-casting-rod/orders", "default", why="duplicate slashes are kept, as by Django"),
    c("/t/star/a%2Ejpg", "jpg", "minisite"),
    c("/legacy-api%2Fping", "legacy", "legacy-api"),
    c("/t/q/file%41.txt", "qmark", "hotpath", why="? matches one decoded character"),
    c("/t/exact/.", "default", why="the dot segment leaves /t/exact/"),
    c("/t/old/%2E/page", "redirect-301", redirect=(301, "https://shop.example.com/new/")),
    # A disabled route does nothing.
    c("/t/off/x", "default", why="route disabled"),
    c("/t/offx", "default"),
]

# The X-Ray trace header every router hands the origin: one with a well-formed Root keeps it
# ("kept"), under the edge's own Parent and sampling decision; a request with none, or with a
# malformed one, gets one minted at the edge ("minted"),
# `Root=1-<epoch seconds, 8 hex>-<24 hex>;Parent=<16 hex>;Sampled=1|0`.
XRAY_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
TRACE_CASES = [
    (None, "minted"),
    ("", "minted"),
    (XRAY_HEADER, "kept"),
    ("Root=1-5759e988-bd862e3fe1be46a994272793", "kept"),
    ("Self=1-67891234-12456789abcdef012345678;" + XRAY_HEADER.replace("Sampled=1", "Sampled=0"), "kept"),
    ("Root=1-5759E988-BD862E3FE1BE46A994272793;Parent=53995c3f42cd8ad8", "minted"),
    ("Root=1-5759e988-bd862e3f;Parent=53995c3f42cd8ad8;Sampled=1", "minted"),
    ("Root=2-5759e988-bd862e3fe1be46a994272793", "minted"),
    ("not a trace header", "minted"),
]
MINTED_TRACE = r"^Root=1-([0-9a-f]{8})-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=([01])$"
