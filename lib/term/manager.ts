import type { Client } from "ssh2";
import { loadScreenEngine } from "./screen.ts";
import type { App } from "../app.ts";
import { errorMessage, RsmError } from "../errors.ts";
import type { PtyStream } from "./pty.ts";
import type { OpenShellOptions as DockerShellOptions } from "../docker/mod.ts";
import { looksLikeShell, type ShellFlavour } from "./integration.ts";
import { type ReadOptions, type ReadResult, Shell, type ShellState } from "./shell.ts";
import { openSshPty } from "./ssh_backend.ts";
import { openTmux, tmuxName, type TmuxStream } from "./tmux.ts";

/** ShellInfo (see the README's "Shells" section). */
export interface ShellInfo extends ShellState {
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

/** Where a shell lives: an SSH session or a Docker host. */
export type ShellKind = "ssh" | "docker";

/** Options for {@link ShellManager.openSsh}. */
export interface SshShellOptions {
  term?: string;
  rows?: number;
  cols?: number;
  command?: string;
  env?: Record<string, string>;
  durable?: boolean;
  signal?: AbortSignal;
}

/** Options for {@link ShellManager.openDocker}: what `app.docker.openShell` receives. */
export type { DockerShellOptions };

/** The slice of an SSH session the shells use (lib/ssh's `SshSession`). */
interface SessionLike {
  client(): Client;
  ready(signal?: AbortSignal): Promise<unknown>;
  on(event: string, fn: (...args: never[]) => void): unknown;
  off(event: string, fn: (...args: never[]) => void): unknown;
}

/** One managed shell. */
interface Entry {
  shell: Shell;
  kind: ShellKind;
  owner: string;
  container?: string;
  durable: boolean;
  tmux?: string;
  /** The ssh2 client a plain SSH shell was opened on. */
  client?: Client;
  reattaching?: boolean;
}

/** A durable shell as saved in state.json. */
interface SavedShell {
  session_id: string;
  shell_id: string;
  tmux: string;
  rows: number;
  cols: number;
  opened_at?: string;
  /** The shell's kind and its prompt hooks' token (installed in the still-running shell). */
  flavour?: ShellFlavour;
  hook_token?: string;
  ansi_c?: boolean;
}

/**
 * Owns every PTY shell, SSH and Docker: opens them through the right backend, follows the
 * SSH sessions (plain shells become `lost` when their connection goes, durable shells
 * re-attach to tmux), persists durable shells, and drops exited shells once read to the end.
 */
export class ShellManager {
  readonly app: App;
  #entries = new Map<string, Entry>();
  #opening = new Set<string>();
  #watched = new Map<string, { session: SessionLike; off: () => void }>();
  #closed = false;

  constructor(app: App) {
    this.app = app;
    app.store.register("shells", {
      save: () => this.#save(),
      restore: (data) => this.#restore(data),
    });
  }

  /** Every shell, optionally only those of one session or host. */
  list(filter: { kind?: ShellKind; owner?: string } = {}): ShellInfo[] {
    const out: ShellInfo[] = [];
    for (const e of this.#entries.values()) {
      if (filter.kind && e.kind !== filter.kind) continue;
      if (filter.owner !== undefined && e.owner !== filter.owner) continue;
      out.push(info(e));
    }
    return out;
  }

  /** The shell `id` of `owner`, or a NOT_FOUND error naming the list tool. */
  get(kind: ShellKind, owner: string, id: string): Shell {
    const e = this.#entries.get(key(kind, owner, id));
    if (!e) {
      const where = kind === "ssh" ? `session ${owner}` : `Docker host ${owner}`;
      throw new RsmError(
        "NOT_FOUND",
        `Cannot find shell ${id} on ${where}: no such shell; see ${kind}_shell_list`,
      );
    }
    return e.shell;
  }

