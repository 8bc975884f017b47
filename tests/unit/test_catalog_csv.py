"""Importing a catalog from CSV in the public Spotify tracks dataset format."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from v5_shared.catalog import (
    CANONICAL_GENRES,
    CatalogValidationError,
    Track,
    canonical_genre,
    parse_catalog_csv,
    parse_catalog_csv_report,
)

# The public dataset's header, with pandas' unnamed index column first.
DATASET_HEADER = [
    "", "track_id", "artists", "album_name", "track_name", "popularity", "duration_ms",
    "explicit", "danceability", "energy", "key", "loudness", "mode", "speechiness",
    "acousticness", "instrumentalness", "liveness", "valence", "tempo", "time_signature",
    "track_genre",
]  # fmt: skip


def dataset_row(index: int, **overrides: object) -> list[str]:
    """A valid row in the dataset's column order; keyword arguments replace values."""
    values: dict[str, object] = {
        "": index,
        "track_id": f"id{index:04d}",
        "artists": "Mara Quill",
        "album_name": "Paper Moon",
        "track_name": f"Song {index}",
        "popularity": 50,
        "duration_ms": 200000,
        "explicit": "False",
        "danceability": 0.5,
        "energy": 0.6,
        "key": 5,
        "loudness": -7.2,
        "mode": 1,
        "speechiness": 0.04,
        "acousticness": 0.3,
        "instrumentalness": 0.0,
        "liveness": 0.1,
        "valence": 0.4,
        "tempo": 120.0,
        "time_signature": 4,
        "track_genre": "pop",
    }
    values.update(overrides)
    return [str(values[column]) for column in DATASET_HEADER]


def write_csv(path: Path, rows: list[list[str]], header: list[str] = DATASET_HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def parse(path: Path) -> list[Track]:
    return parse_catalog_csv(path, progress=False)


def test_parses_the_dataset_format(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "tracks.csv",
        [
            dataset_row(
                0,
                track_id="5SuOikwiRyPMVoIQDJUgSV",
                artists="Gen Hoshino",
                album_name="Comedy",
                track_name="Comedy",
                popularity=73,
                duration_ms=230666,
                danceability=0.676,
                energy=0.461,
                acousticness=0.0322,
                valence=0.715,
                tempo=87.917,
                track_genre="Hip Hop",
            ),
            dataset_row(1, album_name=""),
        ],
    )
    first, second = parse(path)
    assert first == Track(
        track_id="5SuOikwiRyPMVoIQDJUgSV",
        title="Comedy",
        artists=("Gen Hoshino",),
        album="Comedy",
        genres=("hip-hop",),
        valence=0.715,
        energy=0.461,
        danceability=0.676,
        acousticness=0.0322,
        tempo=87.917,
        popularity=0.73,
        release_year=None,
        duration_ms=230666,
    )
    assert second.album is None
    assert second.popularity == 0.5


def test_popularity_is_scaled_to_the_unit_interval(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "tracks.csv",
        [dataset_row(i, popularity=value) for i, value in enumerate((0, 100, 7))],
    )
    assert [track.popularity for track in parse(path)] == [0.0, 1.0, 0.07]


def test_artists_are_split_on_semicolons(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "tracks.csv",
        [dataset_row(0, artists="Ingrid Michaelson;ZAYN"), dataset_row(1, artists=" A ; B ;C")],
    )
    first, second = parse(path)
    assert first.artists == ("Ingrid Michaelson", "ZAYN")
    assert first.artist == "Ingrid Michaelson, ZAYN"
    assert second.artists == ("A", "B", "C")


def test_repeated_track_id_merges_genres_in_first_seen_order(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "tracks.csv",
        [
            dataset_row(0, track_id="dup", track_genre="acoustic", popularity=40),
            dataset_row(1, track_id="other", track_genre="rock"),
            dataset_row(2, track_id="dup", track_genre="k pop", popularity=90),
            dataset_row(3, track_id="dup", track_genre="Acoustic"),
            dataset_row(4, track_id="dup", track_genre="r-n-b"),
        ],
    )
    tracks = parse(path)
    assert [track.track_id for track in tracks] == ["dup", "other"]
    duplicate = tracks[0]
    assert duplicate.genres == ("acoustic", "k-pop", "r&b")
    assert duplicate.popularity == 0.4  # the first row's values are kept


def test_bad_rows_are_all_reported_with_their_line_numbers(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "tracks.csv",
        [
            dataset_row(0),  # line 2
            dataset_row(1, energy="loud"),  # line 3
            dataset_row(2),  # line 4
            dataset_row(3, track_id="", valence=1.5),  # line 5
            dataset_row(4),  # line 6
        ],
    )
    with pytest.raises(CatalogValidationError) as caught:
        parse(path)
    error = caught.value
    assert [row for row, _ in error.errors] == [3, 5]
    assert "energy 'loud' is not a number" in error.errors[0][1]
    assert "track_id is empty" in error.errors[1][1]
    assert "valence '1.5' is outside [0, 1]" in error.errors[1][1]
    message = str(error)
    assert "row 3" in message and "row 5" in message
    assert "row 4" not in message and "row 2" not in message


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"artists": ""}, "artists is empty"),
        ({"artists": " ; "}, "artists is empty"),
        ({"track_name": "  "}, "track_name is empty"),
        ({"track_genre": ""}, "track_genre is empty"),
        ({"popularity": 101}, "popularity '101' is outside [0, 100]"),
        ({"popularity": -1}, "popularity '-1' is outside"),
        ({"danceability": "nan"}, "danceability 'nan' is not a finite number"),
        ({"acousticness": ""}, "acousticness is empty"),
        ({"tempo": -1}, "tempo '-1' is outside [0, 1000]"),
        ({"tempo": 1200}, "tempo '1200' is outside [0, 1000]"),
        ({"tempo": "fast"}, "tempo 'fast' is not a number"),
        ({"tempo": "inf"}, "tempo 'inf' is not a finite number"),
        ({"duration_ms": "-5"}, "duration_ms '-5' is outside"),
        ({"duration_ms": "long"}, "duration_ms 'long' is not a number"),
    ],
)
def test_each_kind_of_bad_value_is_reported(
    tmp_path: Path, overrides: dict[str, object], expected: str
) -> None:
    path = write_csv(tmp_path / "tracks.csv", [dataset_row(0), dataset_row(1, **overrides)])
    with pytest.raises(CatalogValidationError) as caught:
        parse(path)
    assert len(caught.value.errors) == 1
    row, message = caught.value.errors[0]
    assert row == 3
    assert expected in message


