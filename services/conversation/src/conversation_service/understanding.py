"""What one message says: the catalog's artists and genres, the mood, the activity.

Everything works on one tokenisation of the message (lower-cased words on word
boundaries, emoji as tokens of their own, clause breaks remembered) and on prefix tries
of token sequences built once per catalog, so understanding a message costs a few
dictionary lookups per word however large the catalog is.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate, compress
from typing import Any, Generic, Literal, TypeVar

from v5_shared.catalog.genres import canonical_genre
from v5_shared.domain.lexicon import (
    ACTIVITY_ENERGY,
    ACTIVITY_TERMS,
    CUE_REQUIRED_TERMS,
    DIMINISHERS,
    FEELING_CUES,
    INTENSIFIERS,
    MOOD_LEXICON,
    NEGATORS,
    NOT_MOOD_BEFORE,
    MoodPoint,
    nearest_mood,
)

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Understanding:
    """What was found in one message."""

    artists: list[str]  # catalog spelling, order of first appearance, unique
    genres: list[str]  # canonical lower-case names, order of first appearance, unique
    moods: list[str]  # labels of the moods expressed in this message (after negation)
    mood: MoodPoint | None  # the turn's combined mood, labelled by its nearest named mood
    activity: str | None  # a key of ACTIVITY_ENERGY
    target_energy: float | None  # the activity's target track energy

    def turn_record(self, message: str, at: str) -> dict[str, Any]:
        """The session window's entry for the turn that said `message` (stored in Redis)."""
        mood = self.mood
        return {
            "message": message,
            "mood": None
            if mood is None
            else {"label": mood.label, "valence": mood.valence, "arousal": mood.arousal},
            "entities": {"artists": self.artists, "genres": self.genres, "moods": self.moods},
            "activity": self.activity,
            "target_energy": self.target_energy,
            "at": at,
        }


# --------------------------------------------------------------------------- tokenising

# Apostrophe look-alikes (U+2019, U+2018, U+02BC, acute accent, backtick) become "'" so
# that a curly "don't" or "velvet harbor's" tokenises like its ASCII spelling.
_APOSTROPHES = re.compile("[\u2019\u2018\u02bc\u00b4`]")
# The emoji presentation selector, the zero-width joiner and skin-tone modifiers carry no
# mood: dropping them makes "❤️" the lexicon's "❤" and "💪🏽" its "💪".
_INVISIBLE = re.compile("[\ufe0f\u200d\U0001f3fb-\U0001f3ff]")
_COMBINING_MARKS = re.compile("[\u0300-\u036f]+")


def _normalise(text: str) -> str:
    # Most messages are ASCII; skipping the Unicode work for them keeps the common path fast.
    if text.isascii():
        return text.replace("`", "'") if "`" in text else text
    text = _INVISIBLE.sub("", _APOSTROPHES.sub("'", text))
    # NFKD + dropping accents lets "Beyonce" match "Beyoncé" and folds full-width letters.
    return _COMBINING_MARKS.sub("", unicodedata.normalize("NFKD", text))


_WORD = r"[\w&]+(?:'[\w&]+)*"
_WORD_RE = re.compile(_WORD)


def _is_word_term(term: str) -> bool:
    return " ".join(_WORD_RE.findall(term)) == term


# Emoticons are made of punctuation that also ends clauses (":)", ":'("); each is first
# replaced by a private-use character, which then tokenises like an emoji.
def _symbol_terms() -> tuple[dict[str, str], set[str]]:
    emoticons: dict[str, str] = {}
    symbols: set[str] = set()
    for term in MOOD_LEXICON:
        if _is_word_term(term):
            continue
        symbol = _normalise(term)
        if symbol.isascii():
            symbol = emoticons[term] = chr(0xE000 + len(emoticons))
        symbols.add(symbol)
    return emoticons, symbols


