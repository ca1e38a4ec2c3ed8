/**
 * Host key checking against OpenSSH `known_hosts` files (README "Host keys"): plain and hashed
 * (`|1|salt|hash`) host patterns, `[host]:port`, wildcards, negation, `@revoked`, and host
 * certificates trusted through `@cert-authority` lines.
 * A changed key is always refused, naming both SHA256 fingerprints.
 */
import { createHash, createHmac } from "node:crypto";
import { Buffer } from "node:buffer";
import { dirname } from "node:path";
import { RsmError } from "../errors.ts";
import type { HostKeyPolicy } from "./spec.ts";
import { isCertName, parseCert, validityProblem } from "./cert/format.ts";
import { certSignatureValid } from "./cert/patch.ts";

/** A server's host key as presented during the handshake. */
export interface HostKey {
  /** e.g. `ssh-ed25519` */
  type: string;
  /** base64 of the key blob, as written in known_hosts */
  base64: string;
  /** `SHA256:…` (unpadded base64), as `ssh-keygen -l` prints it */
  fingerprint: string;
}

/** Builds a {@link HostKey} from the raw key blob ssh2 hands to `hostVerifier`. */
export function hostKeyFromBlob(blob: Uint8Array): HostKey {
  const buf = Buffer.from(blob);
  const len = buf.readUInt32BE(0);
  const type = buf.subarray(4, 4 + len).toString("latin1");
  let fingerprint = fingerprintOf(buf);
  if (isCertName(type)) {
    try {
      // like ssh -v: a host certificate is named by the fingerprint of its key
      fingerprint = fingerprintOf(parseCert(buf)?.keyBlob ?? buf);
    } catch { /* malformed: the whole blob's fingerprint */ }
  }
  return { type, base64: buf.toString("base64"), fingerprint };
}

/** `SHA256:<unpadded base64>` of a key blob. */
export function fingerprintOf(blob: Uint8Array): string {
  return "SHA256:" + createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
}

/** The name known_hosts uses for `host` on `port`: `host` for 22, else `[host]:port`. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globToRegExp(glob: string): RegExp {
  const re = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${re}$`, "i");
}

/** Whether one comma-separated host pattern list of a known_hosts line matches `name`. */
export function patternsMatch(patterns: string, name: string): boolean {
  if (patterns.startsWith("|1|")) {
    const [, , salt, hash] = patterns.split("|");
    if (!salt || !hash) return false;
    const mac = createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest("base64");
    return mac === hash;
  }
  let matched = false;
  for (const raw of patterns.split(",")) {
    const negate = raw.startsWith("!");
    const p = negate ? raw.slice(1) : raw;
    if (!p) continue;
    if (globToRegExp(p).test(name)) {
      if (negate) return false;
      matched = true;
    }
  }
  return matched;
}

interface Entry {
  file: string;
  line: number;
  marker?: string | undefined;
  patterns: string;
  type: string;
  base64: string;
}

async function readEntries(file: string): Promise<Entry[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch {
    return [];
  }
  const out: Entry[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith("#")) return;
    const parts = line.split(/\s+/);
    const marker = parts[0]!.startsWith("@") ? parts.shift() : undefined; // a non-blank line
    const [patterns, type, base64] = parts;
    if (patterns === undefined || type === undefined || base64 === undefined) return;
    out.push({ file, line: i + 1, marker, patterns, type, base64 });
  });
  return out;
}

/**
 * Whether some `@cert-authority` line in `files` covers `host`/`port` (then certificate host
 * key algorithms are offered first, as OpenSSH does).
 */
export async function hasCertAuthority(
  files: string[],
  host: string,
  port: number,
): Promise<boolean> {
  const name = knownHostsName(host, port);
  for (const file of files) {
    for (const e of await readEntries(file)) {
      if (e.marker === "@cert-authority" && patternsMatch(e.patterns, name)) return true;
    }
  }
  return false;
}

/**
 * Checks a host certificate: a `@cert-authority` line for the host must hold the CA that
 * signed it, neither that CA nor the host's key may be `@revoked`, it must be a host
 * certificate for this name, valid now, and carry a good signature. Throws an RsmError
 * (`HOST_KEY_REVOKED`, `HOST_CERT_UNTRUSTED`, `HOST_CERT_INVALID`) saying why otherwise.
 */
export async function verifyHostCertificate(
  files: string[],
  host: string,
  port: number,
  key: HostKey,
): Promise<void> {
  const name = knownHostsName(host, port);
  const cert = parseCert(Buffer.from(key.base64, "base64"));
  const bad = (why: string) =>
    new RsmError("HOST_CERT_INVALID", `Cannot connect to ${name}: its host certificate ${why}`);
  if (!cert) throw bad("cannot be parsed");
  const caB64 = cert.caKey.toString("base64");
  const plainB64 = cert.keyBlob.toString("base64");
  const caFp = fingerprintOf(cert.caKey);
  const cas: Entry[] = [];
  for (const file of files) {
    for (const e of await readEntries(file)) {
      if (!patternsMatch(e.patterns, name)) continue;
      if (e.marker === "@revoked" && (e.base64 === caB64 || e.base64 === plainB64)) {
        throw new RsmError(
          "HOST_KEY_REVOKED",
          `Cannot connect to ${name}: ${
            e.base64 === caB64
              ? `the CA ${caFp} that signed its host certificate`
              : `its host key ${fingerprintOf(cert.keyBlob)}`
          } is marked @revoked in ${file} line ${e.line}`,
        );
      }
      if (e.marker === "@cert-authority") cas.push(e);
    }
  }
  if (!cas.some((e) => e.base64 === caB64)) {
    const trusted = cas.map((e) => {
      let fp = "(unparseable key)";
      try {
        fp = fingerprintOf(Buffer.from(e.base64, "base64"));
      } catch { /* keep placeholder */ }
      return `${fp} (${e.file} line ${e.line})`;
    });
    throw new RsmError(
      "HOST_CERT_UNTRUSTED",
      `Cannot connect to ${name}: its host certificate is signed by CA ${caFp}, which no ` +
        `@cert-authority line for ${name} trusts` +
        (trusted.length ? ` (trusted: ${trusted.join(", ")})` : "") +
        `. If that CA is yours, add "@cert-authority ${name} <CA public key>" to known_hosts`,
    );
  }
  if (cert.kind !== "host") throw bad("is a user certificate, not a host certificate");
  if (
    cert.principals.length && !cert.principals.some((p) => p.toLowerCase() === host.toLowerCase())
  ) {
    throw bad(`is for ${cert.principals.join(", ")}, not ${host}`);
  }
  const invalid = validityProblem(cert);
  if (invalid) throw bad(`is ${invalid}`);
  if (!certSignatureValid(cert)) throw bad(`has a signature that does not verify with CA ${caFp}`);
}