  /** ShellInfo of one shell. */
  info(kind: ShellKind, owner: string, id: string): ShellInfo {
    this.get(kind, owner, id);
    return info(this.#entries.get(key(kind, owner, id))!);
  }

  /** Opens a PTY shell on SSH session `sessionId` (plain, or `durable` in tmux). */
  async openSsh(sessionId: string, id: string, options: SshShellOptions = {}): Promise<ShellInfo> {
    this.#checkFree("ssh", sessionId, id);
    await loadScreenEngine();
    const session = this.#session(sessionId);
    const client = session.client();
    const rows = options.rows ?? 24;
    const cols = options.cols ?? 80;
    const k = key("ssh", sessionId, id);
    const integrate = options.command === undefined || looksLikeShell(options.command);
    this.#reserve(k);
    try {
      if (options.durable) {
        const name = tmuxName(sessionId, id);
        const stream = await openTmux(client, {
          name,
          rows,
          cols,
          env: options.env,
          command: options.command,
          create: true,
          signal: options.signal,
        });
        const entry = this.#add(
          k,
          id,
          undefined,
          {
            kind: "ssh",
            owner: sessionId,
            durable: true,
            tmux: name,
          },
          rows,
          cols,
          undefined,
          integrate,
        );
        this.#attachDurable(entry, stream);
        if (integrate) await entry.shell.integrate();
        this.app.store.changed();
      } else {
        const stream = await openSshPty(client, {
          rows,
          cols,
          term: options.term,
          env: options.env,
          command: options.command,
          signal: options.signal,
        });
        const entry = this.#add(
          k,
          id,
          stream,
          { kind: "ssh", owner: sessionId, durable: false, client },
          rows,
          cols,
          undefined,
          integrate,
        );
        if (integrate) await entry.shell.integrate();
      }
    } finally {
      this.#opening.delete(k);
    }
    this.#watch(sessionId, session);
    return this.info("ssh", sessionId, id);
  }

