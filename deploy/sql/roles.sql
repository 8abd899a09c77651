-- Least-privilege PostgreSQL roles for outbox-relay (docs/security.md explains each grant).
--
--   psql "$ADMIN_URL" -v ON_ERROR_STOP=1 -v schema=outbox \
--        -v relay_role=outbox_relay -v app_role=outbox_app -v admin_role=outbox_admin \
--        -f deploy/sql/roles.sql
--
-- Run it as a superuser or as the owner of the outbox schema, and again after every
-- `outbox-relay migrate` (it is idempotent): grants name the tables a migration created, and a
-- migration that redefines `enqueue` resets it to SECURITY INVOKER. On a fresh database run it once
-- before the first migrate (it creates the roles and lets the admin role create the schema), then
-- `outbox-relay migrate` as the admin role, then this script again for the table grants.
--
-- Parameters (psql variables, all optional):
--   schema      the outbox schema (OUTBOX_SCHEMA), default outbox
--   relay_role  what `outbox-relay run` connects as, default outbox_relay
--   app_role    what applications that enqueue connect as (or a group role they are members of), default outbox_app
--   admin_role  migrations and operators (`migrate`, `status`, `dlq ...`), default outbox_admin
-- Roles are created with LOGIN and no password: set one with \password or your secret manager,
-- so no credential is ever written in this file or its history.

\if :{?schema}
\else
  \set schema outbox
\endif
\if :{?relay_role}
\else
  \set relay_role outbox_relay
\endif
\if :{?app_role}
\else
  \set app_role outbox_app
\endif
\if :{?admin_role}
\else
  \set admin_role outbox_admin
\endif

BEGIN;

-- Roles (CREATE ROLE has no IF NOT EXISTS; \gexec runs the statement only when it is missing).
SELECT format('CREATE ROLE %I LOGIN', r.name)
FROM (VALUES (:'relay_role'), (:'app_role'), (:'admin_role')) AS r(name)
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r.name) \gexec

-- The admin role runs `outbox-relay migrate`, which creates the schema (CREATE SCHEMA IF NOT
-- EXISTS checks this privilege even when the schema exists).
GRANT CONNECT, CREATE ON DATABASE :"DBNAME" TO :"admin_role";
GRANT CONNECT ON DATABASE :"DBNAME" TO :"relay_role", :"app_role";

-- Everything below needs the migrated schema.
SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = :'schema') AS schema_exists,
       to_regprocedure(format('%I.enqueue(text,text,bytea,jsonb,text,text)', :'schema')) IS NOT NULL AS has_enqueue \gset
\if :schema_exists
\else
  \echo 'schema' :schema 'does not exist yet: run `outbox-relay migrate` as' :admin_role ', then this script again'
  COMMIT;
  \quit
\endif
\if :has_enqueue
\else
  \echo 'schema' :schema 'has no enqueue function: is it an outbox schema? run `outbox-relay migrate` first'
  ROLLBACK;
  \quit 3
\endif

-- Nobody gets anything by default: functions are executable by PUBLIC unless revoked, and the
-- enqueue function would otherwise be callable by every role of the cluster.
REVOKE ALL ON SCHEMA :"schema" FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA :"schema" FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA :"schema" FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA :"schema" FROM PUBLIC;

-- admin: migrations, `status`, `dlq list|show|stats|replay|purge|audit`, manual repairs.
GRANT USAGE, CREATE ON SCHEMA :"schema" TO :"admin_role";
GRANT ALL ON ALL TABLES IN SCHEMA :"schema" TO :"admin_role";
GRANT ALL ON ALL SEQUENCES IN SCHEMA :"schema" TO :"admin_role";
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA :"schema" TO :"admin_role";

-- relay: exactly the statements of `outbox-relay run` (RelayStore, RelayMonitor, Migrator's
-- version check). Column lists keep it from rewriting what applications wrote.
GRANT USAGE ON SCHEMA :"schema" TO :"relay_role";
GRANT SELECT ON :"schema".schema_migrations TO :"relay_role";
-- read batches and backlog gauges; fenced acks; retries (attempts, backoff, last error)
GRANT SELECT, DELETE ON :"schema".messages TO :"relay_role";
GRANT UPDATE (attempts, available_at, last_error) ON :"schema".messages TO :"relay_role";
-- lane leases: claim, renew, release (and FOR SHARE / FOR UPDATE locks, which need UPDATE)
GRANT SELECT ON :"schema".lanes TO :"relay_role";
GRANT UPDATE (owner, epoch, lease_expires_at) ON :"schema".lanes TO :"relay_role";
-- membership: heartbeat upsert, deregistration on shutdown
GRANT SELECT, INSERT, DELETE ON :"schema".relays TO :"relay_role";
-- and the wake-up flag (migration 6: enqueue notifies only while a relay has it set); the
-- heartbeat also rewrites who it is and its readiness, and whether it stepped back (migration 7)
GRANT UPDATE (heartbeat_at, wants_wakeup, host, pid, version, started_at, stepped_back, ready, readiness)
    ON :"schema".relays TO :"relay_role";
-- the outbox's envelope source: the first relay records it, every relay reads it
GRANT SELECT, INSERT ON :"schema".identity TO :"relay_role";
-- dead-lettering inserts only; reading or changing dead letters is the admin's job
GRANT INSERT (id, topic, key, lane, payload, headers, content_type, type, created_at, attempts, reason, error, relay)
    ON :"schema".dead_letters TO :"relay_role";
-- LISTEN and pg_notify need no grant.

-- app: enqueue only, through the function, never the tables. SECURITY DEFINER makes the
-- function's INSERT (and its RETURNING id) run with the owner's rights; the fixed search_path
-- keeps a caller's objects (pg_temp included) from shadowing anything it calls.
ALTER FUNCTION :"schema".enqueue(text, text, bytea, jsonb, text, text)
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
GRANT USAGE ON SCHEMA :"schema" TO :"app_role";
GRANT EXECUTE ON FUNCTION :"schema".enqueue(text, text, bytea, jsonb, text, text) TO :"app_role";
-- OutboxWriter locks a batch's keys in one call before enqueueing them (SECURITY DEFINER, no tables).
GRANT EXECUTE ON FUNCTION :"schema".lock_keys(bytea[]) TO :"app_role";

COMMIT;
\echo 'roles ready on schema' :schema ': relay' :relay_role ', app' :app_role ', admin' :admin_role
