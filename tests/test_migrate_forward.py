"""A database made and filled by the code before issue 14's reshape migrates forward on this
checkout, and every row of every table is as it was, but for what the reshape means to change.

The old code comes from git (OLD_COMMIT); it migrates a new database and fills it through its
own ORM (tests/migrate_forward_fill.py), this checkout migrates the same database, and the
tables are read before and after through a connection of the test's own. The engine is the
suite's: SQLite by default, PostgreSQL when DATABASE_URL names one (`make test-scaleout`), in a
database of this test's own, created and dropped here. pytest's test database is not used.
"""

import io
import json
import os
import secrets
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
import psycopg
import pytest
from cryptography.fernet import Fernet
from django.db.utils import ConnectionHandler
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
# main just before the reshape (issue 14): databases made by this code must migrate forward.
OLD_COMMIT = "0e569e3"
# (old app label, model) -> the app issue 14 moves the model to, keeping its table.
MOVED = {
    ("conversations", "providerkey"): "providers",
    ("conversations", "chatmodel"): "providers",
    ("conversations", "usage"): "usage",
    ("conversations", "userquota"): "usage",
}
# Tables the new code's migrations create; any other new table fails the test.
# Issue 15: django-allauth's tables (local addresses, provider accounts, authenticators) and
# accounts' group mappings and sign-in settings.
_SSO_MODELS = {
    ("account", "emailaddress"),
    ("account", "emailconfirmation"),
    ("socialaccount", "socialapp"),
    ("socialaccount", "socialaccount"),
    ("socialaccount", "socialtoken"),
    ("mfa", "authenticator"),
    ("accounts", "groupmapping"),
    ("accounts", "signinsettings"),
}
_RETENTION_MODELS = {("retention", model) for model in ("retentionpolicy", "groupretention", "retentionrun")}
NEW_TABLES: frozenset[str] = frozenset(
    {
        "api_accesstoken",  # issue 16
        "conversations_chatmodel_groups",  # issue 15
        "prompts_prompt",  # issue 18
        "conversations_folder",  # issue 18
        "feedback_feedback",  # issue 18
        "usage_groupbudget",  # issue 19
        "usage_rollup",  # issue 19
        *(f"{app}_{model}" for app, model in _SSO_MODELS | _RETENTION_MODELS),  # issues 15, 19
    }
)
# Models the new code adds (their content type and permissions are new rows) and columns it adds
# to old tables, with the value every old row gets.
NEW_MODELS: frozenset[tuple[str, str]] = frozenset(
    {
        ("api", "accesstoken"),
        ("prompts", "prompt"),
        ("conversations", "folder"),
        ("feedback", "feedback"),
        ("usage", "groupbudget"),
        ("usage", "rollup"),
        *_SSO_MODELS,
        *_RETENTION_MODELS,
    }
)
NEW_COLUMNS: dict[tuple[str, str], object] = {
    ("conversations_usage", "source"): "chat",
    ("conversations_chatmodel", "groups_only"): False,  # issue 15: every model stays open to everyone
    # issue 18: no old conversation is in a folder or temporary
    ("conversations_conversation", "folder_id"): None,
    ("conversations_conversation", "temporary"): False,
    # Issue 19: prices and budgets; rows from before have none, and cost nothing.
    ("conversations_usage", "cost"): 0,
    ("conversations_usage", "input_price"): None,
    ("conversations_usage", "output_price"): None,
    ("conversations_chatmodel", "input_price"): None,
    ("conversations_chatmodel", "output_price"): None,
    ("conversations_userquota", "daily_budget"): None,
    ("conversations_userquota", "monthly_budget"): None,
}
# Granted to a group by the fill, on each moved model and on one that stays.
GRANTED = ["view_usage", "change_providerkey", "view_chatmodel", "change_userquota", "view_conversation"]


def _perm(codename: str, moved: dict[tuple[str, str], str]) -> str:
    """A permission of the fill's group as this checkout names it: `usage.view_usage` once Usage moved."""
    model = codename.split("_", 1)[1]
    return f"{moved.get(('conversations', model), 'conversations')}.{codename}"


