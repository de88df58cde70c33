"""Settings for every deployment of the shop, read from the environment.

One settings module serves the all-in-one server, the monolith, the legacy order API and
the hot path; `SHOP_DEPLOYMENT` only picks the URLconf. Defaults are embedded (SQLite, a
filesystem broker, a file cache) so the shop starts on any machine with Python.
"""

import hashlib
import hmac
import os
import re
import sys
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from config.mail_recipients import mail_recipients, mail_sender
from secret_key import DEFAULT_SECRET_KEY, secret_key_weakness

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.strip().lower() in {"1", "true", "yes", "on"}:
        return True
    if value.strip().lower() in {"0", "false", "no", "off"}:
        return False
    # Read as off, a misspelt "on" (SECURE_COOKIES=ture) would turn a protection off unsaid.
    raise ImproperlyConfigured(f"{name} must be 1 or 0 (on/off, true/false, yes/no), not {value!r}.")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value!r}.")
    return number


def env_float(name: str, default: float, *, positive: bool = False) -> float:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}.") from None
    if positive and not number > 0:  # NaN too
        raise ImproperlyConfigured(f"{name} must be more than 0, not {value!r}.")
    return number


# --- Environment ----------------------------------------------------------------------
# development (default), test or production. Production refuses unsafe settings.
DJANGO_ENV = os.environ.get("DJANGO_ENV") or ("test" if os.environ.get("PYTEST_VERSION") else "development")
if DJANGO_ENV not in ("development", "test", "production"):
    # A misspelt "production" would otherwise run with none of production's checks, and with
    # legacy API tokens derived from whatever SECRET_KEY it has (the public default included).
    raise ImproperlyConfigured(f"DJANGO_ENV must be development, test or production, not {DJANGO_ENV!r}.")
# Local state of the embedded defaults (SQLite, broker folders, file cache, media).
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var" / ("test" if DJANGO_ENV == "test" else ""))).resolve()
# A developer's second terminal (`manage.py sale open ...` beside `python3 run.py --port 8001`)
# reaches the server run.py started there: the addresses it recorded while it runs, wherever
# the environment names none (served.served_settings).
SERVED = {}
if DJANGO_ENV == "development":
    try:
        from served import served_settings
    except ImportError:  # not run from the project's root
        pass
    else:
        SERVED = served_settings(VAR_DIR)
SECRET_KEY = os.environ.get("SECRET_KEY", DEFAULT_SECRET_KEY)
# DEBUG is off unless asked for (DEBUG=1), except for a developer's `manage.py runserver`
# (which `python3 run.py` starts): a gunicorn, a worker or a Lambda never shows a debug page.
DEBUG = env_bool("DEBUG", DJANGO_ENV == "development" and sys.argv[1:2] == ["runserver"])
ALLOWED_HOSTS = [
    h.strip() for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver").split(",") if h.strip()
]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

# Behind a proxy that sets this header itself (nginx's export, a load balancer), e.g.
# X-Forwarded-Proto: only then is it trusted to say the request came over HTTPS.
_proxy_ssl_header = os.environ.get("SECURE_PROXY_SSL_HEADER", "").strip()
if _proxy_ssl_header:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")


if DJANGO_ENV == "production":
    if weakness := secret_key_weakness(SECRET_KEY):
        raise ImproperlyConfigured(f"Production needs SECRET_KEY set to a long random value: the key {weakness}.")
    if DEBUG:
        raise ImproperlyConfigured("Production refuses to start with DEBUG on.")
    if "*" in ALLOWED_HOSTS:
        raise ImproperlyConfigured("Production needs ALLOWED_HOSTS to name the shop's domains, not '*'.")
    # Every deployment that may accept a hot-path order seals cards; the legacy API never does.
    if os.environ.get("SHOP_DEPLOYMENT", "all") != "legacy" and not os.environ.get("CARD_ENCRYPTION_KEY", "").strip():
        raise ImproperlyConfigured("Production needs CARD_ENCRYPTION_KEY (Fernet keys, kept in AWS KMS).")
    # SECURE_COOKIES=0 is a production run on plain HTTP (the benchmark on loopback): no
    # secure cookies, no redirect to HTTPS, no HSTS. Everywhere else all three hold; an edge
    # that redirects to HTTPS itself turns the shop's redirect off (SECURE_SSL_REDIRECT=0) and
    # keeps HSTS, which only a response over HTTPS carries.
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", SESSION_COOKIE_SECURE)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if SESSION_COOKIE_SECURE else 0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)

# all (runserver / all-in-one), monolith, legacy, hotpath
SHOP_DEPLOYMENT = os.environ.get("SHOP_DEPLOYMENT", "all")
_URLCONFS = {
    "all": "config.urls",
    "monolith": "config.urls_monolith",
    "legacy": "config.urls_legacy",
    "hotpath": "config.urls_hotpath",
    # A trivial JSON view with the same middleware: the benchmark's framework ceiling.
    "ceiling": "bench.ceiling_urls",
}
if SHOP_DEPLOYMENT not in _URLCONFS:
    raise ImproperlyConfigured(f"SHOP_DEPLOYMENT must be one of {', '.join(_URLCONFS)}, not {SHOP_DEPLOYMENT!r}.")
ROOT_URLCONF = _URLCONFS[SHOP_DEPLOYMENT]
WSGI_APPLICATION = "config.wsgi.application"

