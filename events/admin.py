"""The log in the admin: events (read only), consumers' checkpoints, and dead letters with a
redrive that needs the permission to change them."""

from __future__ import annotations

import json
import uuid

from django.contrib import admin, messages
from django.utils.html import format_html

from config.admin_base import ReadOnlyAdmin, ShopModelAdmin
from events.dead_letters import dead_letter_redrive
from events.models import Checkpoint, DeadLetter, Event


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["position", "time", "source", "detail_type", "type", "subtype", "status", "trace_id"]
    list_filter = ["source", "type", "status"]
    search_fields = ["=uuid", "trace_id", "source"]
    ordering = ["-position"]
    fields = ["position", "uuid", "xid", "envelope_json"]
    readonly_fields = fields
    # The log only grows: a count of all of it on every filtered page reads every event.
    show_full_result_count = False

    def get_search_results(self, request, queryset, search_term):
        # An event's id is found through its unique index: the default search compares the
        # id's text (and the other fields' text) of every event.
        try:
            event_id = uuid.UUID(search_term.strip())
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(uuid=event_id), False

    @admin.display(description="envelope")
    def envelope_json(self, obj: Event) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.envelope(), indent=2))


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdmin):
    list_display = ["consumer", "last_position", "last_xid", "failures", "last_error", "updated_at"]


@admin.register(DeadLetter)
class DeadLetterAdmin(ShopModelAdmin):
    list_display = [
        "consumer",
        "event",
        "error_short",
        "attempts",
        "created_at",
        "redriven_at",
        "redriven_by",
        "resolution",
    ]
    list_filter = ["consumer", ("redriven_at", admin.EmptyFieldListFilter)]
    readonly_fields = [
        "consumer",
        "event",
        "error",
        "attempts",
        "created_at",
        "redriven_at",
        "redriven_by",
        "resolution",
    ]
    actions = ["redrive"]
    list_select_related = ["event", "redriven_by"]

    @admin.display(description="error")
    def error_short(self, obj: DeadLetter) -> str:
        return obj.error[:120]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # An open dead letter keeps its event out of the view (a rebuild leaves it out too) and
        # from pruning: deleting it would make rebuild --check differ and lose the event.
        return False

    @admin.action(description="Redrive (give the events to their consumers again)", permissions=["change"])
    def redrive(self, request, queryset):
        ids = list(queryset.filter(redriven_at__isnull=True).values_list("pk", flat=True))
        done = sum(dead_letter_redrive(dead_letter_id=pk, user=request.user) for pk in ids)
        self.message_user(request, f"{done} of {len(ids)} dead letters redriven.")
        settled = queryset.exclude(pk__in=ids)
        by_rebuild = settled.exclude(resolution="").count()
        if by_rebuild:
            self.message_user(
                request,
                f"{by_rebuild} settled by a rebuild, not redriven (the rebuild put its event in the view: "
                "a redrive would count it twice).",
                level=messages.WARNING,
            )
        if settled.count() > by_rebuild:
            self.message_user(
                request, f"{settled.count() - by_rebuild} already redriven, not redriven again.", level=messages.WARNING
            )
        if done < len(ids):
            self.message_user(
                request, f"{len(ids) - done} failed again; their error is updated.", level=messages.WARNING
            )
