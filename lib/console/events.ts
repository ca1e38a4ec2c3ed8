import type { App } from "../app.ts";
import { renderSection, SECTIONS, summary } from "./overview.ts";
import { type Send, sseStream } from "./sse.ts";

/** How often the overview is re-rendered while someone watches it (ms). */
export const TICK_MS = 1000;

/**
 * The overview's live stream. While at least one page listens, every section is rendered
 * once per tick (shared by all listeners) and each listener gets the sections whose HTML
 * changed since it last heard, as `section` events `{id, html}`. Nobody listening: no work.
 */
export class OverviewHub {
  readonly app: App;
  #listeners = new Map<Send, Map<string, string>>();
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(app: App) {
    this.app = app;
  }

  /** Pages listening now. */
  get listeners(): number {
    return this.#listeners.size;
  }

  /** `GET /web/console/events`. */
  stream(): Response {
    return sseStream((send) => {
      const seen = new Map<string, string>();
      this.#listeners.set(send, seen);
      this.#push(this.#render(), send, seen);
      this.#timer ??= setInterval(() => this.#tick(), TICK_MS);
      return () => {
        this.#listeners.delete(send);
        if (this.#listeners.size === 0) {
          clearInterval(this.#timer);
          this.#timer = undefined;
        }
      };
    });
  }

  /** Stops the ticker and forgets listeners (daemon shutdown). */
  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#listeners.clear();
  }

  #render(): Map<string, string> {
    const out = new Map<string, string>([["summary", summary(this.app)]]);
    for (const s of SECTIONS) out.set(s.id, renderSection(s, this.app));
    return out;
  }

  #tick(): void {
    const now = this.#render();
    for (const [send, seen] of this.#listeners) this.#push(now, send, seen);
  }

  #push(now: Map<string, string>, send: Send, seen: Map<string, string>): void {
    for (const [id, html] of now) {
      if (seen.get(id) === html) continue;
      seen.set(id, html);
      send("section", JSON.stringify({ id, html }));
    }
  }
}
