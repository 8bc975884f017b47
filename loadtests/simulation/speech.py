"""What a simulated listener says: their mood in the words of the product's mood lexicon,
and genres and artists by the catalog's names.

A listener puts their hidden mood into words by choosing, among the lexicon's anchor moods
and the modifiers "a bit" / "really", the phrase whose meaning lies closest to how they
feel, then one of that anchor's words at random ("I'm feeling a bit gloomy"). Which phrases
mean what is not assumed: every phrase is run through the conversation service's own
``understand()`` once, when the vocabulary is built, and only phrases that it reads as
intended are kept. The product then understands the messages with the same code as in
production; the simulator never hands it a mood or an entity directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from conversation_service.understanding import GENRE_SPELLINGS, EntityMatcher, understand
from recommendation_service.catalog import CatalogIndex
from v5_shared.domain.lexicon import MOOD_LEXICON, NAMED_MOODS

from .listeners import Listener, ListenerState

MOOD_MODIFIERS = ("", "a bit ", "really ")
MOOD_TEMPLATE = "I'm feeling {phrase}"
GENRE_TEMPLATES = (
    "play some {name}",
    "I'm in the mood for {name}",
    "more {name} please",
    "some {name} would be nice",
)
ARTIST_TEMPLATES = ("something like {name}", "I love {name}", "put on some {name}")


@dataclass(frozen=True)
class MoodPhrase:
    valence: float  # what understand() reads from the phrase
    arousal: float
    phrases: tuple[str, ...]  # e.g. "a bit gloomy", "a bit glum": all read the same


class Vocabulary:
    """The phrases a listener can use, each checked against ``understand()``."""

    def __init__(self, matcher: EntityMatcher) -> None:
        self.matcher = matcher
        by_meaning: dict[tuple[float, float], list[str]] = {}
        for anchor in NAMED_MOODS:
            terms = [
                term
                for term, point in MOOD_LEXICON.items()
                if point.label == anchor.label and term.isascii() and _plain(term)
            ]
            for modifier in MOOD_MODIFIERS:
                for term in terms:
                    phrase = modifier + term
                    said = understand(MOOD_TEMPLATE.format(phrase=phrase), matcher)
                    if said.mood is None or said.artists or said.genres or said.activity:
                        continue
                    if len(said.moods) != 1 or said.moods[0] != anchor.label:
                        continue
                    key = (said.mood.valence, said.mood.arousal)
                    by_meaning.setdefault(key, []).append(phrase)
        self.moods = tuple(
            MoodPhrase(v, a, tuple(phrases)) for (v, a), phrases in sorted(by_meaning.items())
        )
        self._mood_points = np.array([(m.valence, m.arousal) for m in self.moods])

        self.genres: dict[str, tuple[str, ...]] = {}
        for genre in matcher.genres:
            spellings = [genre, *GENRE_SPELLINGS.get(genre, ())]
            kept = [
                s
                for s in spellings
                if all(
                    understand(t.format(name=s), matcher).genres == [genre] for t in GENRE_TEMPLATES
                )
            ]
            if kept:
                self.genres[genre] = tuple(kept)
        self._artist_ok: dict[str, bool] = {}

    def mood_phrase(self, valence: float, arousal: float) -> MoodPhrase:
        """The phrase whose meaning is closest to the mood (valence, arousal)."""
        gaps = ((self._mood_points - np.array([valence, arousal])) ** 2).sum(axis=1)
        return self.moods[int(gaps.argmin())]

    def artist_sayable(self, name: str) -> bool:
        ok = self._artist_ok.get(name)
        if ok is None:
            ok = all(
                understand(t.format(name=name), self.matcher).artists == [name]
                for t in ARTIST_TEMPLATES
            )
            self._artist_ok[name] = ok
        return ok


def _plain(term: str) -> bool:
    return term.replace(" ", "").replace("'", "").isalpha()


def say_mood(vocabulary: Vocabulary, valence: float, arousal: float, pick: float) -> str:
    """The listener's words for the mood; ``pick`` in [0, 1) chooses among synonyms."""
    phrase = vocabulary.mood_phrase(valence, arousal)
    word = phrase.phrases[int(pick * len(phrase.phrases)) % len(phrase.phrases)]
    return MOOD_TEMPLATE.format(phrase=word)


def say_genre(vocabulary: Vocabulary, genre: str, pick: float) -> str | None:
    spellings = vocabulary.genres.get(genre)
    if not spellings:
        return None
    n = len(spellings) * len(GENRE_TEMPLATES)
    k = int(pick * n) % n
    return GENRE_TEMPLATES[k % len(GENRE_TEMPLATES)].format(
        name=spellings[k // len(GENRE_TEMPLATES)]
    )


def say_artist(vocabulary: Vocabulary, artist: str, pick: float) -> str | None:
    if not vocabulary.artist_sayable(artist):
        return None
    template = ARTIST_TEMPLATES[int(pick * len(ARTIST_TEMPLATES)) % len(ARTIST_TEMPLATES)]
    return template.format(name=artist)


def compose(parts: Sequence[str | None]) -> str | None:
    """One message of the parts said (", "-joined), or None when there is nothing to say."""
    said = [p for p in parts if p]
    return ", ".join(said) if said else None


def _pick(weights: Sequence[float], pick: float) -> int:
    total = float(sum(weights))
    edge = pick * total
    running = 0.0
    for i, w in enumerate(weights):
        running += w
        if edge < running:
            return i
    return len(weights) - 1


def utterance(
    vocabulary: Vocabulary,
    catalog: CatalogIndex,
    listener: Listener,
    state: ListenerState,
    draws: Sequence[float],
    *,
    opening: bool,
    always_mood: bool = False,
) -> tuple[str | None, bool]:
    """What the listener says before a recommendation (None: nothing), and whether it
    told their mood. ``draws``: at least 7 uniforms from the listener's own stream.

    At a session's start they tell their mood, name a favourite genre and an artist they
    like, each with their own habitual chance. Later, with the chance ``talks_again``,
    they speak again: their mood when it has moved since they last told it (or at a coin's
    toss), and now and then a genre or an artist again."""
    if not (opening or always_mood or draws[0] < listener.talks_again):
        return None, False
    if opening:
        say_mood_now = draws[1] < listener.reports_mood
        say_genre_now = draws[2] < listener.names_genre
        say_artist_now = draws[3] < listener.names_artist
    else:
        moved = state.reported_valence is None or abs(state.valence - state.reported_valence) > 0.15
        say_mood_now = moved or draws[1] < 0.5
        say_genre_now = draws[2] < 0.5 * listener.names_genre
        say_artist_now = draws[3] < 0.5 * listener.names_artist
    say_mood_now = say_mood_now or always_mood
    parts: list[str | None] = []
    if say_mood_now:
        parts.append(say_mood(vocabulary, state.valence, state.arousal, draws[4]))
    if say_genre_now:
        affinity = listener.affinity_at(state.interaction)
        names = catalog.genre_names
        sayable = [g for g in range(len(names)) if names[g] in vocabulary.genres]
        liked = [g for g in sayable if affinity[g] >= 0.5] or [
            max(sayable, key=lambda g: affinity[g])
        ]
        genre = liked[_pick([affinity[g] ** 4 for g in liked], draws[5])]
        parts.append(say_genre(vocabulary, names[genre], draws[6]))
    if say_artist_now and listener.artist_affinity:
        artists = sorted(listener.artist_affinity)
        artist = artists[_pick([listener.artist_affinity[a] for a in artists], draws[5])]
        parts.append(say_artist(vocabulary, catalog.artist_names[artist], draws[6]))
    return compose(parts), say_mood_now
