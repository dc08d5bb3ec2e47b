/**
 * What the metrics add to a request, apart from HTTP and PostgreSQL:
 *
 *   node --import tsx bench/diag/metrics-cost.ts [--calls 1000000]
 *
 * Prints CPU nanoseconds per call (median of batches) of what a request pays: counting it by
 * route (Metrics.request, over 40 route templates and a few statuses, as a server sees them),
 * timing one statement (Metrics.statement), and kysely's `log` option around a statement (a
 * query through a driver that does nothing, with and without the option).
 */
import { parseArgs } from 'node:util';
import { DummyDriver, Kysely, type LogEvent, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler } from 'kysely';
import { Metrics } from '../../src/metrics/metrics.ts';

const { values } = parseArgs({ options: { calls: { type: 'string', default: '1000000' } } });
const calls = Number(values.calls);
const batches = 9;

function nsPerCall(work: (i: number) => void): number {
  const per = calls / batches;
  const results: number[] = [];
  for (let b = 0; b < batches; b++) {
    const start = process.cpuUsage();
    for (let i = 0; i < per; i++) work(i);
    const used = process.cpuUsage(start);
    results.push(((used.user + used.system) * 1000) / per);
  }
  return results.sort((a, b) => a - b)[Math.floor(batches / 2)]!;
}

async function nsPerQuery(db: Kysely<{ t: { id: number } }>, n: number): Promise<number> {
  const results: number[] = [];
  for (let b = 0; b < batches; b++) {
    const start = process.cpuUsage();
    for (let i = 0; i < n; i++) await db.selectFrom('t').select('id').where('id', '=', i).execute();
    const used = process.cpuUsage(start);
    results.push(((used.user + used.system) * 1000) / n);
  }
  return results.sort((a, b) => a - b)[Math.floor(batches / 2)]!;
}

const metrics = new Metrics();
const routes = Array.from({ length: 40 }, (_, i) => `/t/:slug/api/v1/admin/route${i}/:id`);
const statuses = [200, 201, 204, 400, 401, 404];
const methods = ['GET', 'POST', 'PATCH', 'DELETE'];
console.log(`Metrics.request:   ${nsPerCall((i) => metrics.request(methods[i & 3]!, routes[i % 40]!, statuses[i % 6]!, 0.0021)).toFixed(0)} ns per request`);
console.log(`Metrics.statement: ${nsPerCall((i) => metrics.statement(0.0003, i % 1000 === 0)).toFixed(0)} ns per statement`);

const dialect = (log?: (e: LogEvent) => void) =>
  new Kysely<{ t: { id: number } }>({
    dialect: {
      createAdapter: () => new PostgresAdapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (db) => new PostgresIntrospector(db),
      createQueryCompiler: () => new PostgresQueryCompiler(),
    },
    ...(log ? { log } : {}),
  });
const queries = Math.max(1000, Math.floor(calls / 50));
const plain = await nsPerQuery(dialect(), queries);
const logged = await nsPerQuery(
  dialect((e) => metrics.statement(e.queryDurationMillis / 1000, e.level === 'error')),
  queries,
);
console.log(`kysely query, no log option:     ${plain.toFixed(0)} ns`);
console.log(`kysely query, log into metrics:  ${logged.toFixed(0)} ns (+${(logged - plain).toFixed(0)} ns per statement)`);
