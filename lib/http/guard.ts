/**
 * Constant-time token check: the time depends only on the expected token's length (fixed for
 * a daemon), never on where the given token first differs or on its length. Plain JavaScript:
 * hashing both sides with `node:crypto` first cost ~0.1 ms per request under Deno.
 */
export function tokenMatches(given: string, expected: string): boolean {
  let diff = given.length ^ expected.length;
  for (let i = 0; i < expected.length; i++) {
    diff |= expected.charCodeAt(i) ^ (i < given.length ? given.charCodeAt(i) : 0);
  }
  return diff === 0;
}

/**
 * Checks `Authorization: Bearer <token>` (scheme case-insensitive). Returns a 401 response
 * with `WWW-Authenticate: Bearer` when it fails, or null when the request may pass.
 */
export function checkBearer(req: Request, token: string): Response | null {
  const header = req.headers.get("authorization") ?? "";
  const match = /^(\S+)\s+(\S+)\s*$/.exec(header);
  if (match && match[1]!.toLowerCase() === "bearer" && tokenMatches(match[2]!, token)) return null;
  return new Response(JSON.stringify({ error: "unauthorized: a valid bearer token is required" }), {
    status: 401,
    headers: {
      "www-authenticate": 'Bearer realm="remote-shell-mcp"',
      "content-type": "application/json",
    },
  });
}

const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]", "::1"]);

function hostPart(hostHeader: string): string {
  if (hostHeader.startsWith("[")) return hostHeader.slice(0, hostHeader.indexOf("]") + 1);
  return hostHeader.split(":")[0]!;
}

/**
 * DNS-rebinding protection: the `Host` must be the bound address or a loopback name, and an
 * `Origin`, when sent, must be a loopback origin. Returns a 403 response or null.
 */
export function checkHostOrigin(req: Request, boundHost: string): Response | null {
  // Deno.serve builds req.url from the Host header; in-process Requests may carry only the URL.
  const host = req.headers.get("host") ?? new URL(req.url).host;
  const allowed = new Set(LOOPBACK_HOSTS);
  allowed.add(boundHost.includes(":") ? `[${boundHost}]` : boundHost);
  if (!host || !allowed.has(hostPart(host).toLowerCase())) {
    return forbidden(`host ${JSON.stringify(host)} is not allowed`);
  }
  const origin = req.headers.get("origin");
  if (origin !== null) {
    let ok = false;
    try {
      const u = new URL(origin);
      ok = (u.protocol === "http:" || u.protocol === "https:") &&
        LOOPBACK_HOSTS.has(u.hostname.toLowerCase());
    } catch { /* not a URL: refused */ }
    if (!ok) return forbidden(`origin ${JSON.stringify(origin)} is not allowed`);
  }
  return null;
}

function forbidden(reason: string): Response {
  return new Response(JSON.stringify({ error: `forbidden: ${reason}` }), {
    status: 403,
    headers: { "content-type": "application/json" },
  });
}
