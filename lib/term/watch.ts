import { RsmError } from "../errors.ts";

/** How long after a person's last keystroke agent writes hold back (ms). */
export const PERSON_QUIET_MS = 3000;
/** How long an agent write waits for a person to stop typing when the call does not say. */
export const PERSON_WAIT_MS = 5000;
/** Raw output kept for a viewer that opens the shell later (bytes). */
export const RECENT_BYTES = 128 * 1024;

/**
 * What a person watching a shell from the console needs from it, kept apart from the shell's
 * read/run logic: every output chunk as it arrives (the agent's reads do not consume it), the
 * last {@link RECENT_BYTES} of output to draw a terminal that opens late, and take-over — a
 * person's keystrokes go straight to the terminal, agent writes hold back while the person
 * has typed in the last {@link PERSON_QUIET_MS} ms, and the agent's next read says a person
 * typed (README, "The console").
 *
 * @example
 * ```ts
 * const watch = new ShellWatch("sh1");
 * const off = watch.subscribe((chunk) => console.log(chunk.length));
 * watch.output(new TextEncoder().encode("hi"));
 * off();
 * ```
 */
export class ShellWatch {
  readonly shellId: string;
  /** When a person last typed (epoch ms), 0 if never. */
  personTypedAt = 0;
  #listeners = new Set<(chunk: Uint8Array) => void>();
  #recent: Uint8Array[] = [];
  #recentSize = 0;
  #unreported = false;
  /** Total bytes of output seen (a viewer's position). */
  total = 0;

  constructor(shellId: string) {
    this.shellId = shellId;
  }

  /** Number of viewers subscribed now. */
  get viewers(): number {
    return this.#listeners.size;
  }

  /** Called by the shell for every output chunk. */
  output(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.total += chunk.length;
    const copy = chunk.slice();
    this.#recent.push(copy);
    this.#recentSize += copy.length;
    while (this.#recentSize - (this.#recent[0]?.length ?? 0) >= RECENT_BYTES) {
      this.#recentSize -= this.#recent.shift()!.length;
    }
    for (const fn of this.#listeners) {
      try {
        fn(copy);
      } catch { /* a viewer's failure is its own */ }
    }
  }

  /** The recent output, oldest first (at most about {@link RECENT_BYTES}). */
  recent(): Uint8Array {
    const out = new Uint8Array(this.#recentSize);
    let o = 0;
    for (const c of this.#recent) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }

  /** Calls `fn` with every new output chunk until the returned function is called. */
  subscribe(fn: (chunk: Uint8Array) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Records a person's keystrokes (the caller writes them to the terminal). */
  personTyped(): void {
    this.personTypedAt = Date.now();
    this.#unreported = true;
  }

  /** Whether a person typed in the last {@link PERSON_QUIET_MS} ms. */
  personActive(now = Date.now()): boolean {
    return this.personTypedAt > 0 && now - this.personTypedAt < PERSON_QUIET_MS;
  }

  /**
   * True once after a person typed: the agent's next read reports it, so the model knows the
   * input it sees was not its own.
   */
  takePersonTyped(): boolean {
    const v = this.#unreported;
    this.#unreported = false;
    return v;
  }

  /**
   * Waits until no person has typed for {@link PERSON_QUIET_MS} ms, up to `waitMs`; throws
   * PERSON_TYPING when the person is still typing then. Called before every agent write.
   */
  async agentTurn(waitMs = PERSON_WAIT_MS, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + Math.max(0, waitMs);
    while (this.personActive()) {
      const freeAt = this.personTypedAt + PERSON_QUIET_MS;
      if (freeAt > deadline) {
        throw new RsmError(
          "PERSON_TYPING",
          `Cannot write to shell ${this.shellId}: a person is typing in this shell (from the ` +
            `console); wait a few seconds, read what they did with the shell's read tool, and ` +
            `retry (or pass a longer wait_ms)`,
        );
      }
      await sleep(freeAt - Date.now(), signal);
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
