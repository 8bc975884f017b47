"""The conversation service's understanding of a message: lexicon, entities, moods,
activities. Plain functions, no I/O."""

from __future__ import annotations

import math

import pytest

from conversation_service.understanding import EntityMatcher, Understanding, understand
from v5_shared.catalog import CANONICAL_GENRES, generate_catalog
from v5_shared.domain.lexicon import (
    ACTIVITY_ENERGY,
    ACTIVITY_TERMS,
    MOOD_LEXICON,
    NAMED_MOODS,
    MoodPoint,
    nearest_mood,
)

SPEC_EMOJI = ("😀", "😢", "😡", "😴", "❤️", "😌", "🎉", "😭", "🙂", "😞")
SPEC_PHRASES = ("fed up", "over the moon", "on edge", "burnt out")


@pytest.fixture(scope="module")
def catalog_artists() -> set[str]:
    return {artist for track in generate_catalog(seed=5) for artist in track.artists}


@pytest.fixture(scope="module")
def matcher(catalog_artists: set[str]) -> EntityMatcher:
    return EntityMatcher(catalog_artists, CANONICAL_GENRES)


def _anchor(label: str) -> MoodPoint:
    return next(mood for mood in NAMED_MOODS if mood.label == label)


def _mood(message: str, matcher: EntityMatcher) -> MoodPoint:
    mood = understand(message, matcher).mood
    assert mood is not None, message
    return mood


# --------------------------------------------------------------------------- lexicon


def test_lexicon_is_large_and_holds_the_phrases_and_emoji_listeners_use() -> None:
    assert len(MOOD_LEXICON) >= 80
    for term in (*SPEC_PHRASES, *SPEC_EMOJI):
        assert term in MOOD_LEXICON, term
    assert all(term == term.lower() for term in MOOD_LEXICON)


def test_every_point_is_inside_the_plane_and_labelled_by_a_named_mood() -> None:
    labels = {mood.label for mood in NAMED_MOODS}
    assert len(labels) == len(NAMED_MOODS), "anchor labels are unique"
    for term, point in MOOD_LEXICON.items():
        assert -1.0 <= point.valence <= 1.0 and -1.0 <= point.arousal <= 1.0, term
        assert point.label in labels, term
        # A term and its label agree: naming the term's point gives the term's label.
        assert nearest_mood(point.valence, point.arousal).label == point.label, term


@pytest.mark.parametrize(
    ("label", "valence_sign", "arousal"),
    [
        ("happy", 1, "mid"),
        ("excited", 1, "high"),
        ("energetic", 1, "high"),
        ("calm", 1, "low"),
        ("relaxed", 1, "low"),
        ("content", 1, "low"),
        ("angry", -1, "high"),
        ("stressed", -1, "high"),
        ("anxious", -1, "high"),
        ("sad", -1, "low"),
        ("depressed", -1, "low"),
        ("tired", -1, "low"),
        ("bored", -1, "low"),
    ],
)
def test_anchor_moods_sit_in_their_circumplex_quadrant(
    label: str, valence_sign: int, arousal: str
) -> None:
    point = _anchor(label)
    assert point.valence * valence_sign >= 0.2
    if arousal == "high":
        assert point.arousal > 0.5
    elif arousal == "low":
        assert point.arousal < 0.0
    else:
        assert -0.4 < point.arousal < 0.4
    if label == "happy":
        assert point.valence > 0.6


def test_the_named_moods_include_the_usual_names() -> None:
    labels = {mood.label for mood in NAMED_MOODS}
    assert {
        "happy", "excited", "calm", "relaxed", "content", "sad", "depressed", "angry",
        "stressed", "anxious", "tired", "bored", "nostalgic", "romantic", "energetic",
    } <= labels  # fmt: skip


def test_nearest_mood_names_points_by_proximity() -> None:
    for mood in NAMED_MOODS:
        assert nearest_mood(mood.valence, mood.arousal) == mood
    assert nearest_mood(0.95, 0.95).label == "excited"
    assert nearest_mood(-0.95, 0.95).label == "angry"
    assert nearest_mood(-0.8, -0.45).label == "sad"
    assert nearest_mood(0.0, 0.0).label == "neutral"


