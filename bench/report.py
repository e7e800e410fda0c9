"""Turn per-repetition measurements into markdown tables.

Every cell is the median over repetitions with its spread, so a single noisy
run on a shared machine cannot decide a comparison.
"""

import math
import statistics
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    higher_is_better: bool


@dataclass
class Sample:
    """One repetition of one workload on one server."""

    workload: str
    server: str
    rep: int
    values: dict  # metric key -> number
    errors: int = 0
    error_sample: str = ""


@dataclass
class Results:
    servers: list
    samples: list = field(default_factory=list)

    def add(self, sample):
        self.samples.append(sample)

    def values(self, workload, server, key):
        """The figures of the error-free repetitions only: a run with
        failures measured something other than the workload."""
        return [
            s.values[key]
            for s in self.samples
            if s.workload == workload
            and s.server == server
            and not s.errors
            and key in s.values
            and not math.isnan(s.values[key])
        ]

    def errors(self, workload, server):
        return [s for s in self.samples if s.workload == workload and s.server == server and s.errors]


def _median(values):
    return statistics.median(values) if values else None


def _fmt(value):
    """Three significant figures, thousands separated: enough for noisy data."""
    if value is None:
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _cell(values, failed):
    if not values:
        return "failed ⚠" if failed else "–"
    med = _median(values)
    text = _fmt(med)
    if med and len(values) > 1:
        spread = (max(values) - min(values)) / 2 / med * 100
        text += f" ±{spread:.0f}%"
    return text + (" ⚠" if failed else "")


def _advantage(ours, theirs, higher_is_better):
    """How many times better ours is; > 1 means objectstore wins."""
    if not ours or not theirs:
        return None
    return ours / theirs if higher_is_better else theirs / ours


def table(results, rows, baseline=None):
    """rows: (workload, Metric) pairs.  With a baseline server in the run,
    adds its advantage over each peer and over the best peer per row."""
    servers = results.servers
    peers = [s for s in servers if s != baseline] if baseline in servers else []
    head = ["metric", *servers]
    if peers:
        head += [f"{baseline} × {p}" for p in peers]
        if len(peers) > 1:
            head.append(f"{baseline} × best peer")
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for workload, metric in rows:
        cells = [f"{metric.label} ({metric.unit})"]
        medians = {}
        for server in servers:
            vals = results.values(workload, server, metric.key)
            medians[server] = _median(vals)
            cells.append(_cell(vals, bool(results.errors(workload, server))))
        if peers:
            ours = medians[baseline]
            for p in peers:
                cells.append(_ratio(_advantage(ours, medians[p], metric.higher_is_better)))
            if len(peers) > 1:
                known = [medians[p] for p in peers if medians[p]]
                best = (max if metric.higher_is_better else min)(known) if known else None
                cells.append(_ratio(_advantage(ours, best, metric.higher_is_better)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ratio(value):
    return "–" if value is None else f"{value:.2f}×"


def error_notes(results, workloads):
    notes = []
    for workload in workloads:
        for server in results.servers:
            failed = results.errors(workload, server)
            if not failed:
                continue
            reps = ", ".join(str(s.rep + 1) for s in failed)
            total = sum(s.errors for s in failed)
            notes.append(
                f"- ⚠ {workload} on {server}: {total} error(s) in repetition(s) "
                f"{reps}, not counted; first: `{failed[0].error_sample[:300]}`"
            )
    return "\n".join(notes)


def legend(baseline, servers):
    text = (
        "Cells: median over repetitions ± half the range as % of the median; "
        "⚠ = some repetitions had errors (listed under the table) and are left "
        "out of the figures."
    )
    if baseline in servers and len(servers) > 1:
        text += (
            f" `{baseline} × peer`: how many times better {baseline} is (throughput "
            f"ratio, or the inverse ratio for latency, time and memory); > 1 means "
            f"{baseline} wins."
        )
    return text
