import type { App } from "../app.ts";

/** SessionRow (SPEC §4.1). */
export interface SessionRow {
  id: string;
  user: string;
  address: string;
  state: string;
  last_error: string;
  persistent: boolean;
  auto_reconnect: boolean;
  forwards: number;
  shells: number;
}

/** Owns every SSH session. (Stub: filled in by the SSH work.) */
export class SshManager {
  constructor(readonly app: App) {}
  rows(): SessionRow[] {
    return [];
  }
  async close(): Promise<void> {}
}
