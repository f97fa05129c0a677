"""ChatModel and ProviderKey now belong to the providers app, Usage and UserQuota to usage.

Their tables stay as they are (see providers/0001 and usage/0001); here they leave this app's
state, and their content types follow them, keeping their ids, so that the permissions given
to groups ("may view usage") and the admin's history of those rows stay attached.
"""

from django.db import migrations

MOVED = {"chatmodel": "providers", "providerkey": "providers", "usage": "usage", "userquota": "usage"}


def _relabel(apps, schema_editor, *, source, targets):
    content_types = apps.get_model("contenttypes", "ContentType").objects.using(schema_editor.connection.alias)
    for model, target in targets.items():
        if not content_types.filter(app_label=target, model=model).exists():
            content_types.filter(app_label=source, model=model).update(app_label=target)


def forward(apps, schema_editor):
    _relabel(apps, schema_editor, source="conversations", targets=MOVED)


def backward(apps, schema_editor):
    for model, app in MOVED.items():
        _relabel(apps, schema_editor, source=app, targets={model: "conversations"})


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("conversations", "0010_import_staging"),
        ("providers", "0001_initial"),
        ("usage", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name="Usage"),
                migrations.DeleteModel(name="UserQuota"),
                migrations.DeleteModel(name="ProviderKey"),
                migrations.DeleteModel(name="ChatModel"),
            ],
        ),
        migrations.RunPython(forward, backward),
    ]
