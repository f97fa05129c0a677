"""scripts/check_imports.py, the import rules `make lint` checks: each rule on a small made-up tree
(a break is reported at its file and line, a tree that keeps the rule passes), then the project."""

import subprocess
import sys
from pathlib import Path

import pytest

from scripts.check_imports import MAX_LINES, main

ROOT = Path(__file__).resolve().parent.parent

# Every package of the table, each importing only what the table allows it.
CLEAN = {
    "common/__init__.py": "",
    "common/counters.py": "from django.core.cache import cache\n",
    "common/sse.py": "from . import counters\n",
    "providers/__init__.py": "",
    "providers/upstream/__init__.py": "from .stream import stream\n",
    "providers/upstream/stream.py": "import requests\nfrom django.conf import settings\n\nfrom common import sse\n",
    "providers/models.py": "from django.db import models\n\nfrom providers.params import BOUNDS\n",
    "providers/params.py": "BOUNDS = {}\n",
    "usage/models.py": "from providers.models import Key\n",
    "conversations/models.py": "from usage.models import Usage\n",
    "conversations/views.py": "from common import counters\nfrom providers.upstream import stream\n",
    "accounts/views.py": "from django.shortcuts import render\n\nfrom usage import models\n",
    "chatsite/urls.py": "from accounts import views\nfrom conversations import views as chat\n",
    "scripts/supervise.py": "import subprocess\n",
    "scripts/run_local.py": "from scripts import supervise\n",
    "tests/test_chat.py": "from chatsite import urls\nfrom conversations import views\nfrom scripts import supervise\n",
    "bench/stream_bench.py": "from conversations.models import Usage\nfrom tests import test_chat\n",
    "manage.py": "import chatsite\n",
}


@pytest.fixture
def check(tmp_path, capsys):
    """Writes a tree of files, runs the checker on it, and returns its exit status and lines."""

    def run(files: dict[str, str], *args: str) -> tuple[int, list[str]]:
        for name, text in files.items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        status = main([*args, str(tmp_path)])
        return status, capsys.readouterr().out.splitlines()

    return run


def test_a_tree_that_keeps_every_rule_passes_silently(check):
    assert check(CLEAN) == (0, [])


def test_a_package_of_the_table_may_be_missing(check):
    assert check({"conversations/views.py": "from common import counters\n"}) == (0, [])


@pytest.mark.parametrize(
    ("path", "line", "detail"),
    [
        (
            "common/clock.py",
            "from providers import keys",
            "common.clock imports keys from providers; common may import no other package",
        ),
        (
            "usage/quotas.py",
            "import conversations.models",
            "usage.quotas imports conversations.models; usage may import common, providers",
        ),
        (
            "conversations/views.py",
            "from accounts import forms",
            "conversations.views imports forms from accounts; conversations may import common, providers, usage",
        ),
        (
            "accounts/views.py",
            "import conversations",
            "accounts.views imports conversations; accounts may import common, providers, usage",
        ),
        (
            "providers/keys.py",
            "from chatsite.settings import DEBUG",
            "providers.keys imports DEBUG from chatsite.settings; providers may import common",
        ),
        (
            "conversations/views.py",
            "from tests import fake_upstream",
            "conversations.views imports fake_upstream from tests; conversations may import common, providers, usage",
        ),
        (
            "scripts/supervise.py",
            "from common import log",
            "scripts.supervise imports log from common; scripts imports no package of the layers",
        ),
    ],
)
def test_it_reports_an_import_against_the_layers(check, path, line, detail):
    assert check({path: f'"""A module."""\n\n{line}\n'}) == (1, [f"{path}:3: layers: {detail}"])


def test_the_layers_count_an_import_inside_a_function(check):
    status, lines = check({"common/errors.py": "def page():\n    from conversations import views\n"})
    assert (status, lines) == (
        1,
        [
            "common/errors.py:2: layers: common.errors imports views from conversations; "
            "common may import no other package"
        ],
    )


