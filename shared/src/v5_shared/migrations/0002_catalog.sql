-- The music catalog: one row per track, replaced as a whole by v5_shared.catalog.repository.
-- Audio features and popularity are in [0, 1]; the services score them in memory.

CREATE TABLE tracks (
    track_id      text PRIMARY KEY CHECK (track_id <> ''),
    title         text NOT NULL CHECK (title <> ''),
    -- First artist first: it is the primary artist, the one shown first.
    artists       text[] NOT NULL CHECK (
                      cardinality(artists) >= 1
                      AND array_ndims(artists) = 1
                      AND array_position(artists, NULL) IS NULL
                      AND '' <> ALL (artists)
                  ),
    album         text,
    -- Canonical lower-case names (v5_shared.catalog.genres), so that exact matches and
    -- the GIN index work for every spelling a source used.
    genres        text[] NOT NULL CHECK (
                      cardinality(genres) >= 1
                      AND array_ndims(genres) = 1
                      AND array_position(genres, NULL) IS NULL
                      AND '' <> ALL (genres)
                      AND genres::text = lower(genres::text)
                  ),
    valence       real NOT NULL CHECK (valence BETWEEN 0 AND 1),
    energy        real NOT NULL CHECK (energy BETWEEN 0 AND 1),
    danceability  real NOT NULL CHECK (danceability BETWEEN 0 AND 1),
    acousticness  real NOT NULL CHECK (acousticness BETWEEN 0 AND 1),
    -- Beats per minute; NULL when unknown (a source's tempo of 0). PostgreSQL orders NaN
    -- above every number, so these checks also reject NaN.
    tempo         real CHECK (tempo IS NULL OR (tempo > 0 AND tempo < 'Infinity')),
    popularity    real NOT NULL CHECK (popularity BETWEEN 0 AND 1),
    release_year  integer CHECK (release_year BETWEEN 1800 AND 2100),
    duration_ms   integer NOT NULL CHECK (duration_ms > 0)
);

-- "Tracks of genre X": genres @> ARRAY['x'] and genres && ARRAY[...] use this index.
CREATE INDEX tracks_genres_idx ON tracks USING gin (genres);

-- "Tracks by artist X", including featured artists: artists @> ARRAY['x'].
CREATE INDEX tracks_artists_idx ON tracks USING gin (artists);

-- One row describing the catalog currently in `tracks`. Services poll `version` (or
-- LISTEN on the channel v5_catalog_changed) and reload when it changes. The row is
-- absent until the first catalog is loaded.
CREATE TABLE catalog_state (
    -- Always true: the primary key on a constant column allows a single row only.
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version       bigint NOT NULL CHECK (version >= 1),
    source        text,
    track_count   integer CHECK (track_count >= 0),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
