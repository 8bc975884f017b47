"""The simulation run: every policy on the same listeners and seeds, the comfort experiment,
the report, the table and the targets."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .episode import (
    EVENT_COLUMN,
    LIST_SIZE,
    Record,
    System,
    World,
    build_world,
    declining_listener,
    like_share,
    run_listener,
)
from .listeners import POSITIVE, REWARDS, make_population
from .policies import POLICIES
from .product import InProcessProduct

DEFAULT_LISTENERS = 200
DEFAULT_INTERACTIONS = 50
DEFAULT_SEED = 2026
# The comfort experiment: this many of the listeners, each in one session of declining mood.
MOOD_LISTENERS = 100
MOOD_INTERACTIONS = 12
MOOD_DECLINE = -0.06  # valence per interaction, before what the music does
# Targets, over each listener's first TARGET_INTERACTIONS interactions.
TARGET_INTERACTIONS = 50
LIKE_RATE_VS_STATIC = 1.2
LIKE_RATE_VS_RANDOM = 2.0
# The like rate of the last this-many interactions, to show where learning has got to.
LATE_WINDOW = 10

DEFINITIONS = {
    "interaction": "one recommendation of list_size tracks, each heard and answered",
    "like_rate": "share of the tracks heard that were liked or saved",
    "skip_rate": "share of the tracks heard that were skipped (dislikes are counted apart)",
    "mean_reward": "mean of reward_for(event, listen_ratio) over the tracks heard",
    "regret": (
        "per interaction, the mean expected reward of the list_size best catalog tracks for "
        "the listener at that moment minus that of the tracks served (hidden model, exact), "
        "averaged over interactions"
    ),
    "mood.final_valence": (
        "the listener's hidden valence in [-1, 1] at the end of a declining-mood session, "
        "mean over listeners"
    ),
}


@dataclass(frozen=True)
class Settings:
    listeners: int = DEFAULT_LISTENERS
    interactions: int = DEFAULT_INTERACTIONS
    seed: int = DEFAULT_SEED
    list_size: int = LIST_SIZE
    policies: tuple[str, ...] = tuple(POLICIES)
    mood_listeners: int = MOOD_LISTENERS
    mood_interactions: int = MOOD_INTERACTIONS
    jobs: int = 1


_WORLD: World | None = None


def world() -> World:
    """Built once per process (a second or so)."""
    global _WORLD
    if _WORLD is None:
        _WORLD = build_world()
    return _WORLD


def run_policy(name: str, settings: Settings) -> Record:
    """Every listener of the population, one after another, under policy ``name``: they
    share the aggregate posteriors that new listeners' priors are shrunk toward."""
    w = world()
    return run_population(w, InProcessProduct(w.catalog, w.matcher, POLICIES[name]), settings)


def run_population(w: World, product: System, settings: Settings) -> Record:
    """The settings' population, one listener after another, against ``product``."""
    population = make_population(
        w.catalog,
        w.arrays,
        count=settings.listeners,
        seed=settings.seed,
        interactions=settings.interactions,
    )
    record = Record(settings.listeners, settings.interactions)
    for row, listener in enumerate(population):
        run_listener(
            w,
            listener,
            product,
            record,
            row,
            seed=settings.seed,
            interactions=settings.interactions,
            list_size=settings.list_size,
        )
    return record


def run_mood(comfort: bool, settings: Settings) -> Record:
    """The comfort experiment: the first listeners, each in one declining session, under
    the product (``adaptive``) with comfort as the product applies it, or disabled."""
    w = world()
    count = min(settings.mood_listeners, settings.listeners)
    population = make_population(
        w.catalog,
        w.arrays,
        count=count,
        seed=settings.seed,
        interactions=settings.interactions,
    )
    product = InProcessProduct(w.catalog, w.matcher, POLICIES["adaptive"], comfort=comfort)
    record = Record(count, settings.mood_interactions)
    for row, listener in enumerate(population):
        declining = declining_listener(listener, settings.seed, settings.mood_interactions)
        run_listener(
            w,
            declining,
            product,
            record,
            row,
            seed=settings.seed + 1,
            interactions=settings.mood_interactions,
            list_size=settings.list_size,
            drift=MOOD_DECLINE,
            always_mood=True,
        )
    return record


def _job(kind: str, name: str, settings: Settings) -> tuple[str, str, Record, float]:
    started = time.perf_counter()
    if kind == "policy":
        record = run_policy(name, settings)
    else:
        record = run_mood(name == "comfort", settings)
    return kind, name, record, time.perf_counter() - started


