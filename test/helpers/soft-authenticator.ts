import { createHash, createSign, generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';

/**
 * A WebAuthn authenticator in software (ES256 on P-256, attestation `none`), for tests and the
 * benchmark: it answers registration and sign-in challenges as a browser and authenticator would,
 * and lets a test lie where a real one would not (another origin, RP ID, counter, user handle).
 */
export class SoftAuthenticator {
  readonly credentialId = randomBytes(32);
  private readonly privateKey: KeyObject;
  private readonly publicKey: KeyObject;
  counter = 0;

  constructor(
    readonly rp: { id: string; origin: string },
    readonly opts: { backedUp?: boolean; userVerified?: boolean; userHandle?: Buffer; countsSignatures?: boolean; aaguid?: string } = {},
  ) {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.privateKey = pair.privateKey;
    this.publicKey = pair.publicKey;
  }

  get id(): string {
    return this.credentialId.toString('base64url');
  }

  /** The public key as COSE_Key (RFC 9053): EC2, ES256, P-256, x, y. */
  cosePublicKey(): Buffer {
    const jwk = this.publicKey.export({ format: 'jwk' });
    return cbor(
      new Map<number, unknown>([
        [1, 2],
        [3, -7],
        [-1, 1],
        [-2, Buffer.from(jwk.x!, 'base64url')],
        [-3, Buffer.from(jwk.y!, 'base64url')],
      ]),
    );
  }

  /** The answer to `navigator.credentials.create` with these options' challenge (attestation `none`). */
  register(challenge: string, over: { origin?: string; rpId?: string } = {}) {
    const clientDataJSON = Buffer.from(JSON.stringify({ type: 'webauthn.create', challenge, origin: over.origin ?? this.rp.origin, crossOrigin: false }));
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(this.credentialId.length);
    const aaguid = this.opts.aaguid ? Buffer.from(this.opts.aaguid.replace(/-/g, ''), 'hex') : Buffer.alloc(16);
    const attested = Buffer.concat([aaguid, idLength, this.credentialId, this.cosePublicKey()]);
    const authData = Buffer.concat([this.authenticatorData(over.rpId ?? this.rp.id, 0x40, 0), attested]);
    const attestationObject = cbor(
      new Map<string, unknown>([
        ['fmt', 'none'],
        ['attStmt', new Map()],
        ['authData', authData],
      ]),
    );
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key',
      response: { clientDataJSON: clientDataJSON.toString('base64url'), attestationObject: attestationObject.toString('base64url'), transports: ['internal'] },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }

  /** The answer to `navigator.credentials.get` for `challenge`; each call moves the counter on (unless told otherwise). */
  assert(challenge: string, over: { origin?: string; rpId?: string; counter?: number; userVerified?: boolean; userHandle?: Buffer | null } = {}) {
    if (this.opts.countsSignatures !== false) this.counter += 1;
    const counter = over.counter ?? (this.opts.countsSignatures === false ? 0 : this.counter);
    const clientDataJSON = Buffer.from(JSON.stringify({ type: 'webauthn.get', challenge, origin: over.origin ?? this.rp.origin, crossOrigin: false }));
    const uv = over.userVerified ?? this.opts.userVerified ?? true;
    const authData = this.authenticatorData(over.rpId ?? this.rp.id, uv ? 0x04 : 0, counter);
    const signer = createSign('sha256');
    signer.update(Buffer.concat([authData, createHash('sha256').update(clientDataJSON).digest()]));
    const signature = signer.sign(this.privateKey);
    const handle = over.userHandle === undefined ? this.opts.userHandle : over.userHandle;
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key',
      response: {
        clientDataJSON: clientDataJSON.toString('base64url'),
        authenticatorData: authData.toString('base64url'),
        signature: signature.toString('base64url'),
        ...(handle ? { userHandle: handle.toString('base64url') } : {}),
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }

  /** rpIdHash, flags (UP always; BE+BS when synced), the signature counter. */
  private authenticatorData(rpId: string, extraFlags: number, counter: number): Buffer {
    const backup = this.opts.backedUp ? 0x08 | 0x10 : 0;
    const count = Buffer.alloc(4);
    count.writeUInt32BE(counter);
    return Buffer.concat([createHash('sha256').update(rpId).digest(), Buffer.from([0x01 | backup | extraFlags]), count]);
  }
}

/** The little CBOR (RFC 8949) a COSE key and an attestation object need: integers, byte and text strings, maps. */
function cbor(value: unknown): Buffer {
  const head = (major: number, n: number) => {
    if (n < 24) return Buffer.from([(major << 5) | n]);
    if (n < 0x100) return Buffer.from([(major << 5) | 24, n]);
    if (n < 0x10000) return Buffer.from([(major << 5) | 25, n >> 8, n & 0xff]);
    const b = Buffer.alloc(5);
    b[0] = (major << 5) | 26;
    b.writeUInt32BE(n, 1);
    return b;
  };
  if (typeof value === 'number') return value >= 0 ? head(0, value) : head(1, -1 - value);
  if (Buffer.isBuffer(value)) return Buffer.concat([head(2, value.length), value]);
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    return Buffer.concat([head(3, bytes.length), bytes]);
  }
  if (value instanceof Map) return Buffer.concat([head(5, value.size), ...[...value].flatMap(([k, v]) => [cbor(k), cbor(v)])]);
  throw new Error(`cbor: cannot encode ${typeof value}`);
}
