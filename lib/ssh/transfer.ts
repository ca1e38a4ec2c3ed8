/**
 * `ssh_upload` / `ssh_download` (README "Files (SFTP)"): a file or a directory tree between this machine
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
import { getFile, putFile } from "./sftp_stream.ts";
import {
  close,
  fileType,
  hasPosixRename,
  lstatOrNull,
  open,
  ops,
  remotePath,
  rjoin,
  SFTP_STATUS,
  sftpCode,
  sftpError,
  stat,
} from "./sftp_util.ts";
import {
  failed,
  type Item,
  planLocal,
  planRemote,
  pool,
  shown,
  Tally,
  tempName,
  type TransferOptions,
  type TransferResult,
  under,
} from "./sftp_plan.ts";

export type { TransferOptions, TransferResult } from "./sftp_plan.ts";

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
      throw new RsmError("BAD_ARGUMENT", `Cannot upload ${localPath}: not a regular file`);
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
  const items = await planLocal(localPath, tally, signal);
  const dirModes: [string, number][] = [];
  if (!existing) {
    await ensureParent();
    await ops.mkdir(sftp, dest, { mode: 0o700 }).catch((err) => {
      throw sftpError("create directory", remote, err);
    });
    dirModes.push([dest, (top.mode ?? 0o755) & 0o7777]); // existing directories keep theirs
  }
  await writeTree(remoteSide(sftp), dest, items, dirModes, tally, options, (it) =>
    putOne(
      sftp,
      join(localPath, ...it.rel),
      rjoin(dest, ...it.rel),
      it,
      tally,
      options,
      progress,
    ));
  progress("done");
  return tally.result();
}

/**
 * The side a transfer writes to: the SFTP server (upload) or this machine (download). The tree
 * is written the same way on both; only these steps and the wording differ.
 */
interface WriteSide {
  join(dir: string, rel: string[]): string;
  /**
   * Makes the directory `p` (mode 0700; its real mode goes on last). "made", or the kind of
   * what is already there ("dir" is an existing directory, kept as it is).
   */
  makeDir(p: string): Promise<"made" | "dir" | "file" | "symlink" | string>;
  /** The kind of what is at `p`, without following a symlink, or null. */
  kindAt(p: string): Promise<string | null>;
  remove(p: string): Promise<void>;
  symlink(target: string, p: string): Promise<void>;
  setMode(p: string, mode: number): Promise<void>;
  /** "a file exists there on the remote side" / "a local file exists there". */
  there(kind: string): string;
}

function remoteSide(sftp: SFTPWrapper): WriteSide {
  return {
    join: (dir, rel) => rjoin(dir, ...rel),
    makeDir: async (p) => {
      try {
        await ops.mkdir(sftp, p, { mode: 0o700 });
        return "made";
      } catch (err) {
        const st = await lstatOrNull(sftp, p).catch(() => null);
        if (!st) throw sftpError("create directory", p, err);
        return fileType(st);
      }
    },
    kindAt: async (p) => {
      const st = await lstatOrNull(sftp, p).catch(() => null);
      return st && fileType(st);
    },
    remove: (p) => ops.unlink(sftp, p).catch(() => {}),
    symlink: (target, p) =>
      ops.symlink(sftp, target, p).catch((err) => {
        throw sftpError("create symlink", p, err);
      }),
    setMode: (p, mode) => ops.setstat(sftp, p, { mode }),
    there: (kind) => `a ${kind} exists there on the remote side`,
  };
}

const localSide: WriteSide = {
  join: (dir, rel) => join(dir, ...rel),
  makeDir: async (p) => {
    const st = await localLstat(p);
    if (!st) {
      await Deno.mkdir(p, { mode: 0o700 });
      return "made";
    }
    return st.isSymlink ? "symlink" : st.isDirectory ? "dir" : "file";
  },
  kindAt: async (p) => {
    const st = await localLstat(p);
    return st && (st.isSymlink ? "symlink" : st.isDirectory ? "dir" : "file");
  },
  remove: (p) => Deno.remove(p),
  symlink: (target, p) => Deno.symlink(target, p),
  setMode: (p, mode) => Deno.chmod(p, mode),
  there: (kind) => `a local ${kind} exists there`,
};

/**
 * Writes a planned tree under `dest` (which exists): directories first in tree order (a clash
 * blocks its subtree), then files through `putFile` (a few at a time), then symlinks, then the
 * directories' real modes, deepest first. A mode that cannot be set is reported in the result.
 */
async function writeTree(
  side: WriteSide,
  dest: string,
  planned: Item[],
  dirModes: [string, number][],
  tally: Tally,
  options: TransferOptions,
  putFile: (it: Item) => Promise<void>,
): Promise<void> {
  tally.dirs++;
  const blocked = new Set<string>();
  for (const it of planned.filter((i) => i.kind === "dir")) {
    if ([...blocked].some((b) => it.rel.join("/").startsWith(b + "/"))) continue;
    options.signal?.throwIfAborted();
    const p = side.join(dest, it.rel);
    const made = await side.makeDir(p);
    if (made === "made") dirModes.push([p, it.mode]);
    else if (made !== "dir") {
      blocked.add(it.rel.join("/"));
      tally.skip(`${shown(it.rel)}/ (${side.there(made)}; not followed)`);
      continue;
    }
    tally.dirs++;
  }
  const items = under(planned, blocked);
  await pool(items.filter((i) => i.kind === "file"), options.parallelFiles ?? 8, putFile);
  for (const it of items.filter((i) => i.kind === "symlink")) {
    const p = side.join(dest, it.rel);
    const kind = await side.kindAt(p);
    if (kind === "dir") {
      tally.skip(`${shown(it.rel)} (${side.there("directory")})`);
      continue;
    }
    if (kind) await side.remove(p);
    await side.symlink(it.target!, p);
    tally.files++;
  }
  // Directories were made 0700 so nothing lands in a world-readable one early; their real
  // modes go on last. A failure (a server that refuses setstat) is reported in the result.
  for (const [p, mode] of dirModes.reverse()) {
    await side.setMode(p, mode).catch((err) => {
      tally.modeErrors.push(`${p}: mode ${octal(mode)} not set (${errorMessage(err)})`);
    });
  }
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
      throw new RsmError("BAD_ARGUMENT", `Cannot download ${remote}: not a regular file`);
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
  const items = await planRemote(sftp, src, tally, signal);
  const dirModes: [string, number][] = [];
  if (!existing) {
    await mkParent();
    await Deno.mkdir(dest, { mode: 0o700 });
    dirModes.push([dest, top.mode & 0o7777]); // existing directories keep theirs
  }
  await writeTree(
    localSide,
    dest,
    items,
    dirModes,
    tally,
    options,
    (it) =>
      getOne(sftp, rjoin(src, ...it.rel), join(dest, ...it.rel), it, tally, options, progress),
  );
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

/** `0o755` → `"0755"`. */
function octal(mode: number): string {
  return mode.toString(8).padStart(4, "0");
}
