"""A merchant may cancel a dead-lettered order: the cancelled stage, and how a dead letter was settled."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('orders', '0005_outbox_trace_context'),
    ]

    operations = [
        migrations.AddField(
            model_name='deadletter',
            name='resolution',
            field=models.CharField(blank=True, db_default='', default='', max_length=200),
        ),
        migrations.AlterField(
            model_name='hotorder',
            name='stage',
            field=models.CharField(choices=[('queued', 'queued'), ('validating', 'validating'), ('payment_authorised', 'payment authorised'), ('sent_to_fulfilment', 'sent to fulfilment'), ('card_declined', 'card declined'), ('sold_out', 'sold out'), ('expired', 'reservation expired'), ('dead_lettered', 'dead-lettered'), ('cancelled', 'cancelled by the merchant')], db_index=True, default='queued', max_length=24),
        ),
        migrations.AlterField(
            model_name='orderstageevent',
            name='stage',
            field=models.CharField(choices=[('queued', 'queued'), ('validating', 'validating'), ('payment_authorised', 'payment authorised'), ('sent_to_fulfilment', 'sent to fulfilment'), ('card_declined', 'card declined'), ('sold_out', 'sold out'), ('expired', 'reservation expired'), ('dead_lettered', 'dead-lettered'), ('cancelled', 'cancelled by the merchant')], max_length=24),
        ),
    ]
