"""The stream bench's figures: nearest-rank percentiles, one run's result, and its summary."""

from dataclasses import dataclass, field

from .sends import SendFigures, describe


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


@dataclass
class RunResult:
    run: int | str
    streams: int
    completed: int
    errors: list[str]
    database: dict
    relay_ms: list[float]
    later_ms: list[float]
    steady_ms: list[float]
    first_ms: list[float]
    ttft_ms: list[float]
    post_ms: list[float]
    cpu: dict
    wall_s: float
    loop_lag_ms: list[float]
    emit_late_ms: list[float]
    # Resident memory of gunicorn's worker(s), idle after the run (filled in by the bench).
    idle_rss_mb: float = float("nan")
    sends: SendFigures = field(default_factory=SendFigures)
    non_streamed: bool = False  # CHAT_STREAMING=0: each reply's text arrives at once

    @classmethod
    def combine(cls, results: list["RunResult"]) -> "RunResult":
        """All runs as one sample (run "all"); CPU shares are averaged over the total time."""

        def joined(name: str) -> list:
            return [value for result in results for value in getattr(result, name)]

        database = {key: sum(r.database[key] for r in results) for key in results[0].database}
        cpu = {name: sum(r.cpu.get(name, 0.0) for r in results) for name in results[0].cpu}
        return cls(
            run="all",
            streams=sum(r.streams for r in results),
            completed=sum(r.completed for r in results),
            errors=joined("errors"),
            database=database,
            relay_ms=joined("relay_ms"),
            later_ms=joined("later_ms"),
            steady_ms=joined("steady_ms"),
            first_ms=joined("first_ms"),
            ttft_ms=joined("ttft_ms"),
            post_ms=joined("post_ms"),
            cpu=cpu,
            wall_s=sum(r.wall_s for r in results),
            loop_lag_ms=joined("loop_lag_ms"),
            emit_late_ms=joined("emit_late_ms"),
            idle_rss_mb=results[-1].idle_rss_mb,
            sends=SendFigures.combine([r.sends for r in results]),
            non_streamed=results[0].non_streamed,
        )

    def summary(self) -> dict:
        def stats(values, *ps):
            return {f"p{p}": round(percentile(values, p), 2) for p in ps} | {"max": round(max(values, default=0), 2)}

        non_streamed = {"non_streamed_added_ms": stats(self.first_ms, 50, 95)} if self.non_streamed else {}
        return {
            "run": self.run,
            "non_streamed": self.non_streamed,
            "streams": self.streams,
            "completed": self.completed,
            "errors": len(self.errors),
            "error_samples": sorted(set(self.errors))[:5],
            "database": self.database,
            "words": len(self.relay_ms),
            "relay_ms": stats(self.relay_ms, 50, 99),
            "relay_after_first_ms": stats(self.later_ms, 50, 99),
            "steady_words": len(self.steady_ms),
            "relay_steady_ms": stats(self.steady_ms, 50, 99),
            "first_word_ms": stats(self.first_ms, 50, 95),
            "ttft_from_submit_ms": stats(self.ttft_ms, 50, 95),
            "post_ms": stats(self.post_ms, 50, 95),
            "cpu_percent": {name: round(100 * seconds / self.wall_s, 1) for name, seconds in self.cpu.items()},
            "wall_s": round(self.wall_s, 2),
            # utime + stime of the gunicorn processes over the run, per turn (one POST and its stream).
            "gunicorn_cpu_ms_per_turn": round(1000 * self.cpu.get("gunicorn", 0.0) / max(1, self.streams), 2),
            "idle_rss_mb": round(self.idle_rss_mb, 1),
            "client_loop_lag_ms": stats(self.loop_lag_ms, 99),
            "upstream_emit_late_ms": stats(self.emit_late_ms, 99),
            **non_streamed,
            **self.sends.summary(stats),
        }


def print_summary(summary: dict) -> None:
    s = summary
    db = s["database"]
    print(
        f"  run {s['run']}: {s['completed']}/{s['streams']} streams completed, {s['errors']} errors, "
        f"database: {db['complete_full']} complete with the full text, {db['truncated']} truncated, {db['lost']} lost"
    )
    print(
        f"    relay per word ({s['words']} words): median {s['relay_ms']['p50']:.2f} ms, "
        f"p99 {s['relay_ms']['p99']:.2f} ms, max {s['relay_ms']['max']:.2f} ms; "
        f"after the first word: median {s['relay_after_first_ms']['p50']:.2f} ms, "
        f"p99 {s['relay_after_first_ms']['p99']:.2f} ms"
    )
    if s["streams"] > 1:
        print(
            f"    relay once every POST was answered ({s['steady_words']} words): "
            f"median {s['relay_steady_ms']['p50']:.2f} ms, p99 {s['relay_steady_ms']['p99']:.2f} ms, "
            f"max {s['relay_steady_ms']['max']:.2f} ms"
        )
    print(
        f"    first word: median +{s['first_word_ms']['p50']:.2f} ms, p95 +{s['first_word_ms']['p95']:.2f} ms"
        f" (time to first token from submit: median {s['ttft_from_submit_ms']['p50']:.1f} ms,"
        f" p95 {s['ttft_from_submit_ms']['p95']:.1f} ms; the POST median {s['post_ms']['p50']:.1f} ms,"
        f" p95 {s['post_ms']['p95']:.1f} ms)"
    )
    if s["non_streamed"]:
        added = s["non_streamed_added_ms"]
        print(
            f"    non-streamed turn added (the reply's text at the client minus the upstream's write stamp): "
            f"median +{added['p50']:.2f} ms, p95 +{added['p95']:.2f} ms"
        )
    for line in describe(s):
        print(f"    {line}")
    cpu = ", ".join(f"{name} {value:.0f}%" for name, value in s["cpu_percent"].items())
    print(
        f"    CPU (100% = one core) over {s['wall_s']:.1f} s: {cpu}; "
        f"client loop lag p99 {s['client_loop_lag_ms']['p99']:.2f} ms; "
        f"upstream emit lateness p99 {s['upstream_emit_late_ms']['p99']:.2f} ms"
    )
    print(
        f"    gunicorn CPU per turn: {s['gunicorn_cpu_ms_per_turn']:.1f} ms; "
        f"gunicorn worker memory, idle after the run: {s['idle_rss_mb']:.1f} MB"
    )
    for sample in s["error_samples"]:
        print(f"    error: {sample}")
