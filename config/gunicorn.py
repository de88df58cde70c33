"""gunicorn settings shared by every deployment (`gunicorn -c config/gunicorn.py ...`): when a
worker process dies (SIGKILL, out of memory, a timeout), the master frees the legacy API's
capacity slots it held at once, instead of shedding orders until their lease ends, and a
master starting frees those of this machine's processes that are gone (a server killed whole). Tracing
starts in each worker after fork, and sends its last spans as the worker exits (config.wsgi).
Each worker readies Django (template engines, URLs, the storefront's templates) as it imports the
application (config.wsgi), before its first request."""

import os

# Imported once, when the master reads this file: importing inside the SIGCHLD handler broke
# when a second worker's exit interrupted the first one's import ("partially initialized
# module"). It needs no Django set-up: only Redis and the settings' lazy object.
from legacy_api.capacity import slots_release_of_gone_processes, slots_release_of_process

# Seconds an idle keep-alive connection is kept (gunicorn's default is 2): longer than nginx keeps
# one to an origin (edge.exporters.nginx.UPSTREAM_IDLE_SECONDS), so nginx never sends a request on
# a connection gunicorn is closing, which it would answer 502 (a buyer's POST is not sent again).
keepalive = 30


def on_starting(server):
    # A server killed whole (master and workers) left its slots taken until their leases end,
    # and a server started again in its place would shed every order meanwhile.
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url:
        return
    try:
        freed = slots_release_of_gone_processes(redis_url=redis_url)
    except Exception:  # Redis away: the slots' leases free them later
        server.log.exception("could not free the capacity slots of processes that are gone")
        return
    if freed:
        server.log.warning("freed %s capacity slot(s) held by processes of this machine that are gone", freed)


def child_exit(server, worker):
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url:  # the file locks without Redis are dropped by the kernel
        return
    try:
        freed = slots_release_of_process(worker.pid, redis_url=redis_url)
    except Exception:  # Redis away: the slots' leases free them later
        server.log.exception("could not free the capacity slots of worker %s", worker.pid)
        return
    if freed:
        server.log.warning("freed %s capacity slot(s) held by worker %s, which died", freed, worker.pid)


def post_fork(server, worker):
    # With --preload the application (and tracing) was loaded in the master: set up again in
    # the worker (a no-op when the worker imports the application itself, after this hook).
    from django.apps import apps

    if apps.ready:
        from tracing.setup import tracing_init

        tracing_init()