# --- Applications ---------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.humanize",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "shop",
    "legacy_api",
    "orders",
    "edge",
    "events",
    "readmodels",
]

MIDDLEWARE = [
    # Before anything else: a request that did not come through the edge is refused.
    "config.origin_secret.OriginSecretMiddleware",
    # The edge router runs next: it decides which origin serves the request.
    "edge.middleware.EdgeRouterMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.page_policy.PagePolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.sessions.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
# The pages' Content-Security-Policy (config.page_policy): scripts, styles, forms and connections
# of this origin only, no plugin, no framing; empty: none (a CDN in front that sets its own).
CONTENT_SECURITY_POLICY = os.environ.get(
    "CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
).strip()
# The edge router only belongs in the process that plays the edge (runserver, all-in-one).
EDGE_ROUTER_ENABLED = env_bool("EDGE_ROUTER_ENABLED", SHOP_DEPLOYMENT == "all")

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Data -----------------------------------------------------------------------------
VAR_DIR.mkdir(parents=True, exist_ok=True)


def conn_max_age(value: str | None) -> int | None:
    """CONN_MAX_AGE: seconds a thread keeps its database connection (0, the default: one a
    request), or `none`: for the process's life, as a server under steady load wants. A
    connection past its age is closed at the next request, however busy its thread is: a sale
    that opens after a quiet minute reopened every connection in its first seconds, each a new
    PostgreSQL backend with cold caches and its statements planned again."""
    value = (value or "").strip().lower()
    if value == "none":
        return None
    try:
        return int(value) if value else 0
    except ValueError:
        raise ImproperlyConfigured(f"CONN_MAX_AGE must be a number of seconds or none, not {value!r}.") from None


DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'shop.sqlite3'}"),
        conn_max_age=conn_max_age(os.environ.get("CONN_MAX_AGE")),
    )
}
# A kept connection is checked before use, so a restarted database costs no request an error;
# on PostgreSQL without a round trip (config/postgresql/base.py).
DATABASES["default"]["CONN_HEALTH_CHECKS"] = DATABASES["default"]["CONN_MAX_AGE"] != 0
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["ENGINE"] = "config.postgresql"
    # Parameters travel apart from the statement, and a statement a connection runs a fifth
    # time is prepared there: PostgreSQL parses and plans it once, not for every request
    # (parsing and planning the hot path's acceptance took half of its database CPU). Off behind a
    # pooler that moves transactions between server sessions (RDS Proxy pins such a session;
    # PgBouncer in transaction mode before 1.21 loses the statements).
    if env_bool("DATABASE_PREPARED_STATEMENTS", True):
        DATABASES["default"].setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=5)
# How long PostgreSQL lets one statement run, waits for a lock included, before it cancels it
# (0: no limit). On the hot path an acceptance takes milliseconds; a statement stuck behind a
# lock held elsewhere (a merchant's transaction on the sale's row, a stuck session) would
# otherwise hold its server thread for as long as the lock is held, and granian, unlike a
# request-killing server, has no timeout of its own: every thread would wait, then every
# buyer. Cancelled, the statement undoes its order and the buyer gets 503 with Retry-After; a
# retry with the same key is safe. Other deployments keep no limit (the workers' sweeps, the
# admin's reports and migrations may run long). Sent as a startup option: behind a pooler that
# refuses startup options, set 0 and give the role the timeout (ALTER ROLE ... SET).
DATABASE_STATEMENT_TIMEOUT_MS = env_int(
    "DATABASE_STATEMENT_TIMEOUT_MS", 5000 if SHOP_DEPLOYMENT in ("hotpath", "ceiling") else 0
)
if DATABASES["default"]["ENGINE"] == "config.postgresql" and DATABASE_STATEMENT_TIMEOUT_MS > 0:
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options["options"] = f"{_options.get('options', '')} -c statement_timeout={DATABASE_STATEMENT_TIMEOUT_MS}".strip()
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers and the writer work at once; IMMEDIATE takes the write lock at the
    # start of a transaction, so two writers queue on the timeout instead of deadlocking.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # A file, not memory, so that servers and workers started by the tests share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
# How long a call to the cache's Redis may wait to connect, or for a reply. A Redis that stops
# answering without closing its connections (a paused server; a failover, where the old
# primary's address goes silent) otherwise holds each thread that calls it until TCP gives
# up, about a quarter of an hour: the hot path's threads, then the buyers, all waited. Past
# it the call fails, and the API answers 503 with Retry-After; a retry with the same key is
# safe. Nothing reads the cache with a blocking command, so no reply takes longer.
REDIS_TIMEOUT_SECONDS = env_float("REDIS_TIMEOUT_SECONDS", 2, positive=True)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "config.cache.PooledRedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_timeout": REDIS_TIMEOUT_SECONDS, "socket_connect_timeout": REDIS_TIMEOUT_SECONDS},
        }
    }
else:
    # A file cache is shared by every process on the machine (web and worker). Django's
    # default MAX_ENTRIES (300) makes every write past 300 files delete a random third of
    # them: a sale of a hundred buyers (throttle keys, answers per second, sold-out figures)
    # crosses it, and the dashboard's counts, the throttles and the stamps lose keys at
    # random. Entries here expire on their own; keep them until they do.
    CACHES = {
        "default": {
            # Django's file cache, culled of expired entries first (config.file_cache): with the
            # cull at random off, the expired ones were never deleted and every write got slower.
            "BACKEND": "config.file_cache.ExpiringFileCache",
            "LOCATION": str(VAR_DIR / "cache"),
            "OPTIONS": {"MAX_ENTRIES": env_int("FILE_CACHE_MAX_ENTRIES", 1000000)},
        }
    }

