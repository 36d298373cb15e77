-- The schema of version 2 (before auth_time and jkt), as released: the
-- migration test (tests/store_postgres.rs) upgrades a database holding it.
-- tower-jwt-auth refresh-token store, applied by PostgresStore::migrate().
-- Every statement is idempotent; migrate() runs them in one transaction
-- under an advisory lock, so concurrent starts are safe.

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

-- sessions() and revoke_user(): one user's families, oldest first.
CREATE INDEX IF NOT EXISTS tjwt_families_user_idx ON tjwt_families (user_id, created_at, id);
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

-- The ON DELETE CASCADE of purge() finds a family's tokens by this index.
CREATE INDEX IF NOT EXISTS tjwt_tokens_family_idx ON tjwt_tokens (family_id);

-- RefreshStore::rotate as one statement (one round trip). Locks the family
-- row first, then the token row: every writer that touches a family's tokens
-- locks the family first, so there is no lock-order deadlock. Under READ
-- COMMITTED each statement below takes a fresh snapshot, so a rotation that
-- waited for the lock sees the winner's writes.
CREATE OR REPLACE FUNCTION tjwt_rotate(
    p_presented bytea, p_child bytea, p_now bigint, p_idle_cutoff bigint, p_grace_cutoff bigint
) RETURNS TABLE (
    o_outcome text, o_id text, o_user_id text, o_device text, o_created_at bigint,
    o_last_used_at bigint, o_expires_at bigint, o_generation bigint, o_revoked boolean
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
            NULL::bigint, NULL::bigint, NULL::bigint, NULL::boolean;
        RETURN;
    END IF;
    SELECT * INTO f FROM tjwt_families fa WHERE fa.id = v_family_id FOR UPDATE;
    IF FOUND THEN
        SELECT * INTO t FROM tjwt_tokens tk WHERE tk.hash = p_presented FOR UPDATE;
    END IF;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'unknown'::text, NULL::text, NULL::text, NULL::text, NULL::bigint,
            NULL::bigint, NULL::bigint, NULL::bigint, NULL::boolean;
        RETURN;
    END IF;
    IF f.revoked OR t.status = 2 THEN
        v_outcome := 'revoked';
    ELSIF f.expires_at <= p_now OR f.last_used_at < p_idle_cutoff THEN
        v_outcome := 'expired';
    -- Only the newest generation rotates: an active sibling left behind by a
    -- grace retry is stale once the family moved on, and presenting it is reuse.
    ELSIF t.status = 0 AND t.generation = f.generation THEN
        v_outcome := 'rotated';
    ELSIF t.status = 1 AND p_grace_cutoff IS NOT NULL AND t.rotated_at >= p_grace_cutoff
            AND t.generation + 1 = f.generation THEN
        v_outcome := 'grace';
    ELSE
        UPDATE tjwt_families fa SET revoked = true WHERE fa.id = f.id RETURNING fa.* INTO f;
        v_outcome := 'reused';
    END IF;
    IF v_outcome IN ('rotated', 'grace') THEN
        IF v_outcome = 'rotated' THEN
            UPDATE tjwt_tokens tk SET status = 1, rotated_at = p_now WHERE tk.hash = p_presented;
        END IF;
        -- A duplicate child hash raises unique_violation: the whole call fails.
        INSERT INTO tjwt_tokens (hash, family_id, parent, generation, created_at, status)
            VALUES (p_child, f.id, p_presented, t.generation + 1, p_now, 0);
        UPDATE tjwt_families fa SET generation = t.generation + 1, last_used_at = p_now
            WHERE fa.id = f.id RETURNING fa.* INTO f;
    END IF;
    IF v_outcome IN ('revoked', 'expired') THEN
        RETURN QUERY SELECT v_outcome, NULL::text, NULL::text, NULL::text, NULL::bigint,
            NULL::bigint, NULL::bigint, NULL::bigint, NULL::boolean;
        RETURN;
    END IF;
    RETURN QUERY SELECT v_outcome, f.id, f.user_id, f.device, f.created_at, f.last_used_at,
        f.expires_at, f.generation, f.revoked;
END;
$$;

-- The schema version migrate() checks first: at the current version it runs
-- no DDL, so a restart takes no table locks that could stall rotations.
CREATE TABLE IF NOT EXISTS tjwt_schema (
    id      boolean PRIMARY KEY DEFAULT true CHECK (id),
    version integer NOT NULL
);
