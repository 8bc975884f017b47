"""The conversational reply: templates that say back what was understood.

No model is involved. Wording varies between turns but is chosen from a hash of the
seed, so a replayed request (same inputs, same seed) gets the same reply word for word.
At most three sentences: what was heard, how the listener seems (or comfort), and a
question when preferences are still unclear.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from v5_shared.domain.trajectory import Trend

from .understanding import Understanding

# Below this clarity the reply asks a question that would make preferences clearer.
CLARIFY_BELOW = 0.35
# Names listed in one sentence before the rest are summarised as "and N more".
MAX_NAMES = 3

_ACTIVITY_PHRASES: dict[str, str] = {
    "workout": "your workout",
    "running": "your run",
    "study": "studying",
    "focus": "staying focused",
    "sleep": "winding down to sleep",
    "party": "the party",
    "commute": "your commute",
    "relax": "unwinding",
}

# How a mood label reads after "you sound"/"you're feeling". Neutral says nothing worth
# reflecting back, so it has no phrase.
_MOOD_PHRASES: dict[str, str] = {
    "excited": "excited",
    "energetic": "full of energy",
    "happy": "happy",
    "romantic": "romantic",
    "content": "content",
    "relaxed": "relaxed",
    "calm": "calm",
    "nostalgic": "a little nostalgic",
    "tired": "tired",
    "bored": "bored",
    "sad": "sad",
    "depressed": "really low",
    "frustrated": "frustrated",
    "angry": "angry",
    "stressed": "stressed",
    "anxious": "anxious",
    "okay": "alright",
    "lively": "lively",
    "mellow": "mellow",
    "sleepy": "sleepy",
    "down": "a bit down",
    "uneasy": "a little uneasy",
}

_NAMED_AND_ACTIVITY = (
    "Got it: {names} for {activity}.",
    "Coming right up: {names} for {activity}.",
    "Lining up {names} for {activity}.",
)
_NAMED = (
    "Got it, {names}.",
    "Good call on {names}.",
    "Nice, I'll bring in {names}.",
    "Noted: {names}.",
)
_ACTIVITY_ONLY = (
    "Music for {activity}, got it.",
    "Let's set you up for {activity}.",
    "I'll find something that suits {activity}.",
)
_FROM_SESSION = (
    "I'll keep to {names} from earlier.",
    "Staying with {names}, as you mentioned before.",
    "Building on {names} from what you told me.",
)
_FIRST_TURN = (
    "Hi, let's find you something to listen to.",
    "Hello, let's find some music for you.",
)
_LATER_TURN = (
    "Let's keep the music going.",
    "Happy to keep going.",
)
_MOOD_ONLY = (
    "Sounds like you're feeling {mood}.",
    "You sound {mood}.",
    "I can tell you're feeling {mood}.",
)
_STEADY = (
    "You still sound {mood}.",
    "Still feeling {mood}, I hear you.",
)
_IMPROVING = (
    "You sound a little brighter than before.",
    "Things seem to be looking up a little.",
    "You sound a bit lighter than earlier.",
)
_IMPROVING_MOOD = (
    "You sound a little brighter than before, and {mood} now.",
    "Things seem to be looking up a little; you sound {mood} now.",
)
_DECLINING_MOOD = (
    "You seem a bit lower than earlier, and {mood} now, so I'll keep things gentle.",
    "It sounds like things have dipped a little and you're {mood}, so I'll go gently.",
)
_DECLINING = (
    "You seem a bit lower than earlier, so I'll keep things gentle.",
    "It sounds like things have dipped a little, so I'll go gently.",
)
# Every comfort line promises the iso principle in plain words: start gentle, lift slowly.
_COMFORT = (
    "That sounds like a hard day; I'll start with something gentle and lift things a "
    "little as we go.",
    "I'm sorry it's been rough; I'll begin somewhere soft and brighten things gently from there.",
    "That sounds heavy, so I'll keep it gentle at first and let the music lift a little as we go.",
)
_COMFORT_MOOD = (
    "I'm sorry you're feeling {mood}; I'll start with something gentle and lift things a "
    "little as we go.",
    "Feeling {mood} is hard, so I'll begin somewhere gentle and brighten things slowly from there.",
    "That sounds tough, feeling {mood}; I'll keep it gentle at first and let the music "
    "lift a little as we go.",
)
_COMFORT_DECLINING = (
    "You seem a bit lower than earlier, so I'll start gentle and lift things a little as we go.",
    "It sounds like things have dipped a little; I'll keep it gentle and brighten things slowly.",
)
_COMFORT_IMPROVING = (
    "You sound a little brighter than before, so I'll keep it gentle and keep lifting "
    "things slowly.",
    "It's good to hear things easing a little; I'll stay gentle and lift the mood step by step.",
)
_ASK_GENRE = (
    "What kind of music are you in the mood for, a genre perhaps?",
    "Is there a genre you'd like me to lean towards?",
    "Which genre should I start from?",
)
_ASK_GENRE_FOR_ACTIVITY = (
    "What genre do you like for {activity}?",
    "Is there a genre you prefer for {activity}?",
)
_ASK_ARTIST = (
    "Is there an artist you love that I could start from?",
    "Who's an artist you keep coming back to?",
    "Any artist you'd like more of?",
)
_ASK_DIRECTION = (
    "Should I stay close to that, or branch out a little?",
    "Want me to stick with that, or mix in something different?",
)


def _pick(options: Sequence[str], seed: str, slot: str) -> str:
    # Independent choices per slot, so the opening and the question vary separately.
    digest = hashlib.blake2b(f"{seed}\x1f{slot}".encode(), digest_size=8).digest()
    return options[int.from_bytes(digest, "big") % len(options)]


def _join(names: Sequence[str]) -> str:
    shown = list(names[:MAX_NAMES])
    hidden = len(names) - len(shown)
    if hidden > 0:
        return f"{', '.join(shown)} and {hidden} more"
    if len(shown) == 1:
        return shown[0]
    return f"{', '.join(shown[:-1])} and {shown[-1]}"


def _fill(template: str, *, names: str = "", activity: str = "", mood: str = "") -> str:
    # Names are never capitalised: genres keep their catalog spelling ("k-pop", "r&b"),
    # which is why no template starts with a name.
    return template.format(names=names, activity=activity, mood=mood)


def _acknowledgement(
    understanding: Understanding,
    *,
    turn: int,
    top_genres: Sequence[str],
    top_artists: Sequence[str],
    has_feeling: bool,
    seed: str,
) -> str | None:
    named = [*understanding.artists, *understanding.genres]
    activity = _ACTIVITY_PHRASES.get(understanding.activity or "")
    if named and activity:
        return _fill(_pick(_NAMED_AND_ACTIVITY, seed, "ack"), names=_join(named), activity=activity)
    if named:
        return _fill(_pick(_NAMED, seed, "ack"), names=_join(named))
    if activity:
        return _fill(_pick(_ACTIVITY_ONLY, seed, "ack"), activity=activity)
    # Nothing named in this message: say what the session already tells us.
    remembered = [*top_artists[:2], *top_genres[:2]][:MAX_NAMES]
    if remembered:
        return _fill(_pick(_FROM_SESSION, seed, "ack"), names=_join(remembered))
    if has_feeling:
        # The mood sentence opens the reply; a generic greeting before it adds nothing.
        return None
    return _pick(_FIRST_TURN if turn <= 1 else _LATER_TURN, seed, "ack")


def _feeling(understanding: Understanding, *, trend: Trend, comfort: bool, seed: str) -> str | None:
    mood = understanding.mood
    phrase = None if mood is None else _MOOD_PHRASES.get(mood.label)
    if comfort:
        if trend == "improving":
            return _pick(_COMFORT_IMPROVING, seed, "feeling")
        # Naming the mood is only kind when it is a low one; comfort can also apply when
        # a good mood is merely slipping.
        if phrase is not None and mood is not None and mood.valence < 0.0:
            return _fill(_pick(_COMFORT_MOOD, seed, "feeling"), mood=phrase)
        if trend == "declining":
            return _pick(_COMFORT_DECLINING, seed, "feeling")
        return _pick(_COMFORT, seed, "feeling")
    if trend in ("improving", "declining"):
        if phrase is None:
            return _pick(_IMPROVING if trend == "improving" else _DECLINING, seed, "feeling")
        moving = _IMPROVING_MOOD if trend == "improving" else _DECLINING_MOOD
        return _fill(_pick(moving, seed, "feeling"), mood=phrase)
    if phrase is None:
        return None
    options = _STEADY if trend == "stable" else _MOOD_ONLY
    return _fill(_pick(options, seed, "feeling"), mood=phrase)


def _question(
    understanding: Understanding,
    *,
    top_genres: Sequence[str],
    top_artists: Sequence[str],
    seed: str,
) -> str:
    knows_genre = bool(understanding.genres or top_genres)
    knows_artist = bool(understanding.artists or top_artists)
    activity = _ACTIVITY_PHRASES.get(understanding.activity or "")
    if not knows_genre:
        if activity:
            return _fill(_pick(_ASK_GENRE_FOR_ACTIVITY, seed, "ask"), activity=activity)
        return _pick(_ASK_GENRE, seed, "ask")
    if not knows_artist:
        return _pick(_ASK_ARTIST, seed, "ask")
    return _pick(_ASK_DIRECTION, seed, "ask")


def compose_reply(
    understanding: Understanding,
    *,
    turn: int,
    trend: Trend,
    clarity: float,
    top_genres: Sequence[str],
    top_artists: Sequence[str],
    comfort: bool,
    seed: str,
) -> str:
    """One to three plain sentences reflecting this turn; deterministic in ``seed``."""
    feeling = _feeling(understanding, trend=trend, comfort=comfort, seed=seed)
    sentences = [
        _acknowledgement(
            understanding,
            turn=turn,
            top_genres=top_genres,
            top_artists=top_artists,
            has_feeling=feeling is not None,
            seed=seed,
        ),
        feeling,
    ]
    if clarity < CLARIFY_BELOW:
        sentences.append(
            _question(understanding, top_genres=top_genres, top_artists=top_artists, seed=seed)
        )
    return " ".join(s for s in sentences if s)
