"""Server-Timing on each response (CHAT_SERVER_TIMING=1): what a request cost the process, for benches.

`app` is the wall time and `cpu` this thread's CPU time (time.thread_time) over the whole
middleware chain and the view; `queue` is the part of `app` spent waiting for a place in
common.fairness's queue, with the send's turn in that queue as its description. The server's
own time for a request is `app` minus `queue`.

A streaming response's headers leave when the view has returned, before its body is produced:
its figures cover that setup only, never the stream.

Settings add this middleware first in MIDDLEWARE only when CHAT_SERVER_TIMING is on, so it
costs nothing when off.
"""

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class ServerTimingMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        wall, cpu = time.perf_counter(), time.thread_time()
        response = self.get_response(request)
        app_ms = (time.perf_counter() - wall) * 1000
        cpu_ms = (time.thread_time() - cpu) * 1000
        queue = f"queue;dur={getattr(request, 'fair_queue_wait_ms', 0.0):.3f}"
        turn = getattr(request, "fair_queue_turn", None)
        if turn is not None:
            queue += f';desc="{turn}"'
        response["Server-Timing"] = f"app;dur={app_ms:.3f}, cpu;dur={cpu_ms:.3f}, {queue}"
        return response
