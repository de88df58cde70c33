"""A read model's consumer that kills its own process mid-batch, as a crash or an OOM kill would."""

from __future__ import annotations

import os
import signal

from readmodels.sales import sales_per_minute_handle

_seen = {"n": 0}


def sales_per_minute_killed(events):
    """The real handler, until it reaches the SALES_KILL_AT-th event, where the process is
    SIGKILLed."""

    def reaching(events):
        for event in events:
            _seen["n"] += 1
            if _seen["n"] == int(os.environ.get("SALES_KILL_AT", "0")):
                os.kill(os.getpid(), signal.SIGKILL)
            yield event

    return sales_per_minute_handle(reaching(events))


sales_per_minute_killed.handles_batches = True
