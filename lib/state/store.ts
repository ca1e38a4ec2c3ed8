import { writeFileAtomic, writeFileAtomicSync } from "./atomic.ts";
import type { Logger } from "../log.ts";
import { redact } from "../secrets.ts";
import { errorMessage } from "../errors.ts";

/**
 * A part of the daemon that persists something (SSH sessions, forwards, Docker hosts, shells).
 * `save` returns plain JSON without secrets (secret *references* such as `password_env` are
 * fine); `restore` gets back what `save` returned last time and brings it to life in the
 * background. The store never keeps a second copy of the managers' state: it asks.
 */
export interface StateProvider {
  save(): unknown;
  restore(data: unknown): Promise<void>;
}

/**
 * What a manager needs of the store: register its part under a name, and say that something
 * worth saving changed. Managers take this, not the whole store, so a test can hand them a
 * small fake or a real {@link StateStore}.
 */
export type StateRegistry = Pick<StateStore, "register" | "changed">;

/** Options for {@link StateStore}. */
export interface StateStoreOptions {
  log: Logger;
  /** Delay between a change and the write that records it. Default 200 ms. */
  debounceMs?: number | undefined;
}

/**
 * `state.json`: debounced atomic writes of what the registered providers return.
 * `flush()` is a fence: when it resolves, everything changed before the call is on disk.
 */
export class StateStore {
  readonly path: string;
  #providers = new Map<string, StateProvider>();
  #loaded: Record<string, unknown> = {};
  #timer: ReturnType<typeof setTimeout> | undefined;
  #writing: Promise<void> = Promise.resolve();
  #log: Logger;
  #debounceMs: number;
  #closed = false;
  /** Last write error, if the last write failed (disk full…). */
  lastError: string | undefined;

  constructor(path: string, options: StateStoreOptions) {
    this.path = path;
    this.#log = options.log;
    this.#debounceMs = options.debounceMs ?? 200;
  }

  /** Registers a provider under `name` (its key in `state.json`). */
  register(name: string, provider: StateProvider): void {
    this.#providers.set(name, provider);
  }

  /** Reads `state.json`. A missing file is empty state; a corrupt one is kept aside and logged. */
  async load(): Promise<void> {
    await this.#removeStaleTemps();
    let text: string;
    try {
      text = await Deno.readTextFile(this.path);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) {
        this.#log.error("cannot read state", { path: this.path, error: errorMessage(err) });
      }
      return;
    }
    try {
      const parsed = JSON.parse(text);
      if (parsed && typeof parsed === "object") this.#loaded = parsed as Record<string, unknown>;
    } catch (err) {
      const aside = `${this.path}.corrupt-${Date.now()}`;
      this.#log.error("state file is not valid JSON; kept aside", {
        aside,
        error: errorMessage(err),
      });
      await Deno.rename(this.path, aside).catch(() => {});
    }
  }

  /** Temp files of writes cut short by a crash (`.<8 hex>.tmp` beside the state file). */
  async #removeStaleTemps(): Promise<void> {
    const dir = this.path.slice(0, this.path.lastIndexOf("/")) || ".";
    try {
      for await (const e of Deno.readDir(dir)) {
        if (e.isFile && /^\.[0-9a-f]{8}\.tmp$/.test(e.name)) {
          await Deno.remove(`${dir}/${e.name}`).catch(() => {});
        }
      }
    } catch { /* dir missing: nothing to clean */ }
  }

  /** What `load()` found for `name`, if anything. */
  loaded(name: string): unknown {
    return this.#loaded[name];
  }

  /** Calls every provider's `restore` with what was loaded for it, in registration order. */
  async restoreAll(): Promise<void> {
    for (const [name, provider] of this.#providers) {
      const data = this.#loaded[name];
      if (data === undefined) continue;
      try {
        await provider.restore(data);
      } catch (err) {
        this.#log.error("restore failed", { part: name, error: errorMessage(err) });
      }
    }
  }

  /** Schedules a write (debounced). */
  changed(): void {
    if (this.#closed || this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#enqueue();
    }, this.#debounceMs);
  }

  /** Writes now and resolves once everything changed before this call is on disk. */
  async flush(): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    await this.#enqueue();
    if (this.lastError) throw new Error(`Cannot write state ${this.path}: ${this.lastError}`);
  }

  /** Stops further writes: what closing sessions changes afterwards must not be persisted. */
  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#closed = true;
  }

  /** Writes synchronously (last resort on shutdown) and stops further writes. */
  closeSync(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#closed = true;
    try {
      writeFileAtomicSync(this.path, this.#render());
    } catch (err) {
      this.#log.error("cannot write state on shutdown", { error: errorMessage(err) });
    }
  }

  /** The document that would be written now. */
  snapshot(): Record<string, unknown> {
    const doc: Record<string, unknown> = {
      ...this.#loaded, // parts whose provider is not loaded (tool profile) are kept as they were
      version: 1,
      saved_at: new Date().toISOString(),
    };
    for (const [name, provider] of this.#providers) {
      try {
        doc[name] = provider.save();
      } catch (err) {
        this.#log.error("cannot collect state", { part: name, error: errorMessage(err) });
      }
    }
    return doc;
  }

  #render(): string {
    return redact(JSON.stringify(this.snapshot(), null, 2)) + "\n";
  }

  #enqueue(): Promise<void> {
    const run = this.#writing.then(async () => {
      try {
        await writeFileAtomic(this.path, this.#render());
        this.lastError = undefined;
      } catch (err) {
        this.lastError = errorMessage(err);
        this.#log.error("cannot write state; previous state.json kept", {
          path: this.path,
          error: this.lastError,
        });
      }
    });
    this.#writing = run;
    return run;
  }
}