def test_it_reports_a_package_outside_the_table(check):
    status, lines = check({"billing/__init__.py": "", "billing/invoices.py": ""})
    assert (status, lines) == (1, ["billing/__init__.py:1: layers: billing is in no layer of scripts/check_imports.py"])


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("from django.db import models", "models from django.db"),
        ("from django.db.models import Q", "Q from django.db.models"),
        ("from django.template.loader import render_to_string", "render_to_string from django.template.loader"),
        ("from django.shortcuts import render", "render from django.shortcuts"),
        ("from django import http", "http from django"),
        ("import django.http", "django.http"),
        ("from common.models import Setting", "Setting from common.models"),
        ("from ..models import Key", "Key from providers.models"),
        ("from providers import views", "views from providers"),
    ],
)
def test_the_upstream_client_package_imports_no_database_template_or_page(check, line, said):
    status, lines = check({"providers/upstream/stream.py": f"import requests\n{line}\n"})
    assert (status, lines) == (
        1,
        [
            f"providers/upstream/stream.py:2: upstream-client: providers.upstream.stream imports {said}: "
            "the upstream client knows no database, template or page"
        ],
    )


def test_the_upstream_client_module_imports_no_database(check):
    status, lines = check({"providers/upstream.py": "def call():\n    from django.db import transaction\n"})
    assert (status, lines) == (
        1,
        [
            "providers/upstream.py:2: upstream-client: providers.upstream imports transaction from django.db: "
            "the upstream client knows no database, template or page"
        ],
    )


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ("conversations/models.py", "import requests"),
        ("conversations/models.py", "from requests.exceptions import Timeout"),
        ("usage/models.py", "from providers.upstream import UpstreamError"),
        ("usage/models.py", "from providers import upstream"),
        ("providers/models/__init__.py", "from ..upstream.stream import stream"),
        ("providers/models/key.py", "from providers.upstream import stream"),
    ],
)
def test_models_import_no_http(check, path, line):
    status, lines = check({path: f"from django.db import models\n{line}\n"})
    assert status == 1
    assert len(lines) == 1
    assert lines[0].startswith(f"{path}:2: models: ")
    assert lines[0].endswith(": models know no HTTP")


def test_it_reports_an_import_cycle_once_at_the_import_that_starts_it(check):
    status, lines = check(
        {
            "conversations/services.py": "import os\n\nfrom conversations import generation\n",
            "conversations/generation.py": "from .payload import build\n",
            "conversations/payload.py": "from conversations.services import send\n",
        }
    )
    assert (status, lines) == (
        1,
        [
            "conversations/generation.py:1: cycle: conversations.generation -> conversations.payload"
            " -> conversations.services -> conversations.generation"
        ],
    )


def test_a_name_from_a_package_is_an_import_of_the_package_unless_it_is_a_module(check):
    files = {
        "conversations/__init__.py": "from .views import index\n",
        "conversations/helpers.py": "",
        "conversations/views.py": "from conversations import helpers\n",
    }
    assert check(files) == (0, [])
    status, lines = check({"conversations/views.py": "from conversations import helpers, VERSION\n"})
    assert (status, lines) == (
        1,
        ["conversations/__init__.py:1: cycle: conversations -> conversations.views -> conversations"],
    )


def test_an_import_inside_a_function_makes_no_cycle_and_is_listed_with_verbose(check):
    files = {
        "conversations/apps.py": "from conversations import search\n",
        "conversations/search.py": "def ready():\n    from conversations.apps import Config\n",
    }
    assert check(files) == (0, [])
    assert check(files, "--verbose") == (
        0,
        [
            "conversations/search.py:2: late import of Config from conversations.apps",
            "2 modules, 1 imports inside functions, 0 problems",
        ],
    )


def test_it_reports_a_module_over_the_size_limit(check):
    long = "x = 1\n" * (MAX_LINES + 1)
    status, lines = check(
        {
            "conversations/just_fits.py": "x = 1\n" * MAX_LINES,
            "conversations/services.py": long,
            "bench/stream_bench.py": long,
            "conversations/migrations/0001_initial.py": long,
            "tests/test_chat.py": long,
        }
    )
    assert (status, lines) == (
        1,
        [
            f"bench/stream_bench.py:{MAX_LINES + 1}: size: {MAX_LINES + 1} lines, over {MAX_LINES}",
            f"conversations/services.py:{MAX_LINES + 1}: size: {MAX_LINES + 1} lines, over {MAX_LINES}",
        ],
    )


def test_it_reports_a_file_that_does_not_parse(check):
    status, lines = check({"common/clock.py": "x = 1\ndef (:\n"})
    assert status == 1
    assert lines[0].startswith("common/clock.py:2: syntax: ")


def test_the_project_keeps_the_import_rules():
    result = subprocess.run(
        [sys.executable, "scripts/check_imports.py"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