# --- Queue ----------------------------------------------------------------------------
_broker_dir = VAR_DIR / "broker"
# The embedded broker names its host, or kombu warns on every connection that it has none.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://localhost/")
if CELERY_BROKER_URL.startswith("filesystem"):
    CELERY_BROKER_TRANSPORT = "config.broker:Transport"  # messages written whole before a worker sees them
    for sub in ("queue", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "control_folder": str(_broker_dir / "control"),
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # An unacknowledged message comes back after the visibility timeout: it must be longer
    # than any task, retry countdowns included, or a running order is delivered twice.
    # Workers look for such messages every ORDERS_UNACKED_RESTORE_SECONDS.
    # A broker that stops answering without closing its connections (paused, or a failover's
    # old address gone silent) fails a publish after BROKER_TIMEOUT_SECONDS: the relay keeps the
    # outbox rows and tries again. Without it the relay waited until TCP gave up, holding the
    # rows it had taken, and their orders were not sent. Longer than the workers' 1 s BRPOP.
    _broker_timeout = max(2.0, env_float("BROKER_TIMEOUT_SECONDS", 5))
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("ORDERS_VISIBILITY_TIMEOUT", 3600),
        "unacked_restore_interval": env_int("ORDERS_UNACKED_RESTORE_SECONDS", 60),
        "unacked_restore_throttle": 1,
        "socket_timeout": _broker_timeout,
        "socket_connect_timeout": _broker_timeout,
    }
elif CELERY_BROKER_URL.startswith("sqs://"):
    # SQS in production: the queue and its dead-letter queue (redrive policy) are created by
    # the infrastructure, never by the worker; the visibility timeout is set on the queue.
    # Credentials come from the IAM role (or AWS_* variables); AWS_ENDPOINT_URL points boto3
    # elsewhere (moto in tests). Without the queue's URL kombu would look the queue up by
    # name and fail with QueueDoesNotExist on the first order: refuse to start instead.
    ORDERS_QUEUE_URL = os.environ.get("ORDERS_QUEUE_URL", "").strip()
    if not ORDERS_QUEUE_URL:
        raise ImproperlyConfigured("CELERY_BROKER_URL=sqs:// needs ORDERS_QUEUE_URL, the orders queue's URL.")
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "region": os.environ.get("AWS_REGION", "us-east-1"),
        "predefined_queues": {"celery": {"url": ORDERS_QUEUE_URL}},
        "wait_time_seconds": env_int("ORDERS_SQS_WAIT_SECONDS", 10),
        "polling_interval": env_float("ORDERS_SQS_POLLING_INTERVAL", 1),
    }
    # SQS has no broadcast: no remote control, no events.
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
    CELERY_WORKER_SEND_TASK_EVENTS = False
elif CELERY_BROKER_URL.startswith(("amqp://", "amqps://", "pyamqp://")):
    # RabbitMQ. A publish waits for the broker's confirm: without it a message is "sent" once
    # written to the socket, and one the broker then refuses (a queue at its length limit, a
    # message over its size limit) is gone with its outbox row, unsaid. Confirmed, the relay
    # deletes only the rows RabbitMQ took, and a retry's message is in the queue before the
    # delivery it replaces is acknowledged. A broker that stops answering fails the publish
    # after BROKER_TIMEOUT_SECONDS, as with Redis: the relay keeps its rows and tries again
    # instead of holding them until TCP gives up.
    _broker_timeout = max(2.0, env_float("BROKER_TIMEOUT_SECONDS", 5))
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "confirm_publish": True,
        "read_timeout": _broker_timeout,
        "write_timeout": _broker_timeout,
    }
