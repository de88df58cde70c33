"""`manage.py events`: read the unified log in commit order, see where its consumers are,
replay one, run the relay to EventBridge, snapshot and rebuild the read models, prune what
every consumer has passed, and retire a consumer no process runs any more."""

from __future__ import annotations

import json
import os
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from events.consumers import UnknownConsumer, consumer_names, consumer_run_all
from events.models import Checkpoint, Event
from events.replays import NotReplayable, ReplayAhead, ReplayPruned, consumer_replay
from events.selectors import (
    Mark,
    UnknownPosition,
    consumers_state,
    events_committed,
    log_held_back,
    mark_at,
    mark_before,
    mark_end,
    mark_of,
    pruned_mark,
)
from events.services import NotRetirable, checkpoint_retire, events_prune
from events.snapshots import (
    SHOWN_DIFFERENCES,
    LogPruned,
    RebuildIncomplete,
    UnknownView,
    snapshot_take,
    view_names,
    view_rebuild,
    views_check,
)

RELAY = "eventbridge"
FOLLOW_INTERVAL = 0.5
RELAY_INTERVAL = 1.0
TAIL_BATCH = 500


def _position(value: str, option: str) -> int:
    """Parsed here rather than by argparse: a bad position is one line and exit 1."""
    try:
        position = int(value)
    except ValueError:
        raise CommandError(f"{option}: {value!r} is not a position (a whole number, 0 for the start).")
    if position < 0:
        raise CommandError(f"{option}: {position} is not a position (0 or more).")
    return position


