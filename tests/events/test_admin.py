"""The log in the admin: events and checkpoints to look at, dead letters redriven only by
those allowed to change them."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from events.models import Checkpoint, DeadLetter
from tests.conftest import _staff_client
from tests.events import handlers
from tests.events.conftest import sale_event

pytestmark = pytest.mark.django_db(transaction=True)

CHANGELIST = "admin:events_deadletter_changelist"


@pytest.fixture
def dead_letter(settings):
    settings.EVENT_CONSUMERS = {"collect": "tests.events.handlers.collect"}
    return DeadLetter.objects.create(consumer="collect", event=sale_event(1), error="RuntimeError: boom", attempts=5)


def redrive(client, letter):
    return client.post(reverse(CHANGELIST), {"action": "redrive", "_selected_action": [letter.pk]})


def test_the_log_and_the_checkpoints_can_be_looked_at(viewer, dead_letter):
    Checkpoint.objects.create(consumer="collect", last_position=dead_letter.event_id)
    assert viewer.get(reverse("admin:events_event_changelist")).status_code == 200
    page = viewer.get(reverse("admin:events_event_change", args=[dead_letter.event_id]))
    assert page.status_code == 200 and b"State change Notification" in page.content and b"meta_data" in page.content
    assert viewer.get(reverse("admin:events_checkpoint_changelist")).status_code == 200
    assert viewer.get(reverse(CHANGELIST)).status_code == 200


@pytest.mark.parametrize("who", ["viewer", "nobody"])
def test_redrive_is_refused_without_the_change_permission(request, who, dead_letter):
    response = redrive(request.getfixturevalue(who), dead_letter)
    assert response.status_code == 403
    dead_letter.refresh_from_db()
    assert dead_letter.redriven_at is None
    assert handlers.seen == []


def test_redrive_gives_the_event_to_its_consumer_again(django_user_model, dead_letter):
    client = _staff_client(
        django_user_model,
        "operator",
        Permission.objects.filter(codename__in=["view_deadletter", "change_deadletter"]),
    )
    response = redrive(client, dead_letter)
    assert response.status_code == 302
    dead_letter.refresh_from_db()
    assert dead_letter.redriven_at is not None and dead_letter.redriven_by.username == "operator"
    assert handlers.seen == [dead_letter.event_id]
    # A second redrive of the same letter does nothing.
    redrive(client, dead_letter)
    assert handlers.seen == [dead_letter.event_id]


def test_a_consumer_s_dead_letter_is_redriven_never_deleted(admin_client, dead_letter):
    """Deleted while open, its event would join the next rebuild and could be pruned unconsumed."""
    assert admin_client.get(f"/admin/events/deadletter/{dead_letter.pk}/delete/").status_code == 403
    assert DeadLetter.objects.filter(pk=dead_letter.pk).exists()
