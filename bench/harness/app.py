"""A copy of the app to serve: its files, its environment, a migrated database with accounts,
and gunicorn started with the Procfile's command."""

import contextlib
import os
import secrets
import shutil
import sqlite3
import subprocess
from pathlib import Path

from . import GUNICORN, HOST, PYTHON, ROOT
from .client import wait_until_up
from .processes import Processes

# The app's own settings and serving variables: the bench sets what it needs and drops the rest,
# so the caller's environment cannot point the app at a real upstream or another database.
APP_VARIABLE_PREFIXES = ("AIMLAPI_", "CHAT_", "GUNICORN_", "DATABASE_", "SECURE_", "DJANGO_")


APP_VARIABLES = {
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "HTTPS",
    "TIME_ZONE",
    "LOG_LEVEL",
    "HOST",
    "PORT",
    "WEB_CONCURRENCY",
    "FORWARDED_ALLOW_IPS",
    "CHATSITE_ENV_FILE",
    "PYTHONPATH",
}


def prepare_app(tmp: Path, source: str) -> Path:
    """A copy of the app to serve: the working tree (without .env, var/, .git) or a commit."""
    app = tmp / "app"
    if source != "worktree":
        app.mkdir()
        command = ["git", "-C", str(ROOT), "archive", source]
        archive = subprocess.run(command, check=True, capture_output=True)  # noqa: S603
        subprocess.run(["tar", "-x", "-C", str(app)], input=archive.stdout, check=True)  # noqa: S603, S607
    else:
        ignore = shutil.ignore_patterns(
            ".venv", ".git", "var", "bench", "tests", ".env", "__pycache__", ".pytest_cache", ".ruff_cache"
        )
        shutil.copytree(ROOT, app, ignore=ignore)
    (app / "var").mkdir(exist_ok=True)
    return app


def source_description(source: str) -> str:
    def git(*args: str) -> str:
        result = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)  # noqa: S603, S607
        return result.stdout.strip()

    if source != "worktree":
        return f"commit {git('rev-parse', '--short', source) or source}"
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench")
    return f"working tree at {commit}" + (" with uncommitted changes" if dirty else "")


def app_environment(args, tmp: Path, app_port: int, upstream_port: int, settings: dict | None = None) -> dict:
    """The app's environment: the bench's own, then `settings` (the bench's choices), then --app-env."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in APP_VARIABLES and not name.startswith(APP_VARIABLE_PREFIXES)
    }
    (tmp / "empty.env").write_text("")
    env.update(
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        CHATSITE_ENV_FILE=str(tmp / "empty.env"),
        DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
        AIMLAPI_BASE_URL=f"http://{HOST}:{upstream_port}/v1",
        AIMLAPI_API_KEY="bench-fake-key-not-a-real-one",
        AIMLAPI_MODEL="bench/fake",
        HOST=HOST,
        PORT=str(app_port),
        HTTPS="0",
        # gunicorn >= 25.1 opens a control socket in $XDG_RUNTIME_DIR, else in ~/.gunicorn/.
        XDG_RUNTIME_DIR=str(tmp),
    )
    env.update(settings or {})
    for item in args.app_env:
        name, _, value = item.partition("=")
        env[name] = value
    return env


def manage(app: Path, env: dict, *command: str) -> str:
    """Run a manage.py command in the app copy; its output, or RuntimeError with it."""
    result = subprocess.run(  # noqa: S603 (our own command)
        [str(PYTHON), "manage.py", *command], cwd=app, env=env, capture_output=True, text=True
    )
    if result.returncode:
        raise RuntimeError(f"manage.py {' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def prepare_database(app: Path, env: dict, users: int, password: str) -> None:
    manage(app, env, "migrate", "--noinput", "--verbosity", "0")
    manage(app, env, "collectstatic", "--noinput", "--verbosity", "0")
    # One password hash for every account: hashing it per user would take ~0.2 s each.
    code = (
        "import os, chatsite\n"
        "from django.contrib.auth import get_user_model\n"
        "from django.contrib.auth.hashers import make_password\n"
        "User = get_user_model()\n"
        "hashed = make_password(os.environ['BENCH_PASSWORD'])\n"
        "n = int(os.environ['BENCH_USERS'])\n"
        "User.objects.bulk_create([User(username=f'bench{i}', password=hashed) for i in range(n)])\n"
        "print(chatsite.__file__)\n"
    )
    where = manage(app, {**env, "BENCH_USERS": str(users), "BENCH_PASSWORD": password}, "shell", "-c", code)
    where = where.strip().splitlines()[-1] if where.strip() else ""
    if not where.startswith(str(app)):
        raise RuntimeError(f"the app was imported from {where}, not from the copy in {app}")


async def serve(processes: Processes, name: str, app: Path, env: dict, log: Path) -> subprocess.Popen:
    """The Procfile's command (bound to 127.0.0.1 instead of 0.0.0.0), once it answers /healthz."""
    command = [str(GUNICORN), "chatsite.wsgi", "--config", "gunicorn.conf.py"]
    server = processes.start(name, command, cwd=app, env=env, log=log)
    await wait_until_up(int(env["PORT"]), "/healthz", server, log)
    return server


def saved_messages(db: Path, ids: list[int], *columns: str) -> dict[int, tuple]:
    """These columns of these messages in the run's SQLite database, by message id."""
    if not ids:
        return {}
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as connection:
        marks = ",".join("?" * len(ids))
        query = f"SELECT id, {', '.join(columns)} FROM conversations_message WHERE id IN ({marks})"  # noqa: S608
        return {row[0]: row[1:] for row in connection.execute(query, ids)}
