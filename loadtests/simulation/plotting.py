"""The learning curves as a PNG: cumulative reward and like rate against interactions, one
line per policy, and (when the comfort experiment ran) the mean hidden valence through the
declining sessions with and without comfort."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display here, and none needed

import matplotlib.pyplot as plt
import numpy as np

SMOOTHING = 5  # interactions in the like rate's moving mean

COLOURS = {
    "adaptive": "#1f77b4",
    "epsilon_greedy": "#2ca02c",
    "static": "#ff7f0e",
    "popular": "#9467bd",
    "random": "#7f7f7f",
}


def _smooth(values: list[float], window: int) -> np.ndarray:
    data = np.asarray(values, dtype=float)
    if window <= 1 or data.size < window:
        return data
    # A trailing mean: each point averages it and the window - 1 before it (fewer at first).
    padded = np.concatenate([np.full(window - 1, np.nan), data])
    out = np.array([np.nanmean(padded[i : i + window]) for i in range(data.size)])
    return out


def plot_curves(report: dict[str, Any], path: Path) -> Path:
    curves = report["curves"]
    mood = report.get("mood")
    panels = 3 if mood else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 4.2), constrained_layout=True)
    settings = report["settings"]
    for name, curve in curves.items():
        x = np.arange(1, len(curve["like_rate"]) + 1)
        colour = COLOURS.get(name)
        axes[0].plot(x, curve["cumulative_reward"], label=name, color=colour)
        axes[1].plot(x, _smooth(curve["like_rate"], SMOOTHING), label=name, color=colour)
    axes[0].set_title("Cumulative reward per listener")
    axes[0].set_xlabel("interaction")
    axes[0].set_ylabel(f"sum of rewards ({settings['list_size']} tracks an interaction)")
    axes[1].set_title(f"Like rate (trailing mean of {SMOOTHING})")
    axes[1].set_xlabel("interaction")
    axes[1].set_ylabel("liked or saved / heard")
    axes[1].set_ylim(bottom=0)
    for ax in axes[:2]:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if mood:
        ax = axes[2]
        for name, colour in (("comfort", "#d62728"), ("no_comfort", "#7f7f7f")):
            if name in mood:
                values = [mood[name]["start_valence"], *mood[name]["valence_by_interaction"]]
                ax.plot(range(len(values)), values, label=name.replace("_", " "), color=colour)
        ax.set_title("Declining-mood sessions: hidden valence")
        ax.set_xlabel("interaction")
        ax.set_ylabel("mean valence [-1, 1]")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(
        f"{settings['listeners']} simulated listeners x {settings['interactions']} "
        f"interactions, seed {settings['seed']}",
        fontsize=10,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
