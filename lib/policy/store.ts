/**
 * Keeps the policy of `policy.toml` current: re-read when the file changes (checked on every
 * use and once a second), a broken file keeps the last good policy and the reason is kept for
 * `status` and written to the log.
 */
import type { Logger } from "../log.ts";
import { defaultPolicy, parsePolicy, type Policy } from "./rules.ts";

/** What `status` shows about the policy. */
export interface PolicyStatus {
  file: string;
  loaded: boolean;
  mode: string;
  redact: boolean;
  rules: number;
  /** Why the file on disk is not in force (the last good policy is). */
  error?: string | undefined;
}

/** The daemon's policy, re-read from its file when it changes. */
export class PolicyStore {
  readonly file: string;
  #log: Logger | undefined;
  #policy: Policy;
  #stamp = "";
  #loaded = false;
  #error: string | undefined;
  #listeners = new Set<(now: Policy, before: Policy) => void>();
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(file: string, log?: Logger) {
    this.file = file;
    this.#log = log;
    this.#policy = defaultPolicy(file);
    this.refresh();
  }

  /** The policy in force (re-reads the file first if it changed). */
  current(): Policy {
    this.refresh();
    return this.#policy;
  }

  /** For `status`. */
  status(): PolicyStatus {
    const p = this.current();
    return {
      file: this.file,
      loaded: this.#loaded,
      mode: p.mode,
      redact: p.redact,
      rules: p.rules.length,
      ...(this.#error ? { error: this.#error } : {}),
    };
  }

  /** Calls `fn` whenever the policy in force changes. Returns a function that removes it. */
  onChange(fn: (now: Policy, before: Policy) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Checks the file once a second so changes take effect (and notify) without a call. */
  watch(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.refresh(), 1000);
    Deno.unrefTimer(this.#timer);
  }

  /** Stops watching. Idempotent. */
  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#listeners.clear();
  }

  /** Re-reads the file if its size, mtime or inode changed. */
  refresh(): void {
    let stamp: string;
    try {
      const st = Deno.statSync(this.file);
      stamp = `${st.size}:${st.mtime?.getTime()}:${st.ino}`;
    } catch {
      stamp = "none";
    }
    if (stamp === this.#stamp) return;
    this.#stamp = stamp;
    const before = this.#policy;
    if (stamp === "none") {
      if (this.#loaded || this.#error) this.#log?.info("policy file removed; default policy");
      this.#policy = defaultPolicy(this.file);
      this.#loaded = false;
      this.#error = undefined;
    } else {
      try {
        const text = Deno.readTextFileSync(this.file);
        this.#policy = parsePolicy(text, this.file);
        this.#loaded = true;
        this.#error = undefined;
        this.#log?.info("policy loaded", {
          file: this.file,
          mode: this.#policy.mode,
          rules: this.#policy.rules.length,
        });
      } catch (err) {
        this.#error = `${this.file}: ${
          (err as Error).message
        }; the last good policy stays in force`;
        this.#log?.error("policy file not loaded", { error: this.#error });
      }
    }
    if (this.#policy !== before) {
      for (const fn of this.#listeners) {
        try {
          fn(this.#policy, before);
        } catch (err) {
          this.#log?.warn("policy listener failed", { error: err });
        }
      }
    }
  }
}
