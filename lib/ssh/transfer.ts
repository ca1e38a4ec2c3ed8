/**
 * `ssh_upload` / `ssh_download` (SPEC §4.5): a file or a directory tree between this machine
 * and an SSH session, streamed over SFTP with pipelined requests (never whole files in
 * memory, never through an MCP message), permission bits and mtimes kept.
 *
 * The source "becomes" the destination path (like `cp -r src dest` when dest is new; an
 * existing destination directory is merged into, and existing directories keep their modes).
 * Traversal-proof:
 * - every name from a directory listing must be one plain component (no `/`, `..`, NUL);
 * - symlinks inside the tree are recreated only when their (relative) target stays inside the
 *   tree; others are skipped and reported; a symlinked directory is never descended into;
 * - on the writing side, an existing symlink (or file) where a directory is needed is not
 *   followed: that subtree is skipped and reported; files are written to a temp name with
 *   exclusive create and renamed over the final name, which replaces a symlink there instead
 *   of writing through it, and never leaves a partial file under the final name.
 */
import { dirname, join, posix } from "node:path";
import type { SFTPWrapper, Stats } from "ssh2";
import { errorMessage, RsmError } from "../errors.ts";
import { getFile, type PipeOptions, putFile } from "./sftp_stream.ts";
import {
  assertOpen,
  close,
  fileType,
  hasPosixRename,
  lstatOrNull,
  open,
  ops,
  randomTag,
  readlink,
  remotePath,
  rjoin,
  safeName,
  SFTP_STATUS,
  sftpCode,
  sftpError,
  stat,
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
  skipped?: string[];
}

/** Options of {@link upload} and {@link download}. */
export interface TransferOptions {
  signal?: AbortSignal;
  /** Called often (every chunk); throttle at the call site. */
  onProgress?: (done: number, total: number, current: string) => void;
  /** Files copied at once. Default 8. */
  parallelFiles?: number;
  /** Per-file pipelining (see sftp_stream.ts). */
  pipe?: Pick<PipeOptions, "chunkSize" | "concurrency">;
}

/** One entry of a tree to copy, relative to its root. */
interface Item {
  rel: string[];
  kind: "dir" | "file" | "symlink";
  mode: number;
  size: number;
  mtime: number;
  target?: string;
}

const MAX_SKIPPED = 100;

class Tally {
  bytes = 0;
  files = 0;
  dirs = 0;
  skipped: string[] = [];
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
    return r;
  }
}

/** Whether a relative symlink `target` at `rel` resolves inside the tree root. */
function linkStaysInside(rel: string[], target: string): boolean {
  if (!target || target.startsWith("/") || target.includes("\0")) return false;
  const resolved = posix.normalize(posix.join(...rel.slice(0, -1), target));
  return resolved !== ".." && !resolved.startsWith("../") && !posix.isAbsolute(resolved);
}

const shown = (rel: string[]) => rel.join("/") || ".";