  /** Opens a PTY shell in a container on Docker host `hostId` (`app.docker.openShell`). */
  async openDocker(hostId: string, id: string, options: DockerShellOptions): Promise<ShellInfo> {
    this.#checkFree("docker", hostId, id);
    await loadScreenEngine();
    const rows = options.rows ?? 24;
    const cols = options.cols ?? 80;
    const k = key("docker", hostId, id);
    this.#reserve(k);
    try {
      const cmd = options.cmd ?? ["/bin/sh"];
      const stream = await this.app.docker.openShell(hostId, { ...options, cmd, rows, cols });
      const integrate = looksLikeShell(cmd);
      const entry = this.#add(
        k,
        id,
        stream,
        {
          kind: "docker",
          owner: hostId,
          container: options.container,
          durable: false,
        },
        rows,
        cols,
        undefined,
        integrate,
      );
      if (integrate) await entry.shell.integrate();
    } finally {
      this.#opening.delete(k);
    }
    return this.info("docker", hostId, id);
  }

  /**
   * Reads from a shell; an exited shell read to the end is dropped from the list (SPEC
   * §4.3). A lost shell stays listed until closed.
   */
  async read(
    kind: ShellKind,
    owner: string,
    id: string,
    options: ReadOptions,
  ): Promise<ReadResult & ShellState> {
    const shell = this.get(kind, owner, id);
    const result = await shell.read(options);
    if (result.eof && !shell.lost) this.#remove(key(kind, owner, id));
    return result;
  }

  /** Closes one shell: the remote process is ended (a durable shell's tmux session too). */
  closeShell(kind: ShellKind, owner: string, id: string): void {
    const shell = this.get(kind, owner, id);
    const k = key(kind, owner, id);
    const entry = this.#entries.get(k)!;
    shell.close();
    this.#remove(k);
    if (entry.durable) this.app.store.changed();
  }

  /**
   * Shutdown: plain shells end their processes; durable shells only detach, so tmux keeps
   * them for the next daemon. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    for (const [k, e] of this.#entries) {
      if (e.durable) {
        (e.shell.detach() as TmuxStream | undefined)?.detach();
        e.shell.dispose();
      } else e.shell.close();
      this.#entries.delete(k);
    }
    for (const w of this.#watched.values()) w.off();
    this.#watched.clear();
    return Promise.resolve();
  }

  #checkFree(kind: ShellKind, owner: string, id: string): void {
    if (this.#closed) {
      throw new RsmError("SHUTTING_DOWN", "Cannot open a shell: daemon is stopping");
    }
    const k = key(kind, owner, id);
    if (this.#entries.has(k) || this.#opening.has(k)) {
      throw new RsmError(
        "EXISTS",
        `Cannot open shell ${id}: a shell with that id is already open on ` +
          `${kind === "ssh" ? "session" : "host"} ${owner}; close it or choose another id`,
      );
    }
  }

  /** Holds the id while the backend opens, so two opens of one id cannot both win. */
  #reserve(k: string): void {
    this.#opening.add(k);
  }

  #add(
    k: string,
    id: string,
    stream: PtyStream | undefined,
    fields: Omit<Entry, "shell">,
    rows: number,
    cols: number,
    openedAt?: string,
    integrate = false,
    restored?: SavedShell,
  ): Entry {
    const shell = new Shell(stream, {
      id,
      rows,
      cols,
      openedAt,
      integrate,
      restored: restored && {
        flavour: ["bash", "zsh", "ksh", "fish", "posix"].includes(restored.flavour ?? "")
          ? restored.flavour
          : undefined,
        hookToken: /^[0-9a-f]{8,32}$/.test(restored.hook_token ?? "")
          ? restored.hook_token
          : undefined,
        ansiC: restored.ansi_c === true,
      },
    });
    const entry: Entry = { shell, ...fields };
    this.#entries.set(k, entry);
    return entry;
  }

  #attachDurable(entry: Entry, stream: TmuxStream): void {
    entry.shell.attach(stream, (code) => {
      if (stream.connectionLost && !this.#closed) {
        entry.shell.detach(); // the tmux session lives on; re-attach when the session is back
      } else {
        entry.shell.markExited(code);
        this.app.store.changed();
      }
    });
  }

  async #reattach(entry: Entry, session: SessionLike, create = false): Promise<void> {
    if (entry.reattaching || entry.shell.closed || entry.shell.attached) return;
    entry.reattaching = true;
    try {
      await session.ready(this.app.shutdown.signal);
      if (this.#closed || entry.shell.closed) return;
      const stream = await openTmux(session.client(), {
        name: entry.tmux!,
        rows: entry.shell.rows,
        cols: entry.shell.cols,
        create,
        signal: this.app.shutdown.signal,
      });
      if (this.#closed || entry.shell.closed) return stream.detach();
      this.#attachDurable(entry, stream);
    } catch (err) {
      if (err instanceof RsmError && err.code === "TMUX_GONE") entry.shell.markExited(null);
      this.app.log.warn("durable shell did not re-attach", {
        shell: entry.shell.id,
        session: entry.owner,
        error: errorMessage(err),
      });
    } finally {
      entry.reattaching = false;
    }
  }

  #persistent(sessionId: string): boolean {
    try {
      return (this.#session(sessionId) as { persistent?: boolean }).persistent === true;
    } catch {
      return false;
    }
  }

  #session(id: string): SessionLike {
    const ssh = this.app.ssh as unknown as { get?: (id: string) => SessionLike };
    if (typeof ssh.get !== "function") {
      throw new RsmError("NOT_AVAILABLE", "Cannot open a shell: SSH sessions are not available");
    }
    return ssh.get(id);
  }

  /** Follows a session's events while it has shells. */
  #watch(sessionId: string, session: SessionLike): void {
    const current = this.#watched.get(sessionId);
    if (current?.session === session) return;
    current?.off();
    const mine = () =>
      [...this.#entries.values()].filter((e) => e.kind === "ssh" && e.owner === sessionId);
    const onDown = () => {
      for (const e of mine()) {
        if (e.durable) e.shell.detach();
        else e.shell.markLost();
      }
    };
    const onConnected = (client: Client) => {
      for (const e of mine()) {
        if (e.durable) this.#reattach(e, session);
        else if (e.client !== client) e.shell.markLost();
      }
    };
    const onClosed = () => {
      for (const [k, e] of this.#entries) {
        if (e.kind !== "ssh" || e.owner !== sessionId) continue;
        if (e.durable) (e.shell.detach() as TmuxStream | undefined)?.detach();
        e.shell.close();
        this.#entries.delete(k);
      }
      this.#watched.get(sessionId)?.off();
      this.#watched.delete(sessionId);
      this.app.store.changed();
    };
    session.on("down", onDown);
    session.on("connected", onConnected as (...args: never[]) => void);
    session.on("closed", onClosed);
    this.#watched.set(sessionId, {
      session,
      off: () => {
        session.off("down", onDown);
        session.off("connected", onConnected as (...args: never[]) => void);
        session.off("closed", onClosed);
      },
    });
  }

  #remove(k: string): void {
    const e = this.#entries.get(k);
    if (!e) return;
    e.shell.dispose();
    this.#entries.delete(k);
  }

  #save(): SavedShell[] {
    const out: SavedShell[] = [];
    for (const e of this.#entries.values()) {
      if (!e.durable || !e.tmux || e.shell.closed) continue;
      // only sessions that come back after a restart can re-attach their shells
      if (!this.#persistent(e.owner)) continue;
      out.push({
        session_id: e.owner,
        shell_id: e.shell.id,
        tmux: e.tmux,
        rows: e.shell.rows,
        cols: e.shell.cols,
        opened_at: e.shell.openedAt,
        ...(e.shell.flavour ? { flavour: e.shell.flavour } : {}),
        ...(e.shell.hookToken ? { hook_token: e.shell.hookToken } : {}),
        ...(e.shell.ansiC ? { ansi_c: true } : {}),
      });
    }
    return out;
  }

  async #restore(data: unknown): Promise<void> {
    if (!Array.isArray(data)) return;
    await loadScreenEngine();
    for (const raw of data as SavedShell[]) {
      if (!raw || typeof raw.session_id !== "string" || typeof raw.shell_id !== "string") continue;
      const k = key("ssh", raw.session_id, raw.shell_id);
      if (this.#entries.has(k)) continue;
      const entry = this.#add(
        k,
        raw.shell_id,
        undefined,
        {
          kind: "ssh",
          owner: raw.session_id,
          durable: true,
          tmux: raw.tmux ?? tmuxName(raw.session_id, raw.shell_id),
        },
        clampSize(raw.rows, 24),
        clampSize(raw.cols, 80),
        raw.opened_at,
        false,
        raw,
      );
      let session: SessionLike;
      try {
        session = this.#session(raw.session_id);
      } catch (err) {
        // the session did not come back (not persistent): keep the record visible as lost
        entry.shell.lost = true;
        entry.shell.markExited(null);
        this.app.log.warn("durable shell's session is gone", {
          shell: raw.shell_id,
          session: raw.session_id,
          error: errorMessage(err),
        });
        continue;
      }
      this.#watch(raw.session_id, session);
      this.#reattach(entry, session).catch(() => {});
    }
    return Promise.resolve();
  }
}

function key(kind: ShellKind, owner: string, id: string): string {
  return `${kind}:${owner.length}:${owner}:${id}`;
}

function clampSize(n: unknown, dflt: number): number {
  return typeof n === "number" && Number.isInteger(n) && n >= 1 && n <= 1000 ? n : dflt;
}

function info(e: Entry): ShellInfo {
  const s = e.shell;
  const out: ShellInfo = {
    id: s.id,
    ...(e.kind === "ssh" ? { session_id: e.owner } : { host_id: e.owner }),
    ...(e.container !== undefined ? { container: e.container } : {}),
    opened_at: s.openedAt,
    buffered_bytes: s.ring.size,
    dropped_bytes: s.ring.droppedTotal,
    closed: s.closed,
    lost: s.lost,
    durable: e.durable,
    ...s.state(),
  };
  if (s.closed) out.exit_code = s.exitCode;
  return out;
}
