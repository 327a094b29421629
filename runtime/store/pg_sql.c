/*
 * pg_sql.c -- the PostgreSQL engine's SQL, all of it: an application's
 * schema (tables and functions, made by the first writer) and the
 * statements the engine runs. `@` stands for the schema's quoted name and
 * `#` for its plain name (channel names); the handle expands them once.
 *
 * How notification ids are given (docs/POSTGRES.md has the reasoning):
 *   - a save checks every stream's head and, when the numbering lock (an advisory
 *     lock) is free, takes it, numbers anything pending and inserts its events
 *     with the next ids: one commit, each row written once;
 *   - when another transaction holds the lock, the save inserts its events with
 *     id NULL, each with its transaction's id (`batch`) and its place in the save
 *     (`pos`), commits, and then numbers in a second short transaction, where it
 *     waits for the lock;
 *   - numbering, under the lock (taken in an earlier statement, so a new snapshot
 *     sees every earlier numbering), gives every committed-but-unnumbered event the
 *     next ids in (batch, pos) order, NOTIFYs, commits and releases the lock; whoever
 *     gets the lock numbers all that is pending, so one numbering commit serves
 *     many saves;
 *   - the last id given is the highest in the `id` index, read under the lock
 *     (an index probe: no counter row whose dead versions every numbering would
 *     scan past); `counter` is a view of it, for readers.
 *
 * Rows are written in one canonical order, (stream id, version), whatever the
 * batch's order: two saves that write the same streams then wait for each other
 * at the first row they share, and the second meets the unique index (a
 * ConcurrencyError) instead of a deadlock. A save numbered after its commit keeps
 * its batch's order in `pos`, which numbering follows.
 *
 * The schema's version (meta key "format", CAIRN_PG_FORMAT) covers its tables and
 * its functions. schema_sql makes a new schema and brings an older one up to date
 * in one transaction, under the schema's lock: every step below is one an older
 * schema can run again (IF NOT EXISTS), the functions are dropped and made anew,
 * and a schema newer than this cairn knows is left alone (SQLSTATE CNV01). A change
 * to a table or a function bumps CAIRN_PG_FORMAT and adds its step here.
 */
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "pg_internal.h"

#define PG_STR_(x) #x
#define PG_STR(x) PG_STR_(x)

