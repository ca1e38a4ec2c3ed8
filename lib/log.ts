import { redact } from "./secrets.ts";

/** Log levels in increasing severity. */
export type Level = "debug" | "info" | "warn" | "error";
const ORDER: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** Options for {@link Logger}. */
export interface LoggerOptions {
  /** File to append to (rotated to `<file>.1` past `maxBytes`). */
  file?: string;
  /** Also write to stderr (the daemon in the foreground). Default false. */
  stderr?: boolean;
  /** Lowest level written. Default "info". */
  level?: Level;
  /** Rotation size. Default 5 MiB. */
  maxBytes?: number;
}

/**
 * The one logger. Lines are `time level message {json fields}`, secrets redacted, written
 * synchronously so a crash loses nothing. Never writes to stdout.
 */
export class Logger {
  #file: string | undefined;
  #stderr: boolean;
  #level: number;
  #maxBytes: number;
  #size = -1;
  #encoder = new TextEncoder();

  constructor(options: LoggerOptions = {}) {
    this.#file = options.file;
    this.#stderr = options.stderr ?? false;
    this.#level = ORDER[options.level ?? "info"] ?? 1;
    this.#maxBytes = options.maxBytes ?? 5 * 1024 * 1024;
  }

  debug(msg: string, fields?: Record<string, unknown>): void {
    this.write("debug", msg, fields);
  }
  info(msg: string, fields?: Record<string, unknown>): void {
    this.write("info", msg, fields);
  }
  warn(msg: string, fields?: Record<string, unknown>): void {
    this.write("warn", msg, fields);
  }
  error(msg: string, fields?: Record<string, unknown>): void {
    this.write("error", msg, fields);
  }

  /** Writes one line at `level` if it passes the threshold. */
  write(level: Level, msg: string, fields?: Record<string, unknown>): void {
    if (ORDER[level] < this.#level) return;
    const extra = fields && Object.keys(fields).length ? " " + safeJson(fields) : "";
    const line = redact(`${new Date().toISOString()} ${level} ${msg}${extra}`) + "\n";
    const bytes = this.#encoder.encode(line);
    if (this.#stderr) {
      try {
        Deno.stderr.writeSync(bytes);
      } catch { /* stderr closed */ }
    }
    if (this.#file) this.#append(this.#file, bytes);
  }

  #append(file: string, bytes: Uint8Array): void {
    try {
      if (this.#size < 0) {
        try {
          this.#size = Deno.statSync(file).size;
        } catch {
          this.#size = 0;
        }
      }
      if (this.#size + bytes.length > this.#maxBytes) {
        try {
          Deno.renameSync(file, file + ".1");
        } catch { /* nothing to rotate */ }
        this.#size = 0;
      }
      Deno.writeFileSync(file, bytes, { append: true, create: true, mode: 0o600 });
      this.#size += bytes.length;
    } catch {
      // A log write must never take the daemon down (disk full, dir removed).
    }
  }
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v) => (v instanceof Error ? v.message : v));
  } catch {
    return "{}";
  }
}

/** A logger that drops everything (tests, CLI paths that must stay quiet). */
export const silentLogger: Logger = new Logger({ level: "error" });