@pytest.mark.parametrize("tempo", ["0", "0.0", "0.000", "", "  "])
def test_a_zero_or_empty_tempo_is_unknown(tmp_path: Path, tempo: str) -> None:
    path = write_csv(
        tmp_path / "tracks.csv", [dataset_row(0), dataset_row(1, tempo=tempo), dataset_row(2)]
    )
    first, unknown, last = parse(path)
    assert unknown.tempo is None
    assert first.tempo == last.tempo == 120.0


def test_a_negative_tempo_is_still_an_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "tracks.csv", [dataset_row(0), dataset_row(1, tempo="-0.5")])
    with pytest.raises(CatalogValidationError) as caught:
        parse(path)
    assert [row for row, _ in caught.value.errors] == [3]
    assert "tempo '-0.5' is outside" in caught.value.errors[0][1]


def bad_rows_3_and_5(tmp_path: Path) -> Path:
    return write_csv(
        tmp_path / "tracks.csv",
        [
            dataset_row(0),  # line 2
            dataset_row(1, energy="loud"),  # line 3
            dataset_row(2, tempo=0),  # line 4: unknown tempo, a valid row
            # line 5: the dataset's row with nothing but numbers in it
            dataset_row(3, artists="", album_name="", track_name=""),
            dataset_row(4),  # line 6
        ],
    )


def test_skip_invalid_leaves_out_bad_rows_and_reports_them(tmp_path: Path) -> None:
    path = bad_rows_3_and_5(tmp_path)
    tracks, skipped = parse_catalog_csv_report(path, progress=False, skip_invalid=True)
    assert [track.track_id for track in tracks] == ["id0000", "id0002", "id0004"]
    assert tracks[1].tempo is None
    assert [row for row, _ in skipped] == [3, 5]
    assert "energy 'loud' is not a number" in skipped[0][1]
    assert "artists is empty" in skipped[1][1] and "track_name is empty" in skipped[1][1]
    # The plain function leaves them out too, and the default stays all-or-nothing.
    assert parse_catalog_csv(path, progress=False, skip_invalid=True) == tracks
    with pytest.raises(CatalogValidationError) as caught:
        parse_catalog_csv_report(path, progress=False)
    assert [row for row, _ in caught.value.errors] == [3, 5]


def test_a_clean_file_reports_nothing_skipped(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "tracks.csv", [dataset_row(0), dataset_row(1)])
    for skip_invalid in (False, True):
        report = parse_catalog_csv_report(path, progress=False, skip_invalid=skip_invalid)
        assert len(report.tracks) == 2
        assert report.skipped == []


def test_skip_invalid_merges_genres_of_the_valid_rows_only(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "tracks.csv",
        [
            dataset_row(0, track_id="dup", track_genre="rock"),
            dataset_row(1, track_id="dup", track_genre="jazz", energy=7),
            dataset_row(2, track_id="dup", track_genre="folk"),
        ],
    )
    (track,), skipped = parse_catalog_csv_report(path, progress=False, skip_invalid=True)
    assert track.genres == ("rock", "folk")
    assert [row for row, _ in skipped] == [3]


def test_skip_invalid_with_every_row_invalid_is_an_error(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "tracks.csv", [dataset_row(0, tempo=-1), dataset_row(1, track_id="")]
    )
    with pytest.raises(CatalogValidationError) as caught:
        parse_catalog_csv_report(path, progress=False, skip_invalid=True)
    assert [row for row, _ in caught.value.errors] == [2, 3]


