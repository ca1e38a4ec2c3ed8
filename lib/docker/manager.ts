import type { App } from "../app.ts";

/** HostRow (SPEC §4.6). */
export interface HostRow {
  id: string;
  host: string;
  state: string;
  last_error: string;
  persistent: boolean;
  shells: number;
}

/** Owns every Docker host connection. (Stub: filled in by the Docker work.) */
export class DockerManager {
  constructor(readonly app: App) {}
  rows(): HostRow[] {
    return [];
  }
  async close(): Promise<void> {}
}
