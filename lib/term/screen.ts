import type xtermModule from "@xterm/headless";

let xterm: typeof xtermModule | undefined;

/**
 * Loads the headless terminal emulator (on first use, not at daemon start-up: it is only
 * needed once a shell is opened). Call before constructing a {@link Screen}.
 */
export async function loadScreenEngine(): Promise<void> {
  xterm ??= (await import("@xterm/headless")).default;
}

/** What `screen` returns (README "Shells"). */
export interface ScreenSnapshot {
  rows: string[];
  cursor_row: number;
  cursor_col: number;
  cols: number;
}

/**
 * A headless terminal emulator fed with a shell's output, so full-screen programs (vim, top,
 * less, menus) can be shown as a person sees them.
 */
export class Screen {
  #term: InstanceType<typeof xtermModule.Terminal>;
  #closed = false;

  constructor(rows: number, cols: number) {
    if (!xterm) throw new Error("Screen needs loadScreenEngine() first");
    this.#term = new xterm.Terminal({
      rows,
      cols,
      scrollback: 200,
      allowProposedApi: true,
    });
  }

  /** Feeds output bytes (UTF-8 is decoded by the emulator, even across chunks). */
  write(bytes: Uint8Array): void {
    if (!this.#closed) this.#term.write(bytes);
  }

  /** Changes the emulator's size. */
  resize(rows: number, cols: number): void {
    if (!this.#closed) this.#term.resize(cols, rows);
  }

  /** The visible screen once every byte fed so far has been parsed. */
  async snapshot(): Promise<ScreenSnapshot> {
    const t = this.#term;
    if (!this.#closed) await new Promise<void>((resolve) => t.write("", resolve));
    const b = t.buffer.active;
    const rows: string[] = [];
    for (let i = 0; i < t.rows; i++) {
      rows.push(b.getLine(b.viewportY + i)?.translateToString(true) ?? "");
    }
    return { rows, cursor_row: b.cursorY, cursor_col: b.cursorX, cols: t.cols };
  }

  /** Resolves once every byte fed so far has been parsed. */
  async flush(): Promise<void> {
    if (this.#closed) return;
    const t = this.#term;
    await new Promise<void>((resolve) => t.write("", resolve));
  }

  /** The text of the cursor's row left of the cursor, as parsed so far. */
  cursorPrefix(): string {
    if (this.#closed) return "";
    const b = this.#term.buffer.active;
    return b.getLine(b.baseY + b.cursorY)?.translateToString(false, 0, b.cursorX) ?? "";
  }

  /** Whether a full-screen program holds the alternate screen (vim, less, top…). */
  async alternate(): Promise<boolean> {
    if (this.#closed) return false;
    const t = this.#term;
    await new Promise<void>((resolve) => t.write("", resolve));
    return t.buffer.active.type === "alternate";
  }

  /** Frees the emulator. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#term.dispose();
  }
}