_EMOTICONS, _SYMBOLS = _symbol_terms()
_EMOTICON_RE = re.compile(
    "|".join(
        # An emoticon ending in a letter or digit (":d", "<3") must not swallow the start
        # of a word ("note:do", "<30").
        re.escape(e) + (r"(?!\w)" if re.search(r"\w$", e) else "")
        for e in sorted(_EMOTICONS, key=len, reverse=True)
    ),
    re.IGNORECASE,
)
_EMOTICON_STARTS = frozenset(e[0] for e in _EMOTICONS)
_SINGLE_SYMBOLS = "".join(sorted(s for s in _SYMBOLS if len(s) == 1))
_LONG_SYMBOLS = sorted((s for s in _SYMBOLS if len(s) > 1), key=len, reverse=True)
_TOKEN = "|".join(
    [*map(re.escape, _LONG_SYMBOLS), _WORD]
    + ([f"[{re.escape(_SINGLE_SYMBOLS)}]"] if _SINGLE_SYMBOLS else [])
)
_TOKEN_RE = re.compile(_TOKEN)
# Clause breaks are punctuation and the words that open a contrasting clause: a negation
# before "but" does not reach past it. Breaks are found by the same scan as the tokens.
_BREAK_CHARS = '.,;:!?()[]{}"\n\u2026\u2013\u2014'
_TOKEN_OR_BREAK_RE = re.compile(f"{_TOKEN}|[{re.escape(_BREAK_CHARS)}]+")
_BREAK_SET = frozenset(_BREAK_CHARS)
_CLAUSE_WORDS = frozenset({"but", "though", "although", "however", "except"})


def _replace_emoticons(text: str) -> str:
    if not any(start in text for start in _EMOTICON_STARTS):
        return text
    return _EMOTICON_RE.sub(lambda m: _EMOTICONS[m.group().casefold()], text)


def _strip_possessives(tokens: list[str], text: str) -> list[str]:
    # "velvet harbor's new song" names Velvet Harbor.
    if "'s" not in text and "'S" not in text:
        return tokens
    return [t[:-2] if len(t) > 2 and t.endswith(("'s", "'S")) else t for t in tokens]


class _Tokens:
    """One message as tokens: case-folded words, each with its clause number."""

    __slots__ = ("_raw", "_source", "clauses", "words")

    def __init__(self, text: str) -> None:
        self._source = text
        self._raw: list[str] | None = None
        folded = _replace_emoticons(_normalise(text.casefold()))
        found = _TOKEN_OR_BREAK_RE.findall(folded)
        # Comprehensions rather than one loop with appends: this runs for every token of
        # every message and is most of the cost of understanding one.
        is_break = [token[0] in _BREAK_SET for token in found]
        starts_clause = [b or t in _CLAUSE_WORDS for t, b in zip(found, is_break, strict=True)]
        keep = [not b for b in is_break]
        self.words = _strip_possessives(list(compress(found, keep)), folded)
        self.clauses = list(compress(accumulate(starts_clause), keep))

    def raw(self, index: int) -> str | None:
        """Token ``index`` as written (case kept), for the few case-sensitive names."""
        if self._raw is None:
            source = _replace_emoticons(_normalise(self._source))
            self._raw = _strip_possessives(_TOKEN_RE.findall(source), source)
        # Case folding can, rarely, change how a text splits; then no token is trusted.
        if len(self._raw) != len(self.words):
            return None
        return self._raw[index]


def _tokenize(text: str) -> _Tokens:
    return _Tokens(text)


def _phrase_tokens(phrase: str) -> tuple[str, ...]:
    return tuple(_tokenize(phrase).words)


# --------------------------------------------------------------------------- tries


class _Node(Generic[V]):
    __slots__ = ("children", "value")

    def __init__(self) -> None:
        self.children: dict[str, _Node[V]] = {}
        self.value: V | None = None


