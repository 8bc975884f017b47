-- Per-listener learning state: the nine weights, their change log, the bandit posteriors
-- (per user and aggregated over all users), logged recommendations with their propensities,
-- feedback events, and stored responses for Idempotency-Key.

CREATE TABLE user_weights (
    user_id          text PRIMARY KEY REFERENCES users (user_id) ON DELETE CASCADE,
    weights          jsonb NOT NULL,
    adjustment_count bigint NOT NULL DEFAULT 0 CHECK (adjustment_count >= 0),
    updated_at       timestamptz
);

-- Every change, for audit and offline analysis: who, what, before, after, when.
CREATE TABLE weight_changes (
    change_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    action      text NOT NULL CHECK (action IN ('feedback', 'explicit', 'reset')),
    track_id    text,
    feedback    text,
    before      jsonb NOT NULL,
    after       jsonb NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX weight_changes_user ON weight_changes (user_id, changed_at DESC);

CREATE TABLE bandit_arms (
    user_id    text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    arm        text NOT NULL,
    alpha      double precision NOT NULL CHECK (alpha > 0),
    beta       double precision NOT NULL CHECK (beta > 0),
    pulls      bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, arm)
);

-- All users' rewards per arm: the prior that new users' posteriors are shrunk toward.
CREATE TABLE bandit_aggregate (
    arm        text PRIMARY KEY,
    alpha      double precision NOT NULL DEFAULT 1 CHECK (alpha > 0),
    beta       double precision NOT NULL DEFAULT 1 CHECK (beta > 0),
    rewards    bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Impressions: each served recommendation with the arm, the probability that the policy
-- chose that arm, the tracks and their scores (for off-policy evaluation).
CREATE TABLE recommendations (
    recommendation_id text PRIMARY KEY,
    user_id           text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    arm               text NOT NULL,
    propensity        double precision NOT NULL CHECK (propensity > 0 AND propensity <= 1),
    arm_probabilities jsonb NOT NULL,
    track_ids         text[] NOT NULL,
    scores            real[] NOT NULL,
    comfort           boolean NOT NULL,
    cold_start        boolean NOT NULL,
    created_at        timestamptz NOT NULL
);
CREATE INDEX recommendations_user ON recommendations (user_id, created_at DESC);

CREATE TABLE feedback_events (
    event_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id           text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    recommendation_id text NOT NULL,
    track_id          text NOT NULL,
    event             text NOT NULL,
    listen_ratio      double precision,
    reward            double precision NOT NULL CHECK (reward BETWEEN -1 AND 1),
    arm               text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX feedback_events_user ON feedback_events (user_id, created_at DESC);

-- A POST's first response, replayed for a repeat with the same key and body for 24 h.
CREATE TABLE idempotency_keys (
    user_id     text NOT NULL,
    key         text NOT NULL,
    fingerprint text NOT NULL,
    status      integer NOT NULL,
    body        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
