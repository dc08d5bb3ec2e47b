import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's utime and stime (USER_HZ: 100 on Linux everywhere). */
const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) and resident memory of one process, read from /proc. */
export function sampleProcess(pid: number): { cpuSeconds: number; rssBytes: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) — utime and stime are the 14th and 15th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { cpuSeconds: (utime + stime) / TICKS_PER_SECOND, rssBytes: rss ? Number(rss[1]) * 1024 : 0 };
}

/** The machine, for the report: cores and CPU model. */
export function machine(): { cores: number; cpu: string } {
  const info = readFileSync('/proc/cpuinfo', 'utf8');
  const cpu = /model name\s*:\s*(.+)/.exec(info)?.[1]?.trim() ?? 'unknown';
  const cores = (info.match(/^processor\s*:/gm) ?? []).length;
  return { cores, cpu };
}
