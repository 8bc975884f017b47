"""Deterministic generator of the default catalog.

The catalog has to look like real music to the recommender: genres differ in their
audio features the way real genres do, artists have a consistent style, popularity is
heavily skewed (few hits, a long tail), and names read like real artists and songs
without colliding with the words listeners use for genres and moods, which the
conversation service would otherwise mistake for artist mentions.

All randomness comes from one ``numpy.random.default_rng(seed)`` stream drawn in a fixed
order, so a seed always produces the same catalog, on every machine and run, for a given
NumPy version (NumPy may change how its distributions draw between releases, so a NumPy
upgrade can change the seeded catalog; the lock file pins it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from v5_shared.catalog.genres import CANONICAL_GENRES, canonical_genre
from v5_shared.catalog.model import Track

EARLIEST_YEAR = 1960
LATEST_YEAR = 2026

# Words listeners use for moods and activities. An artist named after one of them would
# be "found" in an ordinary sentence such as "something calm for study".
RESERVED_ARTIST_WORDS: frozenset[str] = frozenset(
    {
        "happy", "sad", "calm", "angry", "chill", "relaxed", "energetic", "stressed",
        "tired", "excited", "love", "blue", "dark", "party", "sleep", "study", "focus",
        "workout", "running", "relax", "commute",
        # Further mood and activity words, kept out for the same reason.
        "mellow", "upbeat", "sunny", "gloomy", "lonely", "peaceful", "quiet", "moody",
        "melancholy", "romantic", "hype", "dance", "dancing", "gym", "drive", "driving",
        "morning", "night", "midnight", "rain", "dream", "dreams", "heart", "soft",
        "heavy", "slow", "fast", "wild", "sweet", "cold", "warm", "bright",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class GenreProfile:
    """Typical audio features of a genre; tracks are drawn around these values."""

    valence: float
    energy: float
    danceability: float
    acousticness: float
    tempo_bpm: tuple[float, float]  # typical range; tracks cluster around its middle
    minutes: float  # mean track length
    first_year: int  # the genre's artists start releasing from this year on
    artist_share: float  # relative number of artists in the genre


# Means follow the published averages of the public Spotify tracks datasets in spirit:
# metal and punk loud and electric, ambient/classical/lo-fi quiet and acoustic,
# pop/latin/funk/disco bright and danceable, blues and soul darker in mood.
GENRE_PROFILES: dict[str, GenreProfile] = {
    #                       valence energy dance acoustic tempo BPM   minutes since share
    "pop":        GenreProfile(0.65, 0.68,  0.68, 0.18,   (95, 130),   3.5, 1960, 9),
    "rock":       GenreProfile(0.50, 0.76,  0.50, 0.12,   (100, 150),  4.0, 1960, 9),
    "jazz":       GenreProfile(0.52, 0.40,  0.56, 0.66,   (80, 180),   5.0, 1960, 5),
    "classical":  GenreProfile(0.33, 0.17,  0.28, 0.92,   (50, 150),   8.0, 1960, 4),
    "hip-hop":    GenreProfile(0.50, 0.68,  0.80, 0.12,   (75, 105),   3.6, 1980, 8),
    "electronic": GenreProfile(0.45, 0.80,  0.68, 0.06,   (115, 150),  5.0, 1975, 7),
    "r&b":        GenreProfile(0.52, 0.55,  0.68, 0.26,   (60, 100),   3.8, 1960, 5),
    "country":    GenreProfile(0.58, 0.60,  0.58, 0.34,   (80, 140),   3.5, 1960, 5),
    "metal":      GenreProfile(0.30, 0.92,  0.40, 0.02,   (90, 200),   5.0, 1970, 4),
    "folk":       GenreProfile(0.45, 0.35,  0.50, 0.76,   (80, 130),   3.8, 1960, 4),
    "blues":      GenreProfile(0.38, 0.48,  0.50, 0.55,   (60, 120),   4.2, 1960, 3),
    "reggae":     GenreProfile(0.68, 0.55,  0.75, 0.24,   (65, 95),    4.0, 1968, 3),
    "latin":      GenreProfile(0.75, 0.74,  0.76, 0.22,   (90, 130),   3.6, 1960, 5),
    "indie":      GenreProfile(0.45, 0.58,  0.52, 0.30,   (100, 150),  3.8, 1985, 6),
    "ambient":    GenreProfile(0.24, 0.15,  0.26, 0.86,   (55, 95),    5.5, 1975, 3),
    "soul":       GenreProfile(0.42, 0.50,  0.60, 0.40,   (65, 110),   3.6, 1960, 3),
    "punk":       GenreProfile(0.45, 0.93,  0.45, 0.03,   (150, 200),  2.6, 1975, 3),
    "funk":       GenreProfile(0.75, 0.70,  0.80, 0.15,   (95, 120),   4.5, 1965, 3),
    "lo-fi":      GenreProfile(0.45, 0.25,  0.65, 0.75,   (70, 90),    2.6, 2010, 3),
    "k-pop":      GenreProfile(0.68, 0.78,  0.72, 0.10,   (100, 135),  3.4, 1995, 3),
    "disco":      GenreProfile(0.78, 0.74,  0.80, 0.08,   (110, 130),  4.5, 1972, 2),
    "gospel":     GenreProfile(0.62, 0.55,  0.52, 0.45,   (70, 130),   4.5, 1960, 2),
    "house":      GenreProfile(0.60, 0.80,  0.80, 0.04,   (118, 130),  5.5, 1984, 3),
    "techno":     GenreProfile(0.35, 0.85,  0.72, 0.03,   (122, 140),  6.0, 1986, 3),
}  # fmt: skip

# Genres an artist of each genre plausibly also plays, for secondary genres.
RELATED_GENRES: dict[str, tuple[str, ...]] = {
    "pop": ("k-pop", "r&b", "electronic", "indie", "latin", "disco"),
    "rock": ("indie", "punk", "metal", "blues", "folk"),
    "jazz": ("blues", "soul", "funk", "classical"),
    "classical": ("ambient", "jazz"),
    "hip-hop": ("r&b", "electronic", "funk", "pop"),
    "electronic": ("house", "techno", "ambient", "pop"),
    "r&b": ("soul", "hip-hop", "pop", "funk"),
    "country": ("folk", "rock", "blues"),
    "metal": ("rock", "punk"),
    "folk": ("indie", "country", "blues"),
    "blues": ("jazz", "soul", "rock"),
    "reggae": ("latin", "hip-hop", "soul"),
    "latin": ("pop", "reggae"),
    "indie": ("rock", "folk", "pop", "electronic"),
    "ambient": ("electronic", "classical", "lo-fi"),
    "soul": ("r&b", "funk", "gospel", "jazz"),
    "punk": ("rock", "metal", "indie"),
    "funk": ("soul", "disco", "r&b", "jazz"),
    "lo-fi": ("hip-hop", "ambient", "jazz"),
    "k-pop": ("pop", "r&b", "electronic"),
    "disco": ("funk", "pop", "house"),
    "gospel": ("soul", "r&b", "blues"),
    "house": ("electronic", "techno", "disco"),
    "techno": ("electronic", "house", "ambient"),
}

# Share of artists who also play a second genre, and of such an artist's tracks that
# lean towards it rather than the primary genre.
SECONDARY_GENRE_ARTIST_SHARE = 0.3
SECONDARY_GENRE_TRACK_SHARE = 0.35
FEATURED_ARTIST_TRACK_SHARE = 0.06
SINGLE_TRACK_SHARE = 0.04
# How far an artist's own style sits from the genre average, and how tightly tracks
# cluster around it (a Beta concentration: higher is tighter).
ARTIST_STYLE_SD = 0.07
TRACK_FEATURE_CONCENTRATION = 12.0
# Track lengths in minutes; classical movements run longer than songs.
USUAL_MINUTES = (2.0, 7.0)
CLASSICAL_MINUTES = (3.0, 15.0)
LENGTH_CONCENTRATION = 12.0

_FIRST_NAMES = (
    "Mara", "Elio", "Noor", "Tobias", "Ines", "Kasimir", "Lena", "Oren", "Saskia", "Dario",
    "Yuki", "Amara", "Felix", "Ilse", "Jonah", "Kira", "Leon", "Milo", "Nadia", "Otto",
    "Priya", "Quentin", "Rosalind", "Soren", "Talia", "Ulric", "Vera", "Wren", "Xavier",
    "Yara", "Zane", "Anouk", "Bastian", "Celeste", "Dmitri", "Esme", "Fabian", "Greta",
    "Hugo", "Isolde", "Jasper", "Kofi", "Linnea", "Matteo", "Nico", "Odile", "Pavel",
    "Rafael", "Selma", "Teodor", "Uma", "Viggo", "Wilhelmina", "Ximena", "Yusuf", "Zora",
    "Alba", "Bruno", "Cosima", "Desmond", "Elif", "Florian", "Gideon", "Halima", "Ivo",
    "Juno", "Keiko", "Lucian", "Mireille", "Nils", "Orla", "Petra", "Rohan", "Sabine",
    "Thea", "Vikram", "Wanda", "Zeno", "Aurelio", "Beatrix",
)  # fmt: skip
_SURNAMES = (
    "Quill", "Calder", "Ashby", "Brennan", "Castellano", "Delacroix", "Everly", "Galloway",
    "Hartmann", "Ishikawa", "Jovanovic", "Kowalski", "Lindqvist", "Marchetti", "Novak",
    "Okafor", "Petrov", "Quintero", "Rasmussen", "Santoro", "Thorne", "Underwood", "Valdez",
    "Whitlock", "Yilmaz", "Zeller", "Abernathy", "Carraway", "Dunmore", "Ellery",
    "Fontaine", "Greaves", "Holloway", "Imrie", "Jardine", "Kessler", "Lockhart", "Moreau",
    "Nakamura", "Oyelaran", "Pellegrini", "Radcliffe", "Sorensen", "Tamura", "Vance",
    "Winslow", "Yamada", "Albrecht", "Bellamy", "Castillo", "Drummond", "Eastwood",
    "Falkner", "Gorski", "Haddad", "Ivers", "Kaplan", "Mendoza", "Northcott", "Ostrander",
    "Prescott", "Rinaldi", "Sterling", "Tanaka", "Vasquez", "Wexley", "Ambrose", "Bramwell",
    "Cortez", "Devereux", "Engstrom", "Fitzroy", "Halvorsen", "Kincaid", "Marlowe",
    "Okonkwo", "Penhallow", "Redfern", "Salazar", "Takeda", "Voss", "Whitaker",
)  # fmt: skip
_BAND_ADJECTIVES = (
    "Velvet", "Paper", "Silver", "Amber", "Crimson", "Copper", "Hollow", "Ivory", "Marble",
    "Cobalt", "Scarlet", "Golden", "Iron", "Glass", "Northern", "Western", "Neon", "Lunar",
    "Solar", "Distant", "Painted", "Hidden", "Wooden", "Crystal", "Jade", "Saffron",
    "Indigo", "Violet", "Emerald", "Obsidian", "Coral", "Granite", "Tidal", "Arctic",
    "Desert", "Static", "Rusted", "Gilded", "Woven", "Stray", "Paisley", "Brass", "Chrome",
    "Satin", "Linen", "Pale", "Faded", "Tangled", "Secret", "Wandering",
)  # fmt: skip
_BAND_NOUNS = (
    "Harbor", "Lantern", "Orchard", "Meridian", "Compass", "Lighthouse", "Atlas", "Canyon",
    "Summit", "Prairie", "Estuary", "Lagoon", "Glacier", "Beacon", "Orbit", "Comet",
    "Delta", "Archive", "Pavilion", "Foundry", "Quarry", "Kestrel", "Heron", "Falcon",
    "Sparrow", "Magpie", "Otter", "Lynx", "Willow", "Cedar", "Thistle", "Fern", "Bramble",
    "Ember", "Cinder", "Tide", "Signal", "Circuit", "Engine", "Radio", "Mirror", "Garden",
    "Cathedral", "Bridge", "Station", "Tower", "Avenue", "Parade", "Carousel", "Telescope",
    "Satellite", "Monument", "Mosaic", "Tapestry", "Ribbon", "Feather", "Anchor", "Voyage",
    "Frontier", "Fjord",
)  # fmt: skip
_BAND_PLURALS = (
    "Lanterns", "Sparrows", "Foxes", "Herons", "Kestrels", "Magpies", "Otters", "Pilots",
    "Sailors", "Drifters", "Wanderers", "Cartographers", "Architects", "Gardeners",
    "Engines", "Mirrors", "Satellites", "Comets", "Ravens", "Wolves", "Thistles", "Ferns",
    "Embers", "Cinders", "Signals", "Circuits", "Radios", "Bridges", "Towers", "Anchors",
    "Ribbons", "Feathers", "Mosaics", "Bells", "Spires", "Rivers", "Islands", "Pines",
    "Orchards", "Harbors", "Beacons", "Telescopes", "Carousels", "Parades", "Pavilions",
    "Fjords", "Lagoons", "Glaciers", "Canyons", "Owls", "Moths", "Hounds", "Coyotes",
    "Swallows", "Pelicans", "Marigolds",
)  # fmt: skip
# Jazz and classical acts are often named after their leader plus the ensemble.
_ENSEMBLE_SUFFIXES: dict[str, tuple[str, ...]] = {
    "jazz": ("Trio", "Quartet", "Quintet", "Sextet"),
    "classical": ("Ensemble", "Consort", "Chamber Players", "String Quartet"),
}
_ENSEMBLE_SUFFIX_SHARE = 0.3

_TITLE_ADJECTIVES = (
    "Paper", "Silver", "Golden", "Endless", "Hidden", "Falling", "Open", "Distant",
    "Burning", "Frozen", "Sudden", "Northern", "Secret", "Gentle", "Restless", "Hollow",
    "Velvet", "Crystal", "Fading", "Lost", "Empty", "Tender", "Little", "Last", "First",
    "Summer", "Winter", "Autumn", "Neon", "Glass", "Starlit", "Crimson", "Lucky", "Simple",
    "Perfect", "Strange", "Ordinary", "Second", "Long", "Borrowed", "Electric", "Patient",
)  # fmt: skip
_TITLE_NOUNS = (
    "Moon", "River", "Road", "Lights", "Skyline", "Fire", "Ocean", "Window", "Letters",
    "Streets", "Horizon", "Echoes", "Shadows", "Stars", "City", "Highway", "Garden",
    "Evening", "Waves", "Mirrors", "Thunder", "Silence", "Gravity", "Satellites", "Wires",
    "Seasons", "Harbor", "Bridges", "Tides", "Ghosts", "Roses", "Stories", "Promises",
    "Colors", "Sparks", "Hours", "Miles", "Wings", "Circles", "Lanterns", "Avenue",
    "Signals", "Valley", "Mountains", "Islands", "Embers", "Fields", "Sunrise", "Sunset",
    "Weather", "Photographs", "Postcards", "Strangers", "Daylight", "Tomorrow", "Yesterday",
    "Glass", "Paper", "Dust", "Gold", "Static", "Orbit",
)  # fmt: skip
_TITLE_VERBS = (
    "Chasing", "Falling", "Waiting", "Holding", "Leaving", "Finding", "Crossing",
    "Counting", "Calling", "Drifting", "Breaking", "Turning", "Catching", "Following",
    "Painting", "Building", "Keeping", "Burning", "Carrying", "Saving",
)  # fmt: skip
_TITLE_EDITIONS = (" (Live)", " (Acoustic Version)", " - Remastered", " (Radio Edit)")
_TITLE_EDITION_SHARE = 0.05
_CLASSICAL_FORMS = (
    "Sonata", "Nocturne", "Prelude", "Etude", "Concerto", "Symphony", "Fugue", "Serenade",
    "Suite", "Fantasia", "Rhapsody", "Impromptu", "Waltz", "Mazurka", "Partita",
)  # fmt: skip
_CLASSICAL_KEYS = tuple(
    f"{note} {mode}"
    for note in ("C", "D", "E-flat", "E", "F", "G", "A", "B-flat", "B", "F-sharp")
    for mode in ("Major", "Minor")
)


def generate_catalog(seed: int = 5, n_tracks: int = 24000, n_artists: int = 2400) -> list[Track]:
    """Generate a realistic catalog; the same arguments always give the same catalog."""
    if n_artists < 1:
        raise ValueError("n_artists must be at least 1")
    if n_tracks < n_artists:
        raise ValueError("n_tracks must be at least n_artists: every artist has a track")
    rng = np.random.default_rng(seed)
    genres = CANONICAL_GENRES
    profiles = [GENRE_PROFILES[genre] for genre in genres]
    genre_index = {genre: i for i, genre in enumerate(genres)}

    # Artists: a primary genre each (every genre gets at least one artist), a secondary
    # genre for some, a personal style, a popularity level and an active period.
    primary = np.empty(n_artists, dtype=np.int64)
    covered = min(len(genres), n_artists)
    primary[:covered] = rng.permutation(len(genres))[:covered]
    shares = np.array([p.artist_share for p in profiles], dtype=np.float64)
    primary[covered:] = rng.choice(len(genres), size=n_artists - covered, p=shares / shares.sum())

    related = [[genre_index[g] for g in RELATED_GENRES[genre]] for genre in genres]
    related_width = max(len(r) for r in related)
    related_table = np.array([r + [r[0]] * (related_width - len(r)) for r in related])
    related_count = np.array([len(r) for r in related])
    has_secondary = rng.random(n_artists) < SECONDARY_GENRE_ARTIST_SHARE
    secondary_pick = (rng.random(n_artists) * related_count[primary]).astype(np.int64)
    secondary = np.where(has_secondary, related_table[primary, secondary_pick], -1)

    artist_names = _artist_names(rng, primary)
    artist_style = rng.normal(0.0, ARTIST_STYLE_SD, size=(n_artists, 4))
    # Beta(1.1, 5) puts most artists in the long tail and leaves room for a few stars.
    artist_popularity = rng.beta(1.1, 5.0, size=n_artists)
    first_year = np.array([p.first_year for p in profiles])[primary]
    # Skewed towards recent starts: catalogs hold more recent music than old.
    start_year = first_year + np.floor(
        (LATEST_YEAR - 2 - first_year) * rng.beta(1.4, 1.0, size=n_artists)
    ).astype(np.int64)
    years_between_albums = rng.integers(1, 5, size=n_artists)
    album_size = rng.integers(6, 14, size=n_artists)

    # Tracks per artist: one each, the rest spread by a heavy-tailed productivity.
    productivity = rng.lognormal(0.0, 1.0, size=n_artists)
    extra = rng.multinomial(n_tracks - n_artists, productivity / productivity.sum())
    tracks_per_artist = 1 + extra
    track_artist = np.repeat(np.arange(n_artists), tracks_per_artist)
    first_track_of_artist = np.cumsum(tracks_per_artist) - tracks_per_artist
    position = np.arange(n_tracks) - np.repeat(first_track_of_artist, tracks_per_artist)
    album_number = position // album_size[track_artist]

    # Each track leans towards one of its artist's genres; its features come from that
    # genre's profile shifted by the artist's style.
    leans_secondary = has_secondary[track_artist] & (
        rng.random(n_tracks) < SECONDARY_GENRE_TRACK_SHARE
    )
    style_genre = np.where(leans_secondary, secondary[track_artist], primary[track_artist])
    feature_means = np.array(
        [[p.valence, p.energy, p.danceability, p.acousticness] for p in profiles]
    )
    track_means = np.clip(feature_means[style_genre] + artist_style[track_artist], 0.02, 0.98)
    # Beta draws stay inside (0, 1) and pile up near the edges the way real features do
    # (metal's acousticness is near zero, not clipped to exactly zero).
    drawn_features = rng.beta(
        track_means * TRACK_FEATURE_CONCENTRATION,
        (1.0 - track_means) * TRACK_FEATURE_CONCENTRATION,
    )
    # Four decimals, like the public datasets; it also makes the values survive the
    # database's single-precision columns unchanged.
    features = np.round(np.clip(drawn_features, 0.0, 1.0), 4)

    tempo_low = np.array([p.tempo_bpm[0] for p in profiles], dtype=np.float64)[style_genre]
    tempo_high = np.array([p.tempo_bpm[1] for p in profiles], dtype=np.float64)[style_genre]
    tempo = np.round(rng.triangular(tempo_low, (tempo_low + tempo_high) / 2, tempo_high), 3)

    # Lengths: a Beta draw placed between the bounds with the genre's mean, so lengths
    # stay in range without piling up at exactly the shortest or longest allowed.
    mean_minutes = np.array([p.minutes for p in profiles])[style_genre]
    is_classical = style_genre == genre_index["classical"]
    shortest = np.where(is_classical, CLASSICAL_MINUTES[0], USUAL_MINUTES[0])
    longest = np.where(is_classical, CLASSICAL_MINUTES[1], USUAL_MINUTES[1])
    relative_mean = (mean_minutes - shortest) / (longest - shortest)
    minutes = shortest + (longest - shortest) * rng.beta(
        relative_mean * LENGTH_CONCENTRATION, (1.0 - relative_mean) * LENGTH_CONCENTRATION
    )
    duration_ms = np.round(minutes * 60_000).astype(np.int64)

    # Artist level times track luck, squashed into [0, 1) by 1 - exp(-x): nearly the
    # identity for the long tail, saturating smoothly for hits instead of clipping.
    raw_popularity = artist_popularity[track_artist] * rng.lognormal(0.0, 0.45, size=n_tracks)
    track_popularity = np.round(1.0 - np.exp(-raw_popularity), 4)
    release_year = np.clip(
        start_year[track_artist] + album_number * years_between_albums[track_artist],
        EARLIEST_YEAR,
        LATEST_YEAR,
    )
    is_single = rng.random(n_tracks) < SINGLE_TRACK_SHARE
    featured_artist = _featured_artists(rng, primary, track_artist)

    # Album titles are drawn per (artist, album number) so an album's tracks share one.
    album_key = track_artist * (int(album_number.max()) + 1) + album_number
    unique_albums, album_of_track = np.unique(album_key, return_inverse=True)
    album_titles = _titles(rng, len(unique_albums), with_editions=False)
    track_titles = _titles(rng, n_tracks, with_editions=True)
    classical_titles = _classical_titles(rng, n_tracks)

    # Shuffle so that track ids are not grouped by artist.
    order = rng.permutation(n_tracks)

    genre_tuples = [
        (genres[p],) if s < 0 else (genres[p], genres[s])
        for p, s in zip(primary.tolist(), secondary.tolist(), strict=True)
    ]
    features_list = features.tolist()
    tempo_list = tempo.tolist()
    popularity_list = track_popularity.tolist()
    year_list = release_year.tolist()
    duration_list = duration_ms.tolist()
    artist_list = track_artist.tolist()
    featured_list = featured_artist.tolist()
    single_list = is_single.tolist()
    classical_list = is_classical.tolist()
    album_list = album_of_track.tolist()

    catalog: list[Track] = []
    for number, i in enumerate(order.tolist(), start=1):
        artist = artist_list[i]
        featured = featured_list[i]
        valence, energy, danceability, acousticness = features_list[i]
        catalog.append(
            Track(
                track_id=f"v5t-{number:06d}",
                title=classical_titles[i] if classical_list[i] else track_titles[i],
                artists=(
                    (artist_names[artist],)
                    if featured < 0
                    else (artist_names[artist], artist_names[featured])
                ),
                album=None if single_list[i] else album_titles[album_list[i]],
                genres=genre_tuples[artist],
                valence=valence,
                energy=energy,
                danceability=danceability,
                acousticness=acousticness,
                tempo=tempo_list[i],
                popularity=popularity_list[i],
                release_year=year_list[i],
                duration_ms=duration_list[i],
            )
        )
    return catalog


def is_acceptable_artist_name(name: str) -> bool:
    """Whether ``name`` can be a generated artist name.

    It must have at least two words (so it is never a single everyday word) and no
    word or phrase of up to three words may be a genre (in any alias spelling) or a
    reserved mood or activity word.
    """
    words = name.lower().split()
    if len(words) < 2:
        return False
    genre_set = set(CANONICAL_GENRES)
    for size in (1, 2, 3):
        for start in range(len(words) - size + 1):
            phrase = " ".join(words[start : start + size])
            if phrase in RESERVED_ARTIST_WORDS or canonical_genre(phrase) in genre_set:
                return False
    return True


# Plain title-case words only: no digits, punctuation or stray capitals in a name.
_ALLOWED_NAME = re.compile(r"[A-Z][a-z]+(?: [A-Z][a-z]+)+")


@lru_cache(maxsize=1)
def _artist_name_pool() -> tuple[tuple[str, ...], npt.NDArray[np.bool_]]:
    """Every possible generated artist name, and which of them are personal names."""
    people = [f"{first} {last}" for first in _FIRST_NAMES for last in _SURNAMES]
    bands = [f"The {adj} {noun}" for adj in _BAND_ADJECTIVES for noun in _BAND_PLURALS]
    bands += [f"{adj} {noun}" for adj in _BAND_ADJECTIVES for noun in _BAND_NOUNS]
    names: list[str] = []
    is_person: list[bool] = []
    for name, person in [(n, True) for n in people] + [(n, False) for n in bands]:
        if is_acceptable_artist_name(name) and _ALLOWED_NAME.fullmatch(name):
            names.append(name)
            is_person.append(person)
    return tuple(names), np.array(is_person, dtype=np.bool_)


def _artist_names(rng: np.random.Generator, primary: npt.NDArray[np.int64]) -> list[str]:
    pool, is_person = _artist_name_pool()
    if len(primary) > len(pool):
        raise ValueError(f"at most {len(pool)} distinct artist names can be generated")
    picks = rng.choice(len(pool), size=len(primary), replace=False)
    suffix_roll = rng.random(len(primary))
    suffix_pick = rng.integers(0, 1 << 30, size=len(primary))
    names: list[str] = []
    for i, pick in enumerate(picks.tolist()):
        name = pool[pick]
        suffixes = _ENSEMBLE_SUFFIXES.get(CANONICAL_GENRES[primary[i]])
        # Suffixed names stay unique: the pool itself has no name ending in a suffix.
        if suffixes and is_person[pick] and suffix_roll[i] < _ENSEMBLE_SUFFIX_SHARE:
            name = f"{name} {suffixes[suffix_pick[i] % len(suffixes)]}"
        names.append(name)
    return names


def _featured_artists(
    rng: np.random.Generator,
    primary: npt.NDArray[np.int64],
    track_artist: npt.NDArray[np.int64],
) -> npt.NDArray[np.int64]:
    """A guest artist of the same primary genre for a few tracks, -1 for the rest."""
    by_genre = np.argsort(primary, kind="stable")
    genre_size = np.bincount(primary, minlength=len(CANONICAL_GENRES))
    genre_start = np.cumsum(genre_size) - genre_size
    track_genre = primary[track_artist]
    offset = (rng.random(len(track_artist)) * genre_size[track_genre]).astype(np.int64)
    guest = by_genre[genre_start[track_genre] + offset]
    has_guest = (rng.random(len(track_artist)) < FEATURED_ARTIST_TRACK_SHARE) & (
        guest != track_artist
    )
    return np.where(has_guest, guest, -1)


def _titles(rng: np.random.Generator, count: int, *, with_editions: bool) -> list[str]:
    pattern = rng.integers(0, 6, size=count)
    adjective = rng.integers(0, len(_TITLE_ADJECTIVES), size=count)
    noun = rng.integers(0, len(_TITLE_NOUNS), size=count)
    # A distinct second noun, so that "Rivers of Rivers" cannot happen.
    other_noun = (noun + rng.integers(1, len(_TITLE_NOUNS), size=count)) % len(_TITLE_NOUNS)
    verb = rng.integers(0, len(_TITLE_VERBS), size=count)
    edition = rng.integers(0, len(_TITLE_EDITIONS), size=count)
    has_edition = rng.random(count) < (_TITLE_EDITION_SHARE if with_editions else 0.0)
    titles: list[str] = []
    for p, a, n, o, v, e, ed in zip(
        pattern.tolist(),
        adjective.tolist(),
        noun.tolist(),
        other_noun.tolist(),
        verb.tolist(),
        edition.tolist(),
        has_edition.tolist(),
        strict=True,
    ):
        first, second = _TITLE_NOUNS[n], _TITLE_NOUNS[o]
        if p == 0:
            title = f"{_TITLE_ADJECTIVES[a]} {first}"
        elif p == 1:
            title = f"{first} of {second}"
        elif p == 2:
            title = f"The {first}"
        elif p == 3:
            title = f"{_TITLE_VERBS[v]} {first}"
        elif p == 4:
            title = f"{first} in the {second}"
        else:
            title = first
        titles.append(title + _TITLE_EDITIONS[e] if ed else title)
    return titles


def _classical_titles(rng: np.random.Generator, count: int) -> list[str]:
    form = rng.integers(0, len(_CLASSICAL_FORMS), size=count).tolist()
    number = rng.integers(1, 25, size=count).tolist()
    key = rng.integers(0, len(_CLASSICAL_KEYS), size=count).tolist()
    return [
        f"{_CLASSICAL_FORMS[f]} No. {n} in {_CLASSICAL_KEYS[k]}"
        for f, n, k in zip(form, number, key, strict=True)
    ]
