import { writeFileAtomic } from "../state/atomic.ts";

/** The daemon handle `daemon.json` (docs/architecture.md "The daemon"). */
export interface Handle {
  url: string;
  token: string;
  pid: number;
  version: string;
  started_at: string;
  /**
   * The HTTP server's own Unix socket (behind the TCP front door): `rsm stdio` on this
   * machine talks to it directly, a step less per message. Absent on older daemons.
   */
  socket?: string | undefined;
  /**
   * The stream link's Unix socket (lib/http/stream.ts): MCP as JSON lines, one connection a
   * session; `rsm stdio` prefers it. Absent on older daemons and on Windows.
   */
  mcp_socket?: string | undefined;
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