else:
    # Each broker above is set up so that an accepted order's message is neither lost nor
    # taken for sent; one set up by nobody would start and lose orders unseen.
    raise ImproperlyConfigured(
        f"CELERY_BROKER_URL must be filesystem://, redis://, rediss://, sqs://, amqp:// or amqps://, "
        f"not {CELERY_BROKER_URL.split('://')[0]}://."
    )
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# What a task prints (the console email backend's mails) is information, not a warning.
CELERY_WORKER_REDIRECT_STDOUTS_LEVEL = "INFO"
# Or, unredirected (run.py's worker, whose log shows warnings only), it goes to the terminal as
# the web server's does: a developer sees the hot path's emails beside the storefront's.
CELERY_WORKER_REDIRECT_STDOUTS = env_bool("CELERY_WORKER_REDIRECT_STDOUTS", True)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "orders-outbox-sweep": {"task": "orders.tasks.outbox_sweep", "schedule": 5.0},
    "orders-stalled-sweep": {
        "task": "orders.tasks.stalled_sweep",
        "schedule": env_float("ORDERS_STALL_SWEEP_SECONDS", 30),
    },
    "orders-reservation-sweep": {"task": "orders.tasks.reservation_sweep", "schedule": 30.0},
    # Sales whose window ended are closed (their unsold units released) within this delay.
    "orders-sale-window-sweep": {
        "task": "orders.tasks.sale_window_sweep",
        "schedule": env_float("ORDERS_SALE_WINDOW_SWEEP_SECONDS", 15),
    },
    # Every open sale's hold trued up with its allocation and orders (drift logged, safe repairs).
    "orders-sale-reconcile": {
        "task": "orders.tasks.sales_reconcile",
        "schedule": env_float("ORDERS_SALE_RECONCILE_SECONDS", 300),
    },
    # Every consumer of the unified log runs once (the EventBridge relay is one of them): the
    # net under each worker's own loop (events/runner.py). A task in the orders' queue, run
    # every second it would bury the orders under its own copies where a pass is slow.
    "events-relay": {
        "task": "events.tasks.consumers_run",
        "schedule": env_float("EVENT_CONSUMERS_SECONDS", 15),
    },
    # The inventory view checked against the stock of record; a difference is corrected and logged.
    "readmodels-inventory-true-up": {
        "task": "readmodels.tasks.inventory_true_up_all",
        "schedule": env_float("INVENTORY_TRUE_UP_SECONDS", 60),
    },
    # Snapshots first: pruning keeps what follows the latest snapshot of every view.
    "events-snapshots": {"task": "events.tasks.views_snapshot", "schedule": 3600.0},
    "events-prune": {"task": "events.tasks.events_prune", "schedule": 3600.0},
}
# Buyers' confirmation emails not sent at once (a mail server down, a process killed after the
# order committed): every deployment's beat sends them, each row held by one sender at a time.
CELERY_BEAT_SCHEDULE["shop-confirmations-unsent"] = {
    "task": "shop.tasks.confirmations_unsent_sweep",
    "schedule": env_float("SHOP_CONFIRMATION_SWEEP_SECONDS", 60),
}
# A storefront checkout whose answer was lost (shop.checkout_sweep) is looked up at the legacy
# API this long after its last try began: longer than a try's call can take (LEGACY_API_TIMEOUT)
# so that a call still on its way is never taken for one that placed nothing.
SHOP_CHECKOUT_SWEEP_AFTER_SECONDS = env_int("SHOP_CHECKOUT_SWEEP_AFTER_SECONDS", 120)
if SHOP_DEPLOYMENT in ("all", "monolith"):  # the storefront's own: not the hot path's Lambda sweeper
    CELERY_BEAT_SCHEDULE["shop-checkouts-in-doubt"] = {
        "task": "shop.tasks.checkouts_in_doubt_sweep",
        "schedule": env_float("SHOP_CHECKOUT_SWEEP_SECONDS", 60),
    }
    # Expired sessions (Django leaves them to a cron job) and the guests' baskets they named.
    CELERY_BEAT_SCHEDULE["shop-sessions-baskets-prune"] = {
        "task": "shop.tasks.sessions_baskets_prune",
        "schedule": 3600.0,
    }

# --- Hot path (orders) -------------------------------------------------------------------
# Fernet keys sealing card numbers until an order is placed (comma-separated, newest first);
# empty outside production: derived from SECRET_KEY. See orders/cards.py.
CARD_ENCRYPTION_KEY = os.environ.get("CARD_ENCRYPTION_KEY", "")
try:  # A key Fernet cannot read started, then failed every buyer's order with a 500.
    [Fernet(key.strip()) for key in CARD_ENCRYPTION_KEY.split(",") if key.strip()]
except ValueError:  # the keys are secrets: named, never shown
    raise ImproperlyConfigured(
        "CARD_ENCRYPTION_KEY must be Fernet keys (Fernet.generate_key()), comma-separated."
    ) from None
