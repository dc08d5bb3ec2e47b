/**
 * CPU time of one passkey assertion check (`verifyAuthenticationResponse`, ES256 on P-256), the
 * work a passkey sign-in adds to a request. The assertions are made beforehand by a software
 * authenticator (test/helpers/soft-authenticator.ts), so only verification is timed.
 *
 *   npm run bench:passkey            # 2000 verifications after 200 to warm up
 *   npm run bench:passkey -- 5000    # another count
 *
 * Each verification is timed with process.cpuUsage (user + system, every thread of the process:
 * WebCrypto may verify off the main thread), one at a time.
 */
import { verifyAuthenticationResponse } from '@simplewebauthn/server';
import { SoftAuthenticator } from '../test/helpers/soft-authenticator.ts';

const runs = Math.max(1000, Number(process.argv[2]) || 2000);
const warmup = 200;
const rp = { id: 'localhost', origin: 'http://localhost:3000' };
const auth = new SoftAuthenticator(rp, { userVerified: true });
const publicKey = new Uint8Array(auth.cosePublicKey());

const challenges = Array.from({ length: runs + warmup }, (_, i) => Buffer.from(`challenge-${i}-${Math.random()}`).toString('base64url'));
const answers = challenges.map((c) => auth.assert(c));

let counter = 0;
async function verifyOne(i: number) {
  const result = await verifyAuthenticationResponse({
    response: answers[i] as never,
    expectedChallenge: challenges[i]!,
    expectedOrigin: rp.origin,
    expectedRPID: rp.id,
    credential: { id: auth.id, publicKey, counter },
    requireUserVerification: true,
  });
  if (!result.verified) throw new Error(`verification ${i} failed`);
  counter = result.authenticationInfo.newCounter;
}

for (let i = 0; i < warmup; i++) await verifyOne(i);

const cpuMs: number[] = [];
const wallMs: number[] = [];
for (let i = warmup; i < warmup + runs; i++) {
  const cpu = process.cpuUsage();
  const wall = performance.now();
  await verifyOne(i);
  wallMs.push(performance.now() - wall);
  const used = process.cpuUsage(cpu);
  cpuMs.push((used.user + used.system) / 1000);
}

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const cpu = sorted(cpuMs);
const wall = sorted(wallMs);
const fmt = (n: number) => n.toFixed(3);
console.log(`passkey assertion verification (ES256, @simplewebauthn/server), ${runs} runs after ${warmup} to warm up, Node ${process.versions.node}`);
console.log(`CPU ms  p50 ${fmt(pct(cpu, 50))}  p99 ${fmt(pct(cpu, 99))}  mean ${fmt(mean(cpu))}`);
console.log(`wall ms p50 ${fmt(pct(wall, 50))}  p99 ${fmt(pct(wall, 99))}  mean ${fmt(mean(wall))}`);
console.log(`goal: < 2 ms CPU per verification — ${mean(cpu) < 2 && pct(cpu, 50) < 2 ? 'met' : 'NOT met'}`);
