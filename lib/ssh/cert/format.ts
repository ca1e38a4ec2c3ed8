/**
 * OpenSSH certificates (the `*-cert-v01@openssh.com` key types of OpenSSH's PROTOCOL.certkeys):
 * parsing a certificate blob, and the names of the algorithms that go with it.
 * Signature checking lives in ./patch.ts, next to the ssh2 key parser it uses.
 */
import { Buffer } from "node:buffer";

/** A parsed OpenSSH certificate. */
export interface Cert {
  /** e.g. `ssh-ed25519-cert-v01@openssh.com` */
  certType: string;
  /** The key type inside, e.g. `ssh-ed25519`. */
  baseType: string;
  /** The plain public key blob (as a non-certificate key would be sent). */
  keyBlob: Buffer;
  serial: bigint;
  kind: "user" | "host";
  keyId: string;
  /** Empty means "any" (OpenSSH accepts such user certificates only with care). */
  principals: string[];
  /** Seconds since the epoch. */
  validAfter: bigint;
  validBefore: bigint;
  criticalOptions: string[];
  /** The CA's public key blob. */
  caKey: Buffer;
  /** The CA's signature blob (`string type, string value`). */
  signature: Buffer;
  /** The bytes the CA signed. */
  signed: Buffer;
  /** The whole certificate blob. */
  blob: Buffer;
}

const SUFFIX = "-cert-v01@openssh.com";

/** Whether `name` is an OpenSSH certificate key type or algorithm. */
export function isCertName(name: string): boolean {
  return name.endsWith(SUFFIX);
}

/** `ssh-ed25519` → `ssh-ed25519-cert-v01@openssh.com`; `rsa-sha2-512` → `rsa-sha2-512-cert-…`. */
export function certAlgorithm(keyAlgo: string): string {
  return `${keyAlgo}${SUFFIX}`;
}

/** `rsa-sha2-512-cert-v01@openssh.com` → `rsa-sha2-512` (the signature algorithm). */
export function baseAlgorithm(certAlgo: string): string {
  return certAlgo.slice(0, -SUFFIX.length);
}

/** Host key algorithms for certificates, in the order offered (RSA host certificates aside). */
export const HOST_CERT_ALGORITHMS = [
  "ssh-ed25519-cert-v01@openssh.com",
  "ecdsa-sha2-nistp256-cert-v01@openssh.com",
  "ecdsa-sha2-nistp384-cert-v01@openssh.com",
  "ecdsa-sha2-nistp521-cert-v01@openssh.com",
];

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  u32(): number {
    if (this.pos + 4 > this.buf.length) throw new Error("truncated certificate");
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(): bigint {
    if (this.pos + 8 > this.buf.length) throw new Error("truncated certificate");
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  bytes(): Buffer {
    const n = this.u32();
    if (this.pos + n > this.buf.length) throw new Error("truncated certificate");
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  str(): string {
    return this.bytes().toString("utf8");
  }
}

function sshString(b: Uint8Array): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

function names(buf: Buffer): string[] {
  const r = new Reader(buf);
  const out: string[] = [];
  while (r.pos < buf.length) {
    out.push(r.str());
    r.bytes(); // options carry data; principals do not (harmless either way)
  }
  return out;
}

function principalList(buf: Buffer): string[] {
  const r = new Reader(buf);
  const out: string[] = [];
  while (r.pos < buf.length) out.push(r.str());
  return out;
}

/**
 * Parses a certificate blob; returns undefined when `blob` is not a certificate.
 * Throws when it claims to be one but is malformed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseCert } from "./format.ts";
 *
 * // the blob of a plain key (base64 field 2 of a known_hosts line) is not a certificate;
 * // tests/ssh_cert_test.ts parses real ones made by ssh-keygen
 * const name = new TextEncoder().encode("ssh-ed25519");
 * const blob = new Uint8Array([0, 0, 0, name.length, ...name, 0, 0, 0, 32, ...new Uint8Array(32)]);
 * assert.equal(parseCert(blob), undefined);
 * ```
 */
export function parseCert(blob: Uint8Array): Cert | undefined {
  const buf = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const r = new Reader(buf);
  let certType: string;
  try {
    certType = r.str();
  } catch {
    return undefined;
  }
  if (!isCertName(certType)) return undefined;
  const baseType = baseAlgorithm(certType);
  r.bytes(); // nonce
  const keyStart = r.pos;
  switch (baseType) {
    case "ssh-ed25519":
      r.bytes();
      break;
    case "ecdsa-sha2-nistp256":
    case "ecdsa-sha2-nistp384":
    case "ecdsa-sha2-nistp521":
      r.bytes();
      r.bytes();
      break;
    case "ssh-rsa":
      r.bytes(); // e
      r.bytes(); // n
      break;
    default:
      throw new Error(`unsupported certificate key type ${certType}`);
  }
  const keyBlob = Buffer.concat([
    sshString(Buffer.from(baseType)),
    buf.subarray(keyStart, r.pos),
  ]);
  const serial = r.u64();
  const kindNum = r.u32();
  const keyId = r.str();
  const principals = principalList(r.bytes());
  const validAfter = r.u64();
  const validBefore = r.u64();
  const criticalOptions = names(r.bytes());
  r.bytes(); // extensions
  r.bytes(); // reserved
  const caKey = r.bytes();
  const signedEnd = r.pos;
  const signature = r.bytes();
  return {
    certType,
    baseType,
    keyBlob,
    serial,
    kind: kindNum === 2 ? "host" : "user",
    keyId,
    principals,
    validAfter,
    validBefore,
    criticalOptions,
    caKey,
    signature,
    signed: buf.subarray(0, signedEnd),
    blob: buf,
  };
}

/** `2026-12-01T10:00:00Z` for a certificate time (`forever` for the maximum). */
export function certTime(t: bigint): string {
  if (t >= 0xffffffffffffffffn) return "forever";
  return new Date(Number(t) * 1000).toISOString().replace(".000Z", "Z");
}

/** Why a certificate is not valid now, or undefined when it is. */
export function validityProblem(cert: Cert, now = Date.now()): string | undefined {
  const s = BigInt(Math.floor(now / 1000));
  if (s < cert.validAfter) return `not valid before ${certTime(cert.validAfter)}`;
  if (s >= cert.validBefore) return `expired at ${certTime(cert.validBefore)}`;
  return undefined;
}
