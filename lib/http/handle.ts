import { writeFileAtomic } from "../state/atomic.ts";

/** The daemon handle `daemon.json` (docs/architecture.md "The daemon"). */
export interface Handle {
  url: string;
  token: string;
  pid: number;
  version: string;
  started_at: string;
}

/** Reads and checks a handle file; null when missing or not a handle. */
export async function readHandle(path: string): Promise<Handle | null> {
  try {
    const h = JSON.parse(await Deno.readTextFile(path));
    if (
      h && typeof h.url === "string" && typeof h.token === "string" && typeof h.pid === "number"
    ) {
      return h as Handle;
    }
  } catch { /* missing or torn */ }
  return null;
}

/** Writes the handle atomically with mode 0600. */
export async function writeHandle(path: string, handle: Handle): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(handle, null, 2) + "\n", 0o600);
}

/** Result of an authenticated health check. */
export interface Health {
  ok: boolean;
  pid: number;
  version: string;
}

/**
 * Authenticated `GET /health` against a handle, within `timeoutMs`. Null when the daemon does
 * not answer or does not accept the token (a stale handle from a dead daemon is never trusted).
 */
export async function checkHealth(handle: Handle, timeoutMs = 1500): Promise<Health | null> {
  try {
    const res = await fetch(new URL("/health", handle.url), {
      headers: { authorization: `Bearer ${handle.token}` },
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!res.ok) {
      await res.body?.cancel();
      return null;
    }
    const body = await res.json();
    return body?.ok ? (body as Health) : null;
  } catch {
    return null;
  }
}
