/**
 * Planning half of the SFTP transfers (see transfer.ts): walks the source tree (local or
 * remote) without following symlinks, keeps only plain names and symlinks whose target stays
 * inside the tree, and tallies what was copied or skipped.
 */
import { join, posix } from "node:path";
import type { SFTPWrapper } from "ssh2";
import { errorMessage, RsmError } from "../errors.ts";
import type { PipeOptions } from "./sftp_stream.ts";
import {
  assertOpen,
  fileType,
  ops,
  randomTag,
  readlink,
  rjoin,
  safeName,
  sftpCode,
  sftpError,
} from "./sftp_util.ts";

/** What a transfer did. */
export interface TransferResult {
  /** File bytes copied. */
  bytes: number;
  /** Files (and symlinks) written. */
  files: number;
  /** Directories created or merged into. */
  dirs: number;
  /** Entries not copied and why (at most 100 listed). */
  skipped?: string[] | undefined;
  /** Directories whose permission bits could not be set, each with the reason. */
  mode_errors?: string[] | undefined;
}

/** Options of `upload` and `download` (transfer.ts). */
export interface TransferOptions {
  signal?: AbortSignal | undefined;
  /** Called often (every chunk); throttle at the call site. */
  onProgress?: ((done: number, total: number, current: string) => void) | undefined;
  /** Files copied at once. Default 8. */
  parallelFiles?: number | undefined;
  /** Per-file pipelining (see sftp_stream.ts). */
  pipe?: Pick<PipeOptions, "chunkSize" | "concurrency"> | undefined;
}

/** One entry of a tree to copy, relative to its root. */
export interface Item {
  rel: string[];
  kind: "dir" | "file" | "symlink";
  mode: number;
  size: number;
  mtime: number;
  target?: string | undefined;
}

/** At most this many skipped entries are listed in a result. */
export const MAX_SKIPPED = 100;

/** Running counts of one transfer: bytes, files, dirs, skipped entries, planned total. */
export class Tally {
  bytes = 0;
  files = 0;
  dirs = 0;
  skipped: string[] = [];
  modeErrors: string[] = [];
  more = 0;
  total = 0;
  skip(what: string): void {
    if (this.skipped.length < MAX_SKIPPED) this.skipped.push(what);
    else this.more++;
  }
  result(): TransferResult {
    const r: TransferResult = { bytes: this.bytes, files: this.files, dirs: this.dirs };
    if (this.skipped.length) {
      r.skipped = this.more ? [...this.skipped, `… and ${this.more} more`] : this.skipped;
    }
    if (this.modeErrors.length) {
      const n = this.modeErrors.length;
      r.mode_errors = n > MAX_SKIPPED
        ? [...this.modeErrors.slice(0, MAX_SKIPPED), `… and ${n - MAX_SKIPPED} more`]
        : this.modeErrors;
    }
    return r;
  }
}

/** Whether a relative symlink `target` at `rel` resolves inside the tree root. */
export function linkStaysInside(rel: string[], target: string): boolean {
  if (!target || target.startsWith("/") || target.includes("\0")) return false;
  const resolved = posix.normalize(posix.join(...rel.slice(0, -1), target));
  return resolved !== ".." && !resolved.startsWith("../") && !posix.isAbsolute(resolved);
}

/** A relative path for messages (`.` for the root). */
export const shown = (rel: string[]) => rel.join("/") || ".";