def test_skip_invalid_does_not_excuse_a_bad_header(tmp_path: Path) -> None:
    header = [c for c in DATASET_HEADER if c != "tempo"]
    path = write_csv(tmp_path / "tracks.csv", [["x"] * len(header)], header=header)
    with pytest.raises(CatalogValidationError) as caught:
        parse_catalog_csv(path, progress=False, skip_invalid=True)
    assert caught.value.errors == [(1, "missing required columns: tempo")]


def test_skip_invalid_does_not_excuse_a_file_unreadable_part_way(tmp_path: Path) -> None:
    # Enough good rows that the bad bytes lie beyond the decoder's first read.
    path = write_csv(tmp_path / "tracks.csv", [dataset_row(i) for i in range(500)])
    path.write_bytes(path.read_bytes() + b"500,id9,\xff\xfe broken,x\n")
    with pytest.raises(CatalogValidationError) as caught:
        parse_catalog_csv(path, progress=False, skip_invalid=True)
    ((row, message),) = caught.value.errors
    assert 1 < row <= 502
    assert "unreadable CSV from here on" in message


def test_a_row_with_the_wrong_number_of_fields_is_reported(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "tracks.csv", [dataset_row(0), dataset_row(1)[:-2]])
    with pytest.raises(CatalogValidationError) as caught:
        parse(path)
    assert caught.value.errors == [(3, "has 19 fields, the header has 21")]


def test_row_numbers_are_file_lines_when_a_quoted_value_spans_lines(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "tracks.csv",
        [
            dataset_row(0, track_name="First line\nsecond line"),  # lines 2-3
            dataset_row(1, energy=2),  # line 4
        ],
    )
    with pytest.raises(CatalogValidationError) as caught:
        parse(path)
    assert [row for row, _ in caught.value.errors] == [4]


def test_missing_header_columns_are_named(tmp_path: Path) -> None:
    header = [c for c in DATASET_HEADER if c not in ("energy", "track_genre")]
    path = write_csv(tmp_path / "tracks.csv", [["x"] * len(header)], header=header)
    with pytest.raises(CatalogValidationError) as caught:
        parse(path)
    assert caught.value.errors == [(1, "missing required columns: energy, track_genre")]
    assert "energy, track_genre" in str(caught.value)


def test_only_the_first_twenty_bad_rows_are_listed_in_the_message(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "tracks.csv", [dataset_row(i, tempo=-1) for i in range(25)])
    with pytest.raises(CatalogValidationError) as caught:
        parse(path)
    error = caught.value
    assert len(error.errors) == 25
    message = str(error)
    assert "row 21:" in message and "row 22:" not in message
    assert message.endswith("and 5 more")


def test_a_file_without_tracks_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(CatalogValidationError):
        parse(write_csv(tmp_path / "header_only.csv", []))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(CatalogValidationError):
        parse(empty)


def test_header_names_are_matched_loosely_and_extra_columns_ignored(tmp_path: Path) -> None:
    header = ["Unnamed: 0", *[f" {c.upper()} " for c in DATASET_HEADER[1:]], "year", "mood"]
    row = [*dataset_row(0), "1999", "anything"]
    (track,) = parse(write_csv(tmp_path / "tracks.csv", [row], header=header))
    assert track.track_id == "id0000"
    assert track.release_year == 1999


def test_a_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "tracks.csv", [dataset_row(0)])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert len(parse(path)) == 1


def test_progress_is_shown_on_stderr_unless_disabled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(tmp_path / "progress.csv", [dataset_row(i) for i in range(3)])
    parse_catalog_csv(path)
    shown = capsys.readouterr()
    assert "progress.csv" in shown.err
    assert "3/3" in shown.err
    assert shown.out == ""
    parse_catalog_csv(path, progress=False)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("hip hop", "hip-hop"),
        ("HipHop", "hip-hop"),
        ("Hip-Hop", "hip-hop"),
        ("r-n-b", "r&b"),
        ("rnb", "r&b"),
        ("R and B", "r&b"),
        ("R&B", "r&b"),
        ("lofi", "lo-fi"),
        ("Lo Fi", "lo-fi"),
        ("kpop", "k-pop"),
        ("K Pop", "k-pop"),
        ("  Jazz ", "jazz"),
        ("Heavy  Metal", "heavy metal"),
        ("Singer-Songwriter", "singer-songwriter"),
    ],
)
def test_canonical_genre_maps_aliases_and_keeps_unknown_genres(name: str, canonical: str) -> None:
    assert canonical_genre(name) == canonical


def test_canonical_genres_are_their_own_canonical_names() -> None:
    assert len(CANONICAL_GENRES) >= 20
    assert all(canonical_genre(genre) == genre for genre in CANONICAL_GENRES)
    with pytest.raises(ValueError):
        canonical_genre("   ")
