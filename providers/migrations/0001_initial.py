"""ChatModel and ProviderKey move here from the conversations app, keeping their tables."""

import django.core.validators
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('conversations', '0010_import_staging'),
        ('auth', '0012_alter_user_first_name_max_length'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # The tables exist already (made by the conversations app): only Django's idea of
        # which app owns them changes. Nothing is written to the database.
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='ChatModel',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('model_id', models.CharField(max_length=200, unique=True, verbose_name='upstream model id')),
                        ('display_name', models.CharField(max_length=100)),
                        ('context_window', models.PositiveIntegerField(default=32000, help_text='Tokens: the prompt plus the reply.')),
                        ('default_params', models.JSONField(blank=True, default=dict, help_text='Sent when a chat leaves them blank, e.g. {"temperature": 0.7}. Allowed: temperature, top_p, max_tokens.', verbose_name='default parameters')),
                        ('enabled', models.BooleanField(default=True, help_text='Offered for new messages.')),
                    ],
                    options={
                        'db_table': 'conversations_chatmodel',
                        'ordering': ['display_name', 'model_id'],
                    },
                ),
                migrations.CreateModel(
                    name='ProviderKey',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('label', models.CharField(max_length=100, unique=True)),
                        ('base_url', models.URLField(default='https://api.aimlapi.com/v1', max_length=300, validators=[django.core.validators.URLValidator(code='http_only', message='Enter an http:// or https:// address.', schemes=['http', 'https'])], verbose_name='base URL')),
                        ('secret_encrypted', models.TextField(editable=False)),
                        ('last4', models.CharField(editable=False, help_text='The last 4 characters, to tell keys apart.', max_length=4)),
                        ('enabled', models.BooleanField(default=True)),
                        ('is_default', models.BooleanField(default=False, help_text='Used by everyone without a key of their own or of their group.', verbose_name='site default')),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('groups', models.ManyToManyField(blank=True, related_name='provider_keys', to='auth.group')),
                        ('users', models.ManyToManyField(blank=True, related_name='provider_keys', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'verbose_name': 'upstream API key',
                        'db_table': 'conversations_providerkey',
                        'ordering': ['label'],
                    },
                ),
            ],
        ),
    ]
