# Folders (one level) and temporary chats (issue 18).

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def add_temporary(apps, schema_editor):
    # SQLite adds a NOT NULL column by copying the whole table (which also drops the search
    # triggers, put back by a rebuild of the index after migrate); with a constant default,
    # ADD COLUMN does it in place. Django always writes the value, so the default is never read.
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(
            'ALTER TABLE "conversations_conversation" ADD COLUMN "temporary" bool DEFAULT 0 NOT NULL'
        )
        return
    conversation = apps.get_model("conversations", "Conversation")
    schema_editor.add_field(conversation, conversation._meta.get_field("temporary"))


def remove_temporary(apps, schema_editor):
    conversation = apps.get_model("conversations", "Conversation")
    schema_editor.remove_field(conversation, conversation._meta.get_field("temporary"))


class Migration(migrations.Migration):

    dependencies = [
        ('conversations', '0011_models_moved_out'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name='conversation',
                    name='temporary',
                    field=models.BooleanField(default=False, editable=False),
                ),
            ],
        ),
        migrations.RunPython(add_temporary, remove_temporary),
        migrations.CreateModel(
            name='Folder',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=60)),
                ('collapsed', models.BooleanField(default=False)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('owner', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='chat_folders', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['name', 'id'],
            },
        ),
        migrations.AddField(
            model_name='conversation',
            name='folder',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='conversations', to='conversations.folder'),
        ),
        migrations.AddIndex(
            model_name='conversation',
            index=models.Index(condition=models.Q(('temporary', True)), fields=['owner'], name='conversation_temporary'),
        ),
        migrations.AddIndex(
            model_name='conversation',
            index=models.Index(condition=models.Q(('archived_at__isnull', True), ('deleted_at__isnull', True), ('pinned_at__isnull', True)), fields=['folder', '-updated_at', '-id'], name='conversation_filed'),
        ),
        migrations.AddConstraint(
            model_name='folder',
            constraint=models.UniqueConstraint(fields=('owner', 'name'), name='folder_owner_name_unique'),
        ),
    ]