def test_activities_have_target_energies_and_synonyms() -> None:
    assert {
        "workout", "running", "study", "focus", "sleep", "party", "commute", "relax"
    } <= set(ACTIVITY_ENERGY)  # fmt: skip
    assert all(0.0 <= energy <= 1.0 for energy in ACTIVITY_ENERGY.values())
    assert ACTIVITY_ENERGY["workout"] > ACTIVITY_ENERGY["commute"] > ACTIVITY_ENERGY["study"]
    assert ACTIVITY_ENERGY["study"] > ACTIVITY_ENERGY["sleep"]
    for synonym, activity in {
        "gym": "workout",
        "jogging": "running",
        "studying": "study",
        "working": "focus",
        "bedtime": "sleep",
        "driving": "commute",
    }.items():
        assert ACTIVITY_TERMS[synonym] == activity
    assert set(ACTIVITY_TERMS.values()) <= set(ACTIVITY_ENERGY)


# --------------------------------------------------------------------------- entities


def test_the_default_catalog_names_used_below_exist(catalog_artists: set[str]) -> None:
    assert {"Velvet Harbor", "Mara Quill", "The Paper Lanterns"} <= catalog_artists


@pytest.mark.parametrize(
    "message",
    [
        "I love Velvet Harbor!",
        "velvet harbor's new song",
        "VELVET HARBOR please",
        "play (Velvet Harbor), thanks",
        "something like velvet harbor?",
        "velvet   harbor",
        "Velvet Harbor\u2019s second album",
    ],
)
def test_artists_match_case_insensitively_through_punctuation(
    message: str, matcher: EntityMatcher
) -> None:
    assert matcher.find(message) == (["Velvet Harbor"], [])


def test_artists_come_in_order_of_first_appearance_without_repeats(
    matcher: EntityMatcher,
) -> None:
    artists, _ = matcher.find(
        "The Paper Lanterns, then mara quill, then the paper lanterns again and Velvet Harbor"
    )
    assert artists == ["The Paper Lanterns", "Mara Quill", "Velvet Harbor"]


def test_catalog_multi_word_names_of_every_shape_match(
    matcher: EntityMatcher, catalog_artists: set[str]
) -> None:
    ordered = sorted(catalog_artists)
    samples = [
        next(a for a in ordered if a.startswith("The ")),
        next(a for a in ordered if len(a.split()) == 2 and not a.startswith("The ")),
        next(a for a in ordered if a.endswith((" Trio", " Quartet", " Consort"))),
    ]
    for name in samples:
        assert matcher.find(f"do you know {name.lower()}? i like it")[0] == [name]


def test_partial_names_and_words_inside_words_do_not_match() -> None:
    matcher = EntityMatcher(["Rain Ash", "Velvet Harbor"], ["pop", "rock"])
    assert matcher.find("a brainwash of popcorn and rocks") == ([], [])
    assert matcher.find("velvet is nice") == ([], [])
    assert matcher.find("rain ashes") == ([], [])
    assert matcher.find("Rain Ash and pop-rock") == (["Rain Ash"], ["pop", "rock"])


def test_the_longest_match_at_a_position_wins() -> None:
    matcher = EntityMatcher(["Paper", "The Paper Lanterns", "Mara Quill", "Mara Quill Trio"], [])
    assert matcher.find("I love The Paper Lanterns") == (["The Paper Lanterns"], [])
    assert matcher.find("paper lanterns, without the article") == (["The Paper Lanterns"], [])
    assert matcher.find("just paper") == (["Paper"], [])
    assert matcher.find("the mara quill trio live") == (["Mara Quill Trio"], [])
    assert matcher.find("mara quill solo") == (["Mara Quill"], [])


@pytest.mark.parametrize(
    ("message", "genre"),
    [
        ("some hip hop", "hip-hop"),
        ("hiphop", "hip-hop"),
        ("Hip-Hop!", "hip-hop"),
        ("rap please", "hip-hop"),
        ("rnb", "r&b"),
        ("R&B", "r&b"),
        ("r and b", "r&b"),
        ("r'n'b", "r&b"),
        ("lofi beats", "lo-fi"),
        ("lo-fi", "lo-fi"),
        ("lo fi", "lo-fi"),
        ("kpop", "k-pop"),
        ("K-Pop", "k-pop"),
        ("something jazzy", "jazz"),
        ("classical music", "classical"),
        ("electronica", "electronic"),
        ("edm", "electronic"),
        ("metal.", "metal"),
    ],
)
def test_genres_match_by_name_and_alias(message: str, genre: str, matcher: EntityMatcher) -> None:
    assert matcher.find(message) == ([], [genre])


