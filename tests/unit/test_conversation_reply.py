"""The conversation service's reply: deterministic templates that say back what was
understood, follow the mood, ask when preferences are unclear and comfort when needed."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest

from conversation_service.reply import compose_reply
from conversation_service.understanding import EntityMatcher, Understanding, understand
from v5_shared.catalog import CANONICAL_GENRES
from v5_shared.domain.lexicon import MoodPoint
from v5_shared.domain.trajectory import Trend

QUESTION = re.compile(r"\?")
SENTENCE_END = re.compile(r"[.!?](?:\s|$)")


@pytest.fixture(scope="module")
def matcher() -> EntityMatcher:
    return EntityMatcher(["Velvet Harbor", "Mara Quill", "The Paper Lanterns"], CANONICAL_GENRES)


def _reply(
    understanding: Understanding,
    *,
    turn: int = 2,
    trend: Trend = "unknown",
    clarity: float = 0.6,
    top_genres: Sequence[str] = (),
    top_artists: Sequence[str] = (),
    comfort: bool = False,
    seed: str = "session:2",
) -> str:
    return compose_reply(
        understanding,
        turn=turn,
        trend=trend,
        clarity=clarity,
        top_genres=top_genres,
        top_artists=top_artists,
        comfort=comfort,
        seed=seed,
    )


def _empty() -> Understanding:
    return Understanding(
        artists=[], genres=[], moods=[], mood=None, activity=None, target_energy=None
    )


def _assert_plain(reply: str) -> None:
    assert reply.strip() == reply and reply
    assert 1 <= len(SENTENCE_END.findall(reply)) <= 3, reply
    assert not re.search(r"[*_#`\[\]]", reply), reply
    assert reply[0].isupper(), reply


def test_same_inputs_and_seed_give_the_same_reply(matcher: EntityMatcher) -> None:
    understanding = understand("I'm feeling sad, play some jazz", matcher)
    replies = {
        _reply(understanding, trend="declining", comfort=True, clarity=0.2) for _ in range(5)
    }
    assert len(replies) == 1


def test_the_wording_varies_with_the_seed(matcher: EntityMatcher) -> None:
    understanding = understand("some jazz please", matcher)
    replies = {_reply(understanding, seed=f"session:{turn}") for turn in range(30)}
    assert len(replies) > 1
    assert all("jazz" in reply for reply in replies)


@pytest.mark.parametrize(
    "message",
    [
        "hello",
        "I'm feeling sad",
        "some jazz please",
        "Velvet Harbor and lofi for my workout",
        "not happy 😞",
        "music for studying",
        "I'm stressed, put on some calm jazz by Mara Quill",
    ],
)
@pytest.mark.parametrize("trend", ["unknown", "improving", "declining", "stable"])
@pytest.mark.parametrize("comfort", [False, True])
@pytest.mark.parametrize("clarity", [0.0, 0.9])
def test_replies_are_one_to_three_plain_sentences(
    message: str, trend: Trend, comfort: bool, clarity: float, matcher: EntityMatcher
) -> None:
    for turn in (1, 4):
        _assert_plain(
            _reply(
                understand(message, matcher),
                turn=turn,
                trend=trend,
                comfort=comfort,
                clarity=clarity,
                seed=f"s:{turn}:{message}",
            )
        )


def test_the_reply_names_the_artists_and_genres_found(matcher: EntityMatcher) -> None:
    understanding = understand("Velvet Harbor, Mara Quill and some hip hop", matcher)
    for seed in ("a", "b", "c", "d"):
        reply = _reply(understanding, seed=seed)
        assert "Velvet Harbor" in reply and "Mara Quill" in reply and "hip-hop" in reply


def test_genres_keep_their_catalog_spelling(matcher: EntityMatcher) -> None:
    understanding = understand("kpop and rnb", matcher)
    for seed in map(str, range(12)):
        reply = _reply(understanding, seed=seed)
        assert "k-pop" in reply and "r&b" in reply


def test_many_names_are_summarised(matcher: EntityMatcher) -> None:
    understanding = understand(
        "Velvet Harbor, Mara Quill, The Paper Lanterns, jazz, rock and soul", matcher
    )
    reply = _reply(understanding)
    assert "Velvet Harbor" in reply and "3 more" in reply


def test_the_reply_names_the_activity(matcher: EntityMatcher) -> None:
    assert "workout" in _reply(understand("something for my workout", matcher))
    assert "commute" in _reply(understand("music on my commute", matcher))


def test_the_reply_reflects_the_mood(matcher: EntityMatcher) -> None:
    assert "happy" in _reply(understand("I'm so happy today", matcher))
    assert "tired" in _reply(understand("I'm tired", matcher), comfort=True)


def test_without_names_the_reply_refers_to_the_session(matcher: EntityMatcher) -> None:
    reply = _reply(
        understand("what's next?", matcher), top_genres=["jazz"], top_artists=["Mara Quill"]
    )
    assert "jazz" in reply and "Mara Quill" in reply


def test_an_empty_first_turn_still_gets_a_reply() -> None:
    reply = _reply(_empty(), turn=1, clarity=0.0)
    _assert_plain(reply)
    assert QUESTION.search(reply)


def test_low_clarity_asks_a_question_and_high_clarity_does_not(matcher: EntityMatcher) -> None:
    understanding = understand("some jazz please", matcher)
    assert QUESTION.search(_reply(understanding, clarity=0.2))
    assert not QUESTION.search(_reply(understanding, clarity=0.8))


def test_the_question_asks_for_what_is_missing(matcher: EntityMatcher) -> None:
    no_genre = _reply(understand("I'm tired", matcher), clarity=0.1)
    assert "genre" in no_genre
    no_artist = _reply(understand("some jazz", matcher), clarity=0.1)
    assert "artist" in no_artist and "genre" not in no_artist


@pytest.mark.parametrize("message", ["I'm feeling happier", "what's next?"])
def test_an_improving_trend_is_acknowledged(message: str, matcher: EntityMatcher) -> None:
    understanding = understand(message, matcher)
    replies = [_reply(understanding, trend="improving", seed=str(i)) for i in range(10)]
    assert all(
        any(word in reply for word in ("brighter", "looking up", "lighter")) for reply in replies
    )
    if understanding.mood is not None:
        assert all("happy" in reply for reply in replies)


def test_a_declining_trend_is_acknowledged(matcher: EntityMatcher) -> None:
    reply = _reply(understand("I'm tired", matcher), trend="declining")
    assert "lower" in reply or "dipped" in reply
    assert "tired" in reply


def test_comfort_is_offered_gently(matcher: EntityMatcher) -> None:
    understanding = understand("I'm feeling sad", matcher)
    for seed in ("a", "b", "c", "d", "e"):
        reply = _reply(understanding, trend="declining", comfort=True, seed=seed)
        assert "gentle" in reply or "gently" in reply
    assert "gentle" not in _reply(understand("I'm happy", matcher))


def test_comfort_does_not_name_a_good_mood_as_a_hard_one() -> None:
    happy = Understanding(
        artists=[],
        genres=[],
        moods=["happy"],
        mood=MoodPoint("happy", 0.8, 0.25),
        activity=None,
        target_energy=None,
    )
    reply = _reply(happy, trend="declining", comfort=True)
    assert "gentle" in reply
    assert "sorry you're feeling happy" not in reply and "feeling happy is hard" not in reply