class _Trie(Generic[V]):
    """Token sequences -> values, answering the longest match starting at a position."""

    def __init__(self) -> None:
        # The root's children are exposed so callers can test a word before calling
        # match(): most words start no entry, and the test is cheaper than the call.
        self.root: dict[str, _Node[V]] = {}

    def add(self, tokens: Sequence[str], value: V, *, replace: bool = False) -> bool:
        """Store ``value`` under ``tokens``; keeps an existing value unless ``replace``."""
        if not tokens:
            return False
        children = self.root
        node: _Node[V] | None = None
        for token in tokens:
            node = children.get(token)
            if node is None:
                node = children[token] = _Node()
            children = node.children
        assert node is not None
        if node.value is not None and not replace:
            return False
        node.value = value
        return True

    def get(self, tokens: Sequence[str]) -> V | None:
        children = self.root
        node: _Node[V] | None = None
        for token in tokens:
            node = children.get(token)
            if node is None:
                return None
            children = node.children
        return None if node is None else node.value

    def match(self, words: Sequence[str], start: int, stop: int) -> tuple[int, V] | None:
        """The longest entry spelled by ``words[start:end]`` with ``end <= stop``."""
        node = self.root.get(words[start])
        best: tuple[int, V] | None = None
        end = start + 1
        while node is not None:
            if node.value is not None:
                best = (end, node.value)
            if end >= stop:
                break
            node = node.children.get(words[end])
            end += 1
        return best


# --------------------------------------------------------------------------- entities

# Extra spellings of the canonical genres. The compact form ("hiphop", "lofi") and the
# spaced form ("hip hop", "lo fi") of every genre name are derived automatically.
GENRE_SPELLINGS: dict[str, tuple[str, ...]] = {
    "hip-hop": ("rap",),
    "r&b": ("rnb", "r and b", "r n b", "r'n'b", "r & b", "rhythm and blues"),
    "electronic": ("electronica", "edm"),
    "jazz": ("jazzy",),
    "blues": ("bluesy",),
    "funk": ("funky",),
    "soul": ("soulful",),
    "folk": ("folky", "folksy"),
    "pop": ("poppy",),
    "rock": ("rock n roll", "rock and roll", "rock'n'roll", "rocknroll"),
    "latin": ("latino", "latina"),
}

# Genre names that are also everyday words: after a determiner they are the word ("my
# house", "the country", "your soul") unless a music noun follows ("the house music").
_EVERYDAY_GENRE_WORDS = frozenset(
    {
        "house", "country", "soul", "rock", "metal", "punk", "folk", "latin", "gospel",
        "pop", "indie", "ambient", "electronic", "disco", "funk",
    }
)  # fmt: skip
_DETERMINERS = frozenset(
    {"a", "an", "the", "my", "your", "his", "her", "our", "their", "this", "that", "its",
     "whole", "entire", "every"}
)  # fmt: skip
_MUSIC_NOUNS = frozenset(
    {
        "music", "song", "songs", "track", "tracks", "tune", "tunes", "band", "bands",
        "artist", "artists", "album", "albums", "playlist", "playlists", "record",
        "records", "vibe", "vibes", "station", "radio", "mix", "mixes", "singer", "singers",
        "hits", "classics", "stuff", "beats", "jams", "sound", "sounds", "genre", "scene",
        "concert", "set", "sets", "anthems", "ballads",
    }
)  # fmt: skip
# Idioms that contain a genre word without meaning the genre.
_NOT_GENRE_PHRASES: tuple[tuple[str, str], ...] = (
    ("house party", "house"),
    ("house parties", "house"),
    ("in a funk", "funk"),
    ("pop on", "pop"),
    ("pop up", "pop"),
    ("rock bottom", "rock"),
    ("soul food", "soul"),
    ("gospel truth", "gospel"),
)

# Everyday words that a one-word artist name ("Yes", "Focus", "Heart") may be: such a
# name is matched only when written with the catalog's capitalisation.
_STOPWORDS = frozenset(
    """a about after again all also always am an and any anything are as at away back be
    because been before being best better big both but by can could day did do does doing
    done down each else even ever every everything feel for from get give go going gone good
    got great had has have he hear her here hey hi him his how i if in into is it its just
    keep kind know last late let like listen little long lot love make me more morning most
    much music my need never new next nice night no not now of off oh ok okay old on once
    one only or other our out over play please put really right same say see she should
    show so some something song songs soon sound start still stop such sure take tell than
    thank thanks that the their them then there these they thing things think this those
    time to today tonight too track tracks try up us very want was way we well were what
    when where which while who why will with without work would yeah yes yet you your""".split()
)


