"""What the benchmarks share: child processes and CPU accounting, a copy of the app to serve, an
asyncio HTTP client that stamps every block on arrival, simulated users, and the stream bench's
measurement and report.

The benchmarks run as scripts (`.venv/bin/python bench/stream_bench.py`), so the project's own
packages (common, scripts) are put on the path here.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
BENCH = ROOT / "bench"
# The project's venv, or (in a git worktree that has none) the one running the bench.
VENV_BIN = ROOT / ".venv" / "bin" if (ROOT / ".venv" / "bin").is_dir() else Path(sys.executable).parent
PYTHON = VENV_BIN / "python"
GUNICORN = VENV_BIN / "gunicorn"
HOST = "127.0.0.1"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