/** Runs `fn` over `items`, at most `limit` at once; the first failure stops the rest. */
export async function pool<T>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      try {
        await fn(items[next++]!);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** A mid-copy failure: aborts pass through, SFTP statuses and local errors get explained. */
export function failed(
  sftp: SFTPWrapper,
  action: string,
  from: string,
  to: string,
  err: unknown,
  signal?: AbortSignal,
): unknown {
  if (signal?.aborted) return err;
  let dropped = false;
  try {
    assertOpen(sftp);
  } catch {
    dropped = true;
  }
  if (dropped) {
    return new RsmError(
      "CONNECTION_LOST",
      `Cannot ${action} ${from} to ${to}: the connection dropped mid-transfer ` +
        `(${errorMessage(err)}); nothing was written under the final name` +
        (action === "upload" ? " (a hidden .rsm-part temp file may remain next to it)" : "") +
        `; check ssh_info, use ssh_reconnect, then retry`,
      { cause: err },
    );
  }
  if (err instanceof RsmError) return err;
  if (sftpCode(err) !== undefined) return sftpError(action, from, err);
  return new RsmError(
    "TRANSFER_FAILED",
    `Cannot ${action} ${from} to ${to}: ${errorMessage(err)}; nothing was left under the ` +
      `final name; check the connection (ssh_info) and local disk space, then retry`,
    { cause: err },
  );
}

// ---------------------------------------------------------------- planning

/** Walks a local tree (no symlink followed) into items; odd entries are tallied as skipped. */
export async function planLocal(root: string, tally: Tally, signal?: AbortSignal): Promise<Item[]> {
  const items: Item[] = [];
  const walk = async (path: string, rel: string[]) => {
    signal?.throwIfAborted();
    const names: string[] = [];
    for await (const e of Deno.readDir(path)) names.push(e.name);
    names.sort();
    for (const name of names) {
      const r = [...rel, name];
      const p = join(path, name);
      const st = await Deno.lstat(p);
      const mode = (st.mode ?? 0o644) & 0o7777;
      const mtime = Math.floor((st.mtime?.getTime() ?? Date.now()) / 1000);
      if (st.isSymlink) {
        const target = await Deno.readLink(p);
        if (linkStaysInside(r, target)) {
          items.push({ rel: r, kind: "symlink", mode, size: 0, mtime, target });
        } else tally.skip(`${shown(r)} -> ${target} (symlink pointing outside the tree)`);
      } else if (st.isDirectory) {
        items.push({ rel: r, kind: "dir", mode, size: 0, mtime });
        await walk(p, r);
      } else if (st.isFile) {
        items.push({ rel: r, kind: "file", mode, size: st.size, mtime });
        tally.total += st.size;
      } else tally.skip(`${shown(r)} (not a regular file, directory or symlink)`);
    }
  };
  await walk(root, []);
  return items;
}

/** Walks a remote tree over SFTP like {@link planLocal}; unsafe names from the server are skipped. */
export async function planRemote(
  sftp: SFTPWrapper,
  root: string,
  tally: Tally,
  signal?: AbortSignal,
): Promise<Item[]> {
  const items: Item[] = [];
  const walk = async (path: string, rel: string[]) => {
    signal?.throwIfAborted();
    let list;
    try {
      list = await ops.readdir(sftp, path);
    } catch (err) {
      throw sftpError("list", path, err);
    }
    list.sort((a, b) => (a.filename < b.filename ? -1 : a.filename > b.filename ? 1 : 0));
    for (const e of list) {
      const r = [...rel, e.filename];
      if (!safeName(e.filename)) {
        tally.skip(`${JSON.stringify(e.filename)} (unsafe name from the server)`);
        continue;
      }
      const a = e.attrs;
      const mode = (a.mode ?? 0o644) & 0o7777;
      const type = fileType(a);
      const p = rjoin(path, e.filename);
      if (type === "symlink") {
        const target = await readlink(sftp, p).catch(() => "");
        if (linkStaysInside(r, target)) {
          items.push({ rel: r, kind: "symlink", mode, size: 0, mtime: a.mtime, target });
        } else tally.skip(`${shown(r)} -> ${target} (symlink pointing outside the tree)`);
      } else if (type === "dir") {
        items.push({ rel: r, kind: "dir", mode, size: 0, mtime: a.mtime });
        await walk(p, r);
      } else if (type === "file") {
        items.push({ rel: r, kind: "file", mode, size: a.size, mtime: a.mtime });
        tally.total += a.size;
      } else tally.skip(`${shown(r)} (not a regular file, directory or symlink)`);
    }
  };
  await walk(root, []);
  return items;
}

/** Drops items under a skipped directory. */
export function under(items: Item[], blocked: Set<string>): Item[] {
  if (!blocked.size) return items;
  return items.filter((it) => {
    for (let i = 1; i < it.rel.length; i++) {
      if (blocked.has(it.rel.slice(0, i).join("/"))) return false;
    }
    return true;
  });
}

/** A hidden temp name beside `name` for write-then-rename. */
export function tempName(name: string): string {
  return `.${name.slice(0, 80)}.${randomTag()}.rsm-part`;
}
