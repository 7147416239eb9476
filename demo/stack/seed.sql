-- Rows the demo and the tests check after a backup, restore or rollback.
CREATE TABLE IF NOT EXISTS items (id integer PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO items (id, name) SELECT g, 'item ' || g FROM generate_series(1, 1000) AS g ON CONFLICT (id) DO NOTHING;
