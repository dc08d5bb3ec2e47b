import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's utime and stime (USER_HZ: 100 on Linux everywhere). */
export const TICKS_PER_SECOND = 100;

/** A process's command name and CPU seconds (user + system, its threads included) from its /proc stat line. */
export function parseStat(stat: string): { comm: string; cpuSeconds: number } {
  // Fields after the command name (which may contain spaces) — utime and stime are the 14th and 15th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), cpuSeconds: (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND };
}

/** CPU seconds (user + system) and resident memory of one process, read from /proc. */
export function sampleProcess(pid: number): { cpuSeconds: number; rssBytes: number } {
  const { cpuSeconds } = parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { cpuSeconds, rssBytes: rss ? Number(rss[1]) * 1024 : 0 };
}

/** The machine, for the report: cores and CPU model. */
export function machine(): { cores: number; cpu: string } {
  const info = readFileSync('/proc/cpuinfo', 'utf8');
  const cpu = /model name\s*:\s*(.+)/.exec(info)?.[1]?.trim() ?? 'unknown';
  const cores = (info.match(/^processor\s*:/gm) ?? []).length;
  return { cores, cpu };
}