# Worker retries of a legacy API that is down or shedding: backoff doubles from
# ORDERS_RETRY_BACKOFF seconds up to ORDERS_RETRY_BACKOFF_MAX, each wait between half and all
# of that; then dead letter (the defaults: 2 to 4 minutes of retries in all).
ORDERS_MAX_RETRIES = env_int("ORDERS_MAX_RETRIES", 8)
ORDERS_RETRY_BACKOFF = env_int("ORDERS_RETRY_BACKOFF", 2)
ORDERS_RETRY_BACKOFF_MAX = env_int("ORDERS_RETRY_BACKOFF_MAX", 60)
# While the legacy API answers that it is still placing an earlier request for an order's
# reference (its own lease, 90 s by default, ends a dead one), the order waits without using
# its retries; for this long at most, then each such answer counts as a failed attempt.
ORDERS_STILL_PLACING_SECONDS = env_int("ORDERS_STILL_PLACING_SECONDS", 300)
# How long a worker waits for one of the LEGACY_CAPACITY permits before retrying later.
ORDERS_SLOT_WAIT_SECONDS = env_float("ORDERS_SLOT_WAIT_SECONDS", 30)
# An order no worker has touched for this long is published again: longer than the longest
# retry countdown plus a legacy call, and long enough that orders merely waiting in a deep
# queue are not published again and again (a copy is harmless, a flood of them is not).
ORDERS_STALL_SECONDS = env_int("ORDERS_STALL_SECONDS", 300)
# A reservation nobody works on for this long is released (the order fails as expired), but
# only once no worker has made progress for ORDERS_STALL_SECONDS: a deep queue that moves keeps
# every order behind it.
ORDERS_RESERVATION_SECONDS = env_int("ORDERS_RESERVATION_SECONDS", 15 * 60)
# The beat sweep publishes outbox rows older than this (younger ones are the relay's).
ORDERS_OUTBOX_GRACE_SECONDS = env_int("ORDERS_OUTBOX_GRACE_SECONDS", 10)
# How often an idle outbox relay (a thread in each worker, orders/relay.py) looks for new
# orders; 0 leaves the outbox to the beat sweep alone.
ORDERS_OUTBOX_RELAY_SECONDS = env_float("ORDERS_OUTBOX_RELAY_SECONDS", 0.05)
# A sold-out answer to a key is given from Redis alone when the sale's known keys (armed at
# opening with the keys ordered in the last ORDERS_KNOWN_KEYS_HOURS) show it never had an
# order; a replay of an older key on a sold-out sale is answered as sold out.
ORDERS_KNOWN_KEYS_HOURS = env_int("ORDERS_KNOWN_KEYS_HOURS", 24)
# Once a sale has nothing left, each process answers its sold-out buyers from memory for this
# long at a time (a lease from Redis, during which no order is accepted: units that come back
# wait at most this long). 0: every answer asks Redis.
ORDERS_SOLDOUT_LEASE_MS = env_int("ORDERS_SOLDOUT_LEASE_MS", 500)
# Per-client throttling, counted in the cache (Redis in production): requests per window.
ORDERS_THROTTLE_WINDOW = env_int("ORDERS_THROTTLE_WINDOW", 60)
ORDERS_THROTTLE_PER_IP = env_int("ORDERS_THROTTLE_PER_IP", 30)
ORDERS_THROTTLE_PER_EMAIL = env_int("ORDERS_THROTTLE_PER_EMAIL", 5)
# Cards declined for one mailbox, or from one client address (which a carrier's NAT may share
# among many buyers), in 15 minutes before the storefront's checkout and buy-now and the hot
# path refuse the next try from there with 429 (shop.decline_throttle, card testing); 0: no limit.
SHOP_DECLINES_PER_EMAIL = env_int("SHOP_DECLINES_PER_EMAIL", 5)
SHOP_DECLINES_PER_IP = env_int("SHOP_DECLINES_PER_IP", 15)
# The header carrying the buyer's address behind a proxy (e.g. X-Forwarded-For); empty:
# the connection's address.
ORDERS_CLIENT_IP_HEADER = os.environ.get("ORDERS_CLIENT_IP_HEADER", "")
# How many proxies of ours append to that header (nginx: 1; CloudFront + API Gateway: 2).
ORDERS_TRUSTED_PROXY_HOPS = env_int("ORDERS_TRUSTED_PROXY_HOPS", 1)

# --- The legacy order API --------------------------------------------------------------
LEGACY_API_URL = (
    os.environ.get("LEGACY_API_URL") or SERVED.get("LEGACY_API_URL") or "http://127.0.0.1:8000/legacy-api"
).rstrip("/")
LEGACY_API_TIMEOUT = env_float("LEGACY_API_TIMEOUT", 10)
# The bearer token each calling side presents to the legacy API (LEGACY_API_TOKEN_<CALLER>).
# Outside production each defaults to one derived from SECRET_KEY, so a developer's shop runs
# with no set-up; the legacy API refuses the derived ones in production.
LEGACY_API_CALLERS = ("storefront", "hotpath", "merchant")
LEGACY_API_TOKENS_DERIVED = {
    caller: hmac.new(SECRET_KEY.encode(), f"legacy-api-token:{caller}".encode(), hashlib.sha256).hexdigest()
    for caller in LEGACY_API_CALLERS
}
LEGACY_API_TOKENS = {
    caller: os.environ.get(f"LEGACY_API_TOKEN_{caller.upper()}", "").strip()
    or ("" if DJANGO_ENV == "production" else LEGACY_API_TOKENS_DERIVED[caller])
    for caller in LEGACY_API_CALLERS
}
# The callers whose orders a deployment places: in production it starts only with their tokens,
# or every order it takes would be refused 401 and dead-lettered. (The merchant's token serves
# only stock receipts and reorders; a call made without a token logs the variable it lacks.)
_ORDER_CALLERS = {"all": ("storefront", "hotpath"), "monolith": ("storefront",), "hotpath": ("hotpath",)}
_missing = [c for c in _ORDER_CALLERS.get(SHOP_DEPLOYMENT, ()) if not LEGACY_API_TOKENS[c]]
if DJANGO_ENV == "production" and _missing:
    raise ImproperlyConfigured(
        f"Production's {SHOP_DEPLOYMENT!r} deployment needs "
        + " and ".join(f"LEGACY_API_TOKEN_{c.upper()}" for c in _missing)
        + " (SHOP_DEPLOYMENT=legacy python manage.py legacy_api_token CALLER, where the legacy API runs, makes one)."
    )