static const char schema_sql[] =
    "BEGIN;\n"
    /* two writers making or updating one schema take turns */
    "SELECT pg_advisory_xact_lock(hashtext('cairn schema #'));\n"
    "CREATE SCHEMA IF NOT EXISTS @;\n"
    "CREATE TABLE IF NOT EXISTS @.meta (key text PRIMARY KEY, value bytea NOT NULL);\n"
    /* a newer cairn's schema: not ours to change */
    "DO $guard$ DECLARE v int := (SELECT convert_from(value, 'UTF8')::int FROM @.meta WHERE key = 'format');\n"
    "BEGIN\n"
    "  IF v > " PG_STR(CAIRN_PG_FORMAT) " THEN\n"
    "    RAISE EXCEPTION 'schema # has version %, newer than this cairn knows (" PG_STR(CAIRN_PG_FORMAT)
    "): use a newer cairn', v USING ERRCODE = 'CNV01';\n"
    "  END IF;\n"
    "END $guard$;\n"
    /* version 1: the tables */
    /* (as version 3 makes it: versions 1 and 2 had a `seq` identity for a primary key, and
     * `pos` came in version 2) */
    "CREATE TABLE IF NOT EXISTS @.events (\n"
    "  stream_id uuid NOT NULL, version bigint NOT NULL, topic bytea NOT NULL, record bytea NOT NULL,\n"
    "  id bigint UNIQUE,  -- NULL until numbered; this index also finds the unnumbered (IS NULL)\n"
    "  batch bigint,  -- a save numbered after its commit: its transaction, which keeps its events together\n"
    "  pos integer,  -- and each event's place in that save\n"
    "  CONSTRAINT events_stream_version UNIQUE (stream_id, version));\n"
    "CREATE TABLE IF NOT EXISTS @.snapshots (stream_id uuid, version bigint, record bytea NOT NULL,\n"
    "  PRIMARY KEY (stream_id, version));\n"
    "CREATE TABLE IF NOT EXISTS @.tracking (app bytea PRIMARY KEY, id bigint NOT NULL);\n"
    /* data keys at rest (the mapper's bytes: a sealed key, or one 0 byte once forgotten) and the key
     * state: the cipher's name, the key check, a generation bumped by every change to either or to a key */
    "CREATE TABLE IF NOT EXISTS @.keys (stream_id uuid PRIMARY KEY, key bytea NOT NULL);\n"
    "CREATE TABLE IF NOT EXISTS @.keystate (one boolean PRIMARY KEY DEFAULT true CHECK (one), cipher bytea,\n"
    "  keycheck bytea, keygen bigint NOT NULL DEFAULT 0);\n"
    "INSERT INTO @.keystate (one) VALUES (true) ON CONFLICT DO NOTHING;\n"
    "CREATE TABLE IF NOT EXISTS @.views (name bytea, key bytea, value bytea NOT NULL, PRIMARY KEY (name, key));\n"
    "CREATE TABLE IF NOT EXISTS @.view_tracking (name bytea, app bytea, id bigint NOT NULL,\n"
    "  PRIMARY KEY (name, app));\n"
    /* DCB events by type and tag, each posting under its event's notification id: name is
     * 'a' (every DCB event), 'y' || type or 'g' || tag; type the event's type. The primary
     * key is the ordered (name, id) b-tree a query walks from its `after` on. */
    "CREATE TABLE IF NOT EXISTS @.dcb (name bytea, id bigint, type bytea NOT NULL, PRIMARY KEY (name, id));\n"
    /* idempotent saves: a key, the id of its save's first event (0: none) and how many it recorded */
    "CREATE TABLE IF NOT EXISTS @.once (key bytea PRIMARY KEY, first_id bigint NOT NULL, n bigint NOT NULL);\n"
    /* version 2: a save numbered after its commit keeps its batch's order (rows go in
     * in stream order); the functions below as they are now */
    /* (each step looks first: an ALTER TABLE would lock the table even when it has nothing to do) */
    "DO $v2$ BEGIN\n"
    "  IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = '@.events'::regclass AND attname = 'pos'\n"
    "                 AND NOT attisdropped) THEN\n"
    "    ALTER TABLE @.events ADD COLUMN pos integer;\n"
    "  END IF;\n"
    "END $v2$;\n"
    /* version 3: one index fewer per event (`seq` goes; a numbering finds pending rows by
     * (stream_id, version), which also identifies rows for logical replication), and no
     * counter row: the last id is the top of the `id` index (the table's last value must
     * be that, or the upgrade stops), and `counter` becomes a view of it */
    "DO $v3$ BEGIN\n"
    "  IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = '@.events'::regclass AND attname = 'seq'\n"
    "             AND NOT attisdropped) THEN\n"
    "    ALTER TABLE @.events DROP COLUMN seq;\n"
    "  END IF;\n"
    "  IF (SELECT relreplident FROM pg_class WHERE oid = '@.events'::regclass) <> 'i' THEN\n"
    "    ALTER TABLE @.events REPLICA IDENTITY USING INDEX events_stream_version;\n"
    "  END IF;\n"
    "  IF (SELECT relkind FROM pg_class WHERE oid = to_regclass('@.counter')) = 'r' THEN\n"
    "    IF (SELECT last FROM @.counter) <> (SELECT coalesce(max(id), 0) FROM @.events) THEN\n"
    "      RAISE EXCEPTION 'schema #: the counter is at %, the highest id is %: run cairn verify',\n"
    "        (SELECT last FROM @.counter), (SELECT max(id) FROM @.events);\n"
    "    END IF;\n"
    "    DROP TABLE @.counter;\n"
    "  END IF;\n"
    "END $v3$;\n"
    "CREATE OR REPLACE VIEW @.counter AS SELECT coalesce(max(id), 0) AS last FROM @.events;\n"
    /* an older schema's functions are dropped, to be made anew below (a signature may have
     * changed); a writer that finds the schema made meanwhile replaces them in place */
    "DO $drop$ DECLARE f regprocedure;\n"
    "BEGIN\n"
    "  IF coalesce((SELECT convert_from(value, 'UTF8')::int FROM @.meta WHERE key = 'format'), 0) < "
    PG_STR(CAIRN_PG_FORMAT) " THEN\n"
    "    FOR f IN SELECT oid::regprocedure FROM pg_proc WHERE pronamespace = '@'::regnamespace LOOP\n"
    "      EXECUTE 'DROP FUNCTION ' || f;\n"
    "    END LOOP;\n"
    "  END IF;\n"
    "END $drop$;\n"
    /* The DCB events matching a query, above p_after: at most p_limit from each posting list
     * walked (NULL: all), in no particular order, maybe repeated. The query comes flattened:
     * p_name[k] ('y' || type or 'g' || tag) belongs to item p_item[k] (1..p_nitems); no items:
     * every DCB event. An item with tags walks its first tag's postings (which carry the type)
     * and looks the other tags up; an item of types only walks each type's; an empty one 'a'. */
    "CREATE OR REPLACE FUNCTION @.dcb_match(p_after bigint, p_limit bigint, p_nitems bigint, p_item bigint[],\n"
    "    p_name bytea[]) RETURNS SETOF bigint LANGUAGE plpgsql STABLE AS $$\n"
    "DECLARE v_types bytea[]; v_tags bytea[]; v_item bigint;\n"
    "BEGIN\n"
    "  FOR v_item IN 1..greatest(p_nitems, 1) LOOP\n"
    "    SELECT coalesce(array_agg(substr(u.n, 2) ORDER BY u.o) FILTER (WHERE get_byte(u.n, 0) = 121), '{}'),\n"
    "           coalesce(array_agg(u.n ORDER BY u.o) FILTER (WHERE get_byte(u.n, 0) = 103), '{}')\n"
    "      INTO v_types, v_tags FROM unnest(p_item, p_name) WITH ORDINALITY AS u(i, n, o) WHERE u.i = v_item;\n"
    "    IF cardinality(v_tags) > 0 THEN\n"
    "      RETURN QUERY SELECT g.id FROM @.dcb g WHERE g.name = v_tags[1] AND g.id > p_after\n"
    "        AND (cardinality(v_types) = 0 OR g.type = ANY(v_types))\n"
    "        AND NOT EXISTS (SELECT 1 FROM unnest(v_tags[2:]) AS r(n)\n"
    "                         WHERE NOT EXISTS (SELECT 1 FROM @.dcb h WHERE h.name = r.n AND h.id = g.id))\n"
    "        ORDER BY g.id LIMIT p_limit;\n"
    "    ELSIF cardinality(v_types) > 0 THEN\n"
    "      RETURN QUERY SELECT m.id FROM unnest(v_types) AS y(n) CROSS JOIN LATERAL\n"
    "        (SELECT d.id FROM @.dcb d WHERE d.name = '\\x79'::bytea || y.n AND d.id > p_after\n"
    "          ORDER BY d.id LIMIT p_limit) m;\n"
    "    ELSE\n"
    "      RETURN QUERY SELECT d.id FROM @.dcb d WHERE d.name = '\\x61'::bytea AND d.id > p_after\n"
    "        ORDER BY d.id LIMIT p_limit;\n"
    "    END IF;\n"
    "  END LOOP;\n"
    "END $$;\n"
    /* The lock that orders numbering: a transaction-level advisory lock, which
     * needs no transaction id and writes no WAL, so a numbering that finds
     * nothing to do commits without an fsync. The key: "cair" and the schema's oid. */
    "CREATE OR REPLACE FUNCTION @.numbering_lock() RETURNS bigint LANGUAGE sql STABLE AS\n"
    "  $$SELECT (x'63616972'::bigint << 32) | '@'::regnamespace::oid::bigint$$;\n"
    /* The lock that keeps key changes (forget, rekey, set_cipher: exclusive) apart
     * from saves that depend on the key state or add data keys (shared). */
    "CREATE OR REPLACE FUNCTION @.keys_lock() RETURNS bigint LANGUAGE sql STABLE AS\n"
    "  $$SELECT (x'6b657973'::bigint << 32) | '@'::regnamespace::oid::bigint$$;\n"
    /* Under the keys lock: the key state must still be the one the caller saw. */
    "CREATE OR REPLACE FUNCTION @.check_keygen(p_keygen bigint) RETURNS void LANGUAGE plpgsql AS $$\n"
    "BEGIN\n"
    "  IF p_keygen IS NOT NULL AND p_keygen <> (SELECT keygen FROM @.keystate) THEN\n"
    "    RAISE EXCEPTION 'the store''s keys changed (forget, rekey or encryption) since this was prepared'\n"
    "      USING ERRCODE = 'CN003';\n"
    "  END IF;\n"
    "END $$;\n"
    /* Number every committed event that has no id yet, after the highest id given.
     * The caller holds the numbering lock, taken in an earlier statement. One
     * statement, so one snapshot: the events counted are the events numbered. */
    "CREATE OR REPLACE FUNCTION @.number_pending() RETURNS bigint LANGUAGE plpgsql\n"
    "SET enable_seqscan = off SET jit = off AS $$\n"
    "DECLARE v_last bigint;\n"
    "BEGIN\n"
    "  WITH b AS (SELECT coalesce(max(id), 0) AS base FROM @.events),\n"
    "       p AS MATERIALIZED (SELECT stream_id, version,\n"
    "                                 row_number() OVER (ORDER BY batch, pos, stream_id, version) AS rn\n"
    "                            FROM @.events WHERE id IS NULL),\n"
    "       u AS (UPDATE @.events e SET id = b.base + p.rn FROM p, b\n"
    "              WHERE e.stream_id = p.stream_id AND e.version = p.version RETURNING e.id)\n"
    "  SELECT max(id) INTO v_last FROM u;\n"
    "  IF v_last IS NOT NULL THEN PERFORM pg_notify('cairn_#', v_last::text); END IF;\n"
    "  RETURN v_last;\n"
    "END $$;\n"
    /* A batch's events, the common save on its own (no snapshots, tracking, keys, DCB
     * events or idempotency key: one call of this) and the events of every other (save()
     * calls it). It checks each stream's head (one index probe when the batch has one
     * stream); then, holding the numbering lock (p_locked: the caller took it and numbered
     * what was pending) or finding it free (then it numbers what is pending), inserts the
     * events with the next ids (each row written once), returning the first; else inserts them
     * without ids, to be numbered after the commit, returning 0. Rows go in (stream id,
     * version) order; a deferred save keeps its batch's order in `pos`.
     * Generic plans: with arrays for parameters, a plan made for each call's values
     * looks cheaper to the planner (it sees the arrays' lengths), so it would plan
     * every statement on every call (then half of a save's server time). A generic
     * plan lives as long as the session (or until the next ANALYZE): made while the
     * table was empty it would scan it whole for "id IS NULL" ever after, so these
     * functions plan without sequential scans (every statement here has its index),
     * and without JIT (which that setting's cost penalty would set off, for 0.3 s). */
    "CREATE OR REPLACE FUNCTION @.append(p_stream uuid[], p_version bigint[], p_topic bytea[], p_record bytea[],\n"
    "    p_new uuid[], p_locked boolean DEFAULT false)\n"
    "RETURNS bigint LANGUAGE plpgsql\n"
    "SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET jit = off AS $$\n"
    "DECLARE v_n bigint := cardinality(p_stream); v_one boolean; v_stream uuid; v_head bigint; v_want bigint;\n"
    "  v_new boolean; v_bad boolean; v_first bigint; v_pending boolean; v_batch bigint;\n"
    "BEGIN\n"
    "  IF v_n = 0 THEN RETURN 0; END IF;\n"
    /* each stream's first event must follow its head, and a stream the caller sealed as new
     * without reading it (p_new: its events chain to no head) must have none (CN005: read
     * the heads and seal again) */
    "  v_one := p_stream[1] = ALL(p_stream);\n"
    "  IF v_one THEN\n"
    "    v_stream := p_stream[1]; v_want := p_version[1]; v_new := v_stream = ANY(p_new);\n"
    "    SELECT e.version INTO v_head FROM @.events e WHERE e.stream_id = v_stream ORDER BY e.version DESC LIMIT 1;\n"
    "    v_bad := v_head IS NOT NULL AND (v_head <> v_want - 1 OR v_new);\n"
    "  ELSE\n"
    "    SELECT w.s, w.v, h.head, w.n INTO v_stream, v_want, v_head, v_new\n"
    "      FROM (SELECT u.s, min(u.v) AS v, bool_or(n.s IS NOT NULL) AS n\n"
    "              FROM unnest(p_stream, p_version) AS u(s, v) LEFT JOIN unnest(p_new) AS n(s) ON n.s = u.s\n"
    "             GROUP BY u.s) w\n"
    "      CROSS JOIN LATERAL (SELECT max(e.version) AS head FROM @.events e\n"
    "                           WHERE e.stream_id = w.s) h\n"
    "     WHERE h.head <> w.v - 1 OR (w.n AND h.head IS NOT NULL) LIMIT 1;\n"
    "    v_bad := FOUND;\n"
    "  END IF;\n"
    "  IF v_bad AND v_new THEN\n"
    "    RAISE EXCEPTION 'a stream this save took as new has events' USING ERRCODE = 'CN005';\n"
    "  ELSIF v_bad AND v_want <= v_head THEN\n"
    "    RAISE EXCEPTION 'aggregate %: version % was already recorded (the stream is at %)',\n"
    "      v_stream, v_want, v_head USING ERRCODE = 'CN002';\n"
    "  ELSIF v_bad THEN\n"
    "    RAISE EXCEPTION 'aggregate %: version % does not follow the recorded version %',\n"
    "      v_stream, v_want, v_head USING ERRCODE = 'CN002';\n"
    "  END IF;\n"
    "  IF p_locked OR pg_try_advisory_xact_lock(@.numbering_lock()) THEN\n"
    /* the last id given and whether anything is pending (two index probes; this statement
     * sees every numbering before this one): that is numbered first, unless the caller
     * did (and checked a DCB condition against every id below ours: what is pending now
     * gets ids above) */
    "    SELECT m.last, EXISTS (SELECT 1 FROM @.events WHERE id IS NULL) INTO v_first, v_pending\n"
    "      FROM (SELECT coalesce(max(id), 0) AS last FROM @.events) m;\n"
    "    IF v_pending AND NOT p_locked THEN v_first := coalesce(@.number_pending(), v_first); END IF;\n"
    "  ELSE\n"
    "    v_batch := pg_current_xact_id()::text::bigint;\n"
    "  END IF;\n"
    /* with ids after v_first, or (v_first NULL) with the batch and each event's place;
     * one stream's events come in version order already: no sort */
    "  IF v_one THEN\n"
    "    INSERT INTO @.events (stream_id, version, topic, record, id, batch, pos)\n"
    "      SELECT s, v, t, r, v_first + o, v_batch, CASE WHEN v_batch IS NOT NULL THEN o END\n"
    "        FROM unnest(p_stream, p_version, p_topic, p_record) WITH ORDINALITY AS u(s, v, t, r, o);\n"
    "  ELSE\n"
    "    INSERT INTO @.events (stream_id, version, topic, record, id, batch, pos)\n"
    "      SELECT s, v, t, r, v_first + o, v_batch, CASE WHEN v_batch IS NOT NULL THEN o END\n"
    "        FROM unnest(p_stream, p_version, p_topic, p_record) WITH ORDINALITY AS u(s, v, t, r, o) ORDER BY s, v;\n"
    "  END IF;\n"
    "  IF v_batch IS NULL THEN\n"
    "    PERFORM pg_notify('cairn_#', (v_first + v_n)::text);\n"
    "    RETURN v_first + 1;\n"
    "  END IF;\n"
    /* the saver waits for its numbering, whose synchronous commit flushes this one too */
    "  PERFORM set_config('synchronous_commit', 'off', true);\n"
    "  RETURN 0;\n"
    "END $$;\n"
    /* A save: data keys, tracking, the events (append()), DCB postings, the idempotency
     * key, snapshots; the first id, or 0 (none, or the caller numbers after commit). */
    "CREATE OR REPLACE FUNCTION @.save(p_stream uuid[], p_version bigint[], p_topic bytea[], p_record bytea[],\n"
    "    s_stream uuid[], s_version bigint[], s_record bytea[], t_app bytea, t_id bigint, t_first bigint,\n"
    "    k_stream uuid[], k_key bytea[], p_keygen bigint, p_new uuid[],\n"
    "    d_name bytea[], d_event bigint[], d_type bytea[], c_after bigint, c_nitems bigint, c_item bigint[],\n"
    "    c_name bytea[], p_once bytea)\n"
    "RETURNS bigint LANGUAGE plpgsql\n"
    "SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET jit = off AS $$\n"
    "DECLARE v_first bigint := 0; v_at bigint; v_wait boolean;\n"
    "BEGIN\n"
    "  IF p_keygen IS NOT NULL OR cardinality(k_stream) > 0 THEN\n"
    "    PERFORM pg_advisory_xact_lock_shared(@.keys_lock());\n"
    "    PERFORM @.check_keygen(p_keygen);\n"
    "    INSERT INTO @.keys SELECT s, k FROM unnest(k_stream, k_key) AS u(s, k) ORDER BY s;\n"
    "  END IF;\n"
    "  IF t_app IS NOT NULL THEN\n"
    "    INSERT INTO @.tracking AS t (app, id) VALUES (t_app, t_id)\n"
    "      ON CONFLICT (app) DO UPDATE SET id = excluded.id WHERE t.id < t_first;\n"
    "    IF NOT FOUND THEN\n"
    "      RAISE EXCEPTION 'notification % of %: processed before (tracking is further on)', t_first,\n"
    "        encode(t_app, 'escape') USING ERRCODE = 'CN001';\n"
    "    END IF;\n"
    "  END IF;\n"
    /* A save with DCB events, an append condition or an idempotency key waits for the
     * numbering lock, as it needs its ids (and the condition every id below them) in this
     * transaction (docs/POSTGRES.md, "DCB events"): number what is pending, check the
     * condition, insert the events with the next ids, their postings and the key. */
    "  v_wait := cardinality(d_name) > 0 OR c_after IS NOT NULL OR p_once IS NOT NULL;\n"
    "  IF v_wait THEN\n"
    "    PERFORM pg_advisory_xact_lock(@.numbering_lock());\n"
    "    IF EXISTS (SELECT 1 FROM @.events WHERE id IS NULL) THEN PERFORM @.number_pending(); END IF;\n"
    "    IF c_after IS NOT NULL THEN\n"
    "      SELECT min(m) INTO v_at FROM @.dcb_match(c_after, 1, c_nitems, c_item, c_name) AS m;\n"
    "      IF v_at IS NOT NULL THEN\n"
    "        RAISE EXCEPTION 'an event matching the append condition was recorded after position % (at %): '\n"
    "          'nothing was recorded', c_after, v_at USING ERRCODE = 'CN006';\n"
    "      END IF;\n"
    "    END IF;\n"
    "  END IF;\n"
    "  v_first := @.append(p_stream, p_version, p_topic, p_record, p_new, v_wait);\n"
    "  IF cardinality(d_name) > 0 THEN\n"
    "    INSERT INTO @.dcb SELECT n, v_first + e, t FROM unnest(d_name, d_event, d_type) AS u(n, e, t)\n"
    "      ON CONFLICT DO NOTHING;\n"
    "  END IF;\n"
    "  IF p_once IS NOT NULL THEN\n"
    "    INSERT INTO @.once VALUES (p_once, v_first, cardinality(p_stream)) ON CONFLICT DO NOTHING;\n"
    "    IF NOT FOUND THEN\n"
    "      RAISE EXCEPTION 'the save of idempotency key ''%'' was recorded before', encode(p_once, 'escape')\n"
    "        USING ERRCODE = 'CN007';\n"
    "    END IF;\n"
    "  END IF;\n"
    "  IF cardinality(s_stream) > 0 THEN\n"
    "    INSERT INTO @.snapshots (stream_id, version, record)\n"
    "      SELECT s, v, r FROM unnest(s_stream, s_version, s_record) AS u(s, v, r) ORDER BY s, v\n"
    "      ON CONFLICT (stream_id, version) DO UPDATE SET record = excluded.record;\n"
    "  END IF;\n"
    "  RETURN v_first;\n"
    "END $$;\n"
    /* After a save committed without ids: wait for the lock and number what is
     * pending, unless another numbering got to this save's events first. */
    "CREATE OR REPLACE FUNCTION @.number(p_stream uuid, p_version bigint) RETURNS bigint\n"
    "LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET jit = off AS $$\n"
    "DECLARE v_first bigint;\n"
    "BEGIN\n"
    "  SELECT id INTO v_first FROM @.events WHERE stream_id = p_stream AND version = p_version;\n"
    "  IF NOT FOUND THEN\n"
    "    RAISE EXCEPTION 'aggregate %: version % is not recorded', p_stream, p_version;\n"
    "  END IF;\n"
    "  IF v_first IS NULL THEN\n"
    "    PERFORM pg_advisory_xact_lock(@.numbering_lock());\n"
    "    SELECT id INTO v_first FROM @.events WHERE stream_id = p_stream AND version = p_version;\n"
    "    IF v_first IS NULL THEN\n"
    "      PERFORM @.number_pending();\n"
    "      SELECT id INTO v_first FROM @.events WHERE stream_id = p_stream AND version = p_version;\n"
    "    END IF;\n"
    "  END IF;\n"
    "  RETURN v_first;\n"
    "END $$;\n"
    /* Number what a writer that lost its connection after commit left. */
    "CREATE OR REPLACE FUNCTION @.number_all() RETURNS bigint LANGUAGE plpgsql AS $$\n"
    "BEGIN\n"
    "  IF NOT EXISTS (SELECT 1 FROM @.events WHERE id IS NULL) THEN RETURN NULL; END IF;\n"
    "  PERFORM pg_advisory_xact_lock(@.numbering_lock());\n"
    "  RETURN @.number_pending();\n"
    "END $$;\n"
    /* A view batch: the last op on each key wins; tracking in the same transaction. */
    "CREATE OR REPLACE FUNCTION @.view_write(p_name bytea, p_key bytea[], p_value bytea[], p_del boolean[],\n"
    "    t_app bytea, t_id bigint, t_first bigint, p_keygen bigint DEFAULT NULL) RETURNS void LANGUAGE plpgsql\n"
    "SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET jit = off AS $$\n"
    "BEGIN\n"
    /* values sealed under the key state the caller checked: still that one (a rekey or
     * an encryption waits for this write, or this write sees it and is refused) */
    "  IF p_keygen IS NOT NULL THEN\n"
    "    PERFORM pg_advisory_xact_lock_shared(@.keys_lock());\n"
    "    PERFORM @.check_keygen(p_keygen);\n"
    "  END IF;\n"
    "  IF t_app IS NOT NULL THEN\n"
    "    INSERT INTO @.view_tracking AS t (name, app, id) VALUES (p_name, t_app, t_id)\n"
    "      ON CONFLICT (name, app) DO UPDATE SET id = excluded.id WHERE t.id < t_first;\n"
    "    IF NOT FOUND THEN\n"
    "      RAISE EXCEPTION 'view %: notification % of % processed before (tracking is further on)',\n"
    "        encode(p_name, 'escape'), t_first, encode(t_app, 'escape') USING ERRCODE = 'CN001';\n"
    "    END IF;\n"
    "  END IF;\n"
    "  WITH o AS (SELECT DISTINCT ON (k) k, v, d FROM unnest(p_key, p_value, p_del) WITH ORDINALITY\n"
    "               AS u(k, v, d, n) ORDER BY k, n DESC),\n"
    "       gone AS (DELETE FROM @.views w USING o WHERE o.d AND w.name = p_name AND w.key = o.k)\n"
    "  INSERT INTO @.views (name, key, value) SELECT p_name, k, v FROM o WHERE NOT d ORDER BY k\n"
    "    ON CONFLICT (name, key) DO UPDATE SET value = excluded.value;\n"
    "END $$;\n"
    /* Forget a stream: its data key becomes one 0 byte, its snapshots go.
     * true: forgotten now; false: before. */
    "CREATE OR REPLACE FUNCTION @.forget(p_stream uuid, p_keygen bigint) RETURNS boolean LANGUAGE plpgsql AS $$\n"
    "DECLARE v_key bytea;\n"
    "BEGIN\n"
    "  PERFORM pg_advisory_xact_lock(@.keys_lock());\n"
    "  PERFORM @.check_keygen(p_keygen);\n"
    "  SELECT key INTO v_key FROM @.keys WHERE stream_id = p_stream;\n"
    "  IF NOT FOUND THEN\n"
    "    RAISE EXCEPTION 'aggregate % has no data key', p_stream USING ERRCODE = 'CN004';\n"
    "  END IF;\n"
    "  IF length(v_key) = 1 THEN RETURN false; END IF;\n"
    "  UPDATE @.keys SET key = decode('00', 'hex') WHERE stream_id = p_stream;\n"
    "  DELETE FROM @.snapshots WHERE stream_id = p_stream;\n"
    "  UPDATE @.keystate SET keygen = keygen + 1;\n"
    "  RETURN true;\n"
    "END $$;\n"
    /* Rekey: every live data key rewrapped, and the new key check, at once. The
     * caller read the keys at generation p_keygen; any change since refuses. */
    "CREATE OR REPLACE FUNCTION @.rekey(p_stream uuid[], p_key bytea[], p_keycheck bytea, p_keygen bigint)\n"
    "RETURNS void LANGUAGE plpgsql AS $$\n"
    "DECLARE v_n bigint;\n"
    "BEGIN\n"
    "  PERFORM pg_advisory_xact_lock(@.keys_lock());\n"
    "  PERFORM @.check_keygen(p_keygen);\n"
    "  UPDATE @.keys k SET key = n.key FROM unnest(p_stream, p_key) AS n(id, key)\n"
    "   WHERE k.stream_id = n.id AND length(k.key) > 1;\n"
    "  GET DIAGNOSTICS v_n = ROW_COUNT;\n"
    "  IF v_n <> cardinality(p_stream) OR v_n <> (SELECT count(*) FROM @.keys WHERE length(key) > 1) THEN\n"
    "    RAISE EXCEPTION 'the data keys changed since they were read' USING ERRCODE = 'CN003';\n"
    "  END IF;\n"
    "  UPDATE @.keystate SET keycheck = p_keycheck, keygen = keygen + 1;\n"
    "END $$;\n"
    /* Make an empty, plain store encrypted. true: done; false: it was encrypted already. */
    "CREATE OR REPLACE FUNCTION @.set_cipher(p_cipher bytea, p_keycheck bytea, p_keygen bigint)\n"
    "RETURNS boolean LANGUAGE plpgsql AS $$\n"
    "BEGIN\n"
    "  PERFORM pg_advisory_xact_lock(@.keys_lock());\n"
    "  PERFORM @.check_keygen(p_keygen);\n"
    "  IF (SELECT cipher IS NOT NULL FROM @.keystate) THEN RETURN false; END IF;\n"
    "  IF EXISTS (SELECT 1 FROM @.events) THEN\n"
    "    RAISE EXCEPTION 'the store holds events now: it stays unencrypted' USING ERRCODE = 'CN003';\n"
    "  END IF;\n"
    "  UPDATE @.keystate SET cipher = p_cipher, keycheck = p_keycheck, keygen = keygen + 1;\n"
    "  RETURN true;\n"
    "END $$;\n"
    "INSERT INTO @.meta VALUES ('format', '" PG_STR(CAIRN_PG_FORMAT) "')\n"
    "  ON CONFLICT (key) DO UPDATE SET value = excluded.value;\n"
    "COMMIT;\n";

