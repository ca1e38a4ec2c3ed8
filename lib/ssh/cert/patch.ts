/**
 * OpenSSH certificate support added to ssh2 1.17, which has none (README "Certificates").
 *
 * What is patched, and why each is needed — applied by {@link applyCertPatches} from the ssh2
 * loader (lib/ssh/ssh2.ts) BEFORE ssh2's own modules load, because they copy what they import
 * (`const { parseKey } = require('./keyParser.js')`) at load time:
 * - `keyParser.parseKey`: a certificate blob (e.g. from ssh-agent, whose identity list ssh2
 *   otherwise silently drops) becomes a key whose type is the plain type (`ssh-ed25519`…), so
 *   ssh2's algorithm choice and agent flags work unchanged, and whose public blob is the
 *   certificate.
 * - `keyParser.parseDERKey`: a host certificate is verified in the key exchange with the
 *   plain key inside it.
 * - `constants.SUPPORTED_SERVER_HOST_KEY`: certificate host key algorithms may be offered.
 * - `Protocol.prototype.authPK`: for a certificate, the request names the certificate
 *   algorithm (`ssh-ed25519-cert-v01@openssh.com`, `rsa-sha2-256-cert-v01@openssh.com`) while
 *   the signature inside names the plain one (`ssh-ed25519`, `rsa-sha2-256`); ssh2 writes one
 *   name in both places.
 * - ECDSA private keys: ssh2 hands node:crypto a SEC1 key whose private scalar keeps the
 *   mpint padding of OpenSSH's format; Deno's node:crypto rejects it ("invalid SEC1 private
 *   key"), so ECDSA keys could not sign at all. Parsed ECDSA private keys sign through a JWK
 *   built from the same numbers instead ({@link fixEcdsaSigning}).
 * Host certificates additionally need the negotiated algorithm switched to the plain signature
 * algorithm once the certificate is verified ({@link adoptHostCertificate}), because ssh2
 * compares the signature's type to the negotiated name.
 */
import { Buffer } from "node:buffer";
import { createPrivateKey, sign as cryptoSign } from "node:crypto";
import type { ParsedKey } from "ssh2";
import { baseAlgorithm, type Cert, certAlgorithm, isCertName, parseCert } from "./format.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

const CERT = Symbol("rsm.certificate");

interface Internals {
  parseDERKey: (data: Buffer, type: string) => Any;
  sigSSHToASN1: (sig: Buffer, type: string) => Buffer | undefined;
  defaultHostKeys: string[];
}

let internals: Internals | undefined;
let applying: Promise<void> | undefined;

function sshString(b: Uint8Array | string): Buffer {
  const data = typeof b === "string" ? Buffer.from(b) : Buffer.from(b);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  return Buffer.concat([len, data]);
}

/** The certificate of a key made by {@link certificateKey}, if it is one. */
export function certOf(key: unknown): Cert | undefined {
  return (key as Record<symbol, Cert> | null)?.[CERT];
}

/**
 * A key that authenticates with `cert`: the private key (or an agent's public key) `base`
 * with the certificate as its public blob. ssh2 treats it as `base` in every other way.
 */
export function certificateKey(base: ParsedKey, cert: Cert): ParsedKey {
  const k = Object.create(base);
  k.getPublicSSH = () => cert.blob;
  k[CERT] = cert;
  return k;
}

function plainKey(blob: Buffer, orig: Internals["parseDERKey"]): Any {
  const typeLen = blob.readUInt32BE(0);
  const type = blob.toString("latin1", 4, 4 + typeLen);
  return orig(blob.subarray(4 + typeLen), type);
}

/**
 * Whether `cert` carries a valid signature of the CA key inside it (ssh2's key parser and
 * node:crypto do the math). Needs {@link applyCertPatches} to have run.
 */