@pytest.fixture
def database_url(tmp_path):
    """An empty database on the suite's engine: a SQLite file, or a PostgreSQL database of its own."""
    suite_url = os.environ.get("DATABASE_URL", "")
    if not suite_url.startswith("postgres"):
        yield f"sqlite:///{tmp_path / 'db.sqlite3'}"
        return
    name = f"chatsite_migrate_forward_{os.getpid()}"
    with psycopg.connect(suite_url, autocommit=True) as server:
        server.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(urlsplit(suite_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(suite_url, autocommit=True) as server:
            server.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", ROOT, *args], capture_output=True)  # noqa: S603, S607 - a fixed command


def _old_tree(into: Path) -> Path:
    """OLD_COMMIT's files, from the git repository this test file is in."""
    if _git("cat-file", "-e", f"{OLD_COMMIT}^{{commit}}").returncode:
        pytest.fail(
            f"commit {OLD_COMMIT} (main before issue 14) is not in the git history of {ROOT}; "
            "fetch the full history (`git fetch --unshallow`) to run this test"
        )
    with tarfile.open(fileobj=io.BytesIO(_git("archive", OLD_COMMIT).stdout)) as archive:
        archive.extractall(into, filter="data")
    return into


def _run(tree: Path, *args: str, env: dict[str, str]) -> str:
    result = subprocess.run(  # noqa: S603 - our own commands
        [sys.executable, *args], cwd=tree, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"`{' '.join(args)}` in {tree} failed:\n{result.stderr[-4000:]}"
    return result.stdout


def _dump(database_url: str, django_db_blocker) -> dict[str, dict[tuple, dict]]:
    """Every table: {primary key: {column: value}}, read with Django's introspection."""
    connection = ConnectionHandler({"default": dj_database_url.parse(database_url)})["default"]
    tables = {}
    try:
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            for table in connection.introspection.table_names(cursor):
                key = connection.introspection.get_primary_key_columns(cursor, table)
                cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 - a table name
                columns = [column[0] for column in cursor.description]
                rows = [dict(zip(columns, values, strict=True)) for values in cursor.fetchall()]
                tables[table] = {tuple(row[name] for name in key or columns): row for row in rows}
    finally:
        connection.close()
    return tables


def _differences(expected: dict, found: dict, limit: int = 40) -> list[str]:
    """What differs, table by table and row by row, as lines a person reads."""
    lines = []
    for table in sorted(expected.keys() | found.keys()):
        if table not in found:
            lines.append(f"{table}: the table is gone ({len(expected[table])} rows)")
            continue
        if table not in expected:
            lines.append(f"{table}: a new table ({len(found[table])} rows); list it in NEW_TABLES if it is meant")
            continue
        wanted, got = expected[table], found[table]
        # Keys in their columns' order, NULLs first (so None is never compared with a value).
        for key in sorted(wanted.keys() | got.keys(), key=lambda key: [(value is not None, value) for value in key]):
            if key not in got:
                lines.append(f"{table} {key}: the row is gone: {wanted[key]}")
            elif key not in wanted:
                lines.append(f"{table} {key}: a new row: {got[key]}")
            else:
                for column in sorted(wanted[key].keys() | got[key].keys()):
                    old, new = wanted[key].get(column, "<no column>"), got[key].get(column, "<no column>")
                    if old != new:
                        lines.append(f"{table} {key} {column}: {new!r}, expected {old!r}")
    return lines[:limit] + ([f"... and {len(lines) - limit} more"] if len(lines) > limit else [])


def test_a_filled_database_of_the_old_code_migrates_forward_row_for_row(tmp_path, database_url, django_db_blocker):
    secret = f"sk-migrate-forward-{secrets.token_hex(8)}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIMLAPI_", "CHAT_", "DATABASE_", "REDIS_"))}
    env.pop("PYTHONPATH", None)
    env.update(
        CHATSITE_ENV_FILE="none",
        DEBUG="0",
        DJANGO_SETTINGS_MODULE="chatsite.settings",
        SECRET_KEY="migrate-forward-secret-key-0123456789-0123456789-0123456789",
        FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        AIMLAPI_BASE_URL="http://127.0.0.1:9/v1",
        DATABASE_URL=database_url,
        MIGRATE_FORWARD_SECRET=secret,
    )
    old = _old_tree(tmp_path / "old")
    shutil.copy(ROOT / "tests" / "migrate_forward_fill.py", old)
    _run(old, "manage.py", "migrate", "--no-input", env=env)
    _run(old, "migrate_forward_fill.py", *GRANTED, env=env)
    before = _dump(database_url, django_db_blocker)

    _run(ROOT, "manage.py", "migrate", "--no-input", env=env)
    after = _dump(database_url, django_db_blocker)

    migrations_before, migrations_after = before.pop("django_migrations"), after.pop("django_migrations")
    assert [row for key, row in migrations_before.items() if migrations_after.get(key) != row] == []
    for table in NEW_TABLES:
        after.pop(table, None)
    new_types = {
        key for key, row in after["django_content_type"].items() if (row["app_label"], row["model"]) in NEW_MODELS
    }
    after["django_content_type"] = {k: row for k, row in after["django_content_type"].items() if k not in new_types}
    new_type_ids = {key[0] for key in new_types}
    after["auth_permission"] = {
        k: row for k, row in after["auth_permission"].items() if row["content_type_id"] not in new_type_ids
    }
    for (table, column), value in NEW_COLUMNS.items():
        for row in before[table].values():
            row[column] = value

    # The moved models' content types keep their ids (so groups' permissions and admin log
    # entries stay attached) and take the new app's label.
    moved = MOVED
    content_types = before["django_content_type"]
    assert MOVED.keys() <= {(row["app_label"], row["model"]) for row in content_types.values()}
    expected = {**before, "django_content_type": {}}
    for key, row in content_types.items():
        label = moved.get((row["app_label"], row["model"]), row["app_label"])
        expected["django_content_type"][key] = {**row, "app_label": label}
    differences = _differences(expected, after)
    assert not differences, "after the migration, rows differ from the old database's:\n" + "\n".join(differences)

    perms = [_perm(codename, moved) for codename in GRANTED]
    checked = json.loads(_run(ROOT, "-m", "tests.migrate_forward_check", *perms, env=env))
    assert checked == {"decrypts": True, "perms": dict.fromkeys(perms, True)}
