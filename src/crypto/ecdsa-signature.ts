/**
 * ECDSA signatures between the two encodings: JOSE's fixed-size r‖s (RFC 7518 §3.4) and the DER
 * `SEQUENCE { INTEGER r, INTEGER s }` that node:crypto signs and verifies by default.
 *
 * Why not let node convert (`{ key, dsaEncoding: 'ieee-p1363' }`)? Passing the key wrapped in an
 * options object sends node's `prepareAsymmetricKey` down a path that throws and catches a
 * TypeError per call (its CryptoKey brand check), stack trace included, which costs far more than
 * converting here (docs/performance.md, "Synchronous signing"). (ecdsa-sig-formatter does the same
 * but through base64 strings, in and out.)
 */

/** r‖s (each `size` bytes) as DER; undefined when the length is not exactly 2 × size. */
export function joseToDer(signature: Uint8Array, size: number): Buffer | undefined {
  if (signature.length !== 2 * size) return undefined;
  const r = derInteger(signature.subarray(0, size));
  const s = derInteger(signature.subarray(size));
  const body = r.length + s.length;
  // P-256 and P-384 bodies stay under 128 bytes (short-form length); P-521's need the long form.
  const header = body < 0x80 ? [0x30, body] : [0x30, 0x81, body];
  return Buffer.concat([Buffer.from(header), r, s]);
}

/** A DER ECDSA signature as r‖s, each left-padded to `size` bytes. Throws on anything else. */
export function derToJose(der: Uint8Array, size: number): Buffer {
  let at = 0;
  const byte = () => {
    if (at >= der.length) throw new Error('derToJose: truncated signature');
    return der[at++]!;
  };
  if (byte() !== 0x30) throw new Error('derToJose: not a SEQUENCE');
  let length = byte();
  if (length === 0x81) length = byte();
  else if (length > 0x7f) throw new Error('derToJose: unexpected length form');
  if (length !== der.length - at) throw new Error('derToJose: length mismatch');
  const out = Buffer.alloc(2 * size);
  for (const offset of [0, size]) {
    if (byte() !== 0x02) throw new Error('derToJose: not an INTEGER');
    const n = byte();
    let value = der.subarray(at, at + n);
    if (value.length !== n) throw new Error('derToJose: truncated INTEGER');
    at += n;
    while (value.length > size && value[0] === 0) value = value.subarray(1); // the sign byte DER adds
    if (value.length > size) throw new Error('derToJose: INTEGER too large');
    out.set(value, offset + size - value.length);
  }
  if (at !== der.length) throw new Error('derToJose: trailing bytes');
  return out;
}

/** An unsigned big-endian integer as a DER INTEGER: leading zeros dropped, a zero byte added when the high bit is set. */
function derInteger(unsigned: Uint8Array): Buffer {
  let start = 0;
  while (start < unsigned.length - 1 && unsigned[start] === 0) start++;
  const digits = unsigned.subarray(start);
  const pad = digits[0]! & 0x80 ? 1 : 0;
  const out = Buffer.alloc(2 + pad + digits.length);
  out[0] = 0x02;
  out[1] = pad + digits.length;
  out.set(digits, 2 + pad);
  return out;
}