export function certSignatureValid(cert: Cert): boolean {
  if (!internals) throw new Error("certificate support is not loaded");
  try {
    const ca = plainKey(cert.caKey, internals.parseDERKey);
    if (ca instanceof Error) return false;
    const sigLen = cert.signature.readUInt32BE(0);
    const sigType = cert.signature.toString("latin1", 4, 4 + sigLen);
    const valueLen = cert.signature.readUInt32BE(4 + sigLen);
    const value = cert.signature.subarray(8 + sigLen, 8 + sigLen + valueLen);
    const asn = internals.sigSSHToASN1(value, sigType);
    if (!asn) return false;
    const hash = sigType === "rsa-sha2-256"
      ? "sha256"
      : sigType === "rsa-sha2-512"
      ? "sha512"
      : sigType === "ssh-rsa"
      ? "sha1"
      : undefined;
    return ca.verify(cert.signed, asn, hash) === true;
  } catch {
    return false;
  }
}

/** ssh2's default host key algorithms (after the patches). */
export function defaultHostKeyAlgorithms(): string[] {
  if (!internals) throw new Error("certificate support is not loaded");
  return [...internals.defaultHostKeys];
}

/**
 * After a host certificate was verified: makes ssh2 check the key exchange signature as the
 * plain algorithm (`ssh-ed25519-cert-v01@openssh.com` signs as `ssh-ed25519`).
 */
export function adoptHostCertificate(client: unknown): void {
  const kex = (client as Any)?._protocol?._kex;
  const name = kex?.negotiated?.serverHostKey;
  if (typeof name === "string" && isCertName(name)) {
    kex.negotiated.serverHostKey = baseAlgorithm(name);
  }
}

const CURVES: Record<string, { crv: string; size: number; hash: string }> = {
  "ecdsa-sha2-nistp256": { crv: "P-256", size: 32, hash: "sha256" },
  "ecdsa-sha2-nistp384": { crv: "P-384", size: 48, hash: "sha384" },
  "ecdsa-sha2-nistp521": { crv: "P-521", size: 66, hash: "sha512" },
};

/** Reads one DER TLV at `pos`: [tag, value start, value end]. */
function der(buf: Buffer, pos: number): [number, number, number] {
  const tag = buf[pos];
  let len = buf[pos + 1];
  let start = pos + 2;
  if (tag === undefined || len === undefined) throw new Error("truncated DER in the private key");
  if (len & 0x80) {
    const n = len & 0x7f;
    if (start + n > buf.length) throw new Error("truncated DER in the private key");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[start + i]!;
    start += n;
  }
  return [tag, start, start + len];
}

function fitTo(b: Buffer, size: number): Buffer {
  let v = b;
  while (v.length > size && v[0] === 0) v = v.subarray(1);
  if (v.length < size) v = Buffer.concat([Buffer.alloc(size - v.length), v]);
  return v;
}

