"""Expired sessions and the guests' baskets no live session can reach are pruned every hour; a
basket someone may still come back to, and every account's, stay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from shop import housekeeping
from shop.housekeeping import sessions_baskets_prune
from shop.models import Basket, BasketLine
from shop.services import basket_add, basket_merge_into_user
from shop.tasks import sessions_baskets_prune as prune_task
from tests.shop.conftest import basket_lines
from tests.shop.test_checkout import fill_basket

pytestmark = pytest.mark.django_db


def _days_ago(basket: Basket, days: float) -> None:
    Basket.objects.filter(pk=basket.pk).update(updated_at=timezone.now() - timedelta(days=days))


def _guest_basket(client: Client, product) -> Basket:
    fill_basket(client, product, 1)
    return Basket.objects.get(session_key=client.session.session_key)


def test_a_guests_basket_whose_session_expired_is_deleted_with_its_lines_and_the_session(rod):
    gone = _guest_basket(Client(), rod)
    Session.objects.filter(session_key=gone.session_key).update(expire_date=timezone.now() - timedelta(seconds=1))
    _days_ago(gone, 15)

    pruned = sessions_baskets_prune()

    assert pruned.as_dict() == {"sessions": 1, "baskets": 1, "refusal_fingerprints": 0}
    assert not Basket.objects.exists() and not BasketLine.objects.exists() and not Session.objects.exists()


def test_a_guest_who_may_come_back_keeps_the_basket_however_old_its_last_change(rod):
    """The session is alive (the cookie still works): the basket is theirs, untouched for weeks or not."""
    client = Client()
    kept = _guest_basket(client, rod)
    _days_ago(kept, 40)

    assert sessions_baskets_prune().baskets == 0

    assert client.get("/api/basket").json()["count"] == 1


def test_a_basket_made_a_moment_ago_stays_though_no_session_names_it_yet(rod):
    """basket_get_or_create_for_request makes it, basket_remember ties it to the session after."""
    Basket.objects.create()

    assert sessions_baskets_prune().baskets == 0
    assert Basket.objects.count() == 1


def test_an_accounts_basket_is_never_pruned(rod, customer):
    mine = Basket.objects.create(owner=customer)
    basket_add(basket=mine, product=rod, quantity=1)
    _days_ago(mine, 400)

    assert sessions_baskets_prune().baskets == 0
    assert basket_lines(Basket.objects.get(owner=customer)) == {rod.slug: 1}


def test_a_guests_basket_that_joined_an_account_goes_after_a_day_the_accounts_stays(rod, reel, customer):
    mine = Basket.objects.create(owner=customer)
    basket_add(basket=mine, product=reel, quantity=1)
    guest = Basket.objects.create()
    basket_add(basket=guest, product=rod, quantity=1)
    basket_merge_into_user(basket=guest, user=customer)

    assert sessions_baskets_prune().baskets == 0  # an order being placed from it may still need it
    _days_ago(guest, 2)
    assert sessions_baskets_prune().baskets == 1

    assert list(Basket.objects.all()) == [mine]
    assert basket_lines(mine) == {rod.slug: 1, reel.slug: 1}


def test_a_live_session_without_a_basket_stays_and_the_task_reports_what_it_pruned(rod):
    live = SessionStore()
    live["anything"] = 1
    live.create()

    assert prune_task.apply().get() == {"sessions": 0, "baskets": 0, "refusal_fingerprints": 0}
    assert Session.objects.filter(session_key=live.session_key).exists()


def test_beat_prunes_every_hour_where_the_storefront_runs(settings):
    from config.celery import app

    schedule = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert schedule["shop.tasks.sessions_baskets_prune"] == 3600.0
    assert "shop.tasks.sessions_baskets_prune" in app.tasks


@pytest.mark.parametrize("engine", ["django.contrib.sessions.backends.cache", "django.contrib.sessions.backends.file"])
def test_with_sessions_that_keep_no_rows_a_guest_whose_session_lives_keeps_the_basket(settings, rod, engine, tmp_path):
    """A cache or file session lives SESSION_COOKIE_AGE from its last save, which may be long after
    the basket's last change: before, the prune judged by the basket's age alone."""
    settings.SESSION_ENGINE = engine
    settings.SESSION_FILE_PATH = str(tmp_path)
    client, gone = Client(), Client()
    kept = _guest_basket(client, rod)
    lost = _guest_basket(gone, rod)
    _days_ago(kept, 15)
    _days_ago(lost, 15)
    gone.session.delete()  # its session ended (expired, or cleared)

    assert sessions_baskets_prune().baskets == 1

    assert list(Basket.objects.all()) == [kept]
    assert client.get("/api/basket").json()["count"] == 1


def test_many_expired_sessions_are_cleared_a_batch_at_a_time(monkeypatch):
    monkeypatch.setattr(housekeeping, "BATCH", 3)
    past = timezone.now() - timedelta(seconds=1)
    Session.objects.bulk_create(
        [Session(session_key=f"k{n:038d}", session_data="", expire_date=past) for n in range(7)]
    )

    assert sessions_baskets_prune().sessions == 7
    assert not Session.objects.exists()
