"""PNG plots from the results JSON: throughput and latency percentiles per target, SSE added
latency, and RSS against open streams."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _bars(
    ax: Any, names: list[str], rows: list[dict[str, Any]], metrics: list[str], scale: float
) -> None:
    width = 0.8 / len(metrics)
    for i, m in enumerate(metrics):
        med = [r[m]["median"] * scale for r in rows]
        lo = [max(0.0, (r[m]["median"] - r[m]["min"]) * scale) for r in rows]
        hi = [max(0.0, (r[m]["max"] - r[m]["median"]) * scale) for r in rows]
        xs = [j + (i - (len(metrics) - 1) / 2) * width for j in range(len(names))]
        ax.bar(
            xs, med, width, yerr=[lo, hi], capsize=2, label=m.replace("_us", "").replace("_ms", "")
        )
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def plot_json(s1: dict[str, Any], out: Path) -> list[Path]:
    made = []
    summary = s1["summary"]
    keys = list(summary)
    fig, axes = plt.subplots(
        1, len([k for k in keys if k.startswith("closed")]), figsize=(15, 4.5), squeeze=False
    )
    for ax, key in zip(axes[0], [k for k in keys if k.startswith("closed")], strict=True):
        names = list(summary[key])
        _bars(ax, names, [summary[key][n] for n in names], ["rps"], 1)
        ax.set_yscale("log")
        ax.set_title(f"{key}: req/s (median, min–max)")
    fig.tight_layout()
    fig.savefig(out / "json-throughput.png", dpi=110)
    made.append(out / "json-throughput.png")
    plt.close(fig)
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 4.5), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        names = list(summary[key])
        _bars(ax, names, [summary[key][n] for n in names], ["p50_us", "p90_us", "p99_us"], 1e-3)
        ax.set_yscale("log")
        ax.set_ylabel("ms")
        ax.set_title(f"{key}: latency percentiles")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "json-latency.png", dpi=110)
    made.append(out / "json-latency.png")
    plt.close(fig)
    return made


def plot_sse(s2: dict[str, Any], out: Path, name: str = "sse-added.png") -> Path:
    summary = {k: v for k, v in s2["summary"].items() if k != "direct"}
    names = list(summary)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    _bars(
        ax,
        names,
        [summary[n] for n in names],
        ["added_ttfe_p50_ms", "added_transit_p50_ms", "added_transit_p99_ms"],
        1,
    )
    ax.set_ylabel("ms added over direct")
    ax.set_title(
        f"SSE: {s2['streams']} streams × {s2['events']} events, {s2['interval_ms']} ms apart"
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return out / name


def plot_idle(s4: dict[str, Any], out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, curve in s4["curves"].items():
        ax.plot([c["streams"] for c in curve], [c["rss_mb"] for c in curve], marker="o", label=name)
    ax.axhline(150, color="grey", linestyle="--", linewidth=1, label="target 150 MB")
    ax.set_xlabel("open idle SSE streams")
    ax.set_ylabel("RSS (MB)")
    ax.set_title("RSS against open streams")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "idle-rss.png", dpi=110)
    plt.close(fig)
    return out / "idle-rss.png"


def plot_scale(s6: dict[str, Any], out: Path) -> Path:
    paced = s6["summary"]["paced-32"]
    names = [n for n in paced if n != "direct"]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    _bars(ax, names, [paced[n] for n in names], ["added_p50_us", "added_p99_us"], 1e-3)
    ax.set_ylabel("ms added over direct (paced ~100 req/s)")
    ax.set_title(f"Store scale (sidecar, {s6['transport']} transport)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "store-scale.png", dpi=110)
    plt.close(fig)
    return out / "store-scale.png"


def plot_all(results: dict[str, Any], out: Path) -> None:
    sc = results.get("scenarios", {})
    if "1" in sc:
        plot_json(sc["1"], out)
    if "2" in sc:
        plot_sse(sc["2"], out)
    if "3" in sc:
        plot_sse(sc["3"], out, "sse-load-added.png")
    if "4" in sc:
        plot_idle(sc["4"], out)
    if "6" in sc:
        plot_scale(sc["6"], out)
