"""The embedded broker of `python3 run.py`: kombu's filesystem transport, with each message
written whole before a worker can see it.

kombu writes a message straight under its final name and locks it only after opening it,
while a worker takes files by that name without the lock: a worker polling at that moment
took an empty file and stopped on a JSON error. Here the message is written under a name no
worker reads and renamed into place, which is atomic on one filesystem.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        # A leading dot: kombu's reader keeps only names whose part after the first dot is
        # "<queue>.msg", so the partial file is never taken.
        partial = os.path.join(self.data_folder_out, f".{name}.partial")
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, os.path.join(self.data_folder_out, name))
        except OSError as exc:
            raise ChannelError(f"Cannot add file {name!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