def test_genres_need_word_boundaries_and_keep_their_order(matcher: EntityMatcher) -> None:
    assert matcher.find("popcorn, rocket, trapeze") == ([], [])
    assert matcher.find("indie rock") == ([], ["indie", "rock"])
    assert matcher.find("jazz, then soul, then jazz again") == ([], ["jazz", "soul"])


def test_genre_words_inside_an_artist_name_are_not_genres() -> None:
    matcher = EntityMatcher(["The Jazz Butcher", "Rock Steady Crew"], ["jazz", "rock"])
    assert matcher.find("the jazz butcher and rock steady crew") == (
        ["The Jazz Butcher", "Rock Steady Crew"],
        [],
    )
    assert matcher.find("the jazz butcher plays jazz") == (["The Jazz Butcher"], ["jazz"])


def test_the_matcher_uses_the_catalog_genres_it_is_given() -> None:
    matcher = EntityMatcher([], ["indie-rock", "drum-and-bass", "Hip Hop", "jazz"])
    assert matcher.find("indie rock and drum n bass") == ([], ["indie-rock", "drum-and-bass"])
    assert matcher.find("hip hop") == ([], ["hip-hop"])
    # Genres the catalog does not have are not invented.
    assert matcher.find("some country and metal") == ([], [])


def test_everyday_words_that_are_genres_need_a_music_reading(matcher: EntityMatcher) -> None:
    assert matcher.find("I'm at my house") == ([], [])
    assert matcher.find("play some house") == ([], ["house"])
    assert matcher.find("the house music from the club") == ([], ["house"])
    assert matcher.find("I've been in a funk all week") == ([], [])
    assert matcher.find("pop on some jazz") == ([], ["jazz"])


def test_mood_and_activity_named_genres_need_a_music_noun() -> None:
    # Public track datasets have genres such as "sad" and "sleep".
    matcher = EntityMatcher([], ["sad", "sleep", "jazz"])
    assert understand("I'm sad", matcher).genres == []
    assert understand("sad songs please", matcher).genres == ["sad"]
    assert understand("sleep music", matcher).genres == ["sleep"]


def test_one_word_artists_that_are_everyday_words_need_their_capitals() -> None:
    matcher = EntityMatcher(["Yes", "Focus", "Muse"], [])
    assert matcher.find("yes please, I need to focus") == ([], [])
    assert matcher.find("I like Yes and Focus") == (["Yes", "Focus"], [])
    assert matcher.find("muse") == (["Muse"], [])


def test_accents_and_symbols_in_names() -> None:
    matcher = EntityMatcher(["Beyoncé", "AC/DC", "Guns N' Roses", "M.I.A."], [])
    assert matcher.find("beyonce, ac/dc, guns n' roses and m.i.a.") == (
        ["Beyoncé", "AC/DC", "Guns N' Roses", "M.I.A."],
        [],
    )


def test_duplicate_spellings_resolve_the_same_way_in_any_order() -> None:
    one = EntityMatcher(["The XX", "The xx"], [])
    other = EntityMatcher(["The xx", "The XX"], [])
    assert one.find("the xx") == other.find("the xx") == (["The XX"], [])
    names = ["The Paper Lanterns", "THE PAPER LANTERNS"]
    for order in (names, names[::-1]):
        assert EntityMatcher(order, []).find("paper lanterns") == (["THE PAPER LANTERNS"], [])


# --------------------------------------------------------------------------- moods


def test_feeling_sad_is_negative(matcher: EntityMatcher) -> None:
    understanding = understand("I'm feeling sad", matcher)
    assert understanding.moods == ["sad"]
    assert understanding.mood is not None
    assert understanding.mood.valence < 0
    assert understanding.mood.label == "sad"