@dataclass(frozen=True, slots=True)
class _Entity:
    kind: Literal["artist", "genre", "none"]  # "none": an idiom that consumes its words
    name: str
    exact: str | None = None  # a one-word artist matched only in this capitalisation
    everyday: bool = False  # an everyday word unless no determiner precedes it
    needs_music_noun: bool = False  # a mood/activity word: a genre only in "sad songs"


def _genre_surfaces(name: str) -> list[tuple[str, ...]]:
    tokens = _phrase_tokens(name)
    surfaces = [tokens]
    if len(tokens) > 1:
        surfaces.append(("".join(tokens),))
    if "and" in tokens:
        for joiner in ("&", "n"):
            surfaces.append(tuple(joiner if t == "and" else t for t in tokens))
    return surfaces


def _lexicon_words() -> frozenset[str]:
    words: set[str] = set(FEELING_CUES) | set(INTENSIFIERS) | set(DIMINISHERS)
    words |= {t for t in (*MOOD_LEXICON, *ACTIVITY_TERMS) if " " not in t}
    return frozenset(words)


_LEXICON_WORDS = _lexicon_words()


class EntityMatcher:
    """Built once from the catalog; matching a message costs O(words x longest name),
    never a loop over artists."""

    def __init__(self, artist_names: Iterable[str], genres: Iterable[str]) -> None:
        self._trie: _Trie[_Entity] = _Trie()
        genre_names: list[str] = []
        for genre in genres:
            try:
                name = canonical_genre(genre)
            except ValueError:
                continue
            if name not in genre_names:
                genre_names.append(name)
        self.genres: tuple[str, ...] = tuple(genre_names)

        # Precedence when two entries are spelled alike: a genre's own name, then an
        # artist, then a genre's alias, then an idiom, then an artist without its "The".
        for name in genre_names:
            for surface in _genre_surfaces(name):
                self._trie.add(surface, self._genre_entity(name, surface))
        artists = self._add_artists(artist_names)
        for name in genre_names:
            for spelling in GENRE_SPELLINGS.get(name, ()):
                surface = _phrase_tokens(spelling)
                self._trie.add(surface, self._genre_entity(name, surface))
        for phrase, genre in _NOT_GENRE_PHRASES:
            if genre in genre_names:
                self._trie.add(_phrase_tokens(phrase), _Entity("none", phrase))
        # "Paper Lanterns" for "The Paper Lanterns"; only for names that keep two words, so
        # that "The Who" does not become every "who".
        for name, tokens in artists:
            if tokens[0] == "the" and len(tokens) >= 3:
                self._trie.add(tokens[1:], _Entity("artist", name))
        self.artist_count = len(artists)

    @staticmethod
    def _genre_entity(name: str, surface: tuple[str, ...]) -> _Entity:
        phrase = " ".join(surface)
        return _Entity(
            "genre",
            name,
            everyday=len(surface) == 1 and surface[0] in _EVERYDAY_GENRE_WORDS,
            # A user's catalog may have genres such as "sad", "sleep" or "party".
            needs_music_noun=phrase in MOOD_LEXICON or phrase in ACTIVITY_TERMS,
        )

    def _add_artists(self, artist_names: Iterable[str]) -> list[tuple[str, tuple[str, ...]]]:
        by_words: dict[tuple[str, ...], tuple[str, str | None]] = {}
        for name in artist_names:
            tokens = _tokenize(name)
            words = tuple(tokens.words)
            if not words:
                continue
            exact = None
            if len(words) == 1 and (words[0] in _STOPWORDS or words[0] in _LEXICON_WORDS):
                exact = tokens.raw(0)
            # Two catalog spellings of one name ("The XX", "The xx"): keep the smaller, so
            # that the choice does not depend on the catalog's order.
            if words not in by_words or name < by_words[words][0]:
                by_words[words] = (name, exact)
        added: list[tuple[str, tuple[str, ...]]] = []
        for words, (name, exact) in by_words.items():
            if self._trie.add(words, _Entity("artist", name, exact=exact)):
                added.append((name, words))
        return added

    def find(self, text: str) -> tuple[list[str], list[str]]:
        """The artists and genres named in ``text``, each in order of first appearance."""
        artists, genres, _spans = self._scan(_tokenize(text))
        return artists, genres

    def _scan(self, tokens: _Tokens) -> tuple[list[str], list[str], list[tuple[int, int]]]:
        words = tokens.words
        n = len(words)
        root = self._trie.root
        artists: list[str] = []
        genres: list[str] = []
        artist_spans: list[tuple[int, int]] = []
        i = 0
        while i < n:
            if words[i] not in root:
                i += 1
                continue
            found = self._trie.match(words, i, n)
            if found is None:
                i += 1
                continue
            end, entity = found
            if not self._accept(entity, tokens, i, end):
                i += 1
                continue
            if entity.kind == "artist":
                if entity.name not in artists:
                    artists.append(entity.name)
                artist_spans.append((i, end))
            elif entity.kind == "genre" and entity.name not in genres:
                genres.append(entity.name)
            # Consuming the words is what keeps "jazz" inside an artist's name, or "funk"
            # inside "in a funk", from counting as a genre.
            i = end
        return artists, genres, artist_spans

    @staticmethod
    def _accept(entity: _Entity, tokens: _Tokens, start: int, end: int) -> bool:
        if entity.exact is not None:
            return tokens.raw(start) == entity.exact
        if entity.kind != "genre":
            return True
        words = tokens.words
        music_noun_follows = end < len(words) and words[end] in _MUSIC_NOUNS
        if entity.needs_music_noun:
            return music_noun_follows
        if entity.everyday and start > 0 and words[start - 1] in _DETERMINERS:
            return music_noun_follows
        return True


