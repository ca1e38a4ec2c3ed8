/**
 * Views that span managers, composed here in the tool layer so that no manager reaches into
 * another: a session's forwards (ForwardManager) and shells (ShellManager) beside what the
 * SshManager knows of it (docs/architecture.md, "Who may import whom").
 */
import type { App } from "../app.ts";
import type { ForwardInfo, SessionDetails, SessionSummary } from "../ssh/mod.ts";
import type { ShellInfo } from "../term/mod.ts";

/** SessionRow (README "SSH sessions and exec"): flat scalars for TOON tables. */
export interface SessionRow extends SessionSummary {
  forwards: number;
  shells: number;
}

/** SessionInfo (README "SSH sessions and exec"): the session, its forwards and its shells. */
export interface SessionInfo extends SessionDetails {
  forwards: ForwardInfo[];
  shells: ShellInfo[];
}

/** The managers these views read. */
export type SessionViews = Pick<App, "ssh" | "forwards" | "shells">;

/** SessionInfo of session `id`; throws the SshManager's NOT_FOUND for an unknown id. */
export function sessionInfo(app: SessionViews, id: string): SessionInfo {
  const d = app.ssh.info(id);
  return {
    id: d.id,
    user: d.user,
    addresses: d.addresses,
    active_address: d.active_address,
    state: d.state,
    last_error: d.last_error,
    connected_at: d.connected_at,
    forwards: forwardsOf(app, id),
    shells: shellsOf(app, id),
    persistent: d.persistent,
    auto_reconnect: d.auto_reconnect,
    host_key_fingerprint: d.host_key_fingerprint,
  };
}

/** SessionRow of every session, with the number of its forwards and shells. */
export function sessionRows(app: SessionViews): SessionRow[] {
  const forwards = count(app.forwards.list().map((f) => f.session_id));
  const shells = count(app.shells.list().map((s) => s.session_id));
  return app.ssh.rows().map((r) => ({
    id: r.id,
    user: r.user,
    address: r.address,
    state: r.state,
    last_error: r.last_error,
    persistent: r.persistent,
    auto_reconnect: r.auto_reconnect,
    forwards: forwards.get(r.id) ?? 0,
    shells: shells.get(r.id) ?? 0,
  }));
}

function forwardsOf(app: SessionViews, id: string): ForwardInfo[] {
  return app.forwards.list(id);
}

function shellsOf(app: SessionViews, id: string): ShellInfo[] {
  return app.shells.list().filter((s) => s.session_id === id);
}

function count(keys: unknown[]): Map<unknown, number> {
  const out = new Map<unknown, number>();
  for (const k of keys) if (k !== undefined) out.set(k, (out.get(k) ?? 0) + 1);
  return out;
}