# Orders the legacy API works on at once, across every process of the service.
LEGACY_CAPACITY = env_int("LEGACY_CAPACITY", 4, minimum=1)
# How many of those the hot path's workers may use at once, across every worker: one is
# left to the storefront's own checkouts, so draining a sale never locks other buyers out.
ORDERS_LEGACY_CONCURRENCY = env_int("ORDERS_LEGACY_CONCURRENCY", max(1, LEGACY_CAPACITY - 1))
# How long the legacy API keeps a reference claimed for the request placing it: longer than
# any order takes (gunicorn's timeout is 60 s), so that only a request that died loses it.
LEGACY_ORDER_LEASE_SECONDS = env_int("LEGACY_ORDER_LEASE_SECONDS", 90)
# CPU burned per order, as the workshop's argon2 hash did (time cost, memory in KiB).
LEGACY_ARGON2_TIME_COST = env_int("LEGACY_ARGON2_TIME_COST", 1 if DJANGO_ENV == "test" else 3)
LEGACY_ARGON2_MEMORY_KIB = env_int("LEGACY_ARGON2_MEMORY_KIB", 1024 if DJANGO_ENV == "test" else 32768)

AWS_REGION = os.environ.get("AWS_REGION", "us-east-1")

# --- The unified log (events) ----------------------------------------------------------
# The envelope's `account` and `detail.event.meta_data.site_id` (shop.LEGO.com's envelope).
EVENT_ACCOUNT = os.environ.get("EVENT_ACCOUNT", "000000000000")
EVENT_SITE_ID = os.environ.get("EVENT_SITE_ID", "Fishing Shop")
# The custom bus the relay sends every event to; empty: no relay.
EVENTBRIDGE_BUS_NAME = os.environ.get("EVENTBRIDGE_BUS_NAME", "").strip()
# Consumers by name: "name=dotted.path.to.handler,..." (see events/consumers.py). Unset: the
# read models' consumers; set (even empty), exactly those named.
EVENT_CONSUMERS_DEFAULT = {
    "inventory": "readmodels.inventory.handle",
    "reorders": "readmodels.reorders.handle",
    "sales_per_minute": "readmodels.sales.sales_per_minute_handle",
    "tallies": "readmodels.sales.tallies_handle",
}


def _event_consumers(value: str) -> dict[str, str]:
    consumers = {}
    for item in (item.strip() for item in value.split(",") if item.strip()):
        name, _, path = (part.strip() for part in item.partition("="))
        if not re.fullmatch(r"[A-Za-z0-9_-]+", name) or not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", path):
            raise ImproperlyConfigured(
                f"EVENT_CONSUMERS must be name=dotted.path.to.handler, comma-separated, not {value!r} ({item!r})."
            )
        consumers[name] = path
    return consumers


EVENT_CONSUMERS = (
    _event_consumers(os.environ["EVENT_CONSUMERS"])
    if "EVENT_CONSUMERS" in os.environ
    else dict(EVENT_CONSUMERS_DEFAULT)
)
# Read models that `events snapshot` and `events rebuild` know, by their consumer's name.
EVENT_VIEWS = {
    "inventory": "readmodels.inventory.VIEW",
    "sales_per_minute": "readmodels.sales.SALES_PER_MINUTE",
    "tallies": "readmodels.sales.TALLIES",
}
if EVENTBRIDGE_BUS_NAME:
    EVENT_CONSUMERS.setdefault("eventbridge", "events.relay.relay_events")
# How often each worker's loop over the consumers (events/runner.py) looks again when it found
# nothing; 0 leaves them to beat's pass alone.
EVENT_CONSUMERS_LOOP_SECONDS = env_float("EVENT_CONSUMERS_LOOP_SECONDS", 0.2)
# How often each worker's dashboard maker (readmodels/runner.py) looks whether a merchant
# watches the live dashboard and its figures are due; 0: every fetch makes its own.
DASHBOARD_SNAPSHOT_LOOP_SECONDS = env_float("DASHBOARD_SNAPSHOT_LOOP_SECONDS", 0.5)
# Events one consumer run takes at most, in one transaction.
EVENT_CONSUMER_BATCH = env_int("EVENT_CONSUMER_BATCH", 500)
# Failures of one event before its consumer dead-letters it and moves on.
EVENT_CONSUMER_MAX_ATTEMPTS = env_int("EVENT_CONSUMER_MAX_ATTEMPTS", 5)
# Events older than this are pruned, once every consumer has passed them.
EVENT_RETENTION_DAYS = env_int("EVENT_RETENTION_DAYS", 30)
# Sends of an entry EventBridge refused (FailedEntryCount) before the relay gives up for now.
EVENT_RELAY_ENTRY_ATTEMPTS = env_int("EVENT_RELAY_ENTRY_ATTEMPTS", 3)
# How long a run of a consumer whose work is a call outside the database (the relay) holds
# its claim: longer than a batch's calls take, bounded by the relay's client timeouts
# (events/relay.py); a run that died is taken over once its claim has run out.
EVENT_CONSUMER_LEASE_SECONDS = env_int("EVENT_CONSUMER_LEASE_SECONDS", 120)

# --- Web ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Legacy order API",
    "DESCRIPTION": "The order backend of record: orders, stock and payment authorisation.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

# Bodies larger than this are refused (413) before they are parsed.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 64 * 1024)

