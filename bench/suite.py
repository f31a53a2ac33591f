"""Run every benchmark and record the results.

    python -m bench.suite            # full: bench/results/<date>.json, the table in docs/benchmarks.md
    python -m bench.suite --quick    # each benchmark briefly (CI): does it run and produce numbers
    python -m bench.suite --only reservation,outbound

Every figure is a ratio to a raw baseline measured in the same run on the same servers (the machines are
shared and noisy), with the absolute numbers kept for the record. The quick run writes nothing unless
--record is given, and never fails on a missed target: it fails only if a benchmark cannot run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import Figure, Servers, print_figures

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = [
    "reservation",
    "task_overhead",
    "gateway_ingest",
    "reply_load",
    "purchase",
    "contention",
    "hold_expiry",
    "discovery",
    "outbound",
    "memory_start",
]
START = "<!-- bench:results:start -->"
END = "<!-- bench:results:end -->"


def machine(servers: Servers) -> dict[str, Any]:
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem_kb = int(line.split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 2**20, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        **servers.versions(),
    }


def _format(value: float | None, unit: str = "") -> str:
    if value is None:
        return ""
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    return f"{text} {unit}".strip()


def table(figures: list[Figure]) -> str:
    lines = [
        "| benchmark | figure | ours | baseline | ratio | target | result | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        baseline = f"{_format(f.baseline)} ({f.baseline_name})" if f.baseline is not None else ""
        result = "" if f.passed is None else ("pass" if f.passed else "**FAIL**")
        ratio = f"{f.ratio:.2f}×" if f.ratio is not None else ""
        lines.append(
            f"| {f.benchmark} | {f.name} | {_format(f.value, f.unit)} | {baseline} | {ratio} | "
            f"{f.target or ''} | {result} | {f.note} |"
        )
    return "\n".join(lines)


def write_docs(record: dict[str, Any], figures: list[Figure]) -> None:
    m = record["machine"]
    block = "\n".join(
        [
            START,
            f"Run of {record['started']} (`make bench`, {record['duration_s']:.0f} s; "
            f"raw data: `bench/results/{record['file']}`)"
            + "".join(
                f"; re-run at {r['started']}: {', '.join(r['benchmarks'])}" for r in record.get("reruns", [])
            )
            + ".",
            "",
            f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB RAM; Python {m['python']}; "
            f"PostgreSQL {m['postgresql']}, Redis {m['redis']}; {m['platform']}. "
            f"Load average at start {m['load_average_at_start']}, at end {record['load_average_at_end']} "
            f"(1, 5 and 15 minutes; above {m['cores']}, other work was competing for the cores).",
            "",
            table(figures),
            END,
        ]
    )
    path = ROOT / "docs" / "benchmarks.md"
    current = path.read_text() if path.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    head, _, rest = current.partition(START)
    _, _, tail = rest.partition(END)
    path.write_text(head + block + tail)


def _merged(
    earlier: dict[str, Any], rerun: dict[str, Any], figures: list[Figure], names: list[str]
) -> tuple[dict[str, Any], list[Figure]]:
    """Today's record with the benchmarks just re-run (`--only`) replaced in place, the rest kept."""
    replaced = {f.benchmark for f in figures}
    merged: list[Figure] = []
    for old in earlier["figures"]:
        if old["benchmark"] not in replaced:
            merged.append(Figure(**old))
        elif not any(f.benchmark == old["benchmark"] for f in merged):
            merged += [f for f in figures if f.benchmark == old["benchmark"]]
    merged += [f for f in figures if f.benchmark not in {m.benchmark for m in merged}]
    reruns = [*earlier.get("reruns", []), {"started": rerun["started"], "benchmarks": sorted(replaced)}]
    record = {**earlier, "figures": [f.to_json() for f in merged], "reruns": reruns}
    record["broken"] = sorted((set(earlier.get("broken", [])) - set(names)) | set(rerun["broken"]))
    return record, merged


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="each benchmark briefly (CI)")
    parser.add_argument("--only", help="comma-separated benchmark modules")
    parser.add_argument("--record", action="store_true", help="write results even for --quick")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else BENCHMARKS
    started = datetime.now(UTC)
    t0 = time.monotonic()
    figures: list[Figure] = []
    broken: list[str] = []
    with Servers.start() as servers:
        info = machine(servers)
        for name in names:
            print(f"== {name}", flush=True)
            bench_t0 = time.monotonic()
            try:
                got = importlib.import_module(f"bench.{name}").run(servers, args.quick)
            except Exception:
                traceback.print_exc()
                broken.append(name)
                continue
            if not got or any(f.value != f.value for f in got):  # nothing, or NaN
                broken.append(name)
            print_figures(got)
            print(f"   ({time.monotonic() - bench_t0:.0f} s)", flush=True)
            figures += got
    duration = time.monotonic() - t0
    if not args.quick or args.record:
        file = f"{started:%Y-%m-%d}{'-quick' if args.quick else ''}.json"
        record = {
            "started": started.isoformat(timespec="seconds"),
            "duration_s": round(duration, 1),
            "quick": args.quick,
            "machine": info,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "file": file,
            "figures": [f.to_json() for f in figures],
            "broken": broken,
        }
        out = ROOT / "bench" / "results" / file
        if args.only and out.exists():
            record, figures = _merged(json.loads(out.read_text()), record, figures, names)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
        if not args.quick:
            write_docs(record, figures)
        print(f"wrote {out.relative_to(ROOT)}")
    print(
        f"{len(figures)} figures in {duration:.0f} s; missed targets: "
        f"{sum(1 for f in figures if f.passed is False)}; benchmarks that did not run: {broken or 'none'}"
    )
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
