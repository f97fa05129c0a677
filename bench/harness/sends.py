"""The send's figures of a stream bench run: its server time from the Server-Timing header, and
whether the burst was answered fairly (see bench/stream_bench.py's docstring for the definitions)."""

from dataclasses import dataclass, field

OUT_OF_ORDER_MS = 50.0  # first words closer than this are not counted as out of order


def server_timing(header: str) -> dict[str, tuple[float, str]]:
    """`app;dur=1.2, queue;dur=0;desc="3"` as {"app": (1.2, ""), "queue": (0.0, "3")}; {} for none."""
    metrics = {}
    for metric in header.split(","):
        name, *params = metric.strip().split(";")
        values = {key.strip(): value.strip().strip('"') for key, _, value in (p.partition("=") for p in params)}
        if name:
            try:
                metrics[name] = (float(values.get("dur") or 0), values.get("desc", ""))
            except ValueError:
                continue
    return metrics


@dataclass
class SendTiming:
    """One POST's Server-Timing, or nothing when the served code does not send the header."""

    server_ms: float | None = None  # app minus queue: the server's own time
    cpu_ms: float | None = None
    queue_ms: float | None = None
    turn: int | None = None  # the send's arrival number at the fair queue: the server's order

    @classmethod
    def from_header(cls, header: str) -> "SendTiming":
        metrics = server_timing(header)
        if "app" not in metrics:
            return cls()
        queue, turn = metrics.get("queue", (0.0, ""))
        return cls(
            server_ms=metrics["app"][0] - queue,
            cpu_ms=metrics["cpu"][0] if "cpu" in metrics else None,
            queue_ms=queue,
            turn=int(turn) if turn.isdigit() else None,
        )


@dataclass
class SendFigures:
    """A run's send times and fairness, combinable over runs (pairs are only ever within a run)."""

    server_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    queue_ms: list[float] = field(default_factory=list)
    pairs: int = 0
    out_of_order: int = 0
    order: str = "queue turn"
    after_post_ms: list[float] = field(default_factory=list)

    @classmethod
    def of(cls, conversations) -> "SendFigures":
        """From conversations with `timing`, `posted_ns` and `words` [(emit µs, arrival µs), ...]."""
        figures = cls()
        for c in conversations:
            if c.timing.server_ms is not None:
                figures.server_ms.append(c.timing.server_ms)
                figures.queue_ms.append(c.timing.queue_ms)
            if c.timing.cpu_ms is not None:
                figures.cpu_ms.append(c.timing.cpu_ms)
        answered = [c for c in conversations if c.words and c.posted_ns]
        figures.after_post_ms = [(c.words[0][1] - c.posted_ns / 1000) / 1000 for c in answered]
        if all(c.timing.turn is not None for c in answered):
            answered.sort(key=lambda c: c.timing.turn)
        else:  # older code: no turn in the header, so the order in which the POSTs were answered
            figures.order = "POST answered"
            answered.sort(key=lambda c: c.posted_ns)
        firsts = [c.words[0][1] / 1000 for c in answered]
        for i, earlier in enumerate(firsts):
            figures.pairs += len(firsts) - i - 1
            figures.out_of_order += sum(earlier - later > OUT_OF_ORDER_MS for later in firsts[i + 1 :])
        return figures

    @classmethod
    def combine(cls, all_figures: list["SendFigures"]) -> "SendFigures":
        orders = {f.order for f in all_figures}
        return cls(
            server_ms=[v for f in all_figures for v in f.server_ms],
            cpu_ms=[v for f in all_figures for v in f.cpu_ms],
            queue_ms=[v for f in all_figures for v in f.queue_ms],
            pairs=sum(f.pairs for f in all_figures),
            out_of_order=sum(f.out_of_order for f in all_figures),
            order=orders.pop() if len(orders) == 1 else "mixed",
            after_post_ms=[v for f in all_figures for v in f.after_post_ms],
        )

    def summary(self, stats) -> dict:
        """`stats(values, *percentiles)` formats each list; "not available" without the header."""
        missing = "not available"
        return {
            "send_server_ms": stats(self.server_ms, 50, 95) if self.server_ms else missing,
            "send_cpu_ms": stats(self.cpu_ms, 50, 95) if self.cpu_ms else missing,
            "queue_wait_ms": stats(self.queue_ms, 50) if self.queue_ms else missing,
            "fairness": {
                "order": self.order,
                "pairs": self.pairs,
                "out_of_order_share": round(self.out_of_order / self.pairs, 4) if self.pairs else 0.0,
                "first_word_after_post_ms": stats(self.after_post_ms, 50),
            },
        }


def describe(s: dict) -> list[str]:
    """The send's lines of a printed summary."""

    def figure(value, *names) -> str:
        if not isinstance(value, dict):
            return value
        return ", ".join(f"{name} {value[key]:.2f} ms" for name, key in names)

    fair = s["fairness"]
    lines = [
        f"send's server time (app - queue): {figure(s['send_server_ms'], ('median', 'p50'), ('p95', 'p95'))}; "
        f"CPU {figure(s['send_cpu_ms'], ('median', 'p50'), ('p95', 'p95'))}; "
        f"queue wait {figure(s['queue_wait_ms'], ('median', 'p50'), ('max', 'max'))}"
    ]
    after = fair["first_word_after_post_ms"]
    order = (
        f"{100 * fair['out_of_order_share']:.1f}% of {fair['pairs']} pairs (sends in {fair['order']} order) had "
        f"their first words more than {OUT_OF_ORDER_MS:g} ms out of order; "
        if fair["pairs"]
        else ""
    )
    lines.append(
        f"fairness: {order}first word after its own POST was answered: "
        f"median {after['p50']:.1f} ms, worst {after['max']:.1f} ms"
    )
    return lines