static const char *const statements[PG_SQL_COUNT] = {
    [PG_SQL_SAVE] = "SELECT @.save($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, "
                    "$20, $21, $22)",
    [PG_SQL_APPEND] = "SELECT @.append($1, $2, $3, $4, $5)",
    [PG_SQL_NUMBER] = "SELECT @.number($1, $2)",
    [PG_SQL_STREAM_ASC] = "SELECT id, version, stream_id, record FROM @.events "
                          "WHERE stream_id = $1 AND version >= $2 AND version <= $3 ORDER BY version LIMIT $4",
    [PG_SQL_STREAM_DESC] = "SELECT id, version, stream_id, record FROM @.events "
                           "WHERE stream_id = $1 AND version >= $2 AND version <= $3 ORDER BY version DESC LIMIT $4",
    /* what a save depends on, in one round trip: kind 0 the key state (version: keygen,
     * record: cipher, key: keycheck, flag: no events), kind 1 each stream's head and data
     * key, kind 2 the event each snapshot was taken at; in the order asked */
    [PG_SQL_PREPARE] =
        "SELECT 0 AS kind, 0::bigint AS ord, NULL::uuid AS stream_id, k.keygen AS version, k.cipher AS record, "
        "k.keycheck AS key, NOT EXISTS (SELECT 1 FROM @.events) AS flag FROM @.keystate k "
        "UNION ALL SELECT 1, s.o, s.id, e.version, e.record, "
        "CASE WHEN $2 THEN (SELECT key FROM @.keys WHERE stream_id = s.id) END, e.version IS NOT NULL "
        "FROM unnest($1::uuid[]) WITH ORDINALITY AS s(id, o) LEFT JOIN LATERAL (SELECT version, record "
        "FROM @.events WHERE stream_id = s.id ORDER BY version DESC LIMIT 1) e ON true "
        "UNION ALL SELECT 2, b.o, b.id, b.v, e.record, NULL, e.record IS NOT NULL "
        "FROM unnest($3::uuid[], $4::bigint[]) WITH ORDINALITY AS b(id, v, o) "
        "LEFT JOIN @.events e ON e.stream_id = b.id AND e.version = b.v ORDER BY 1, 2",
    [PG_SQL_FORGET] = "SELECT @.forget($1, $2)",
    [PG_SQL_WALK_EVENTS] = "SELECT id, version, stream_id, record FROM @.events WHERE (stream_id, version) > ($1, $2) "
                           "ORDER BY stream_id, version LIMIT $3",
    [PG_SQL_WALK_SNAPSHOTS] = "SELECT version, stream_id, record FROM @.snapshots "
                              "WHERE (stream_id, version) > ($1, $2) ORDER BY stream_id, version LIMIT $3",
    [PG_SQL_KEYS] = "SELECT stream_id, key FROM @.keys WHERE $1::uuid IS NULL OR stream_id > $1 "
                    "ORDER BY stream_id LIMIT $2",
    [PG_SQL_REKEY] = "SELECT @.rekey($1, $2, $3, $4)",
    [PG_SQL_SET_CIPHER] = "SELECT @.set_cipher($1, $2, $3)",
    [PG_SQL_LOG] = "SELECT id, version, stream_id, record FROM @.events "
                   "WHERE id >= $1 AND id <= $2 ORDER BY id LIMIT $3",
    [PG_SQL_LOG_IDS] = "SELECT id, version, stream_id, record FROM @.events WHERE id = ANY($1) "
                       "AND ($2::bytea[] IS NULL OR topic = ANY($2)) ORDER BY id",
    [PG_SQL_LOG_TOPICS] = "SELECT id, version, stream_id, record FROM @.events "
                          "WHERE id >= $1 AND id <= $2 AND topic = ANY($4) ORDER BY id LIMIT $3",
    /* with the event it was taken at (the mapper checks the snapshot's hash against it) */
    [PG_SQL_SNAPSHOT] = "SELECT s.version, s.stream_id, s.record, e.record FROM @.snapshots s "
                        "LEFT JOIN @.events e ON e.stream_id = s.stream_id AND e.version = s.version "
                        "WHERE s.stream_id = $1 AND s.version <= $2 ORDER BY s.version DESC LIMIT 1",
    [PG_SQL_MAX_ID] = "SELECT last FROM @.counter",
    [PG_SQL_TRACKING] = "SELECT id FROM @.tracking WHERE app = $1",
    /* and the schema's size on disk: its tables with their indexes and TOAST; its version */
    [PG_SQL_STAT] = "SELECT (SELECT count(*) FROM @.events), (SELECT count(DISTINCT stream_id) FROM @.events), "
                    "(SELECT count(*) FROM @.snapshots), (SELECT last FROM @.counter), "
                    "(SELECT count(*) FROM @.events WHERE id IS NULL), "
                    "(SELECT coalesce(sum(pg_total_relation_size(oid)), 0)::bigint FROM pg_class "
                    "WHERE relnamespace = '@'::regnamespace AND relkind IN ('r', 'p', 'm')), "
                    "(SELECT convert_from(value, 'UTF8')::bigint FROM @.meta WHERE key = 'format')",
    [PG_SQL_META_GET] = "SELECT value FROM @.meta WHERE key = $1",
    [PG_SQL_META_PUT] = "INSERT INTO @.meta VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    [PG_SQL_VIEW_WRITE] = "SELECT @.view_write($1, $2, $3, $4, $5, $6, $7, $8)",
    [PG_SQL_VIEW_GET] = "SELECT key, value FROM @.views WHERE name = $1 AND key = $2",
    [PG_SQL_VIEW_SCAN] = "SELECT key, value FROM @.views WHERE name = $1 AND key >= $2 "
                         "AND ($3::bytea IS NULL OR key < $3) AND ($4::bytea IS NULL OR key > $4) "
                         "ORDER BY key LIMIT $5",
    [PG_SQL_VIEW_TRACKING] = "SELECT id FROM @.view_tracking WHERE name = $1 AND app = $2",
    /* keys across views, as the mapper stores them ("name \0 key"), from the first view named
     * $1 or later, after ($1, $3) when $3 is given (listing the views: names hold no \0) */
    [PG_SQL_VIEW_SCAN_ALL] = "SELECT name || '\\x00'::bytea || key, value FROM @.views WHERE name >= $1 "
                             "AND ($2::bytea IS NULL OR (name, key) > ($1, $2)) ORDER BY name, key LIMIT $3",
    /* the store tools' pages (pg_list.c): tracking names as the mapper spells them (a view's
     * "view/app"), in byte order; streams after ($1, $2), which keeps to the (stream_id, version)
     * indexes (the first page starts after version -1 of the nil UUID) */
    [PG_SQL_TRACKING_SCAN] = "SELECT t.id, t.n FROM (SELECT app AS n, id FROM @.tracking UNION ALL "
                             "SELECT name || '/'::bytea || app, id FROM @.view_tracking) t "
                             "WHERE $1::bytea IS NULL OR t.n > $1 ORDER BY t.n LIMIT $2",
    [PG_SQL_SNAPSHOT_STREAMS] = "SELECT DISTINCT stream_id FROM @.snapshots WHERE (stream_id, version) > ($1, $2) "
                                "ORDER BY stream_id LIMIT $3",
    [PG_SQL_STREAM_HEADS] = "SELECT max(version), stream_id FROM @.events WHERE (stream_id, version) > ($1, $2) "
                            "GROUP BY stream_id ORDER BY stream_id LIMIT $3",
    /* a view rebuilt from scratch: its keys and its tracking, in one statement */
    /* the DCB events a query matches (each once, ascending, at most $5) and the log's last id, in
     * one snapshot: one row per event with the counter beside it, or one row with id NULL */
    [PG_SQL_DCB_READ] = "SELECT c.last, m.id FROM @.counter c LEFT JOIN LATERAL (SELECT DISTINCT d AS id "
                        "FROM @.dcb_match($1, $5, $2, $3, $4) AS d ORDER BY 1 LIMIT $5) m ON true ORDER BY m.id",
    [PG_SQL_ONCE_GET] = "SELECT first_id, n FROM @.once WHERE key = $1",
    /* verify: the DCB index with the event each entry names, and keys whose events are not all there */
    [PG_SQL_WALK_DCB] = "SELECT d.id, e.version, e.stream_id, e.record, d.name, d.type FROM @.dcb d "
                        "LEFT JOIN @.events e ON e.id = d.id WHERE $1::bytea IS NULL OR (d.name, d.id) > ($1, $2) "
                        "ORDER BY d.name, d.id LIMIT $3",
    [PG_SQL_DCB_HAS] = "SELECT 1 FROM @.dcb WHERE name = $1 AND id = $2",
    [PG_SQL_ONCE_BAD] = "SELECT first_id, n, key FROM @.once WHERE n > 0 AND (first_id < 1 OR first_id + n - 1 > "
                        "(SELECT last FROM @.counter)) ORDER BY key LIMIT $1",
    [PG_SQL_VIEW_CLEAR] = "WITH k AS (DELETE FROM @.views WHERE name = $1) DELETE FROM @.view_tracking WHERE name = $1",
};

