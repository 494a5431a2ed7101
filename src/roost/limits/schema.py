"""Tables of the limits layer (component ``limits``): bucket levels, concurrency leases
and per-tenant overrides. Redis deployments keep levels and leases in Redis instead.

On PostgreSQL a decision is one stored function (:data:`ACQUIRE_FUNCTION`), so a request
costs one statement and one round trip instead of a transaction of several."""

from __future__ import annotations

from roost.storage import Migration

# The PostgreSQL twin of the Redis script in redis_store.py and of buckets.decide().
# Arguments: bucket keys, capacities, refill per ms, costs, debit flags; lease keys, limits,
# ids, TTLs in ms; mode (0 take, 1 check, 2 force). Returns (refused, wait_ms): refused is 0
# when allowed, i (1-based) for bucket i, n + j for lease j.
# Every row it touches (buckets, and a lease scope's row standing for its leases) is locked
# in key order first, so deciders queue on the row locks and never deadlock; the clock is
# read only *after* the locks are held, and a bucket's time never moves backwards, so a
# decider that waited cannot count the same refill twice.
ACQUIRE_FUNCTION = """
CREATE OR REPLACE FUNCTION roost_limit_acquire(
  b_keys TEXT[], b_caps FLOAT8[], b_rates FLOAT8[], b_costs FLOAT8[], b_debits BOOLEAN[],
  l_keys TEXT[], l_limits INT[], l_ids TEXT[], l_ttls BIGINT[], mode INT,
  OUT refused INT, OUT wait_ms FLOAT8)
LANGUAGE plpgsql AS $fn$
DECLARE
  n INT := coalesce(array_length(b_keys, 1), 0);
  m INT := coalesce(array_length(l_keys, 1), 0);
  all_keys TEXT[];
  now_ms BIGINT;
  levels FLOAT8[] := ARRAY[]::FLOAT8[];
  stamps BIGINT[] := ARRAY[]::BIGINT[];
  lvl FLOAT8;
  upd BIGINT;
  needed FLOAT8;
  live INT;
BEGIN
  refused := 0;
  wait_ms := 0;
  all_keys := ARRAY(SELECT DISTINCT k FROM unnest(b_keys || l_keys) AS k ORDER BY k);
  INSERT INTO limit_buckets (key, level, updated_ms)
    SELECT k, 0, 0 FROM unnest(all_keys) AS k ORDER BY k ON CONFLICT (key) DO NOTHING;
  PERFORM 1 FROM limit_buckets WHERE key = ANY(all_keys) ORDER BY key FOR UPDATE;
  now_ms := floor(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT;
  FOR i IN 1..n LOOP
    SELECT level, updated_ms INTO lvl, upd FROM limit_buckets WHERE key = b_keys[i];
    IF upd = 0 THEN  -- made just now as a lock: the bucket is new, hence full
      lvl := b_caps[i];
    ELSE
      lvl := least(b_caps[i], lvl + greatest(0, now_ms - upd) * b_rates[i]);
    END IF;
    levels := levels || lvl;
    stamps := stamps || greatest(now_ms, upd);
    IF mode <> 2 AND lvl < b_costs[i] THEN
      needed := (b_costs[i] - lvl) / b_rates[i];
      IF refused = 0 OR needed > wait_ms THEN
        refused := i;
        wait_ms := needed;
      END IF;
    END IF;
  END LOOP;
  IF refused > 0 THEN
    RETURN;
  END IF;
  FOR j IN 1..m LOOP
    DELETE FROM limit_leases WHERE key = l_keys[j] AND expires_ms <= now_ms;
    SELECT count(*) INTO live FROM limit_leases WHERE key = l_keys[j];
    IF mode <> 2 AND live >= l_limits[j] THEN
      refused := n + j;
      RETURN;
    END IF;
  END LOOP;
  IF mode = 1 THEN
    RETURN;
  END IF;
  FOR i IN 1..n LOOP
    IF mode = 2 OR b_debits[i] THEN
      UPDATE limit_buckets SET level = least(b_caps[i], levels[i] - b_costs[i]),
        updated_ms = stamps[i] WHERE key = b_keys[i];
    END IF;
  END LOOP;
  FOR j IN 1..m LOOP
    INSERT INTO limit_leases (key, id, expires_ms) VALUES (l_keys[j], l_ids[j], now_ms + l_ttls[j]);
  END LOOP;
END
$fn$
"""

LIMIT_MIGRATIONS = [
    Migration(
        "limits",
        1,
        "token buckets, leases, per-tenant overrides",
        common=[
            "CREATE TABLE limit_buckets ("
            " key TEXT PRIMARY KEY, level DOUBLE PRECISION NOT NULL, updated_ms BIGINT NOT NULL)",
            "CREATE TABLE limit_leases ("
            " key TEXT NOT NULL, id TEXT NOT NULL, expires_ms BIGINT NOT NULL,"
            " PRIMARY KEY (key, id))",
            "CREATE TABLE limit_overrides ("
            " tenant_id TEXT PRIMARY KEY, body TEXT NOT NULL, updated_at BIGINT NOT NULL)",
        ],
    ),
    Migration(
        "limits", 2, "one stored function per decision (PostgreSQL)", postgresql=[ACQUIRE_FUNCTION]
    ),
]
