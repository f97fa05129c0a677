from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0007_message_tree_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="context_omitted",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.AddField(
            model_name="usage",
            name="first_token_ms",
            field=models.PositiveIntegerField(blank=True, help_text="From the request to the first text.", null=True),
        ),
        migrations.AddField(
            model_name="usage",
            name="tokens_estimated",
            field=models.BooleanField(default=False, verbose_name="estimated"),
        ),
        migrations.AlterField(
            model_name="usage",
            name="latency_ms",
            field=models.PositiveIntegerField(blank=True, help_text="From the request to the last byte.", null=True),
        ),
    ]
