"""What every read model shares: its rows in generations, their state as comparable JSON, and
the consumer that keeps the live generation up to date (the protocol of events/snapshots.py)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from django.db import models, transaction
from django.db.models import F, Subquery

from events.consumers import events_each
from readmodels.models import Generation

logger = logging.getLogger(__name__)


def _plain(value):
    return value.isoformat() if isinstance(value, datetime) else value


class Projection:
    """A view kept in one model's rows, keyed by `keys`, with `figures` that events change."""

    name: str
    model: type[models.Model]
    keys: tuple[str, ...]
    figures: tuple[str, ...]

    def __init__(self) -> None:
        # The adds of the batch this thread is handling (`adds`: None outside a batch).
        self._folding = threading.local()

    # --- the live generation -------------------------------------------------------------
    def live_generation(self) -> int:
        generation = Generation.objects.filter(view=self.name).values_list("live", flat=True).first()
        if generation is None:
            generation = Generation.objects.get_or_create(view=self.name)[0].live
        return generation

    def live_rows(self) -> models.QuerySet:
        """The rows readers see, in one query: the live generation's."""
        live = Generation.objects.filter(view=self.name).values("live")[:1]
        return self.model.objects.filter(generation=Subquery(live))

    def handle(self, events: list) -> Iterator:
        """The consumer: a batch of events into the live generation, in the batch's transaction;
        one outcome per event tried, up to the first failure (the events after it are left for
        the next run). The batch is applied in one savepoint; if any event fails, that is undone
        and the batch is tried again one event at a time, each in a savepoint of its own, so the
        failing event is the one kept back or dead-lettered, as for any consumer. The live
        generation is looked up once a batch: a rebuild swaps it only under the consumer's
        checkpoint, which the batch holds."""
        generation: list[int] = []
        done: list = []

        def one(event) -> None:
            if not generation:
                generation.append(self.live_generation())
            self.apply(event, generation[0])
            done.append(event)

        pending, tried = iter(events), []
        try:
            with transaction.atomic(), self.summing():
                for event in pending:
                    tried.append(event)
                    if self.wants(event):
                        one(event)
        except Exception:
            logger.info("read model %s: a batch failed; trying its events one by one", self.name, exc_info=True)
        else:
            yield from (None for _ in tried)
            self.batch_done(done)
            return
        done.clear()
        one.wants = self.wants
        for _event, outcome in events_each(one, [*tried, *pending]):
            yield outcome
            if outcome is not None:
                break
        self.batch_done(done)

    @contextmanager
    def summing(self) -> Iterator[None]:
        """A batch's adds summed per row and written once, at its end (`add`)."""
        self._folding.adds = {}
        try:
            yield
            self.adds_flush()
        finally:
            self._folding.adds = None

    def fold_batch(self, events: list, generation: int) -> None:
        """A rebuild's batch into `generation`, as the consumer folds one into the live
        generation: the events this view wants applied, their adds summed per row. The caller
        holds a savepoint around it, and folds the batch one event at a time if it fails."""
        with self.summing():
            for event in events:
                if self.wants(event):
                    self.apply(event, generation)

    def batch_done(self, events: list) -> None:
        """After a batch, with the events applied (their writes not yet committed)."""

    def wants(self, event) -> bool:
        """Whether `apply` may change anything for this event (the others are passed)."""
        return True

    def consumer(self):
        """The consumer's handler, for EVENT_CONSUMERS: `handle`, taking whole batches."""

        def handle(events: list) -> Iterator:
            return self.handle(events)

        handle.handles_batches = True
        handle.wants = self.wants
        return handle

    # --- the protocol of events.snapshots ------------------------------------------------
    def apply(self, event, generation: int) -> None:
        raise NotImplementedError

    def rows(self, generation: int | None = None) -> models.QuerySet:
        return self.model.objects.filter(generation=self.live_generation() if generation is None else generation)

    def state(self, generation: int | None = None) -> dict:
        state = {}
        for row in self.rows(generation).values(*self.keys, *self.figures):
            key = "|".join(str(_plain(row[k])) for k in self.keys)
            state[key] = {name: _plain(row[name]) for name in (*self.keys, *self.figures)}
        return state

    def load(self, state: dict, generation: int) -> None:
        self.model.objects.bulk_create(
            [self.model(generation=generation, **values) for values in state.values()], batch_size=500
        )

    def generation_new(self) -> int:
        with transaction.atomic():
            Generation.objects.get_or_create(view=self.name)
            row = Generation.objects.select_for_update().get(view=self.name)
            row.last = max(row.last, row.live) + 1
            row.save(update_fields=["last"])
        return row.last

    def swap(self, generation: int) -> None:
        with transaction.atomic():
            Generation.objects.get_or_create(view=self.name)
            row = Generation.objects.select_for_update().get(view=self.name)
            old, row.live = row.live, generation
            row.save(update_fields=["live"])
            self.drop(old)

    def drop(self, generation: int) -> None:
        self.model.objects.filter(generation=generation).delete()

    # --- helpers for apply ---------------------------------------------------------------
    def add(self, generation: int, key: dict, *, created: dict | None = None, **changes: int) -> None:
        """Adds to a row's figures, creating the row with `created` (by default the changes)
        when it has none yet. One consumer writes a generation at a time (its checkpoint's
        lock), so no two adds race. Inside a batch the adds are summed per row and written
        once, at the batch's end (`adds_flush`): a stampede's batch is hundreds of one
        product's events, one UPDATE instead of hundreds."""
        adds = getattr(self._folding, "adds", None)
        if adds is None:
            self._add_now(generation, key, changes, created or changes)
            return
        row = (generation, tuple(sorted(key.items())))
        if row in adds:
            total, first = adds[row]
            # A row that is missing is made by the first add; the later ones add to that.
            for name, amount in changes.items():
                first[name] = first.get(name, 0) + amount
        else:
            total, first = adds[row] = ({}, dict(created or changes))
        for name, amount in changes.items():
            total[name] = total.get(name, 0) + amount

    def adds_flush(self) -> None:
        """Writes the batch's summed adds, a row at a time (before a `put`, so that the
        writes keep their order)."""
        adds = getattr(self._folding, "adds", None)
        if not adds:
            return
        for (generation, key), (total, first) in adds.items():
            self._add_now(generation, dict(key), total, first)
        adds.clear()

    def _add_now(self, generation: int, key: dict, changes: dict, created: dict) -> None:
        changed = self.model.objects.filter(generation=generation, **key).update(
            **{name: F(name) + amount for name, amount in changes.items()}
        )
        if not changed:
            self.model.objects.create(generation=generation, **key, **created)

    def put(self, generation: int, key: dict, **values) -> None:
        """Sets a row's figures, creating the row when it has none yet: one UPDATE, as `add`
        (update_or_create would lock, read and write in a savepoint of its own)."""
        self.adds_flush()
        if not self.model.objects.filter(generation=generation, **key).update(**values):
            self.model.objects.create(generation=generation, **key, **values)
