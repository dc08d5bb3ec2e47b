import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';

test('bench/gc-by-row places the main isolate’s GC pauses in the rows whose load they fell in', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gc-by-row-'));
  writeFileSync(
    join(dir, 'report.json'),
    JSON.stringify({
      rows: [
        { scenario: 'A', target: 'tessera', mode: 'saturation (16)', p99_ms: 12, tessera_ms: [1000, 2000] },
        { scenario: 'A', target: 'bare', mode: 'saturation (16)', p99_ms: 3 },
        { scenario: 'B', target: 'tessera', mode: '100/s', p99_ms: 80, tessera_ms: [3000, 4000] },
      ],
    }),
  );
  writeFileSync(
    join(dir, 'gc.log'),
    [
      '[7:0x11bcd000]      500 ms: Scavenge 5.6 (6.8) -> 5.1 (7.8) MB, pooled: 0 MB, 0.69 / 0.00 ms  (average mu = 1.000) allocation failure; ',
      '[7:0x11bcd000]     1500 ms: Scavenge 9.0 (12.0) -> 8.0 (12.0) MB, pooled: 0 MB, 2.50 / 0.00 ms  (average mu = 1.000) allocation failure; ',
      '[7:0x7fea28001000]  3200 ms: Mark-Compact 5.6 (14.5) -> 5.1 (15.0) MB, pooled: 0 MB, 27.78 / 0.00 ms  (a worker isolate)',
      '[7:0x11bcd000]     3500 ms: Mark-Compact (reduce) 227.5 (325.9) -> 50.7 (136.7) MB, pooled: 0 MB, 71.12 / 0.16 ms  (+ 38.7 ms in 170 steps)',
      '[7:0x11bcd000]     3600 ms: Scavenge 60.0 (80.0) -> 50.0 (80.0) MB, pooled: 0 MB, 11.00 / 0.10 ms  task; ',
    ].join('\n'),
  );
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'bench/gc-by-row.ts', join(dir, 'report.json'), join(dir, 'gc.log')]);
  const line = (name: string) =>
    stdout
      .split('\n')
      .find((l) => l.startsWith(name))!
      .split(/\s{2,}|\s(?=\d)/)
      .filter(Boolean)
      .join(' ');
  t.regex(line('A (saturation (16))'), /12\.0 1 2\.5 2\.5 0$/);
  t.regex(line('B (100/s)'), /80\.0 2 82\.1 71\.1 2 \(Mark-Compact \(reduce\), Scavenge\)$/);
  t.false(stdout.includes('bare'), 'only Tessera rows');
});
