import type { App } from "../app.ts";

/** ForwardInfo (SPEC §4.4). */
export interface ForwardInfo {
  id: string;
  session_id: string;
  kind: "local" | "remote" | "dynamic";
  bind_addr: string;
  bind_port: number;
  target_host: string;
  target_port: number;
  active_connections: number;
  total_connections: number;
  bytes_in: number;
  bytes_out: number;
  spec: string;
}

/** Owns every port forward. (Stub: filled in by the forwards work.) */
export class ForwardManager {
  constructor(readonly app: App) {}
  list(_sessionId?: string): ForwardInfo[] {
    return [];
  }
  async close(): Promise<void> {}
}