/** See the module comment: ECDSA private keys sign through a JWK. */
function fixEcdsaSigning(key: Any): void {
  const curve = CURVES[key?.type];
  if (!curve || typeof key.isPrivateKey !== "function" || !key.isPrivateKey()) return;
  const sym = Object.getOwnPropertySymbols(key).find((s) => s.description === "Private key PEM");
  const pem = sym && key[sym];
  if (typeof pem !== "string") return;
  let keyObject: ReturnType<typeof createPrivateKey>;
  try {
    const body = Buffer.from(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
    const [, seqStart] = der(body, 0);
    const [, , verEnd] = der(body, seqStart); // version
    const [, dStart, dEnd] = der(body, verEnd); // private key octets
    const [, , paramsEnd] = der(body, dEnd); // [0] curve
    const [, pubStart] = der(body, paramsEnd); // [1]
    const [, bitStart, bitEnd] = der(body, pubStart); // BIT STRING
    const point = body.subarray(bitStart + 1, bitEnd); // skip unused-bits byte; 04 || x || y
    const x = point.subarray(1, 1 + curve.size);
    const y = point.subarray(1 + curve.size);
    keyObject = createPrivateKey({
      key: {
        kty: "EC",
        crv: curve.crv,
        d: fitTo(body.subarray(dStart, dEnd), curve.size).toString("base64url"),
        x: x.toString("base64url"),
        y: y.toString("base64url"),
      },
      format: "jwk",
    });
  } catch {
    return; // leave ssh2's own signing in place
  }
  key.sign = (data: Buffer, algo?: string) => {
    try {
      return cryptoSign(algo || curve.hash, data, keyObject);
    } catch (err) {
      return err;
    }
  };
}

function patchAuthPK(Protocol: Any, utils: Any): void {
  const original = Protocol.prototype.authPK;
  const { sendPacket, convertSignature } = utils;
  Protocol.prototype.authPK = function (
    this: Any,
    username: string,
    pubKey: Any,
    keyAlgo: Any,
    cbSign?: Any,
  ) {
    const cert = certOf(pubKey);
    if (!cert) return original.call(this, username, pubKey, keyAlgo, cbSign);
    if (typeof keyAlgo === "function") {
      cbSign = keyAlgo;
      keyAlgo = undefined;
    }
    const keyType: string = pubKey.type;
    const sigAlgo: string = keyAlgo || keyType;
    const head = (signed: boolean) =>
      Buffer.concat([
        Buffer.from([50]), // SSH_MSG_USERAUTH_REQUEST
        sshString(username),
        sshString("ssh-connection"),
        sshString("publickey"),
        Buffer.from([signed ? 1 : 0]),
        sshString(certAlgorithm(sigAlgo)),
        sshString(cert.blob),
      ]);
    const send = (payload: Buffer) => {
      const packet = this._packetRW.write.alloc(payload.length);
      packet.set(payload, this._packetRW.write.allocStart);
      this._authsQueue.push("publickey");
      sendPacket(this, this._packetRW.write.finalize(packet));
    };
    if (!cbSign) return send(head(false));
    const body = head(true);
    const toSign = Buffer.concat([sshString(this._kex.sessionID), body]);
    cbSign(toSign, (signature: Buffer) => {
      const sig = convertSignature(signature, keyType);
      if (sig === false) throw new Error("Error while converting handshake signature");
      send(Buffer.concat([body, sshString(Buffer.concat([sshString(sigAlgo), sshString(sig)]))]));
    });
  };
}

/**
 * Applies the patches described above, once. Must run before `import("ssh2")`.
 */
export function applyCertPatches(): Promise<void> {
  applying ??= (async () => {
    const keyParser = (await import("ssh2/lib/protocol/keyParser.js")).default as Any;
    const utils = (await import("ssh2/lib/protocol/utils.js")).default as Any;
    const constants = (await import("ssh2/lib/protocol/constants.js")).default as Any;
    const parseDERKey = keyParser.parseDERKey;
    const parseKey = keyParser.parseKey;
    keyParser.parseKey = (data: Any, passphrase?: Any) => {
      if (Buffer.isBuffer(data) && data.length > 30) {
        let cert: Cert | undefined;
        try {
          cert = parseCert(data);
        } catch {
          cert = undefined;
        }
        if (cert) {
          const base = plainKey(cert.keyBlob, parseDERKey);
          if (base instanceof Error) return base;
          return certificateKey(base, cert);
        }
      }
      const parsed = parseKey(data, passphrase);
      for (const k of Array.isArray(parsed) ? parsed : [parsed]) fixEcdsaSigning(k);
      return parsed;
    };
    keyParser.parseDERKey = (data: Buffer, type: string) => {
      if (!isCertName(type)) return parseDERKey(data, type);
      let cert: Cert | undefined;
      try {
        cert = parseCert(Buffer.concat([sshString(type), data]));
      } catch (err) {
        return err instanceof Error ? err : new Error(String(err));
      }
      if (!cert) return new Error(`Malformed certificate of type ${type}`);
      return plainKey(cert.keyBlob, parseDERKey);
    };
    const defaultHostKeys = [...constants.DEFAULT_SERVER_HOST_KEY];
    for (const name of ["ssh-ed25519", ...defaultHostKeys]) {
      if (!/^(ssh-ed25519|ecdsa-sha2-nistp\d+)$/.test(name)) continue;
      const alg = certAlgorithm(name);
      if (!constants.SUPPORTED_SERVER_HOST_KEY.includes(alg)) {
        constants.SUPPORTED_SERVER_HOST_KEY.push(alg);
      }
    }
    internals = {
      parseDERKey,
      sigSSHToASN1: utils.sigSSHToASN1,
      defaultHostKeys,
    };
    // Protocol.js pulls in kex.js, which copies parseDERKey: only now may it load
    const Protocol = (await import("ssh2/lib/protocol/Protocol.js")).default as Any;
    patchAuthPK(Protocol, utils);
  })();
  return applying;
}
