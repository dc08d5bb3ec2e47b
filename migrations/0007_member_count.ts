// Frozen in time: never import from src/.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // The member limit was checked by counting the members under the organization's row lock:
  // at 100,000 members that count held the lock for milliseconds per added member
  // (`npm run bench -- AdminOrgs.addMember`). The count is now kept on the organization by the
  // database itself, so every way a membership is made or ended — the API, SSO provisioning,
  // a cascade, bulk SQL — keeps it true. Statement-level triggers: a bulk insert updates the
  // organization once, not once per row.
  await sql`ALTER TABLE organizations ADD COLUMN member_count integer NOT NULL DEFAULT 0`.execute(db);
  await sql`
    UPDATE organizations o SET member_count = c.n
    FROM (SELECT tenant_id, org_id, count(*)::int AS n FROM org_members GROUP BY 1, 2) c
    WHERE o.tenant_id = c.tenant_id AND o.id = c.org_id`.execute(db);
  await sql`
    CREATE FUNCTION org_member_count_added() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      UPDATE organizations o SET member_count = o.member_count + c.n
      FROM (SELECT tenant_id, org_id, count(*)::int AS n FROM added GROUP BY 1, 2) c
      WHERE o.tenant_id = c.tenant_id AND o.id = c.org_id;
      RETURN NULL;
    END $$`.execute(db);
  await sql`
    CREATE FUNCTION org_member_count_removed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      UPDATE organizations o SET member_count = o.member_count - c.n
      FROM (SELECT tenant_id, org_id, count(*)::int AS n FROM removed GROUP BY 1, 2) c
      WHERE o.tenant_id = c.tenant_id AND o.id = c.org_id;
      RETURN NULL;
    END $$`.execute(db);
  await sql`
    CREATE TRIGGER org_members_counted_in AFTER INSERT ON org_members
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION org_member_count_added()`.execute(db);
  await sql`
    CREATE TRIGGER org_members_counted_out AFTER DELETE ON org_members
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION org_member_count_removed()`.execute(db);
  // A membership never moves to another organization; refuse it rather than miscount.
  await sql`
    CREATE FUNCTION org_member_stays() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'a membership cannot move to another organization';
    END $$`.execute(db);
  await sql`
    CREATE TRIGGER org_members_stay BEFORE UPDATE OF tenant_id, org_id ON org_members
    FOR EACH ROW WHEN (OLD.org_id IS DISTINCT FROM NEW.org_id OR OLD.tenant_id IS DISTINCT FROM NEW.tenant_id)
    EXECUTE FUNCTION org_member_stays()`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP TRIGGER org_members_stay ON org_members`.execute(db);
  await sql`DROP TRIGGER org_members_counted_out ON org_members`.execute(db);
  await sql`DROP TRIGGER org_members_counted_in ON org_members`.execute(db);
  await sql`DROP FUNCTION org_member_stays(), org_member_count_removed(), org_member_count_added()`.execute(db);
  await sql`ALTER TABLE organizations DROP COLUMN member_count`.execute(db);
}