PASSWORD_HASHERS = [
    "config.hashers.QuickArgon2PasswordHasher"
    if DJANGO_ENV == "test"
    else "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/shop/"
LOGOUT_REDIRECT_URL = "/shop/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing root
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # Only production serves the collected, hashed files (a manifest collectstatic wrote).
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if DJANGO_ENV == "production" and not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG or DJANGO_ENV != "production"

# Mail goes to the console unless an SMTP server is named; in production, whose output is its
# log, an email with no server to go to is refused instead (config.mail), never printed.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
# Seconds a mail server may take to answer before the send fails (and is tried again later).
EMAIL_TIMEOUT = env_float("EMAIL_TIMEOUT", 20)
if EMAIL_HOST:
    _email_backend = "django.core.mail.backends.smtp.EmailBackend"
elif DJANGO_ENV == "production":
    _email_backend = "config.mail.NoMailServerBackend"
else:
    _email_backend = "django.core.mail.backends.console.EmailBackend"
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", _email_backend)
# Where links in emails point (the shop as buyers reach it).
SHOP_BASE_URL = (os.environ.get("SHOP_BASE_URL") or SERVED.get("SHOP_BASE_URL") or "http://127.0.0.1:8000").rstrip("/")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "shop@example.com")
# Buyers' confirmations (shop.OrderEmail) not sent at once are tried again by beat's
# sweep, waiting a minute, then twice as long each time up to an hour, this many times in all;
# sent ones are deleted after this many days (the buyer's address goes with them).
SHOP_CONFIRMATION_MAX_ATTEMPTS = env_int("SHOP_CONFIRMATION_MAX_ATTEMPTS", 12)
SHOP_CONFIRMATION_KEEP_DAYS = env_int("SHOP_CONFIRMATION_KEEP_DAYS", 30)
# Who is mailed a server error's report (Django's ADMINS: "Ops <ops@example.com>, oncall@example.com"),
# from SERVER_EMAIL, through the mail server above; config.error_reports keeps buyers' data out of it.
ADMINS = mail_recipients("ADMINS", os.environ.get("ADMINS", ""))
SERVER_EMAIL = (
    mail_sender("SERVER_EMAIL", os.environ["SERVER_EMAIL"]) if "SERVER_EMAIL" in os.environ else DEFAULT_FROM_EMAIL
)
# Merchants told about dead-lettered orders.
MERCHANT_EMAILS = [e.strip() for e in os.environ.get("MERCHANT_EMAILS", "merchant@example.com").split(",") if e.strip()]

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
for _name, _default in (("LOG_LEVEL", "INFO"), ("REQUEST_LOG_LEVEL", "ERROR")):
    if os.environ.get(_name, _default).upper() not in _LOG_LEVELS:
        raise ImproperlyConfigured(f"{_name} must be one of {', '.join(_LOG_LEVELS)}, not {os.environ[_name]!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    # Every line written keeps no buyer's mailbox or card number (config.redaction).
    "filters": {"buyer_data": {"()": "config.redaction.BuyerDataFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["buyer_data"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO").upper()},
    "loggers": {
        "django.server": {"level": "WARNING"},
        # Django logs every 4xx answer as a warning. In a sale most of them are answers the
        # shop means to give (sold out, throttled, a field to correct): thousands of lines a
        # minute that hide the errors. 5xx answers are still logged.
        "django.request": {"level": os.environ.get("REQUEST_LOG_LEVEL", "ERROR").upper()},
    },
}

# --- Edge -----------------------------------------------------------------------------
# CloudFront's cache behaviours per distribution (a quota AWS can raise on request).
EDGE_MAX_BEHAVIORS = env_int("EDGE_MAX_BEHAVIORS", 25)
# Where the all-in-one server's default origin (the monolith) is reached.
EDGE_MONOLITH_DOMAIN = os.environ.get("EDGE_MONOLITH_DOMAIN", "127.0.0.1")
EDGE_MONOLITH_PORT = env_int("EDGE_MONOLITH_PORT", int(SERVED.get("EDGE_MONOLITH_PORT") or 8000))
# The product whose buy-now page the mini-site renders, and the hot-path API it posts to.
EDGE_HOT_PRODUCT = os.environ.get("EDGE_HOT_PRODUCT", "muskie-casting-rod")
EDGE_HOTPATH_API_URL = os.environ.get("EDGE_HOTPATH_API_URL", "").rstrip("/")
# AWS resources edge_deploy manages (created by the exported CloudFormation template).
EDGE_DISTRIBUTION_COMMENT = os.environ.get("EDGE_DISTRIBUTION_COMMENT", "shop edge (managed by edge_deploy)")
EDGE_LAMBDA_FUNCTION = os.environ.get("EDGE_LAMBDA_FUNCTION", "shop-edge-router")
EDGE_LAMBDA_ROLE_ARN = os.environ.get("EDGE_LAMBDA_ROLE_ARN", "arn:aws:iam::123456789012:role/shop-edge-router")
EDGE_MINISITE_BUCKET = os.environ.get("EDGE_MINISITE_BUCKET", "shop-minisite")
EDGE_MINISITE_OAC_ID = os.environ.get("EDGE_MINISITE_OAC_ID", "")
# The header value CloudFront (and the exported nginx) adds to every request to an origin
# (X-Origin-Verify); an origin with it set refuses requests without it. Empty: no check.
EDGE_ORIGIN_SECRET = os.environ.get("EDGE_ORIGIN_SECRET", "").strip()
# The value of X-Edge-Canary-Secret that lets a tester's X-Edge-Canary force a canary; baked
# into the exported Lambda@Edge package and nginx config. Empty: the tester header is ignored.
EDGE_CANARY_SECRET = os.environ.get("EDGE_CANARY_SECRET", "").strip()
for _name in ("EDGE_ORIGIN_SECRET", "EDGE_CANARY_SECRET"):
    # They travel in headers and are written into nginx configs: keep them to token characters.
    if not all(c.isascii() and (c.isalnum() or c in "-._~+/=") for c in globals()[_name]):
        raise ImproperlyConfigured(f"{_name} may hold only letters, digits and - . _ ~ + / =.")


