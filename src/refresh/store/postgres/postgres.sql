-- tower-jwt-auth refresh-token store, applied by PostgresStore::migrate().
-- Every statement is idempotent, and brings any older version of this schema
-- up to this one; migrate() runs them in one transaction under an advisory
-- lock, so concurrent starts are safe.

CREATE TABLE IF NOT EXISTS tjwt_families (
    id           text    PRIMARY KEY,
    user_id      text    NOT NULL,
    device       text,
    created_at   bigint  NOT NULL,
    last_used_at bigint  NOT NULL,
    expires_at   bigint  NOT NULL,
    generation   bigint  NOT NULL,
    revoked      boolean NOT NULL DEFAULT false
);

-- sessions(), revoke_user() and the session cap of create(): one user's
-- families that are not revoked, oldest first. Partial, so revoked families
-- (kept until purged) never lengthen these scans: each stays about the cap.
CREATE INDEX IF NOT EXISTS tjwt_families_user_live_idx ON tjwt_families (user_id, created_at, id)
    WHERE NOT revoked;
-- Version 2 indexed every family of a user; the partial index replaces it.
DROP INDEX IF EXISTS tjwt_families_user_idx;
-- Version 5: the session's login time (auth_time; NULL for sessions created
-- before, read as created_at) and the DPoP key it is bound to (jkt).
ALTER TABLE tjwt_families ADD COLUMN IF NOT EXISTS auth_time bigint;
ALTER TABLE tjwt_families ADD COLUMN IF NOT EXISTS jkt text;
-- Version 6: when the family was revoked (Unix seconds by the database's
-- clock; NULL for families revoked before), set by tjwt_family_ended below.
ALTER TABLE tjwt_families ADD COLUMN IF NOT EXISTS revoked_at bigint;
-- Families revoked before version 6 count as revoked now: the first resync of
-- a logout broadcast after the upgrade finds them (for one window), as the
-- per-request session check did. A family inserted already revoked, which no
-- trigger stamps, gets the same conservative stamp when this file runs again.
UPDATE tjwt_families SET revoked_at = floor(extract(epoch FROM clock_timestamp()))::bigint
    WHERE revoked AND revoked_at IS NULL;
-- recently_ended() of the logout broadcast: the families revoked lately.
CREATE INDEX IF NOT EXISTS tjwt_families_revoked_at_idx ON tjwt_families (revoked_at)
    WHERE revoked_at IS NOT NULL;
-- purge(): expired families.
CREATE INDEX IF NOT EXISTS tjwt_families_expires_idx ON tjwt_families (expires_at);
-- purge(): revoked families idle since before the cutoff.
CREATE INDEX IF NOT EXISTS tjwt_families_revoked_idx ON tjwt_families (last_used_at) WHERE revoked;

CREATE TABLE IF NOT EXISTS tjwt_tokens (
    hash       bytea    PRIMARY KEY CHECK (octet_length(hash) = 32),
    family_id  text     NOT NULL REFERENCES tjwt_families (id) ON DELETE CASCADE,
    parent     bytea,
    generation bigint   NOT NULL,
    created_at bigint   NOT NULL,
    -- 0 active, 1 rotated (at rotated_at), 2 revoked
    status     smallint NOT NULL,
    rotated_at bigint
);

-- Version 4: the end of a token's retry permit (allow_retry), NULL without one.
ALTER TABLE tjwt_tokens ADD COLUMN IF NOT EXISTS retry_until bigint;

-- The ON DELETE CASCADE of purge() finds a family's tokens by this index.
CREATE INDEX IF NOT EXISTS tjwt_tokens_family_idx ON tjwt_tokens (family_id);