/** Outcome of {@link checkHostKey}. */
export type HostKeyVerdict =
  | { status: "known"; file: string; line: number }
  | { status: "new" }
  | { status: "changed"; knownFingerprint: string; file: string; line: number }
  | { status: "revoked"; file: string; line: number };

/**
 * Looks `key` up for `host`/`port` in `files` (in order). A line with the same key type and a
 * different key is a change; the same key anywhere is known; otherwise the host is new.
 */
export async function checkHostKey(
  files: string[],
  host: string,
  port: number,
  key: HostKey,
): Promise<HostKeyVerdict> {
  const name = knownHostsName(host, port);
  let changed: HostKeyVerdict | undefined;
  for (const file of files) {
    for (const e of await readEntries(file)) {
      if (e.marker === "@cert-authority") continue;
      if (!patternsMatch(e.patterns, name)) continue;
      if (e.marker === "@revoked") {
        if (e.base64 === key.base64) return { status: "revoked", file, line: e.line };
        continue;
      }
      if (e.base64 === key.base64) return { status: "known", file, line: e.line };
      if (e.type === key.type && !changed) {
        let fp = "(unparseable key)";
        try {
          fp = fingerprintOf(Buffer.from(e.base64, "base64"));
        } catch { /* keep placeholder */ }
        changed = { status: "changed", knownFingerprint: fp, file, line: e.line };
      }
    }
  }
  return changed ?? { status: "new" };
}

let recording: Promise<void> = Promise.resolve();

/**
 * Appends `host`'s key to `file` (created 0600, its dir 0700). Serialised, and skipped when
 * the key is already there (parallel connects to a new host write one line).
 */
export function recordHostKey(
  file: string,
  host: string,
  port: number,
  key: HostKey,
): Promise<void> {
  const next = recording.then(async () => {
    if ((await checkHostKey([file], host, port, key)).status === "known") return;
    await Deno.mkdir(dirname(file), { recursive: true, mode: 0o700 });
    const line = `${knownHostsName(host, port)} ${key.type} ${key.base64}\n`;
    await Deno.writeTextFile(file, line, { append: true, create: true, mode: 0o600 });
  });
  recording = next.catch(() => {});
  return next;
}

/** Options for {@link verifyHostKey}. */
export interface VerifyOptions {
  policy: HostKeyPolicy;
  /** Files to read (user's known_hosts or `known_hosts_path`, then the daemon's). */
  files: string[];
  /** Where `accept-new` records unknown keys (the daemon's known_hosts). */
  recordIn: string;
}

/**
 * Applies the host key policy; resolves when the key is acceptable, throws an RsmError
 * (`HOST_KEY_CHANGED`, `HOST_KEY_UNKNOWN`, `HOST_KEY_REVOKED`) saying what to do otherwise.
 */
export async function verifyHostKey(
  host: string,
  port: number,
  key: HostKey,
  options: VerifyOptions,
): Promise<void> {
  const name = knownHostsName(host, port);
  if (isCertName(key.type)) return verifyHostCertificate(options.files, host, port, key);
  const verdict = await checkHostKey(options.files, host, port, key);
  switch (verdict.status) {
    case "known":
      return;
    case "revoked":
      throw new RsmError(
        "HOST_KEY_REVOKED",
        `Cannot connect to ${name}: its host key ${key.fingerprint} is marked @revoked in ` +
          `${verdict.file} line ${verdict.line}`,
      );
    case "changed":
      if (options.policy === "insecure") return;
      throw new RsmError(
        "HOST_KEY_CHANGED",
        `Cannot connect to ${name}: its host key has CHANGED. The server now presents ` +
          `${key.fingerprint} (${key.type}) but ${verdict.file} line ${verdict.line} has ` +
          `${verdict.knownFingerprint}. This can mean a man-in-the-middle attack or a ` +
          `reinstalled server. If the change is expected, remove the old entry ` +
          `(ssh-keygen -R '${name}' -f ${verdict.file}) and connect again.`,
      );
    case "new":
      if (options.policy === "insecure") return;
      if (options.policy === "strict") {
        throw new RsmError(
          "HOST_KEY_UNKNOWN",
          `Cannot connect to ${name}: its host key ${key.fingerprint} (${key.type}) is not in ` +
            `any known_hosts file (${options.files.join(", ")}) and host_key_policy is strict. ` +
            `Verify the fingerprint and add it, or connect once with host_key_policy "accept-new".`,
        );
      }
      await recordHostKey(options.recordIn, host, port, key);
  }
}