/* tmpl with `@` → the quoted schema and `#` → the plain one (malloc'd). */
static char *expand_names(const char *schema, const char *qschema, const char *tmpl)
{
    size_t q = strlen(qschema), s = strlen(schema), len = 1;
    for (const char *c = tmpl; *c; c++) len += *c == '@' ? q : *c == '#' ? s : 1;
    char *out = malloc(len), *w = out;
    if (!out) return NULL;
    for (const char *c = tmpl; *c; c++) {
        if (*c == '@') { memcpy(w, qschema, q); w += q; }
        else if (*c == '#') { memcpy(w, schema, s); w += s; }
        else *w++ = *c;
    }
    *w = '\0';
    return out;
}

static char *expand(const cairn_pg *pg, const char *tmpl) { return expand_names(pg->schema, pg->qschema, tmpl); }

char *pg_schema_script(cairn_pg *pg, const char *schema)
{
    char *q = PQescapeIdentifier(pg->conn, schema, strlen(schema));
    char *script = q ? expand_names(schema, q, schema_sql) : NULL;
    PQfreemem(q);
    return script;
}

int pg_sql_make(cairn_pg *pg)
{
    pg->qschema = PQescapeIdentifier(pg->conn, pg->schema, strlen(pg->schema));
    if (!pg->qschema) return pg_fail(pg, CAIRN_STORE, "out of memory");
    for (int i = 0; i < PG_SQL_COUNT; i++)
        if (!(pg->sql[i] = expand(pg, statements[i]))) return pg_fail(pg, CAIRN_STORE, "out of memory");
    return CAIRN_OK;
}

