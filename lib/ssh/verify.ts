/**
 * End-to-end integrity of a transfer (`verify: true` on ssh_upload/ssh_download): the SHA-256
 * of the local file, streamed, against the server's own `sha256sum` (or `shasum -a 256`, or
 * `openssl dgst -sha256`) of the remote one.
 */
import type { Client } from "ssh2";
import { createHash } from "node:crypto";
import { RsmError } from "../errors.ts";
import { execCommand, shellQuote } from "./exec.ts";

/** The SHA-256 (hex) of a local file, read in pieces. */
export async function localSha256(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash("sha256");
  using f = await Deno.open(path, { read: true });
  const buf = new Uint8Array(1 << 20);
  while (true) {
    signal?.throwIfAborted();
    const n = await f.read(buf);
    if (n === null) break;
    hash.update(buf.subarray(0, n));
  }
  return hash.digest("hex");
}

/** A remote path for a shell: `~/x` becomes `"$HOME"/'x'`, anything else is quoted. */
function remoteArg(path: string): string {
  if (path === "~") return `"$HOME"`;
  if (path.startsWith("~/")) return `"$HOME"/${shellQuote(path.slice(2))}`;
  return shellQuote(path);
}

/** The SHA-256 (hex) of a remote file, computed on the server. */
export async function remoteSha256(
  client: Client,
  path: string,
  signal?: AbortSignal,
): Promise<string> {
  const f = remoteArg(path);
  const r = await execCommand(
    client,
    `{ sha256sum -- ${f} 2>/dev/null || shasum -a 256 ${f} 2>/dev/null || ` +
      `openssl dgst -sha256 -r ${f}; } | cut -c1-64`,
    { timeoutMs: 3600_000, keepBytes: 4096, signal },
  );
  const hex = r.stdout.render(4096).text.trim();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new RsmError(
      "VERIFY_FAILED",
      `Cannot verify ${path}: the server could not hash it (no sha256sum, shasum or openssl, ` +
        `or the file is unreadable): ${r.stderr.render(500).text.trim()}`,
    );
  }
  return hex;
}

/** Compares both hashes; returns `{sha256, verified: true}` or throws VERIFY_FAILED. */
export function compareHashes(
  local: string,
  remote: string,
  what: string,
): { sha256: string; verified: true } {
  if (local !== remote) {
    throw new RsmError(
      "VERIFY_FAILED",
      `Verification of ${what} failed: SHA-256 here ${local}, on the server ${remote}; the ` +
        `copy is damaged or the file changed during the transfer; transfer it again`,
    );
  }
  return { sha256: local, verified: true };
}

/** Digests `ssh_file_hash` can compute on the server, with their hex lengths. */
export const HASH_ALGORITHMS = { sha256: 64, sha512: 128, sha1: 40, md5: 32 } as const;

/** The hex digest of a remote file computed on the server (`<algorithm>sum`, or shasum/openssl). */
export async function remoteHash(
  client: Client,
  path: string,
  algorithm: keyof typeof HASH_ALGORITHMS,
  signal?: AbortSignal,
): Promise<string> {
  if (algorithm === "sha256") return await remoteSha256(client, path, signal);
  const f = remoteArg(path);
  const n = HASH_ALGORITHMS[algorithm];
  const alt = algorithm === "md5" ? `md5 -q ${f}` : `shasum -a ${algorithm.slice(3)} ${f}`;
  const r = await execCommand(
    client,
    `{ ${algorithm}sum -- ${f} 2>/dev/null || ${alt} 2>/dev/null || ` +
      `openssl dgst -${algorithm} -r ${f}; } | cut -c1-${n}`,
    { timeoutMs: 3600_000, keepBytes: 4096, signal },
  );
  const hex = r.stdout.text().trim();
  if (!new RegExp(`^[0-9a-f]{${n}}$`).test(hex)) {
    throw new RsmError(
      "VERIFY_FAILED",
      `Cannot hash ${path}: the server could not compute ${algorithm} (no ${algorithm}sum, ` +
        `shasum or openssl, or the file is unreadable): ${r.stderr.text().trim().slice(0, 500)}`,
    );
  }
  return hex;
}
