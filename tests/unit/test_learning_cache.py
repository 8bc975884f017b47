"""The per-replica learning state cache: a hit only under the same version token, never
older than its maximum age, bounded in size."""

from recommendation_service.learning_cache import LearningCache
from v5_shared.domain.weights import default_weights
from v5_shared.learning_store import ListenerLearning, RewardSummary, WeightsState


def _learning(count: int) -> ListenerLearning:
    return ListenerLearning(
        weights=WeightsState(default_weights(), count, None),
        arms={},
        aggregate={},
        liked_track_ids=[],
        rewards=RewardSummary(0, 0.0),
    )


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_hit_needs_the_same_token() -> None:
    cache = LearningCache(max_entries=10, max_age_seconds=60)
    cache.put("u1", b"t1", _learning(1))
    hit = cache.get("u1", b"t1")
    assert hit is not None and hit.weights.adjustment_count == 1
    assert cache.get("u1", b"t2") is None
    assert cache.get("u1", None) is None
    assert cache.get("u2", b"t1") is None


def test_a_listener_never_changed_is_cached_under_no_token() -> None:
    cache = LearningCache(max_entries=10, max_age_seconds=60)
    cache.put("u1", None, _learning(0))
    assert cache.get("u1", None) is not None
    # The first change gives a token: the entry from before it no longer matches.
    assert cache.get("u1", b"t1") is None


def test_entries_expire_after_the_maximum_age() -> None:
    clock = Clock()
    cache = LearningCache(max_entries=10, max_age_seconds=60, timer=clock)
    cache.put("u1", b"t1", _learning(1))
    clock.now = 59.0
    assert cache.get("u1", b"t1") is not None
    clock.now = 61.0
    assert cache.get("u1", b"t1") is None


def test_size_is_bounded_and_zero_turns_it_off() -> None:
    cache = LearningCache(max_entries=3, max_age_seconds=60)
    for i in range(10):
        cache.put(f"u{i}", None, _learning(i))
    assert len(cache) == 3
    off = LearningCache(max_entries=0, max_age_seconds=60)
    off.put("u1", None, _learning(1))
    assert off.get("u1", None) is None
