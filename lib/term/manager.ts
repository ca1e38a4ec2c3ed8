import type { App } from "../app.ts";

/** ShellInfo (SPEC §4.3). */
export interface ShellInfo {
  id: string;
  session_id?: string;
  host_id?: string;
  container?: string;
  opened_at: string;
  buffered_bytes: number;
  dropped_bytes: number;
  closed: boolean;
  exit_code?: number | null;
  lost: boolean;
  durable: boolean;
}

/** Owns every PTY shell, SSH and Docker. (Stub: filled in by the shells work.) */
export class ShellManager {
  constructor(readonly app: App) {}
  list(): ShellInfo[] {
    return [];
  }
  async close(): Promise<void> {}
}
