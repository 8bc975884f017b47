"""What simulated listeners say: sentences composed from moods, genres (as people spell
them), activities and, when the catalog's artists are known, artist names.

Composition rather than a fixed list, so that thousands of listeners do not all send the same
ten strings (which would make the conversation service's work unrealistically uniform), and
so that every message names something the understanding has to find: a mood, a genre, an
activity or an artist, alone or combined, with negations and small talk in between.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

# Genres as listeners write them; the conversation service maps these spellings to the
# catalog's canonical names (hip hop -> hip-hop, lofi -> lo-fi, r and b -> r&b).
GENRES = (
    "jazz", "hip hop", "lo-fi", "lofi", "rock", "classical", "pop", "soul", "ambient",
    "blues", "funk", "folk", "indie", "electronic", "house", "techno", "reggae", "metal",
    "r&b", "r and b", "disco", "country", "latin", "k-pop", "gospel", "punk",
)  # fmt: skip

# The catalog's canonical names of a few of them, for recommendation requests that name a
# genre in their context.
CANONICAL_GENRES = (
    "jazz", "hip-hop", "lo-fi", "rock", "classical", "pop", "soul", "ambient", "blues",
    "funk", "folk", "indie", "electronic", "house",
)  # fmt: skip

MOODS = (
    "I'm feeling a bit low today",
    "I'm so happy right now",
    "really stressed about work",
    "feeling anxious and tired",
    "not happy at all",
    "I'm in a great mood",
    "kind of sad tonight",
    "feeling calm and relaxed",
    "I'm bored",
    "pretty angry to be honest",
    "so excited for the weekend",
    "a little lonely",
    "feeling nostalgic",
    "I'm exhausted",
    "that's better, I feel good now",
    "not too bad actually",
    "I feel great",
    "honestly a bit overwhelmed",
)

ACTIVITIES = (
    "for my workout",
    "while I study",
    "to fall asleep",
    "for the commute",
    "for a morning run",
    "while I'm coding",
    "for a house party",
    "for homework",
    "before bed",
    "at the gym",
    "while I focus",
    "for the drive to work",
)

_MOOD_ONLY = (
    "{mood}",
    "{mood}, play something",
    "{mood}. what would you put on?",
    "{mood}, I need music",
)
_GENRE_ONLY = (
    "play some {genre}",
    "some {genre} please",
    "I'm in the mood for {genre}",
    "more {genre}",
    "anything but {other}, maybe {genre}",
    "let's switch to {genre}",
    "I've been listening to a lot of {genre} lately",
    "not {other} today, {genre} instead",
)
_MOOD_AND_GENRE = (
    "{mood}, maybe some {genre}",
    "{mood}. put on some {genre}",
    "{mood}; {genre} usually helps",
    "{mood} so something {genre}, nothing too loud",
)
_ACTIVITY = (
    "something {genre} {activity}",
    "music {activity}",
    "{genre} {activity} please",
    "I need a playlist {activity}",
    "{mood}, need something {activity}",
    "what's good {activity}?",
)
_ARTIST = (
    "I love {artist}, more like that",
    "play something by {artist}",
    "anything similar to {artist}?",
    "{artist} is great, more {genre} like that",
    "{mood}, maybe {artist}",
    "not feeling {artist} today",
    "{artist} {activity}",
)
_SMALL_TALK = (
    "thanks, that's nice",
    "hmm, not sure about that one",
    "ok what else",
    "that's exactly what I wanted",
    "surprise me",
    "something different",
)

# How often each kind of sentence comes up when artists are known; without them the artist
# share goes to the others.
_KINDS: tuple[tuple[Sequence[str], float], ...] = (
    (_MOOD_ONLY, 0.12),
    (_GENRE_ONLY, 0.22),
    (_MOOD_AND_GENRE, 0.18),
    (_ACTIVITY, 0.18),
    (_ARTIST, 0.20),
    (_SMALL_TALK, 0.10),
)


def compose_message(rng: random.Random, artists: Sequence[str] = ()) -> str:
    """One listener message; artists (names from the catalog) are used when given."""
    kinds = [(group, weight) for group, weight in _KINDS if artists or group is not _ARTIST]
    templates = rng.choices([group for group, _ in kinds], weights=[w for _, w in kinds])[0]
    genre, other = rng.sample(GENRES, 2)
    return rng.choice(templates).format(
        mood=rng.choice(MOODS),
        genre=genre,
        other=other,
        activity=rng.choice(ACTIVITIES),
        artist=rng.choice(artists) if artists else "",
    )
