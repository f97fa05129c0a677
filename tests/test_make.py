"""The Makefile as a person uses it: `make run` stops with make, serves where .env says, and
`make test` runs with settings of its own whatever .env says.

Each test runs make in a copy of the project in a temporary folder (its own .env, its own SQLite
database in var/), with this test run's virtualenv: nothing of the developer's checkout is used
or changed, and nothing is installed (`--assume-old` keeps make from running pip).
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(sys.prefix)
START_TIMEOUT = 120.0  # a first `make run` migrates a new database
STOP_TIMEOUT = 30.0
# A reader of .env who turns on a documented setting must not change what the tests see.
DOTENV = """\
SECRET_KEY=make-test-secret-key-0123456789-0123456789-0123456789
FIELD_ENCRYPTION_KEY=G-htYC_dW7zii6Szr792X8d34SYeq9LEB9e582_fIaA=
DJANGO_SUPERUSER_PASSWORD=make-test-admin-password
CHAT_AUTO_TITLE_MODEL=some/title-model
HOST=127.0.0.2
ALLOWED_HOSTS=127.0.0.1,127.0.0.2
PORT={port}
"""

pytestmark = pytest.mark.skipif(
    shutil.which("make") is None or not (VENV / "bin" / "gunicorn").exists(),
    reason="needs make and gunicorn in this test run's virtualenv",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_is_free(port: int) -> bool:
    """Free for the next gunicorn, which binds with SO_REUSEADDR (a closed connection's
    TIME_WAIT does not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _descendants(pid: int) -> set[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = set(), {pid}
    while frontier:
        children = {child for child, parent in parents.items() if parent in frontier} - found
        found |= children
        frontier = children
    return found


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.1)


def _answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/accounts/login/", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A copy of the project with a .env of its own (HOST 127.0.0.2, PORT the second item)."""
    copy = tmp_path_factory.mktemp("project") / "chatsite"
    ignore = shutil.ignore_patterns(".git", ".venv", "var", ".env", "__pycache__", ".pytest_cache", ".ruff_cache")
    shutil.copytree(ROOT, copy, ignore=ignore)
    env_port = _free_port()
    (copy / ".env").write_text(DOTENV.format(port=env_port))
    return copy, env_port


def _person_env(tmp: Path) -> dict:
    """A shell's environment, without this test run's settings (pyproject.toml's pytest env)."""
    keep = ("PATH", "LANG", "LC_ALL")
    return {name: os.environ[name] for name in keep if name in os.environ} | {"HOME": str(tmp)}


class MakeRun:
    """`make run` started as a person starts it: make's own process, not a group of its own."""

    def __init__(self, project: Path, *arguments: str, target: str = "run", terminal: bool = False):
        self.log = project / f"make-{target}.log"
        assume_old = [f"--assume-old={VENV}/{stamp}" for stamp in (".runtime", ".local")]
        with open(self.log, "wb") as output:
            self.process = subprocess.Popen(  # noqa: S603 (a fixed command)
                ["make", target, f"VENV={VENV}", *assume_old, *arguments],  # noqa: S607
                cwd=project,
                env=_person_env(project),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                # As in a terminal: make leads a process group, which Ctrl+C signals as a whole.
                start_new_session=terminal,
            )
        self.pids: set[int] = set()

    def wait_until_serving(self, port: int, host: str = "127.0.0.1") -> None:
        def ready() -> bool:
            return _answers(port, host) or self.process.poll() is not None

        _wait_for(ready, START_TIMEOUT, f"make run on {host}:{port}")
        assert _answers(port, host), f"make run did not serve on {host}:{port}:\n{self.output()}"
        self.pids = _descendants(self.process.pid)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def kill_everything(self) -> None:
        for pid in {self.process.pid, *self.pids, *_descendants(self.process.pid)}:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT)


def _model_installed() -> bool:
    from scripts.run_local import LocalModelUnavailable, model_file

    try:
        model_file()
    except LocalModelUnavailable as missing:
        print(f"\n*** {missing} The make run-local signal tests are SKIPPED.", file=sys.stderr)
        return False
    return True


@pytest.mark.parametrize("target", ["run", "run-local"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_make_run_stops_everything_it_started_on_a_signal_to_make(project, target, signum):
    if target == "run-local" and not _model_installed():
        pytest.skip("the local model is not installed (make run-local installs it, about 5 minutes)")
    copy, _ = project
    port = _free_port()
    run = MakeRun(copy, "HOST=127.0.0.1", f"PORT={port}", target=target)
    try:
        run.wait_until_serving(port)
        commands = [Path(f"/proc/{pid}/cmdline").read_text() for pid in run.pids if _alive(pid)]
        assert any("gunicorn" in command for command in commands)
        assert target == "run" or any("llama_cpp.server" in command for command in commands)

        run.process.send_signal(signum)  # make's PID only, as `kill` or a process manager does

        _wait_for(lambda: run.process.poll() is not None, STOP_TIMEOUT, f"make exits on {signum.name}")
        _wait_for(lambda: not any(_alive(pid) for pid in run.pids), STOP_TIMEOUT, "every process make started ends")
        assert _port_is_free(port)
    finally:
        run.kill_everything()


def test_ctrl_c_in_a_terminal_stops_everything_make_run_started(project):
    copy, _ = project
    port = _free_port()
    run = MakeRun(copy, "HOST=127.0.0.1", f"PORT={port}", terminal=True)
    try:
        run.wait_until_serving(port)

        os.killpg(run.process.pid, signal.SIGINT)  # make and the script, as Ctrl+C signals them

        _wait_for(lambda: run.process.poll() is not None, STOP_TIMEOUT, "make exits on Ctrl+C")
        _wait_for(lambda: not any(_alive(pid) for pid in run.pids), STOP_TIMEOUT, "every process make started ends")
        assert _port_is_free(port)
    finally:
        run.kill_everything()


def test_make_run_serves_on_the_host_and_port_of_dotenv(project):
    copy, env_port = project
    run = MakeRun(copy)
    try:
        run.wait_until_serving(env_port, host="127.0.0.2")
        assert f"chatsite is serving on http://127.0.0.2:{env_port}/" in run.output()
        run.process.send_signal(signal.SIGTERM)
        _wait_for(lambda: run.process.poll() is not None, STOP_TIMEOUT, "make exits")
    finally:
        run.kill_everything()


def test_the_test_suite_runs_with_its_own_settings_whatever_dotenv_says(project):
    copy, _ = project
    probe = copy / "tests" / "test_probe_settings.py"
    probe.write_text(
        "import os\n"
        "from django.conf import settings\n\n\n"
        "def test_dotenv_is_not_read():\n"
        "    assert settings.CHAT_AUTO_TITLE_MODEL == ''\n"
        "    assert 'PORT' not in os.environ\n"
    )
    try:
        result = subprocess.run(  # noqa: S603 (this interpreter, a fixed command)
            [sys.executable, "-m", "pytest", str(probe), "-q", "-p", "no:cacheprovider"],
            cwd=copy,
            env=_person_env(copy),
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        probe.unlink()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