def test_stressed_is_negative_and_activated(matcher: EntityMatcher) -> None:
    mood = _mood("I'm stressed", matcher)
    assert mood.valence < 0 and mood.arousal > 0.5


def test_feeling_great_is_positive_but_great_jazz_is_no_mood(matcher: EntityMatcher) -> None:
    assert _mood("I feel great", matcher).valence > 0
    assert understand("play some great jazz", matcher).mood is None
    assert understand("I'm down for some jazz", matcher).mood is None
    assert _mood("feeling down", matcher).valence < 0


@pytest.mark.parametrize(
    "message",
    [
        "not happy",
        "I'm not happy",
        "I am not feeling happy",
        "I don't feel happy",
        "I'm never happy these days",
        "I'm no longer happy",
        "I\u2019m not really that happy",
        "isnt happy",
    ],
)
def test_negated_happiness_is_not_happy(message: str, matcher: EntityMatcher) -> None:
    understanding = understand(message, matcher)
    assert understanding.mood is not None
    assert understanding.mood.valence < 0
    assert understanding.mood.label != "happy"
    assert "happy" not in understanding.moods


@pytest.mark.parametrize("message", ["not sad", "I'm not sad anymore", "I don't feel sad"])
def test_negated_sadness_is_mildly_positive(message: str, matcher: EntityMatcher) -> None:
    mood = _mood(message, matcher)
    assert 0 < mood.valence < _anchor("happy").valence
    assert mood.label != "sad"


def test_negation_stays_inside_its_clause(matcher: EntityMatcher) -> None:
    understanding = understand("I'm not sad, I'm happy", matcher)
    assert understanding.moods[-1] == "happy"
    assert _mood("I'm not tired but I am stressed", matcher).arousal > 0


def test_negation_reaches_across_or(matcher: EntityMatcher) -> None:
    understanding = understand("I'm not sad or angry", matcher)
    assert understanding.mood is not None and understanding.mood.valence > 0


def test_idioms_with_a_negator_keep_their_meaning(matcher: EntityMatcher) -> None:
    assert _mood("I've never been happier", matcher).valence > 0.5
    assert _mood("I'm not okay", matcher).valence < 0
    # The negator belongs to the verb here, not to the mood.
    assert _mood("I can't believe how happy I am", matcher).valence > 0.5
    assert _mood("can't wait, so excited", matcher).valence > 0.5
    assert _mood("something to listen to without stress", matcher).valence > 0


@pytest.mark.parametrize("word", ["sad", "happy", "stressed", "calm"])
def test_intensifiers_push_outward_and_diminishers_pull_inward(
    word: str, matcher: EntityMatcher
) -> None:
    plain = _mood(f"I'm {word}", matcher)
    for intensifier in ("really", "very", "so", "extremely", "super"):
        stronger = _mood(f"I'm {intensifier} {word}", matcher)
        assert abs(stronger.valence) > abs(plain.valence), intensifier
        assert math.copysign(1, stronger.valence) == math.copysign(1, plain.valence)
        assert -1.0 <= stronger.valence <= 1.0 and -1.0 <= stronger.arousal <= 1.0
    for diminisher in ("a bit", "slightly", "kind of", "a little"):
        weaker = _mood(f"I'm {diminisher} {word}", matcher)
        assert 0 < abs(weaker.valence) < abs(plain.valence), diminisher


def test_intensifiers_clip_to_the_plane(matcher: EntityMatcher) -> None:
    mood = _mood("I'm extremely extremely super excited", matcher)
    assert mood.valence <= 1.0 and mood.arousal == 1.0


def test_not_very_happy_is_milder_than_not_happy(matcher: EntityMatcher) -> None:
    assert _mood("not happy", matcher).valence < _mood("not very happy", matcher).valence < 0


@pytest.mark.parametrize(
    ("emoji", "positive"),
    [
        ("😀", True),
        ("🙂", True),
        ("🎉", True),
        ("😌", True),
        ("❤️", True),
        ("❤", True),
        ("😢", False),
        ("😭", False),
        ("😞", False),
        ("😡", False),
        ("😴", False),
    ],
)
def test_emoji_are_mood_terms(emoji: str, positive: bool, matcher: EntityMatcher) -> None:
    mood = _mood(f"today {emoji}", matcher)
    assert (mood.valence > 0) is positive
    assert mood.label == MOOD_LEXICON[emoji].label


