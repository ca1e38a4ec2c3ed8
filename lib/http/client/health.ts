/**
 * The client side's check that a handle names a live daemon that accepts its token (used by
 * the launcher, `rsm status`/`stop`/`call`, and when spawning a daemon).
 */
import type { Handle } from "../handle.ts";

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
