import { loadScreenEngine } from "./screen.ts";
import { errorMessage, RsmError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { ShellFlavour } from "./integration.ts";
import { type ReadOptions, type ReadResult, Shell, type ShellState } from "./shell.ts";
import type { BackendShell, ShellBackend, ShellBackends, ShellControl } from "./backend.ts";

/**
 * ShellInfo (see the README's "Shells" section): the id, the owner under its backend's field
 * (`session_id`, `host_id`, …) and the backend's own fields (`container`), then the state.
 */
export interface ShellInfo extends ShellState {
  id: string;
  opened_at: string;
  buffered_bytes: number;
  dropped_bytes: number;
  closed: boolean;
  exit_code?: number | null | undefined;
  lost: boolean;
  durable: boolean;
  [field: string]: unknown;
}

/** A shell's address and info, for views over every kind (the console). */
export interface ShellRef {
  kind: string;
  owner: string;
  id: string;
  info: ShellInfo;
}

/** The one place that persists shells: `register(name, {save, restore})` (lib/state). */
export interface ShellStore {
  register(
    name: string,
    part: { save(): unknown; restore(data: unknown): Promise<void> },
  ): void;
  changed(): void;
}

/** What {@link ShellManager} needs: the backends, where to persist, where to log. */
export interface ShellManagerOptions {
  backends: ShellBackends;
  store: ShellStore;
  log: Pick<Logger, "warn">;
}

/** Options of {@link ShellManager.open}: the size, then the backend's own options. */
export interface OpenShellOptions {
  rows?: number | undefined;
  cols?: number | undefined;
  signal?: AbortSignal | undefined;
  /** The backend's options (e.g. SSH's `command`, `durable`; Docker's `container`). */
  options?: Record<string, unknown> | undefined;
}

/** One managed shell. */
interface Entry {
  kind: string;
  owner: string;
  shell: Shell;
  backend: ShellBackend;
  handle: BackendShell;
}

/** A shell as saved in state.json: the engine's part plus the backend's `save()` fields. */
interface SavedShell {
  /** Absent in files written before shell kinds were named: those are SSH shells. */
  kind?: string | undefined;
  shell_id: string;
  rows: number;
  cols: number;
  opened_at?: string | undefined;
  /** The shell's kind and its prompt hooks' token (installed in the still-running shell). */
  flavour?: ShellFlavour | undefined;
  hook_token?: string | undefined;
  ansi_c?: boolean | undefined;
  [field: string]: unknown;
}

/**
 * Owns every PTY shell, whatever its backend: opens them through the registered backend of
 * their kind, keeps them by (kind, owner, id), persists the ones a backend keeps across
 * restarts, and drops exited shells once read to the end. What an owner's events mean (a
 * session lost, a tmux re-attach) is the backend's business, through {@link ShellControl}.
 */
export class ShellManager {
  readonly backends: ShellBackends;
  #store: ShellStore;
  #log: Pick<Logger, "warn">;
  #entries = new Map<string, Entry>();
  #opening = new Set<string>();
  #closed = false;
  #stopping = new AbortController();

  constructor(options: ShellManagerOptions) {
    this.backends = options.backends;
    this.#store = options.store;
    this.#log = options.log;
    this.#store.register("shells", {
      save: () => this.#save(),
      restore: (data) => this.#restore(data),
    });
  }

  /** Every shell, optionally only those of one kind and/or owner. */
  list(filter: { kind?: string | undefined; owner?: string | undefined } = {}): ShellInfo[] {
    return this.refs(filter).map((r) => r.info);
  }

  /** Like {@link list}, with each shell's kind and owner. */
  refs(filter: { kind?: string | undefined; owner?: string | undefined } = {}): ShellRef[] {
    const out: ShellRef[] = [];
    for (const e of this.#entries.values()) {
      if (filter.kind !== undefined && e.kind !== filter.kind) continue;
      if (filter.owner !== undefined && e.owner !== filter.owner) continue;
      out.push({ kind: e.kind, owner: e.owner, id: e.shell.id, info: info(e) });
    }
    return out;
  }

  /** "session box", "Docker host h1": an owner as a person names it. */
  where(kind: string, owner: string): string {
    return `${this.backends.get(kind).owner.noun} ${owner}`;
  }

  /** The shell `id` of `owner`, or a NOT_FOUND error naming the list tool. */
  get(kind: string, owner: string, id: string): Shell {
    return this.#entry(kind, owner, id).shell;
  }

  /** ShellInfo of one shell. */
  info(kind: string, owner: string, id: string): ShellInfo {
    return info(this.#entry(kind, owner, id));
  }

  /** What its backend said of a shell when it opened: its own fields and what runs (audit). */
  opened(kind: string, owner: string, id: string): Pick<BackendShell, "info" | "command"> {
    const { info, command } = this.#entry(kind, owner, id).handle;
    return { info, command };
  }

  /** Opens a PTY shell `id` on `owner` through the backend of `kind`. */
  async open(
    kind: string,
    owner: string,
    id: string,
    request: OpenShellOptions = {},
  ): Promise<ShellInfo> {
    const backend = this.backends.get(kind);
    const k = key(kind, owner, id);
    this.#checkFree(backend, k, owner, id);
    this.#opening.add(k); // two opens of one id cannot both win
    try {
      await loadScreenEngine();
      const rows = request.rows ?? 24;
      const cols = request.cols ?? 80;
      const options = request.options ?? {};
      const integrate = backend.integrates(options);
      const shell = new Shell(undefined, { id, rows, cols, integrate });
      const control = this.#control(k, shell);
      let handle: BackendShell;
      try {
        handle = await backend.open(
          { owner, id, rows, cols, options, signal: request.signal },
          control,
        );
      } catch (err) {
        shell.dispose();
        throw err;
      }
      this.#entries.set(k, { kind, owner, shell, backend, handle });
      if (handle.stream) shell.attach(handle.stream, handle.onEnd?.bind(handle));
      if (integrate) await shell.integrate();
      if (handle.durable) this.#store.changed();
    } finally {
      this.#opening.delete(k);
    }
    return this.info(kind, owner, id);
  }

  /**
   * Reads from a shell; an exited shell read to the end is dropped from the list (README,
   * "Shells"). A lost shell stays listed until closed.
   */
  async read(
    kind: string,
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
  closeShell(kind: string, owner: string, id: string): void {
    const entry = this.#entry(kind, owner, id);
    entry.shell.close();
    this.#remove(key(kind, owner, id));
    if (entry.handle.durable) this.#store.changed();
  }

  /** Closes every shell of one owner (a Docker host disconnected); returns how many. */
  closeOwner(kind: string, owner: string): number {
    const ids = this.list({ kind, owner }).map((s) => s.id);
    for (const id of ids) {
      try {
        this.closeShell(kind, owner, id);
      } catch (err) {
        this.#log.warn("cannot close shell", { kind, owner, shell: id, error: err });
      }
    }
    return ids.length;
  }

  /**
   * Shutdown: plain shells end their processes; durable shells only detach, so the remote
   * side (tmux) keeps them for the next daemon. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#stopping.abort(new Error("daemon shutting down"));
    for (const [k, e] of this.#entries) {
      if (e.handle.durable) {
        e.handle.detach?.();
        e.shell.detach();
        e.shell.dispose();
      } else e.shell.close();
      this.#entries.delete(k);
      e.handle.release?.();
    }
    return Promise.resolve();
  }

  #entry(kind: string, owner: string, id: string): Entry {
    const e = this.#entries.get(key(kind, owner, id));
    if (!e) {
      const b = this.backends.has(kind) ? this.backends.get(kind) : undefined;
      throw new RsmError(
        "NOT_FOUND",
        `Cannot find shell ${id} on ${b?.owner.noun ?? kind} ${owner}: no such shell; see ` +
          `${kind}_shell_list`,
      );
    }
    return e;
  }

  #checkFree(backend: ShellBackend, k: string, owner: string, id: string): void {
    if (this.#closed) {
      throw new RsmError("SHUTTING_DOWN", "Cannot open a shell: daemon is stopping");
    }
    if (this.#entries.has(k) || this.#opening.has(k)) {
      throw new RsmError(
        "ALREADY_EXISTS",
        `Cannot open shell ${id}: a shell with that id is already open on ` +
          `${backend.owner.noun} ${owner}; close it or choose another id`,
      );
    }
  }

  #control(k: string, shell: Shell): ShellControl {
    // deno-lint-ignore no-this-alias
    const self = this;
    return {
      shell,
      get stopping() {
        return self.#closed;
      },
      signal: this.#stopping.signal,
      changed: () => this.#store.changed(),
      remove: () => {
        if (this.#entries.get(k)?.shell === shell) this.#remove(k);
      },
    };
  }

  #remove(k: string): void {
    const e = this.#entries.get(k);
    if (!e) return;
    e.shell.dispose();
    this.#entries.delete(k);
    e.handle.release?.();
  }

  #save(): SavedShell[] {
    const out: SavedShell[] = [];
    for (const e of this.#entries.values()) {
      if (e.shell.closed || !e.handle.save || !e.backend.restore) continue;
      const fields = e.handle.save();
      if (!fields) continue;
      const s = e.shell;
      out.push({
        kind: e.kind,
        [e.backend.owner.field]: e.owner,
        shell_id: s.id,
        ...fields,
        rows: s.rows,
        cols: s.cols,
        opened_at: s.openedAt,
        ...(s.flavour ? { flavour: s.flavour } : {}),
        ...(s.hookToken ? { hook_token: s.hookToken } : {}),
        ...(s.ansiC ? { ansi_c: true } : {}),
      });
    }
    return out;
  }

  async #restore(data: unknown): Promise<void> {
    if (!Array.isArray(data)) return;
    await loadScreenEngine();
    for (const raw of data as SavedShell[]) {
      if (!raw || typeof raw.shell_id !== "string") continue;
      const kind = typeof raw.kind === "string" ? raw.kind : "ssh";
      const backend = this.backends.has(kind) ? this.backends.get(kind) : undefined;
      const owner = backend && raw[backend.owner.field];
      if (!backend?.restore || typeof owner !== "string") {
        this.#log.warn("saved shell not restored: its kind is not registered", {
          kind,
          shell: raw.shell_id,
        });
        continue;
      }
      const k = key(kind, owner, raw.shell_id);
      if (this.#entries.has(k)) continue;
      const rows = clampSize(raw.rows, 24);
      const cols = clampSize(raw.cols, 80);
      const shell = new Shell(undefined, {
        id: raw.shell_id,
        rows,
        cols,
        openedAt: raw.opened_at,
        restored: {
          flavour: ["bash", "zsh", "ksh", "fish", "posix"].includes(raw.flavour ?? "")
            ? raw.flavour
            : undefined,
          hookToken: /^[0-9a-f]{8,32}$/.test(raw.hook_token ?? "") ? raw.hook_token : undefined,
          ansiC: raw.ansi_c === true,
        },
      });
      const control = this.#control(k, shell);
      try {
        const handle = backend.restore(
          { owner, id: raw.shell_id, rows, cols, options: raw },
          control,
        );
        this.#entries.set(k, { kind, owner, shell, backend, handle });
        if (handle.stream) shell.attach(handle.stream, handle.onEnd?.bind(handle));
      } catch (err) {
        shell.dispose();
        this.#log.warn("saved shell not restored", {
          kind,
          shell: raw.shell_id,
          error: errorMessage(err),
        });
      }
    }
  }
}

function key(kind: string, owner: string, id: string): string {
  return `${kind}:${owner.length}:${owner}:${id}`;
}

function clampSize(n: unknown, dflt: number): number {
  return typeof n === "number" && Number.isInteger(n) && n >= 1 && n <= 1000 ? n : dflt;
}

function info(e: Entry): ShellInfo {
  const s = e.shell;
  const out: ShellInfo = {
    id: s.id,
    [e.backend.owner.field]: e.owner,
    ...e.handle.info,
    opened_at: s.openedAt,
    buffered_bytes: s.ring.size,
    dropped_bytes: s.ring.droppedTotal,
    closed: s.closed,
    lost: s.lost,
    durable: e.handle.durable === true,
    ...s.state(),
  };
  if (s.closed) out.exit_code = s.exitCode;
  return out;
}