def run_all(
    settings: Settings, *, mood: bool = True
) -> tuple[dict[str, Record], dict[str, Record], dict[str, float]]:
    jobs: list[tuple[str, str]] = [("policy", name) for name in settings.policies]
    if mood:
        jobs += [("mood", "comfort"), ("mood", "no_comfort")]
    policies: dict[str, Record] = {}
    moods: dict[str, Record] = {}
    seconds: dict[str, float] = {}
    if settings.jobs <= 1:
        results: Iterable[tuple[str, str, Record, float]] = (
            _job(kind, name, settings) for kind, name in jobs
        )
        for kind, name, record, elapsed in results:
            (policies if kind == "policy" else moods)[name] = record
            seconds[f"{kind}:{name}"] = round(elapsed, 1)
    else:
        with ProcessPoolExecutor(max_workers=settings.jobs) as pool:
            futures = [pool.submit(_job, kind, name, settings) for kind, name in jobs]
            for future in futures:
                kind, name, record, elapsed = future.result()
                (policies if kind == "policy" else moods)[name] = record
                seconds[f"{kind}:{name}"] = round(elapsed, 1)
    return policies, moods, seconds


# --- summaries ----------------------------------------------------------------------------


def summarise(record: Record, upto: int | None = None) -> dict[str, float]:
    """The four headline numbers over each listener's first ``upto`` interactions."""
    n = record.interactions if upto is None else min(upto, record.interactions)
    events = record.events[:, :n]
    heard = max(int(record.heard[:, :n].sum()), 1)

    def share(*names: str) -> float:
        return float(events[..., [EVENT_COLUMN[e] for e in names]].sum()) / heard

    return {
        "like_rate": round(share(*POSITIVE), 4),
        "mean_reward": round(float(record.reward[:, :n].sum()) / heard, 4),
        "skip_rate": round(share("skip"), 4),
        "regret": round(float(record.regret[:, :n].mean()), 4),
    }


def details(record: Record) -> dict[str, Any]:
    heard = max(int(record.heard.sum()), 1)
    late = slice(max(record.interactions - LATE_WINDOW, 0), record.interactions)
    late_heard = max(int(record.heard[:, late].sum()), 1)
    late_likes = record.events[:, late][..., [EVENT_COLUMN[e] for e in POSITIVE]].sum()
    total_arms = max(sum(record.arms.values()), 1)
    return {
        "event_shares": {
            event: round(float(record.events[..., column].sum()) / heard, 4)
            for event, column in EVENT_COLUMN.items()
        },
        "like_rate_first_10": summarise(record, 10)["like_rate"],
        f"like_rate_last_{LATE_WINDOW}": round(float(late_likes) / late_heard, 4),
        "arm_shares": {
            arm: round(count / total_arms, 4) for arm, count in sorted(record.arms.items())
        },
        "comfort_share": round(float(record.comfort.mean()), 4),
        "messages": record.messages,
    }


def curves(record: Record) -> dict[str, list[float]]:
    """Per interaction index, means over listeners: like rate, reward per track, regret and
    cumulative reward per listener (summed over the tracks heard so far)."""
    heard = np.maximum(record.heard.sum(axis=0), 1)
    likes = record.events[..., [EVENT_COLUMN[e] for e in POSITIVE]].sum(axis=(0, 2))
    return {
        "like_rate": [round(float(x), 4) for x in likes / heard],
        "reward_per_track": [round(float(x), 4) for x in record.reward.sum(axis=0) / heard],
        "regret": [round(float(x), 4) for x in record.regret.mean(axis=0)],
        "cumulative_reward": [
            round(float(x), 3) for x in np.cumsum(record.reward, axis=1).mean(axis=0)
        ],
    }


def mood_summary(record: Record) -> dict[str, Any]:
    return {
        "start_valence": round(float(record.start_valence.mean()), 4),
        "final_valence": round(float(record.valence[:, -1].mean()), 4),
        "final_valence_p25_p50_p75": [
            round(float(x), 4) for x in np.percentile(record.valence[:, -1], [25, 50, 75])
        ],
        "valence_by_interaction": [round(float(x), 4) for x in record.valence.mean(axis=0)],
        "comfort_share": round(float(record.comfort.mean()), 4),
        "like_rate": round(like_share(record), 4),
        "mean_reward": round(float(record.reward.sum()) / max(int(record.heard.sum()), 1), 4),
    }