# --------------------------------------------------------------------------- moods

_Modifier = tuple[Literal["negate", "scale"], float]


def _build_modifier_trie() -> _Trie[_Modifier]:
    trie: _Trie[_Modifier] = _Trie()
    for phrase in NEGATORS:
        trie.add(_phrase_tokens(phrase), ("negate", 0.0))
    for phrase, factor in (*INTENSIFIERS.items(), *DIMINISHERS.items()):
        trie.add(_phrase_tokens(phrase), ("scale", factor))
    return trie


def _build_term_trie(terms: Iterable[str]) -> _Trie[str]:
    trie: _Trie[str] = _Trie()
    for term in terms:
        trie.add(_phrase_tokens(term), term)
    return trie


_MODIFIERS = _build_modifier_trie()
_MOOD_TERMS = _build_term_trie(MOOD_LEXICON)
_ACTIVITIES = _build_term_trie(ACTIVITY_TERMS)

# How far back (in words, within the clause) negators, intensifiers and feeling cues
# reach: "I'm not really feeling that happy" has "not" four words before "happy".
_LOOKBACK = 4
# A negated mood is the opposite one, weaker: "not sad" is mildly pleasant, not elated.
_NEGATION_SCALE = 0.5
# Negating a pleasant or neutral word leaves at least this much unpleasantness, so that
# "not okay" is not neutral.
_NEGATION_FLOOR = 0.3
# A negator directly before one of these verbs negates the verb, not the mood: "I can't
# believe how happy I am", "can't stop smiling, so happy", "can't wait, so excited".
_NEGATED_VERBS = frozenset(
    {"wait", "believe", "stop", "help", "imagine", "describe", "explain", "express"}
)
# An intensifier after a negator softens the negation: "not very happy" is milder than
# "not happy".
_NEGATED_INTENSIFIER = 0.8


def _clip(value: float) -> float:
    return -1.0 if value < -1.0 else 1.0 if value > 1.0 else value


def _clause_start(tokens: _Tokens, index: int, limit: int) -> int:
    """The first index in [limit, index) in the clause of ``index``."""
    clauses = tokens.clauses
    start = index
    while start > limit and clauses[start - 1] == clauses[index]:
        start -= 1
    return start


