-- Accounts. user_id is chosen by the user (API.md: ^[A-Za-z0-9_.-]{3,64}$); the password is
-- stored only as an argon2id hash.
CREATE TABLE users (
    user_id       text PRIMARY KEY CHECK (user_id ~ '^[A-Za-z0-9_.-]{3,64}$'),
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