/* Does the schema hold this table? */
static int has_table(cairn_pg *pg, const char *table, int *found)
{
    char name[CAIRN_PG_SCHEMA_MAX * 2 + 32];
    snprintf(name, sizeof name, "%s.%s", pg->qschema, table);
    pg_params p = { 0 };
    pg_param_bytes(&p, PG_TEXT, name, strlen(name));
    PGresult *r;
    int rc = pg_exec_sql(pg, "SELECT to_regclass($1) IS NOT NULL", &p, &r);
    if (rc) return rc;
    *found = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 1;
    PQclear(r);
    return CAIRN_OK;
}

/* Does the schema hold cairn's tables? *format: the layout recorded there. */
static int find_store(cairn_pg *pg, int *found, unsigned *format)
{
    *format = 0;
    int rc = has_table(pg, "meta", found);
    if (rc || !*found) return rc;
    pg_params p = { 0 };
    PGresult *r;
    static const char key[] = "format";
    pg_param_bytes(&p, PG_TEXT, key, sizeof key - 1);
    if ((rc = pg_exec(pg, PG_SQL_META_GET, &p, &r))) return rc;
    if (PQntuples(r) == 1) *format = (unsigned)strtoul(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return CAIRN_OK;
}

/* Make the schema, or bring an older one up to date: schema_sql, one transaction; then
 * check it is at this cairn's version. A writer's open does it; so does the first write
 * through a tool's open, which found an older schema and left it as it was. */
int pg_schema_update(cairn_pg *pg)
{
    char *script = expand(pg, schema_sql);
    if (!script) return pg_fail(pg, CAIRN_STORE, "out of memory");
    int rc = pg_exec_script(pg, script);
    free(script);
    int found;
    unsigned format;
    if (rc == CAIRN_OK) rc = find_store(pg, &found, &format);
    if (rc == CAIRN_OK && (!found || format != CAIRN_PG_FORMAT))
        rc = pg_fail(pg, CAIRN_STORE, "schema %s: version %u after bringing it up to date, not %d", pg->schema,
                     format, CAIRN_PG_FORMAT);
    if (rc == CAIRN_OK) pg->outdated = pg->no_dcb = 0;
    return rc;
}

int pg_schema_open(cairn_pg *pg)
{
    int found;
    unsigned format;
    int rc = find_store(pg, &found, &format);
    if (rc) return rc;
    if (!found && pg->must_exist) {
        /* worded as LMDB's missing store, which the tools recognise */
        snprintf(pg->errmsg, sizeof pg->errmsg, "no store at postgresql://%s?schema=%s (the schema holds no "
                 "cairn tables; %s creates none)", pg->server, pg->schema, pg->read_only ? "a read-only open" : "this open");
        return CAIRN_CONFIG;
    }
    if (found && format == 0)
        return pg_fail(pg, CAIRN_CONFIG, "schema %s has cairn's tables but no version record", pg->schema);
    if (format > CAIRN_PG_FORMAT)
        return pg_fail(pg, CAIRN_CONFIG, "schema %s has version %u, newer than this cairn knows (%d): use a newer "
                       "cairn", pg->schema, format, CAIRN_PG_FORMAT);
    if (found && format < CAIRN_PG_FORMAT && pg->must_exist) {
        /* a reader or a tool reads an older schema as it is, if it can, and writes
         * nothing; a tool that writes brings it up to date first (pg_writable) */
        if (format < CAIRN_PG_FORMAT_READS)
            return pg_fail(pg, CAIRN_CONFIG, "schema %s has version %u; this cairn reads versions %d to %d (a "
                           "writer's open brings it up to date)", pg->schema, format, CAIRN_PG_FORMAT_READS,
                           CAIRN_PG_FORMAT);
        pg->outdated = 1;
        /* one made before DCB events and idempotent saves: a tool's open finds none there */
        int has_dcb;
        if ((rc = has_table(pg, "once", &has_dcb))) return rc;
        pg->no_dcb = !has_dcb;
        return CAIRN_OK;
    }
    /* one whose DCB tables are missing (made before them): a tool's open finds no DCB
     * events there until it writes; a writer's open adds them */
    int has_dcb = 1;
    if (found && (rc = has_table(pg, "once", &has_dcb))) return rc;
    if (!has_dcb && pg->must_exist) {
        pg->no_dcb = 1;
        pg->outdated = !pg->read_only;
        return CAIRN_OK;
    }
    if (pg->read_only) return CAIRN_OK;
    /* the first writer makes it; a writer of a newer cairn updates an older one */
    if ((!found || format < CAIRN_PG_FORMAT || !has_dcb) && (rc = pg_schema_update(pg))) return rc;
    PGresult *r;
    char *sql = expand(pg, "SELECT @.number_all()");
    if (!sql) return pg_fail(pg, CAIRN_STORE, "out of memory");
    rc = pg_exec_sql(pg, sql, NULL, &r);
    free(sql);
    if (rc == CAIRN_OK) PQclear(r);
    return rc;
}
