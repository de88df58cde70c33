"""A read model's consumer that kills its own process mid-batch, as a crash or an OOM kill would."""

from __future__ import annotations

import os
import signal

from readmodels.sales import sales_per_minute_handle

_seen = {"n": 0}


def sales_per_minute_killed(event) -> None:
    """The real handler, until the SALES_KILL_AT-th event, where the process is SIGKILLed."""
    _seen["n"] += 1
    if _seen["n"] == int(os.environ.get("SALES_KILL_AT", "0")):
        os.kill(os.getpid(), signal.SIGKILL)
    sales_per_minute_handle(event)
