import { readdirSync, readFileSync } from 'node:fs';
import { parseStat, TICKS_PER_SECOND } from './proc.ts';

/**
 * Where the machine's CPU went while a row ran: PostgreSQL's processes, and everything that is
 * neither PostgreSQL nor one of the bench's own processes (Tessera, the bare provider, the load
 * generator). On a small machine that shares its cores with the database and the load generator,
 * a latency tail is often someone else's: another process waking up for a few hundred ms, with
 * the fixed-rate requests queued behind it (docs/performance.md, "Latency tails").
 */
export interface MachineSample {
  /** Busy CPU seconds of the whole machine (all cores), from /proc/stat. */
  busySeconds: number;
  /** CPU seconds of each live process named `postgres` (the server and its backends), by pid; empty when none runs here (a remote server). */
  postgres: Map<number, number>;
}

export function sampleMachine(): MachineSample {
  return { busySeconds: machineBusySeconds(), postgres: postgresSeconds() };
}

export interface MachineLoad {
  /** PostgreSQL's CPU per operation, in ms; null when it does not run on this machine. */
  postgresMsPerOp: number | null;
  /** Share of all cores used by other processes (and kernel threads), 0–1. */
  othersShare: number;
}

/**
 * The load between two samples. `benchSeconds` is the CPU the bench's own processes used meanwhile
 * (Tessera, the bare provider, this load generator): what is left of the machine's busy time after
 * it and PostgreSQL is the others'. PostgreSQL's CPU is summed per backend — node-postgres closes
 * idle connections, and a sum over whoever is alive would lose an exited backend's whole history:
 * a backend seen only after counts whole (it started meanwhile), one seen only before counts
 * nothing (it was idle, which is why it was closed).
 */
export function machineLoad(
  before: MachineSample,
  after: MachineSample,
  opts: { ops: number; benchSeconds: number; wallSeconds: number; cores: number },
): MachineLoad {
  const local = before.postgres.size > 0 || after.postgres.size > 0;
  let postgres = 0;
  for (const [pid, seconds] of after.postgres) postgres += seconds - (before.postgres.get(pid) ?? 0);
  const others = Math.max(0, after.busySeconds - before.busySeconds - postgres - opts.benchSeconds);
  return {
    postgresMsPerOp: local && opts.ops ? (postgres * 1000) / opts.ops : null,
    othersShare: opts.wallSeconds > 0 ? others / (opts.wallSeconds * opts.cores) : 0,
  };
}

/** user + nice + system + irq + softirq + steal of the `cpu` line (idle and iowait are not busy). */
function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) / TICKS_PER_SECOND;
}

function postgresSeconds(): Map<number, number> {
  const seconds = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone between the listing and the read
    }
    const { comm, cpuSeconds } = parseStat(stat);
    if (comm === 'postgres') seconds.set(Number(entry), cpuSeconds);
  }
  return seconds;
}