-- RefreshStore::rotate as one statement (one round trip). Locks the family
-- row first, then the token row: every writer that touches a family's tokens
-- locks the family first, so there is no lock-order deadlock. Under READ
-- COMMITTED each statement below takes a fresh snapshot, so a rotation that
-- waited for the lock sees the winner's writes.
-- Version 5 returns two more columns (auth_time, jkt): a function's result type cannot be
-- replaced in place.
DROP FUNCTION IF EXISTS tjwt_rotate(bytea, bytea, bigint, bigint, bigint);
CREATE FUNCTION tjwt_rotate(
    p_presented bytea, p_child bytea, p_now bigint, p_idle_cutoff bigint, p_grace_cutoff bigint
) RETURNS TABLE (
    o_outcome text, o_id text, o_user_id text, o_device text, o_created_at bigint,
    o_last_used_at bigint, o_expires_at bigint, o_generation bigint, o_revoked boolean,
    o_auth_time bigint, o_jkt text
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_family_id text;
    f tjwt_families%ROWTYPE;
    t tjwt_tokens%ROWTYPE;
    v_outcome text;
BEGIN
    SELECT tk.family_id INTO v_family_id FROM tjwt_tokens tk WHERE tk.hash = p_presented;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'unknown'::text, NULL::text, NULL::text, NULL::text, NULL::bigint,
            NULL::bigint, NULL::bigint, NULL::bigint, NULL::boolean, NULL::bigint, NULL::text;
        RETURN;
    END IF;
    SELECT * INTO f FROM tjwt_families fa WHERE fa.id = v_family_id FOR UPDATE;
    IF FOUND THEN
        SELECT * INTO t FROM tjwt_tokens tk WHERE tk.hash = p_presented FOR UPDATE;
    END IF;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'unknown'::text, NULL::text, NULL::text, NULL::text, NULL::bigint,
            NULL::bigint, NULL::bigint, NULL::bigint, NULL::boolean, NULL::bigint, NULL::text;
        RETURN;
    END IF;
    IF f.revoked OR t.status = 2 THEN
        v_outcome := 'revoked';
    ELSIF f.expires_at <= p_now OR f.last_used_at < p_idle_cutoff THEN
        v_outcome := 'expired';
    -- Only the newest generation rotates: an active sibling left behind by a
    -- retry is stale once the family moved on, and presenting it is reuse.
    ELSIF t.status = 0 AND t.generation = f.generation THEN
        v_outcome := 'rotated';
    ELSIF t.status = 1 AND t.retry_until IS NOT NULL AND t.retry_until >= p_now
            AND t.generation + 1 = f.generation THEN
        v_outcome := 'retried';
    ELSIF t.status = 1 AND p_grace_cutoff IS NOT NULL AND t.rotated_at >= p_grace_cutoff
            AND t.generation + 1 = f.generation THEN
        v_outcome := 'grace';
    ELSE
        UPDATE tjwt_families fa SET revoked = true WHERE fa.id = f.id RETURNING fa.* INTO f;
        v_outcome := 'reused';
    END IF;
    IF v_outcome IN ('rotated', 'retried', 'grace') THEN
        IF v_outcome = 'rotated' THEN
            UPDATE tjwt_tokens tk SET status = 1, rotated_at = p_now WHERE tk.hash = p_presented;
        ELSIF v_outcome = 'retried' THEN
            -- A retry permit lets one retry through.
            UPDATE tjwt_tokens tk SET retry_until = NULL WHERE tk.hash = p_presented;
        END IF;
        -- A duplicate child hash raises unique_violation: the whole call fails.
        INSERT INTO tjwt_tokens (hash, family_id, parent, generation, created_at, status)
            VALUES (p_child, f.id, p_presented, t.generation + 1, p_now, 0);
        UPDATE tjwt_families fa SET generation = t.generation + 1, last_used_at = p_now
            WHERE fa.id = f.id RETURNING fa.* INTO f;
    END IF;
    IF v_outcome IN ('revoked', 'expired') THEN
        RETURN QUERY SELECT v_outcome, NULL::text, NULL::text, NULL::text, NULL::bigint,
            NULL::bigint, NULL::bigint, NULL::bigint, NULL::boolean, NULL::bigint, NULL::text;
        RETURN;
    END IF;
    RETURN QUERY SELECT v_outcome, f.id, f.user_id, f.device, f.created_at, f.last_used_at,
        f.expires_at, f.generation, f.revoked, COALESCE(f.auth_time, f.created_at), f.jkt;
END;
$$;

-- RefreshStore::create as one statement: the session, its first token, then
-- the session cap. Logins of one user take turns (a transaction-scoped
-- advisory lock on the user, in the two-key space "tjwu" + hash, apart from
-- migrate()'s one-key lock), so two concurrent logins cannot both miss each
-- other's session. The sessions beyond the cap are locked in index order,
-- like revoke_user, so the two never deadlock. Returns the revoked ids.
-- Version 5 takes two more arguments (auth_time, jkt): the version 3 and 4
-- function is dropped, not left behind as an overload.
DROP FUNCTION IF EXISTS tjwt_create(
    text, text, text, bigint, bigint, bigint, bigint, boolean,
    bytea, bytea, bigint, bigint, smallint, bigint, integer
);
CREATE OR REPLACE FUNCTION tjwt_create(
    p_id text, p_user_id text, p_device text, p_created_at bigint, p_last_used_at bigint,
    p_expires_at bigint, p_generation bigint, p_revoked boolean,
    p_hash bytea, p_parent bytea, p_t_generation bigint, p_t_created_at bigint,
    p_status smallint, p_rotated_at bigint, p_max_sessions integer,
    p_auth_time bigint, p_jkt text
) RETURNS SETOF text LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1953134453, hashtext(p_user_id));
    INSERT INTO tjwt_families
        (id, user_id, device, created_at, last_used_at, expires_at, generation, revoked,
         auth_time, jkt)
        VALUES (p_id, p_user_id, p_device, p_created_at, p_last_used_at, p_expires_at,
            p_generation, p_revoked, p_auth_time, p_jkt);
    INSERT INTO tjwt_tokens (hash, family_id, parent, generation, created_at, status, rotated_at)
        VALUES (p_hash, p_id, p_parent, p_t_generation, p_t_created_at, p_status, p_rotated_at);
    IF p_revoked THEN
        RETURN;
    END IF;
    -- The new session takes one place: keep the newest p_max_sessions - 1 others.
    RETURN QUERY
    WITH excess AS (
        SELECT fa.id, fa.created_at FROM tjwt_families fa
        WHERE fa.user_id = p_user_id AND NOT fa.revoked AND fa.id <> p_id
        ORDER BY fa.created_at DESC, fa.id DESC
        OFFSET greatest(p_max_sessions - 1, 0)
    ), locked AS (
        SELECT fa.id FROM tjwt_families fa
        WHERE fa.id IN (SELECT excess.id FROM excess)
        ORDER BY fa.created_at, fa.id
        FOR UPDATE
    ), revoked AS (
        UPDATE tjwt_families fa SET revoked = true
        WHERE fa.id IN (SELECT locked.id FROM locked) AND NOT fa.revoked
        RETURNING fa.id, fa.created_at
    )
    SELECT revoked.id FROM revoked ORDER BY revoked.created_at, revoked.id;
END;
$$;

-- Version 6, the logout broadcast: every statement that revokes a family
-- (logout, logout everywhere, reuse in tjwt_rotate, the session cap in
-- tjwt_create) sets `revoked` from false to true, and this trigger stamps
-- revoked_at and queues a notification carrying the family id. NOTIFY is
-- transactional: it is delivered on commit, never for a revocation that
-- rolled back.
--
-- Channels are database-wide, schemas are not: the channel is named after the
-- schema of the tables, `tjwt_ended_` and 12 hex digits of its MD5 (within
-- the 63-byte limit whatever the schema's name), so that two deployments in
-- two schemas of one database hear only their own sessions.
CREATE OR REPLACE FUNCTION tjwt_ended_channel(p_schema text) RETURNS text
    LANGUAGE sql IMMUTABLE AS $$ SELECT 'tjwt_ended_' || substr(md5(p_schema), 1, 12) $$;
CREATE OR REPLACE FUNCTION tjwt_family_ended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.revoked_at := floor(extract(epoch FROM clock_timestamp()))::bigint;
    PERFORM pg_notify(tjwt_ended_channel(TG_TABLE_SCHEMA), NEW.id);
    RETURN NEW;
END;
$$;
DROP TRIGGER IF EXISTS tjwt_families_ended ON tjwt_families;
CREATE TRIGGER tjwt_families_ended BEFORE UPDATE OF revoked ON tjwt_families
    FOR EACH ROW WHEN (NEW.revoked AND NOT OLD.revoked)
    EXECUTE FUNCTION tjwt_family_ended();

-- The schema version migrate() checks first: at the current version it runs
-- no DDL, so a restart takes no table locks that could stall rotations.
CREATE TABLE IF NOT EXISTS tjwt_schema (
    id      boolean PRIMARY KEY DEFAULT true CHECK (id),
    version integer NOT NULL
);
