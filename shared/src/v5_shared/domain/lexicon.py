"""The mood and activity lexicon, written for this project (no third-party lexicons).

Moods are points in Russell's circumplex: valence (unpleasant -1 .. pleasant +1) on one
axis, arousal (sleepy -1 .. activated +1) on the other. Every lexicon term maps to one of
the labelled anchor moods below and takes the anchor's coordinates, so a term and its
label always agree and the label of any other point is simply its nearest anchor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class MoodPoint:
    """A labelled point in the valence-arousal plane, both coordinates in [-1, 1]."""

    label: str
    valence: float
    arousal: float


# Anchor placement follows the circumplex quadrants: pleasant-activated (excited,
# energetic, lively), pleasant-mid (happy, romantic, okay), pleasant-deactivated (content,
# relaxed, mellow, calm, nostalgic), unpleasant-deactivated (sad, depressed, tired,
# sleepy, bored, down), unpleasant-activated (angry, stressed, anxious, frustrated,
# uneasy). The strong moods sit near the rim; a ring of mild ones (okay, lively, mellow,
# sleepy, down, uneasy) around neutral gives weaker points, such as a negated or
# diminished word ("not sad", "a bit tired"), a fitting name instead of the name of
# whichever rim mood happens to be closest.
NAMED_MOODS: Sequence[MoodPoint] = (
    MoodPoint("excited", 0.70, 0.75),
    MoodPoint("energetic", 0.40, 0.85),
    MoodPoint("happy", 0.80, 0.25),
    MoodPoint("romantic", 0.75, -0.05),
    MoodPoint("content", 0.60, -0.20),
    MoodPoint("relaxed", 0.60, -0.50),
    MoodPoint("calm", 0.35, -0.75),
    MoodPoint("nostalgic", 0.15, -0.55),
    MoodPoint("tired", -0.25, -0.75),
    MoodPoint("bored", -0.35, -0.65),
    MoodPoint("sad", -0.70, -0.40),
    MoodPoint("depressed", -0.80, -0.75),
    MoodPoint("frustrated", -0.65, 0.35),
    MoodPoint("angry", -0.80, 0.75),
    MoodPoint("stressed", -0.50, 0.80),
    MoodPoint("anxious", -0.25, 0.75),
    MoodPoint("okay", 0.30, 0.05),
    MoodPoint("lively", 0.25, 0.40),
    MoodPoint("mellow", 0.30, -0.35),
    MoodPoint("sleepy", -0.10, -0.40),
    MoodPoint("down", -0.40, -0.10),
    MoodPoint("uneasy", -0.25, 0.35),
    MoodPoint("neutral", 0.00, 0.00),
)

_ANCHORS: dict[str, MoodPoint] = {mood.label: mood for mood in NAMED_MOODS}

# Terms by the anchor they express. Words, multi-word phrases (matched on word
# boundaries as token sequences) and emoji or emoticons all live here.
_TERMS_BY_LABEL: dict[str, tuple[str, ...]] = {
    "excited": (
        "excited", "exciting", "thrilled", "ecstatic", "elated", "euphoric", "stoked",
        "psyched", "hyped", "hype", "pumped", "pumped up", "fired up", "over the moon",
        "on top of the world", "on cloud nine", "buzzing", "🤩", "🎉", "🥳", "🔥",
    ),
    "energetic": (
        "energetic", "energized", "energised", "motivated", "hyper", "full of energy",
        "wide awake", "💪", "⚡",
    ),
    "lively": ("lively", "upbeat", "perky", "peppy", "bubbly", "playful"),
    "happy": (
        "happy", "happier", "happiest", "glad", "cheerful", "joyful", "joyous", "delighted",
        "jolly", "merry", "proud", "in a good mood", "good mood", "great mood",
        "never been happier", "couldn't be happier", "never felt better",
        "couldn't be better", "great day", "good day", "amazing", "awesome", "fantastic",
        "wonderful", "great", "good",
        "😀", "😃", "😄", "😁", "🙂", "😊", "☺", "😆", "😂", "🤣", ":)", ":-)", ":d",
    ),
    "romantic": (
        "romantic", "in love", "smitten", "lovestruck", "flirty", "passionate",
        "😍", "🥰", "❤", "♥", "💕", "💖", "😘", "<3",
    ),
    "content": (
        "content", "satisfied", "grateful", "thankful", "hopeful", "optimistic", "pleased",
        "blessed", "can't complain", "😎",
    ),
    "okay": ("okay", "ok", "alright", "fine", "not bad", "decent", "better"),
    "relaxed": (
        "relaxed", "chill", "chilled", "chilled out", "at ease", "cozy", "cosy", "comfy", "😌",
    ),
    "mellow": ("mellow", "laid back", "easygoing", "unbothered"),
    "calm": (
        "calm", "calmer", "peaceful", "serene", "tranquil", "at peace", "zen", "soothed",
        "quiet", "🧘",
    ),
    "nostalgic": (
        "nostalgic", "nostalgia", "reminiscing", "sentimental", "wistful", "bittersweet",
        "memory lane",
    ),
    "neutral": ("indifferent", "neutral", "😐", "😑", "😶"),
    "tired": (
        "tired", "exhausted", "drained", "weary", "fatigued", "knackered", "lethargic",
        "sluggish", "worn out", "burnt out", "burned out", "burnout", "long day", "😴",
    ),
    "sleepy": ("sleepy", "drowsy", "half asleep", "yawning", "🥱", "😪"),
    "bored": ("bored", "boredom", "meh", "unmotivated", "uninspired", "apathetic", "🙄"),
    "down": (
        "down", "low", "unhappy", "glum", "gloomy", "blah", "disappointed", "under the weather",
        "in a funk", "bad mood", "bad day", "rough day", "hard day", "tough day",
        "could be better", "bad", "worse", "lousy", "🙁", "☹", "😕",
    ),
    "sad": (
        "sad", "sadder", "sadness", "heartbroken", "heartbreak", "broken hearted",
        "brokenhearted", "lonely", "miserable", "melancholy", "melancholic", "upset",
        "crying", "tearful", "teary", "grieving", "grief", "mourning", "gutted",
        "down in the dumps", "blue", "hurt", "terrible", "awful", "horrible",
        "😢", "😭", "😞", "😔", "💔", ":(", ":-(", ":'(",
    ),
    "depressed": (
        "depressed", "depression", "hopeless", "despair", "devastated", "numb", "empty",
        "rock bottom", "worthless",
    ),
    "anxious": (
        "anxious", "anxiety", "nervous", "worried", "worrying", "on edge",
        "jittery", "panicky", "panicking", "scared", "afraid", "frightened",
        "😰", "😨", "😟", "😱", "😬",
    ),
    "uneasy": ("uneasy", "restless", "unsettled", "antsy", "fidgety"),
    "stressed": (
        "stressed", "stressed out", "stress", "stressful", "overwhelmed", "tense",
        "pressured", "under pressure", "frazzled", "swamped", "freaking out", "😩", "😫",
        "😖",
    ),
    "frustrated": (
        "frustrated", "annoyed", "irritated", "fed up", "sick of", "aggravated", "grumpy",
        "cranky", "irritable", "😤", "😒",
    ),
    "angry": (
        "angry", "mad", "furious", "livid", "pissed", "pissed off", "enraged", "rage",
        "raging", "fuming", "outraged", "😡", "😠", "🤬",
    ),
}  # fmt: skip


# Emoji that keyboards usually send with the emoji-presentation selector (U+FE0F). The
# matcher drops the selector before matching; both spellings are listed so that a lookup
# of either works.
_SELECTOR_EMOJI = frozenset({"❤", "☺", "☹", "♥", "⚡"})


def _build_lexicon() -> dict[str, MoodPoint]:
    lexicon: dict[str, MoodPoint] = {}
    for label, terms in _TERMS_BY_LABEL.items():
        for term in terms:
            spellings = [term, term + "\ufe0f"] if term in _SELECTOR_EMOJI else [term]
            for spelling in spellings:
                if spelling in lexicon:
                    raise ValueError(f"mood term {spelling!r} listed twice")
                lexicon[spelling] = _ANCHORS[label]
    return lexicon


MOOD_LEXICON: Mapping[str, MoodPoint] = MappingProxyType(_build_lexicon())

# Words that are moods only when they describe the speaker: "I feel great" is a mood,
# "great jazz" or "a good song" is not; "feeling down" is, "I'm down for some jazz" is not
# (a following "for"/"to"/"with" rules that reading out).
CUE_REQUIRED_TERMS: frozenset[str] = frozenset(
    {
        "good", "great", "fine", "okay", "ok", "alright", "bad", "low", "down", "blue",
        "hurt", "empty", "amazing", "awesome", "fantastic", "wonderful", "terrible", "awful",
        "horrible", "lousy", "content", "mad", "decent", "not bad", "better", "worse",
    }
)  # fmt: skip
# Words that show the speaker is describing themselves, looked for just before such a term.
FEELING_CUES: frozenset[str] = frozenset(
    {
        "feel", "feels", "feeling", "felt", "i'm", "im", "am", "i've", "been", "being",
        "getting", "got", "doing", "become", "became", "seem", "kinda",
    }
)  # fmt: skip
NOT_MOOD_BEFORE: frozenset[str] = frozenset({"for", "to", "with"})

# Negators flip a mood (see understanding.py for how far). "n't" forms are recognised
# by their ending, and apostrophe-less spellings ("dont", "isnt") are listed here.
NEGATORS: frozenset[str] = frozenset(
    {
        "not", "never", "no longer", "no more", "hardly", "nor", "neither", "without",
        "cannot", "dont", "doesnt", "didnt", "isnt", "wasnt", "arent", "aint", "cant",
        "wont", "havent", "hasnt", "couldnt", "wouldnt", "shouldnt", "not at all",
    }
)  # fmt: skip
# Factors applied to a mood point's distance from neutral.
INTENSIFIERS: Mapping[str, float] = MappingProxyType(
    {
        "really": 1.3, "very": 1.3, "so": 1.3, "extremely": 1.5, "super": 1.4,
        "incredibly": 1.5, "totally": 1.3, "absolutely": 1.4, "completely": 1.4,
        "utterly": 1.5, "deeply": 1.4, "terribly": 1.4, "insanely": 1.5, "seriously": 1.3,
        "truly": 1.3, "too": 1.2, "quite": 1.15, "pretty": 1.15, "hella": 1.4,
        "mega": 1.4, "beyond": 1.4,
    }
)  # fmt: skip
DIMINISHERS: Mapping[str, float] = MappingProxyType(
    {
        "a bit": 0.6, "a little": 0.6, "a little bit": 0.55, "a tad": 0.6, "slightly": 0.6,
        "kind of": 0.65, "kinda": 0.65, "sort of": 0.65, "sorta": 0.65, "somewhat": 0.7,
        "mildly": 0.6, "a touch": 0.6, "fairly": 0.8, "barely": 0.5,
    }
)  # fmt: skip

# Target track energy per activity: high for exercise and dancing, middling for travel,
# low for concentration and lower still for winding down and sleep.
ACTIVITY_ENERGY: Mapping[str, float] = MappingProxyType(
    {
        "workout": 0.9,
        "running": 0.85,
        "party": 0.85,
        "commute": 0.6,
        "focus": 0.35,
        "study": 0.35,
        "relax": 0.3,
        "sleep": 0.1,
    }
)

# How listeners name each activity. Ambiguous words ("run", "work", "bed", "drive")
# appear only inside phrases that make the activity clear.
_ACTIVITY_TERMS_BY_ACTIVITY: dict[str, tuple[str, ...]] = {
    "workout": (
        "workout", "workouts", "work out", "working out", "gym", "exercise", "exercising",
        "training", "lifting", "weightlifting", "crossfit", "cardio", "hiit", "spin class",
    ),
    "running": (
        "running", "jogging", "jog", "my run", "a run", "morning run", "evening run",
        "long run", "marathon", "sprinting", "5k", "10k",
    ),
    "study": (
        "study", "studying", "study session", "homework", "exam", "exams", "revision",
        "revising", "cramming",
    ),
    "focus": (
        "focus", "focusing", "concentrate", "concentrating", "concentration", "working",
        "at work", "for work", "while i work", "deep work", "coding", "programming",
        "reading", "writing",
    ),
    "sleep": (
        "sleep", "sleeping", "asleep", "fall asleep", "bedtime", "before bed", "for bed",
        "in bed", "nap", "napping", "insomnia", "lullaby", "lullabies",
    ),
    "party": (
        "party", "partying", "parties", "house party", "pregame", "pre game", "clubbing",
        "night out", "dancing", "dance party",
    ),
    "commute": (
        "commute", "commuting", "driving", "road trip", "my drive", "the drive",
        "a drive", "long drive", "drive home", "drive to work", "on the train",
        "on the bus", "train ride", "bus ride", "way to work", "way home",
    ),
    "relax": (
        "relax", "relaxing", "relaxation", "unwind", "unwinding", "wind down",
        "winding down", "chill out", "chilling out", "chilling", "lounging",
        "meditation", "meditating", "meditate", "yoga", "take it easy",
    ),
}  # fmt: skip


def _build_activity_terms() -> dict[str, str]:
    terms: dict[str, str] = {}
    for activity, spellings in _ACTIVITY_TERMS_BY_ACTIVITY.items():
        for spelling in spellings:
            if spelling in terms:
                raise ValueError(f"activity term {spelling!r} listed twice")
            terms[spelling] = activity
    return terms


# Term -> canonical activity (a key of ACTIVITY_ENERGY); canonical names map to themselves.
ACTIVITY_TERMS: Mapping[str, str] = MappingProxyType(_build_activity_terms())


def nearest_mood(valence: float, arousal: float) -> MoodPoint:
    """The named anchor mood closest (Euclidean) to the point; ties go to the first listed."""
    best = NAMED_MOODS[0]
    best_distance = math.inf
    for mood in NAMED_MOODS:
        distance = (mood.valence - valence) ** 2 + (mood.arousal - arousal) ** 2
        if distance < best_distance:
            best, best_distance = mood, distance
    return best


def mood_of_text(text: str) -> MoodPoint | None:
    """A mood named on its own (a request's `context.mood`: "happy", "calm", "😢"), or None
    when the lexicon does not know it."""
    term = " ".join(text.strip().lower().split())
    point = MOOD_LEXICON.get(term)
    if point is not None:
        return point
    return next((m for m in NAMED_MOODS if m.label == term), None)