# --- Errors and sign-in throttling ---------------------------------------------------------
# Error answers under the API prefixes are JSON in one shape (config.errors); null characters
# are refused everywhere before anything reads them. Right after the edge router, so that it
# sees every answer of whichever origin the router chose.
MIDDLEWARE.insert(MIDDLEWARE.index("edge.middleware.EdgeRouterMiddleware") + 1, "config.errors.ApiErrorMiddleware")
CSRF_FAILURE_VIEW = "config.errors.csrf_failure"
# A 5xx's report (the error email to ADMINS) names no buyer's card, email, name or address.
DEFAULT_EXCEPTION_REPORTER_FILTER = "config.error_reports.BuyerDataReporterFilter"
DEFAULT_EXCEPTION_REPORTER = "config.error_reports.BuyerDataExceptionReporter"
# Production serves the collected, hashed files; without a manifest (collectstatic not run)
# every page naming a static file would fail, so they are served from the apps instead.
if (
    STORAGES["staticfiles"]["BACKEND"].endswith("ManifestStaticFilesStorage")
    and sys.argv[1:2] != ["collectstatic"]  # which writes the manifest, so it needs the manifest's storage
    and not (STATIC_ROOT / "staticfiles.json").exists()
):
    STORAGES["staticfiles"]["BACKEND"] = "whitenoise.storage.CompressedStaticFilesStorage"
    WHITENOISE_USE_FINDERS = True
# Password guessing on /admin/login/ and /accounts/login/ (django-axes): after AXES_FAILURE_LIMIT
# wrong passwords for one account, or from one address, sign-in is refused with 429 until
# the cool-off has passed. Attempts are kept in the database, shared by every web process.
INSTALLED_APPS.append("axes")
MIDDLEWARE.append("axes.middleware.AxesMiddleware")  # last, as django-axes requires
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_MINUTES", 15) / 60  # hours
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
# The buyer's address as the hot path's throttle reads it: behind the edge's proxies, the one
# the nearest trusted proxy saw (ORDERS_CLIENT_IP_HEADER, ORDERS_TRUSTED_PROXY_HOPS), never a
# header the client wrote, and never the proxy's own address that every shopper shares; an IPv6
# address by its /64, as the throttles count it (shop.order_input.client_network).
AXES_CLIENT_IP_CALLABLE = "shop.order_input.client_ip_network"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "lockout.html"
AXES_HTTP_RESPONSE_CODE = 429
# Its start-up banner on every command and process says nothing an operator needs.
AXES_VERBOSE = False
if SHOP_DEPLOYMENT in ("hotpath", "ceiling"):
    # The hot path has no sign-in and sets no messages (its URLs are the sale's page, orders
    # and status): two middlewares fewer on every order, a tenth of a sold-out answer's CPU.
    # The admin it does not serve is what asks for the messages middleware. The benchmark's
    # trivial view, which the hot path is measured against, runs the same middleware.
    MIDDLEWARE = [
        name
        for name in MIDDLEWARE
        if name not in ("axes.middleware.AxesMiddleware", "django.contrib.messages.middleware.MessageMiddleware")
    ]
    SILENCED_SYSTEM_CHECKS = ["admin.E409", "axes.W002"]
if SHOP_DEPLOYMENT in ("all", "hotpath", "ceiling"):
    # A sold-out sale's new buyers are answered before the middlewares such an answer does not
    # need (orders.middleware), after the security headers and X-Frame-Options, which it does
    # (the latter moved up: it only sets a response's header). The ceiling's trivial view, a
    # GET, runs the same list.
    MIDDLEWARE.remove("django.middleware.clickjacking.XFrameOptionsMiddleware")
    _after = MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1
    MIDDLEWARE[_after:_after] = [
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
        "orders.middleware.SoldOutAnswerMiddleware",
    ]

# --- Tracing (OpenTelemetry; X-Ray-compatible ids; see tracing/) -----------------------------
# Off: nothing is instrumented and tracing costs nothing. On: a request that arrives sampled
# (the edge decided, X-Amzn-Trace-Id ...;Sampled=1, or traceparent ...-01) is traced; a new
# trace is kept at TRACING_SAMPLE_RATE (the edge mints its ids at this rate too).
TRACING_ENABLED = env_bool("TRACING_ENABLED", True)
TRACING_SAMPLE_RATE = min(1.0, max(0.0, env_float("TRACING_SAMPLE_RATE", 0.01)))
# Sampled spans are kept in this database (the admin's trace view and service map) for this long.
TRACING_STORE = env_bool("TRACING_STORE", True)
TRACING_RETENTION_HOURS = env_int("TRACING_RETENTION_HOURS", 72)
# How long finished spans wait in memory before one INSERT writes them.
TRACING_EXPORT_DELAY_MS = env_int("TRACING_EXPORT_DELAY_MS", 2000)
INSTALLED_APPS.append("tracing")
CELERY_BEAT_SCHEDULE["tracing-prune"] = {"task": "tracing.tasks.spans_prune", "schedule": 3600.0}