async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      try {
        await fn(items[next++]);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** A mid-copy failure: aborts pass through, SFTP statuses and local errors get explained. */
function failed(
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

async function planLocal(root: string, tally: Tally, signal?: AbortSignal): Promise<Item[]> {
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

async function planRemote(
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
function under(items: Item[], blocked: Set<string>): Item[] {
  if (!blocked.size) return items;
  return items.filter((it) => {
    for (let i = 1; i < it.rel.length; i++) {
      if (blocked.has(it.rel.slice(0, i).join("/"))) return false;
    }
    return true;
  });
}

function tempName(name: string): string {
  return `.${name.slice(0, 80)}.${randomTag()}.rsm-part`;
}

// ---------------------------------------------------------------- upload

/** Uploads `localPath` (file or tree) so that it becomes `remotePath`. */
export async function upload(
  sftp: SFTPWrapper,
  localPath: string,
  remote: string,
  options: TransferOptions = {},
): Promise<TransferResult> {
  const signal = options.signal;
  const dest = remotePath(remote).replace(/(.)\/+$/, "$1");
  let top: Deno.FileInfo;
  try {
    top = await Deno.stat(localPath);
  } catch (err) {
    throw new RsmError(
      "NOT_FOUND",
      `Cannot upload ${localPath}: ${errorMessage(err)}; check the local path`,
    );
  }
  const tally = new Tally();
  const existing = await lstatOrNull(sftp, dest).then(
    async (st) => st && fileType(st) === "symlink" ? await stat(sftp, dest).catch(() => st) : st,
  ).catch((err) => {
    throw sftpError("upload to", remote, err);
  });
  const parent = posix.dirname(dest);
  const ensureParent = async () => {
    if (parent !== dest && !(await lstatOrNull(sftp, parent).catch(() => null))) {
      await mkdirs(sftp, parent, remote);
    }
  };
  const progress = (name: string) => options.onProgress?.(tally.bytes, tally.total, name);

  if (!top.isDirectory) {
    if (!top.isFile) {
      throw new RsmError("BAD_REQUEST", `Cannot upload ${localPath}: not a regular file`);
    }
    if (existing && fileType(existing) === "dir") {
      throw new RsmError(
        "IS_A_DIRECTORY",
        `Cannot upload ${localPath} to ${remote}: ${remote} is a directory, and the file would ` +
          `replace it; name the file itself, e.g. ${posix.join(remote, posix.basename(localPath))}`,
      );
    }
    tally.total = top.size;
    await ensureParent();
    const item: Item = {
      rel: [],
      kind: "file",
      mode: (top.mode ?? 0o644) & 0o7777,
      size: top.size,
      mtime: Math.floor((top.mtime?.getTime() ?? Date.now()) / 1000),
    };
    await putOne(sftp, localPath, dest, item, tally, options, progress);
    return tally.result();
  }

  if (existing && fileType(existing) !== "dir") {
    throw new RsmError(
      "NOT_A_DIRECTORY",
      `Cannot upload the directory ${localPath} to ${remote}: ${remote} exists and is not a ` +
        `directory; delete it first or choose another remote_path`,
    );
  }
  let items = await planLocal(localPath, tally, signal);
  const dirModes: [string, number][] = [];
  if (!existing) {
    await ensureParent();
    await ops.mkdir(sftp, dest, { mode: 0o700 }).catch((err) => {
      throw sftpError("create directory", remote, err);
    });
    dirModes.push([dest, (top.mode ?? 0o755) & 0o7777]); // existing directories keep theirs
  }
  tally.dirs++;
  // directories first, in tree order; a clash blocks its subtree
  const blocked = new Set<string>();
  for (const it of items.filter((i) => i.kind === "dir")) {
    if ([...blocked].some((b) => it.rel.join("/").startsWith(b + "/"))) continue;
    signal?.throwIfAborted();
    const p = rjoin(dest, ...it.rel);
    try {
      await ops.mkdir(sftp, p, { mode: 0o700 });
      dirModes.push([p, it.mode]);
    } catch (err) {
      const st = await lstatOrNull(sftp, p).catch(() => null);
      if (!st) throw sftpError("create directory", p, err);
      if (fileType(st) !== "dir") {
        blocked.add(it.rel.join("/"));
        tally.skip(
          `${shown(it.rel)}/ (a ${fileType(st)} exists there on the remote side; not followed)`,
        );
        continue;
      }
    }
    tally.dirs++;
  }
  items = under(items, blocked);
  await pool(
    items.filter((i) => i.kind === "file"),
    options.parallelFiles ?? 8,
    (it) =>
      putOne(
        sftp,
        join(localPath, ...it.rel),
        rjoin(dest, ...it.rel),
        it,
        tally,
        options,
        progress,
      ),
  );
  for (const it of items.filter((i) => i.kind === "symlink")) {
    const p = rjoin(dest, ...it.rel);
    const st = await lstatOrNull(sftp, p).catch(() => null);
    if (st && fileType(st) === "dir") {
      tally.skip(`${shown(it.rel)} (a directory exists there on the remote side)`);
      continue;
    }
    if (st) await ops.unlink(sftp, p).catch(() => {});
    await ops.symlink(sftp, it.target!, p).catch((err) => {
      throw sftpError("create symlink", p, err);
    });
    tally.files++;
  }
  for (const [p, mode] of dirModes.reverse()) {
    await ops.setstat(sftp, p, { mode }).catch(() => {});
  }
  progress("done");
  return tally.result();
}

async function mkdirs(sftp: SFTPWrapper, path: string, shownPath: string): Promise<void> {
  try {
    await ops.mkdir(sftp, path, { mode: 0o755 });
  } catch (err) {
    if (sftpCode(err) === SFTP_STATUS.NO_SUCH_FILE && posix.dirname(path) !== path) {
      await mkdirs(sftp, posix.dirname(path), shownPath);
      await ops.mkdir(sftp, path, { mode: 0o755 }).catch((e) => {
        throw sftpError("create directory", path, e);
      });
      return;
    }
    const st = await stat(sftp, path).catch(() => null);
    if (st && fileType(st) === "dir") return;
    throw sftpError("create the parent directory of", shownPath, err);
  }
}

async function putOne(
  sftp: SFTPWrapper,
  local: string,
  remote: string,
  it: Item,
  tally: Tally,
  options: TransferOptions,
  progress: (name: string) => void,
): Promise<void> {
  options.signal?.throwIfAborted();
  const temp = rjoin(posix.dirname(remote), tempName(posix.basename(remote)));
  let file: Deno.FsFile;
  try {
    file = await Deno.open(local, { read: true });
  } catch (err) {
    throw new RsmError("LOCAL_READ_FAILED", `Cannot read ${local}: ${errorMessage(err)}`);
  }
  let handle: Uint8Array | undefined;
  let done = false;
  try {
    try {
      handle = await open(sftp, temp, "wx", { mode: 0o600 });
    } catch (err) {
      throw sftpError("write", remote, err);
    }
    const name = shown(it.rel) === "." ? posix.basename(remote) : shown(it.rel);
    let bytes: number;
    try {
      bytes = await putFile(sftp, file, handle, {
        ...options.pipe,
        signal: options.signal,
        onBytes: (n) => {
          tally.bytes += n;
          progress(name);
        },
      });
    } catch (err) {
      throw failed(sftp, "upload", local, remote, err, options.signal);
    }
    await ops.fsetstat(sftp, handle, { mode: it.mode, atime: it.mtime, mtime: it.mtime })
      .catch(() => ops.fsetstat(sftp, handle!, { mode: it.mode }));
    const h = handle;
    handle = undefined;
    await close(sftp, h);
    try {
      await renameOver(sftp, temp, remote);
    } catch (err) {
      const st = await lstatOrNull(sftp, remote).catch(() => null);
      if (st && fileType(st) === "dir") {
        tally.skip(`${shown(it.rel)} (a directory exists there on the remote side)`);
        tally.bytes -= bytes;
        return;
      }
      throw sftpError("write", remote, err);
    }
    done = true;
    tally.files++;
  } finally {
    file.close();
    if (handle) await close(sftp, handle, true);
    if (!done) await ops.unlink(sftp, temp).catch(() => {});
  }
}

/** Renames `from` over `to`, replacing a file or symlink there (never following it). */
async function renameOver(sftp: SFTPWrapper, from: string, to: string): Promise<void> {
  if (hasPosixRename(sftp)) return await ops.posixRename(sftp, from, to);
  try {
    await ops.rename(sftp, from, to);
  } catch (err) {
    const st: Stats | null = await lstatOrNull(sftp, to).catch(() => null);
    if (!st || fileType(st) === "dir") throw err;
    await ops.unlink(sftp, to);
    await ops.rename(sftp, from, to);
  }
}

// ---------------------------------------------------------------- download

async function localLstat(p: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.lstat(p);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/** Downloads `remote` (file or tree) so that it becomes `localPath`. */
export async function download(
  sftp: SFTPWrapper,
  remote: string,
  localPath: string,
  options: TransferOptions = {},
): Promise<TransferResult> {
  const signal = options.signal;
  const src = remotePath(remote).replace(/(.)\/+$/, "$1");
  const dest = localPath.replace(/(.)\/+$/, "$1");
  let top: Stats;
  try {
    top = await stat(sftp, src);
  } catch (err) {
    throw sftpError("download", remote, err);
  }
  const tally = new Tally();
  const progress = (name: string) => options.onProgress?.(tally.bytes, tally.total, name);
  let existing: Deno.FileInfo | null = null;
  try {
    existing = await Deno.stat(dest);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      throw new RsmError("LOCAL_WRITE_FAILED", `Cannot write ${dest}: ${errorMessage(err)}`);
    }
  }
  const mkParent = () =>
    Deno.mkdir(dirname(dest), { recursive: true }).catch((err) => {
      throw new RsmError(
        "LOCAL_WRITE_FAILED",
        `Cannot create the local directory ${dirname(dest)}: ${errorMessage(err)}`,
      );
    });

  if (fileType(top) !== "dir") {
    if (fileType(top) !== "file") {
      throw new RsmError("BAD_REQUEST", `Cannot download ${remote}: not a regular file`);
    }
    if (existing?.isDirectory) {
      throw new RsmError(
        "IS_A_DIRECTORY",
        `Cannot download ${remote} to ${dest}: ${dest} is a directory, and the file would ` +
          `replace it; name the file itself, e.g. ${join(dest, posix.basename(src))}`,
      );
    }
    tally.total = top.size;
    await mkParent();
    const item: Item = {
      rel: [],
      kind: "file",
      mode: top.mode & 0o7777,
      size: top.size,
      mtime: top.mtime,
    };
    await getOne(sftp, src, dest, item, tally, options, progress);
    return tally.result();
  }

  if (existing && !existing.isDirectory) {
    throw new RsmError(
      "NOT_A_DIRECTORY",
      `Cannot download the directory ${remote} to ${dest}: ${dest} exists and is not a ` +
        `directory; delete it first or choose another local_path`,
    );
  }
  let items = await planRemote(sftp, src, tally, signal);
  const dirModes: [string, number][] = [];
  if (!existing) {
    await mkParent();
    await Deno.mkdir(dest, { mode: 0o700 });
    dirModes.push([dest, top.mode & 0o7777]); // existing directories keep theirs
  }
  tally.dirs++;
  const blocked = new Set<string>();
  for (const it of items.filter((i) => i.kind === "dir")) {
    if ([...blocked].some((b) => it.rel.join("/").startsWith(b + "/"))) continue;
    signal?.throwIfAborted();
    const p = join(dest, ...it.rel);
    const st = await localLstat(p);
    if (st && !(st.isDirectory && !st.isSymlink)) {
      blocked.add(it.rel.join("/"));
      tally.skip(
        `${shown(it.rel)}/ (a local ${st.isSymlink ? "symlink" : "file"} exists there; ` +
          `not followed)`,
      );
      continue;
    }
    if (!st) {
      await Deno.mkdir(p, { mode: 0o700 });
      dirModes.push([p, it.mode]);
    }
    tally.dirs++;
  }
  items = under(items, blocked);
  await pool(
    items.filter((i) => i.kind === "file"),
    options.parallelFiles ?? 8,
    (it) =>
      getOne(sftp, rjoin(src, ...it.rel), join(dest, ...it.rel), it, tally, options, progress),
  );
  for (const it of items.filter((i) => i.kind === "symlink")) {
    const p = join(dest, ...it.rel);
    const st = await localLstat(p);
    if (st?.isDirectory) {
      tally.skip(`${shown(it.rel)} (a local directory exists there)`);
      continue;
    }
    if (st) await Deno.remove(p);
    await Deno.symlink(it.target!, p);
    tally.files++;
  }
  for (const [p, mode] of dirModes.reverse()) await Deno.chmod(p, mode).catch(() => {});
  progress("done");
  return tally.result();
}

async function getOne(
  sftp: SFTPWrapper,
  remote: string,
  local: string,
  it: Item,
  tally: Tally,
  options: TransferOptions,
  progress: (name: string) => void,
): Promise<void> {
  options.signal?.throwIfAborted();
  const temp = join(dirname(local), tempName(posix.basename(local)));
  let handle: Uint8Array;
  try {
    handle = await open(sftp, remote, "r");
  } catch (err) {
    throw sftpError("download", remote, err);
  }
  let file: Deno.FsFile | undefined;
  let done = false;
  try {
    try {
      // createNew = O_EXCL: never follows a symlink planted at the temp name
      file = await Deno.open(temp, { write: true, createNew: true, mode: 0o600 });
    } catch (err) {
      throw new RsmError("LOCAL_WRITE_FAILED", `Cannot write ${local}: ${errorMessage(err)}`);
    }
    const name = shown(it.rel) === "." ? posix.basename(remote) : shown(it.rel);
    let bytes: number;
    try {
      bytes = await getFile(sftp, handle, file, it.size, {
        ...options.pipe,
        signal: options.signal,
        onBytes: (n) => {
          tally.bytes += n;
          progress(name);
        },
      });
    } catch (err) {
      throw failed(sftp, "download", remote, local, err, options.signal);
    }
    file.close();
    file = undefined;
    await Deno.chmod(temp, it.mode);
    await Deno.utime(temp, it.mtime, it.mtime).catch(() => {});
    const st = await localLstat(local);
    if (st?.isDirectory && !st.isSymlink) {
      tally.skip(`${shown(it.rel)} (a local directory exists there)`);
      tally.bytes -= bytes;
      return;
    }
    await Deno.rename(temp, local); // replaces a symlink at `local`, never writes through it
    done = true;
    tally.files++;
  } finally {
    try {
      file?.close();
    } catch { /* closed */ }
    await close(sftp, handle, true);
    if (!done) await Deno.remove(temp).catch(() => {});
  }
}