def evaluate_targets(
    policies: dict[str, Record], moods: dict[str, Record], interactions: int
) -> dict[str, Any]:
    """The issue's targets; each ``met`` is True, False, or None when it cannot be judged
    (a run shorter than TARGET_INTERACTIONS, or a policy left out)."""
    targets: dict[str, Any] = {}
    judged = interactions >= TARGET_INTERACTIONS
    first = {name: summarise(r, TARGET_INTERACTIONS) for name, r in policies.items()}
    for other, factor in (("static", LIKE_RATE_VS_STATIC), ("random", LIKE_RATE_VS_RANDOM)):
        key = f"adaptive_like_rate_vs_{other}"
        if "adaptive" not in first or other not in first:
            targets[key] = {"target": factor, "value": None, "met": None}
            continue
        base = first[other]["like_rate"]
        value = first["adaptive"]["like_rate"] / base if base > 0 else float("inf")
        targets[key] = {
            "target": factor,
            "value": round(value, 3),
            "adaptive": first["adaptive"]["like_rate"],
            other: base,
            "over_interactions": min(interactions, TARGET_INTERACTIONS),
            "met": (value >= factor) if judged else None,
        }
    if "comfort" in moods and "no_comfort" in moods:
        with_comfort = float(moods["comfort"].valence[:, -1].mean())
        without = float(moods["no_comfort"].valence[:, -1].mean())
        targets["mood_ends_higher_with_comfort"] = {
            "comfort": round(with_comfort, 4),
            "no_comfort": round(without, 4),
            "difference": round(with_comfort - without, 4),
            "met": with_comfort > without,
        }
    else:
        targets["mood_ends_higher_with_comfort"] = {"met": None}
    return targets


def build_report(
    settings: Settings,
    policies: dict[str, Record],
    moods: dict[str, Record],
    seconds: dict[str, float],
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "policies": {name: summarise(record) for name, record in policies.items()},
        "settings": {
            "listeners": settings.listeners,
            "interactions": settings.interactions,
            "seed": settings.seed,
            "list_size": settings.list_size,
            "mood_listeners": min(settings.mood_listeners, settings.listeners),
            "mood_interactions": settings.mood_interactions,
            "mood_decline_per_interaction": MOOD_DECLINE,
            "rewards": REWARDS,
        },
        "definitions": DEFINITIONS,
        "details": {name: details(record) for name, record in policies.items()},
        "curves": {name: curves(record) for name, record in policies.items()},
        "targets": evaluate_targets(policies, moods, settings.interactions),
        "seconds": seconds,
    }
    if moods:
        report["mood"] = {name: mood_summary(record) for name, record in moods.items()}
    return report


def format_table(report: dict[str, Any]) -> str:
    lines = [
        "| policy | like_rate | mean_reward | skip_rate | regret |",
        "|---|---|---|---|---|",
    ]
    for name, row in report["policies"].items():
        lines.append(
            f"| {name} | {row['like_rate']:.3f} | {row['mean_reward']:.3f} "
            f"| {row['skip_rate']:.3f} | {row['regret']:.3f} |"
        )
    mood = report.get("mood")
    if mood:
        lines += [
            "",
            "| declining-mood sessions | start valence | final valence | like_rate |",
            "|---|---|---|---|",
        ]
        for name, row in mood.items():
            lines.append(
                f"| {name.replace('_', ' ')} | {row['start_valence']:+.3f} "
                f"| {row['final_valence']:+.3f} | {row['like_rate']:.3f} |"
            )
    return "\n".join(lines)


def format_targets(targets: dict[str, Any]) -> str:
    lines = []
    for key, target in targets.items():
        met = target.get("met")
        verdict = "not judged" if met is None else "met" if met else "MISSED"
        if key.startswith("adaptive_like_rate_vs_") and target.get("value") is not None:
            detail = f"{target['value']:.2f}x (target >= {target['target']}x)"
        elif key == "mood_ends_higher_with_comfort" and met is not None:
            detail = f"comfort {target['comfort']:+.3f} vs no comfort {target['no_comfort']:+.3f}"
        else:
            detail = ""
        lines.append(f"{key}: {detail} {verdict}".replace("  ", " "))
    return "\n".join(lines)


def targets_missed(targets: dict[str, Any]) -> list[str]:
    return [key for key, target in targets.items() if target.get("met") is False]


def write_report(report: dict[str, Any], out_dir: Path, name: str = "simulation.json") -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def parse_policies(text: str | None) -> tuple[str, ...]:
    if not text:
        return tuple(POLICIES)
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        raise ValueError(f"unknown policies: {', '.join(unknown)} (known: {', '.join(POLICIES)})")
    return names


# --- live ---------------------------------------------------------------------------------


def run_live(settings: Settings, base_url: str) -> dict[str, Any]:
    """The population against a running cluster (the product, whatever it runs); the
    report has the same ``policies`` shape, with the one policy ``adaptive``."""
    from .live import LiveProduct, live_client  # httpx only when asked for

    w = world()
    started = time.perf_counter()
    with live_client(base_url) as client:
        product = LiveProduct(client, w.catalog, w.matcher)
        record = run_population(w, product, settings)
    report = build_report(
        settings, {"adaptive": record}, {}, {"live": round(time.perf_counter() - started, 1)}
    )
    report["mode"] = "live"
    report["gateway"] = base_url
    report["live"] = {
        "run_id": product.run_id,
        "requests": product.requests,
        "retries": product.retries,
        "mirror_mismatches": len(product.mirror_mismatches),
        "mirror_mismatch_examples": product.mirror_mismatches[:5],
    }
    return report
