"""Usage and UserQuota move here from the conversations app, keeping their tables."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('conversations', '0010_import_staging'),
        ('providers', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # The tables exist already (made by the conversations app): only Django's idea of
        # which app owns them changes. Nothing is written to the database.
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='UserQuota',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('daily_tokens', models.PositiveIntegerField(blank=True, help_text='Tokens per day. Blank: the site default. 0: unlimited.', null=True)),
                        ('monthly_tokens', models.PositiveIntegerField(blank=True, help_text='Tokens per calendar month. Blank: the site default. 0: unlimited.', null=True)),
                        ('user', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='chat_quota', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'verbose_name': 'token quota',
                        'db_table': 'conversations_userquota',
                    },
                ),
                migrations.CreateModel(
                    name='Usage',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('key_label', models.CharField(blank=True, help_text="The key's label when the call was made.", max_length=100)),
                        ('model', models.CharField(max_length=200)),
                        ('prompt_tokens', models.PositiveIntegerField(default=0)),
                        ('completion_tokens', models.PositiveIntegerField(default=0)),
                        ('total_tokens', models.PositiveIntegerField(default=0)),
                        ('latency_ms', models.PositiveIntegerField(blank=True, help_text='From the request to the last byte.', null=True)),
                        ('first_token_ms', models.PositiveIntegerField(blank=True, help_text='From the request to the first text.', null=True)),
                        ('tokens_estimated', models.BooleanField(default=False, verbose_name='estimated')),
                        ('status', models.CharField(choices=[('complete', 'Complete'), ('stopped', 'Stopped'), ('error', 'Error')], max_length=16)),
                        ('error_code', models.CharField(blank=True, max_length=32)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                        ('key', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='usage', to='providers.providerkey')),
                        ('message', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='conversations.message')),
                        ('user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='usage', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'verbose_name_plural': 'usage',
                        'db_table': 'conversations_usage',
                        'ordering': ['-created_at', '-id'],
                        'indexes': [models.Index(fields=['user', 'created_at', 'total_tokens'], name='usage_user_time'), models.Index(fields=['created_at'], name='usage_time')],
                    },
                ),
            ],
        ),
    ]
