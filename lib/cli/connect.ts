import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Handle } from "../http/handle.ts";
import { VERSION } from "../version.ts";

/**
 * An MCP client over Streamable HTTP to the daemon behind `handle` (what `rsm call` and
 * `rsm tools` use). `await using` closes it.
 */
export async function connectDaemon(handle: Handle): Promise<Client & AsyncDisposable> {
  const transport = new StreamableHTTPClientTransport(new URL("/mcp", handle.url), {
    requestInit: { headers: { authorization: `Bearer ${handle.token}` } },
  });
  const client = new Client({ name: "rsm-cli", version: VERSION });
  await client.connect(transport);
  return Object.assign(client, {
    async [Symbol.asyncDispose]() {
      await transport.terminateSession().catch(() => {});
      await client.close().catch(() => {});
    },
  });
}

/** An authenticated JSON request to one of the daemon's own routes (`/status`, `/shutdown`). */
export async function daemonJson(
  handle: Handle,
  path: string,
  method = "GET",
): Promise<Record<string, unknown>> {
  const res = await fetch(new URL(path, handle.url), {
    method,
    headers: { authorization: `Bearer ${handle.token}` },
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`daemon answered HTTP ${res.status} on ${path}`);
  }
  return await res.json();
}