def _modifiers(tokens: _Tokens, start: int, stop: int) -> tuple[bool, float]:
    """Negation and scaling expressed by words[start:stop] (left to right)."""
    words = tokens.words
    root = _MODIFIERS.root
    negated = False
    factor = 1.0
    j = start
    while j < stop:
        word = words[j]
        if word.endswith("n't"):
            if j + 1 >= len(words) or words[j + 1] not in _NEGATED_VERBS:
                negated = not negated
            j += 1
            continue
        found = _MODIFIERS.match(words, j, stop) if word in root else None
        if found is None:
            j += 1
            continue
        j, (kind, value) = found
        if kind == "negate":
            if j >= len(words) or words[j] not in _NEGATED_VERBS:
                negated = not negated
        elif value > 1.0 and negated:
            factor *= _NEGATED_INTENSIFIER
        else:
            factor *= value
    return negated, factor


def _has_cue(tokens: _Tokens, start: int, end: int) -> bool:
    words = tokens.words
    if end < len(words) and words[end] in NOT_MOOD_BEFORE:
        return False
    first = _clause_start(tokens, start, max(0, start - _LOOKBACK))
    return any(words[j] in FEELING_CUES for j in range(first, start))


def _mood_of_term(term: str, negated: bool, factor: float) -> MoodPoint:
    point = MOOD_LEXICON[term]
    valence, arousal = point.valence, point.arousal
    if negated:
        if valence >= 0.0:
            valence = -max(_NEGATION_SCALE * valence, _NEGATION_FLOOR)
        else:
            valence = -_NEGATION_SCALE * valence
        arousal = -_NEGATION_SCALE * arousal
    valence, arousal = _clip(valence * factor), _clip(arousal * factor)
    label = nearest_mood(valence, arousal).label if negated else point.label
    return MoodPoint(label, valence, arousal)


def _blocked(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    return any(s < end and start < e for s, e in spans)


def _moods_and_activity(
    tokens: _Tokens, artist_spans: list[tuple[int, int]]
) -> tuple[list[MoodPoint], str | None]:
    words = tokens.words
    n = len(words)
    mood_root = _MOOD_TERMS.root
    activity_root = _ACTIVITIES.root
    points: list[MoodPoint] = []
    activity: str | None = None
    previous_end = 0  # end of the previous mood term: modifiers do not reach past it
    previous_negated = False
    i = 0
    while i < n:
        word = words[i]
        if activity is None and word in activity_root:
            found_activity = _ACTIVITIES.match(words, i, n)
            if found_activity is not None and not _blocked(artist_spans, i, found_activity[0]):
                activity = ACTIVITY_TERMS[found_activity[1]]
        found = _MOOD_TERMS.match(words, i, n) if word in mood_root else None
        if found is None or _blocked(artist_spans, i, found[0]):
            i += 1
            continue
        end, term = found
        if term in CUE_REQUIRED_TERMS and not _has_cue(tokens, i, end):
            i += 1
            continue
        first = _clause_start(tokens, i, max(previous_end, i - _LOOKBACK))
        negated, factor = _modifiers(tokens, first, i)
        # "not sad or angry": the negation carries over an "or" / "nor" to the next mood.
        if (
            not negated
            and previous_negated
            and i - previous_end == 1
            and words[previous_end] in ("or", "nor")
            and tokens.clauses[previous_end - 1] == tokens.clauses[i]
        ):
            negated = True
        points.append(_mood_of_term(term, negated, factor))
        previous_end, previous_negated = end, negated
        i = end
    return points, activity


def combine_moods(points: Sequence[MoodPoint]) -> MoodPoint | None:
    """The mean of the points, labelled by its nearest named mood; None without points."""
    if not points:
        return None
    valence = round(sum(p.valence for p in points) / len(points), 4)
    arousal = round(sum(p.arousal for p in points) / len(points), 4)
    return MoodPoint(nearest_mood(valence, arousal).label, valence, arousal)


def understand(message: str, matcher: EntityMatcher) -> Understanding:
    """Artists, genres, moods and activity expressed in one message."""
    tokens = _tokenize(message)
    artists, genres, artist_spans = matcher._scan(tokens)
    points, activity = _moods_and_activity(tokens, artist_spans)
    labels = list(dict.fromkeys(p.label for p in points))
    return Understanding(
        artists=artists,
        genres=genres,
        moods=labels,
        mood=combine_moods(points),
        activity=activity,
        target_energy=None if activity is None else ACTIVITY_ENERGY[activity],
    )
