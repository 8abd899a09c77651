extension Migration {
    /// Each relay says in its heartbeat whether it is ready and why not, and whether it stepped
    /// back from the fleet.
    ///
    /// The console shows "ready or why not" per relay without reaching each relay's `/readyz`
    /// (relays sit behind their own network; the console only has the database). Readiness is
    /// written by the relay itself at every heartbeat, so it is as old as `heartbeat_at` says; a
    /// relay that cannot reach the database cannot write it, and its silent heartbeat says so.
    ///
    /// `stepped_back`: a relay whose broker stays unreachable for a lease TTL hands its lanes to the
    /// others. It used to delete its row to leave the fair share, so it vanished from `status`
    /// and the console exactly when an operator needs to see it. Now it keeps heartbeating with
    /// `stepped_back` set, which the fleet's member count skips.
    ///
    /// The heartbeat now also rewrites `host`, `pid`, `version` and `started_at`: a relay
    /// restarted under the same id (a container restarted in its pod keeps its host name, and is
    /// pid 1 again) showed the first incarnation's start time.
    ///
    /// Roles that may already write heartbeats (column grants of `UPDATE (heartbeat_at)`, as
    /// deploy/sql/roles.sql gives the relay role) get the new columns granted here, so relays
    /// upgraded after this migration heartbeat without re-running roles.sql first.
    static let v7RelayReadiness = Migration(
        version: 7,
        name: "relays report readiness and stepping back in their heartbeat",
        sql: """
            ALTER TABLE {schema}.relays
                ADD COLUMN stepped_back boolean NOT NULL DEFAULT false,
                ADD COLUMN ready        boolean,
                ADD COLUMN readiness    text;

            DO $migration$
            DECLARE
                grantee_name text;
            BEGIN
                FOR grantee_name IN
                    SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(g.rolname) END
                    FROM pg_attribute att
                    CROSS JOIN LATERAL aclexplode(att.attacl) a
                    LEFT JOIN pg_roles g ON g.oid = a.grantee
                    WHERE att.attrelid = '{schema}.relays'::regclass
                      AND att.attname = 'heartbeat_at' AND a.privilege_type = 'UPDATE'
                LOOP
                    EXECUTE 'GRANT UPDATE (host, pid, version, started_at, stepped_back, ready, readiness) ON {schema}.relays TO '
                        || grantee_name;
                END LOOP;
            END
            $migration$;
            """
    )
}
