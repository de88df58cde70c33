"""How far the log was pruned (events.Pruned), and how a dead letter was settled.

Releases before this one pruned without recording it: a log whose oldest event is not its
first (positions start at 1) is taken as pruned up to that event, and a log with no event
left as pruned up to the furthest place a consumer or a snapshot had reached, so that a
rebuild "from the start" starts from a snapshot, or is refused in one line where none covers
it (`events snapshot`, then `events rebuild --from-snapshot`), instead of swapping in a view
without the pruned history. A log whose first insert was rolled back also starts past 1: it
is refused the same way, loudly, never wrongly rebuilt."""

from django.db import migrations, models
from django.db.models import Min


def _pruned_mark(apps) -> tuple[int, int] | None:
    Event, Checkpoint, Snapshot = (apps.get_model("events", name) for name in ("Event", "Checkpoint", "Snapshot"))
    oldest = Event.objects.order_by("xid", "position").values_list("xid", "position").first()
    if oldest is not None:
        if Event.objects.aggregate(lowest=Min("position"))["lowest"] <= 1:
            return None
        return (oldest[0] or 0, oldest[1] - 1)
    passed = [
        *Checkpoint.objects.values_list("last_xid", "last_position"),
        *Snapshot.objects.values_list("last_xid", "last_position"),
    ]
    return max((mark for mark in passed if mark[1] > 0), default=None)


def pruned_mark_seed(apps, schema_editor):
    mark = _pruned_mark(apps)
    if mark is not None:
        Pruned = apps.get_model("events", "Pruned")
        Pruned.objects.update_or_create(pk=1, defaults={"last_xid": mark[0], "last_position": mark[1]})


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0002_snapshots"),
    ]

    operations = [
        migrations.CreateModel(
            name="Pruned",
            fields=[
                ("id", models.PositiveSmallIntegerField(default=1, editable=False, primary_key=True, serialize=False)),
                ("last_xid", models.BigIntegerField(default=0)),
                ("last_position", models.BigIntegerField(default=0)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={
                "verbose_name_plural": "pruned",
            },
        ),
        migrations.AddField(
            model_name="deadletter",
            name="resolution",
            field=models.CharField(blank=True, db_default="", default="", max_length=200),
        ),
        migrations.RunPython(pruned_mark_seed, migrations.RunPython.noop),
    ]