def test_emoji_with_skin_tone_and_emoticons(matcher: EntityMatcher) -> None:
    assert understand("gym time 💪🏽", matcher).moods == ["energetic"]
    assert _mood("hi :)", matcher).valence > 0
    assert _mood("meh :(", matcher).valence < 0
    assert understand("haha :D <3", matcher).moods == ["happy", "romantic"]
    assert understand("see note:do this", matcher).mood is None


def test_several_moods_combine_by_averaging(matcher: EntityMatcher) -> None:
    understanding = understand("I'm stressed, put on some calm jazz", matcher)
    assert understanding.moods == ["stressed", "calm"]
    assert understanding.genres == ["jazz"]
    stressed, calm = _anchor("stressed"), _anchor("calm")
    mood = understanding.mood
    assert mood is not None
    assert mood.valence == pytest.approx((stressed.valence + calm.valence) / 2)
    assert mood.arousal == pytest.approx((stressed.arousal + calm.arousal) / 2)
    assert mood.label == nearest_mood(mood.valence, mood.arousal).label


def test_phrases_are_moods(matcher: EntityMatcher) -> None:
    assert _mood("honestly I'm fed up", matcher).valence < 0
    assert _mood("I'm over the moon", matcher).valence > 0.5
    assert _mood("a bit on edge tonight", matcher).arousal > 0
    assert _mood("totally burnt out", matcher).arousal < 0


def test_mood_words_inside_an_artist_name_are_not_moods() -> None:
    matcher = EntityMatcher(["Happy Mondays"], [])
    understanding = understand("play Happy Mondays", matcher)
    assert understanding.artists == ["Happy Mondays"]
    assert understanding.mood is None and understanding.moods == []


def test_a_message_without_moods_has_none(matcher: EntityMatcher) -> None:
    assert understand("play something by Mara Quill", matcher) == Understanding(
        artists=["Mara Quill"],
        genres=[],
        moods=[],
        mood=None,
        activity=None,
        target_energy=None,
    )
    assert understand("!!! ... ???", matcher).mood is None


# --------------------------------------------------------------------------- activities


@pytest.mark.parametrize(
    ("message", "activity", "energy"),
    [
        ("music for my workout", "workout", 0.9),
        ("heading to the gym", "workout", 0.9),
        ("I'm working out", "workout", 0.9),
        ("going for a run", "running", 0.85),
        ("something for jogging", "running", 0.85),
        ("something to study to", "study", 0.35),
        ("studying for exams", "study", 0.35),
        ("I need to focus", "focus", 0.35),
        ("music while working", "focus", 0.35),
        ("for sleeping", "sleep", 0.1),
        ("bedtime songs", "sleep", 0.1),
        ("party!", "party", 0.85),
        ("on my commute", "commute", 0.6),
        ("driving home", "commute", 0.6),
        ("I want to relax", "relax", 0.3),
    ],
)
def test_activities_give_their_target_energy(
    message: str, activity: str, energy: float, matcher: EntityMatcher
) -> None:
    understanding = understand(message, matcher)
    assert understanding.activity == activity
    assert understanding.target_energy == pytest.approx(energy)


def test_no_activity_without_one(matcher: EntityMatcher) -> None:
    understanding = understand("I love jazz and this doesn't work for me", matcher)
    assert understanding.activity is None and understanding.target_energy is None


def test_everything_in_one_message(matcher: EntityMatcher) -> None:
    understanding = understand(
        "I'm really tired, play some lofi and Mara Quill for studying 😴", matcher
    )
    assert understanding.artists == ["Mara Quill"]
    assert understanding.genres == ["lo-fi"]
    assert understanding.moods == ["tired"]
    assert understanding.activity == "study"
    assert understanding.mood is not None and understanding.mood.valence < 0


def test_a_long_message_is_understood(matcher: EntityMatcher) -> None:
    message = ("I am so happy with velvet harbor and hip hop today " * 20)[:1000]
    understanding = understand(message, matcher)
    assert understanding.artists == ["Velvet Harbor"]
    assert understanding.genres == ["hip-hop"]
    assert understanding.moods == ["happy"]