def counted(n: int, noun: str) -> str:
    """`1 view`, `2 views`: a count as a merchant reads it."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _line(event: Event) -> str:
    return (
        f"{event.position:>8} {event.envelope()['time']} {event.source} {event.detail_type!r} "
        f"{event.type}/{event.subtype}/{event.status} {json.dumps(event.data, sort_keys=True)}"
    )


class Command(BaseCommand):
    help = "Read the unified log, follow its consumers, replay one, relay it to EventBridge, prune it."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        tail = sub.add_parser("tail", help="Events in commit order.")
        tail.add_argument("--follow", action="store_true", help="keep printing events as they commit")
        tail.add_argument("--json", action="store_true", help="one envelope per line")
        tail.add_argument(
            "--after",
            default="0",
            help="only events after the one at this position (a pruned or missing one: from the next event); "
            "`end`: only events still to come",
        )
        tail.add_argument("--source", help="only events of this source")
        sub.add_parser("consumers", help="Each consumer's position, lag and dead letters.").add_argument(
            "--json", action="store_true"
        )
        replay = sub.add_parser("replay", help="Give one consumer the events from a position on again.")
        replay.add_argument("consumer")
        replay.add_argument("--from", dest="from_position", required=True, help="the first event to replay")
        relay = sub.add_parser("relay", help="Send the log to EventBridge (EVENTBRIDGE_BUS_NAME).")
        relay.add_argument("--once", action="store_true", help="catch up once and stop")
        sub.add_parser("prune", help="Delete events past EVENT_RETENTION_DAYS that every consumer has passed.")
        sub.add_parser(
            "retire", help="Forget the checkpoint of a consumer no process runs any more: pruning stops waiting for it."
        ).add_argument("consumer")
        sub.add_parser("snapshot", help="Store a read model's state with its place in the log.").add_argument(
            "view", nargs="?", help="one of EVENT_VIEWS; every view when left out"
        )
        rebuild = sub.add_parser("rebuild", help="Build a read model again beside the live one and swap it in.")
        rebuild.add_argument("view", nargs="?")
        rebuild.add_argument("--from-snapshot", action="store_true", help="start from its latest snapshot")
        rebuild.add_argument(
            "--check", action="store_true", help="rebuild every view beside the live one, compare, keep the live one"
        )

    def handle(self, *args, action, **options):
        try:
            getattr(self, f"do_{action}")(options)
        except (
            UnknownConsumer,
            NotReplayable,
            ReplayAhead,
            ReplayPruned,
            UnknownPosition,
            UnknownView,
            LogPruned,
            RebuildIncomplete,
            NotRetirable,
        ) as exc:
            raise CommandError(str(exc))
        except KeyboardInterrupt:
            # Ctrl-C is how `tail --follow` and the relay's loop are stopped: no traceback.
            raise SystemExit(130) from None
        except BrokenPipeError:
            # `events tail | head`: the reader has what it wanted. What is still buffered for it
            # goes nowhere, so that the flush at exit does not fail too.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise SystemExit(0) from None

    def do_tail(self, options) -> None:
        mark = self._tail_start(options["after"])
        while True:
            batch = events_committed(after=mark, source=options["source"], limit=TAIL_BATCH)
            for event in batch:
                self.stdout.write(json.dumps(event.envelope()) if options["json"] else _line(event))
                mark = mark_of(event)
            if len(batch) == TAIL_BATCH:
                continue
            if not options["follow"]:
                return
            self.stdout.flush()
            time.sleep(FOLLOW_INTERVAL)

    def _tail_start(self, after: str) -> Mark:
        """Where `tail --after` starts: after the event at that position; after what pruning
        deleted last for a pruned position (said on stderr); before the next event for a position
        no event took (a rolled-back insert); `end`: after the last event readable now."""
        if after == "end":
            return mark_end()
        position = _position(after, "--after")
        try:
            return mark_at(position=position)
        except UnknownPosition:
            pruned = pruned_mark()
            if position <= pruned[1]:
                self.stderr.write(f"position {position} was pruned: from the next event, after position {pruned[1]}.")
                return pruned
            following = Event.objects.filter(position__gt=position).order_by("position").values_list("position")
            if not following:
                raise  # past the end of the log
            return mark_before(position=following[0][0])

    def do_consumers(self, options) -> None:
        registered = list(consumer_names())
        # Every checkpoint holds the log's pruning back, not only those of the consumers this
        # process registers (a relay run elsewhere, one no process runs any more): show them too.
        others = sorted(set(Checkpoint.objects.values_list("consumer", flat=True)) - set(registered))
        states = consumers_state(consumers=registered + others)
        held = log_held_back() if any(state.behind for state in states) else None
        if options["json"]:
            waiting_on = held.as_dict() if held else None
            rows = [
                dict(state.as_dict(), registered_here=state.consumer in registered, waiting_on_transaction=waiting_on)
                for state in states
            ]
            self.stdout.write(json.dumps(rows, indent=2))
            return
        if not states:
            self.stdout.write("No consumers (EVENT_CONSUMERS is empty).")
        for s in states:
            self.stdout.write(
                f"{s.consumer}: position {s.position}, {s.behind} behind ({s.lag_seconds:.1f}s), "
                f"{counted(s.dead_letters, 'dead letter')}"
                + (f", failing ({s.failures}x): {s.last_error}" if s.failures else "")
                + _not_run_here(s.consumer, registered)
            )
        if held:
            self.stdout.write(
                f"Every consumer has waited {held.seconds:.0f}s on a transaction (pid {held.pid}, database "
                f"{held.database or '?'}, {held.state or 'state not shown to this role'}): no event committed "
                "since it began is read until it ends."
            )

    def do_replay(self, options) -> None:
        position = _position(options["from_position"], "--from")
        result = consumer_replay(consumer=options["consumer"], from_position=position)
        self.stdout.write(str(result))
        if result.failed:
            raise CommandError(f"{options['consumer']} stopped at a failure; it will retry from there.")

    def do_relay(self, options) -> None:
        if not settings.EVENTBRIDGE_BUS_NAME or RELAY not in settings.EVENT_CONSUMERS:
            raise CommandError("The relay needs EVENTBRIDGE_BUS_NAME (the custom bus to send the log to).")
        while True:
            result = consumer_run_all(consumer=RELAY)
            if result.processed or result.dead_lettered or result.failed or options["once"]:
                self.stdout.write(str(result))
            if options["once"]:
                if result.failed:
                    # Why, in one line: a bus that does not exist or a missing permission is the
                    # deployment's to fix, not a refusal that passes.
                    error = Checkpoint.objects.filter(consumer=RELAY).values_list("last_error", flat=True).first()
                    reason = (error or "").strip().splitlines()[-1:] or ["no reason given"]
                    raise CommandError(
                        f"EventBridge did not take the events ({reason[0]}); the relay will send them again."
                    )
                return
            time.sleep(RELAY_INTERVAL)

    def do_prune(self, options) -> None:
        self.stdout.write(f"{events_prune()} events pruned.")

    def do_retire(self, options) -> None:
        _, position = checkpoint_retire(consumer=options["consumer"])
        self.stdout.write(
            f"{options['consumer']} retired (it was at position {position}): pruning no longer waits for it."
        )

    def do_snapshot(self, options) -> None:
        for view in [options["view"]] if options["view"] else view_names():
            snapshot = snapshot_take(view=view)
            self.stdout.write(f"{view}: snapshot at position {snapshot.last_position}.")

    def do_rebuild(self, options) -> None:
        if options["check"]:
            differing = 0
            views = [options["view"]] if options["view"] else None
            for view, differences in views_check(from_snapshot=options["from_snapshot"], views=views).items():
                differing += bool(differences)
                self.stdout.write(f"{view}: " + (counted(len(differences), "difference") if differences else "in step"))
                for line in differences[:SHOWN_DIFFERENCES]:
                    self.stdout.write(f"  {line}")
            if differing:
                raise CommandError(
                    f"{counted(differing, 'view')} {'differs' if differing == 1 else 'differ'} from a rebuild."
                )
            return
        if not options["view"]:
            raise CommandError("Name the view to rebuild (or --check every view).")
        build = view_rebuild(view=options["view"], from_snapshot=options["from_snapshot"])
        self.stdout.write(f"{options['view']}: {_rebuilt(build, from_snapshot=options['from_snapshot'])}.")


def _rebuilt(build, *, from_snapshot: bool) -> str:
    """What a rebuild did, for its one line."""
    start = f"its snapshot at position {build.start[1]}" if build.from_snapshot else "the start"
    if build.from_snapshot and not from_snapshot:
        start += " (the log is pruned before it)"
    said = f"rebuilt from {start}, {build.applied} events, now at position {build.mark[1]}"
    if build.skipped:
        said += f"; left out events {build.skipped}, still open dead letters"
    if build.resolved:
        said += f"; {counted(build.resolved, 'dead letter')} settled (their events are in the view)"
    return said


def _not_run_here(consumer: str, registered: list[str]) -> str:
    """The note on a consumer this process does not run: retiring a read model is refused (run
    again, it would count events twice), so it is not suggested for one."""
    if consumer in registered:
        return ""
    if consumer in settings.EVENT_VIEWS:
        return " (not run here: a read model, kept by the workers whose EVENT_CONSUMERS name it)"
    return " (not run here; `events retire` it if no process runs it)"
