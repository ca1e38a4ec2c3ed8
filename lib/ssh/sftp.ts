/**
 * File operations over SFTP (README "Files (SFTP)"): list, stat/lstat, text read by byte range, write
 * (append, mode), delete (recursive), mkdir (recursive), chmod, rename (overwrite). Every
 * failure is an {@link RsmError} that names the path, says why and what to try.
 * Knows nothing of MCP; the tool layer bounds and renders the results.
 */
import { Buffer } from "node:buffer";
import { posix } from "node:path";
import type { Attributes, SFTPWrapper } from "ssh2";
import { RsmError } from "../errors.ts";
import { nextBoundary, prevBoundary } from "../output/mod.ts";
import {
  close,
  fileType,
  hasPosixRename,
  isoTime,
  lstat,
  lstatOrNull,
  modeString,
  octal,
  open,
  ops,
  readAt,
  readlink,
  remotePath,
  rjoin,
  SFTP_STATUS,
  sftpCode,
  sftpError,
  stat,
  writeAt,
} from "./sftp_util.ts";

/** One file as the tools show it. */
export interface FileEntry {
  /** Entry name (list) or the path asked for (stat). */
  name: string;
  /** Size in bytes. */
  size: number;
  /** `ls -l` style: `-rw-r--r--`, `drwxr-xr-x`, `lrwxrwxrwx`. */
  mode: string;
  /** Permission bits in octal, as ssh_file_chmod takes them: `"0644"`. */
  perm: string;
  /** Last modification, ISO 8601 UTC. */
  mod_time: string;
  is_dir: boolean;
  /**
   * Where a symlink points (readlink). Only present for symlinks, except in a listing that
   * holds a symlink, where other rows get `""` so the rows stay one table.
   */
  target?: string | undefined;
}

/** The largest byte range one text read may cover (README "Files (SFTP)"). */
export const MAX_READ_BYTES = 64 * 1024 * 1024;

function entry(name: string, attrs: Attributes, target?: string): FileEntry {
  return {
    name,
    size: attrs.size ?? 0,
    mode: modeString(attrs.mode ?? 0),
    perm: octal(attrs.mode ?? 0),
    mod_time: isoTime(attrs.mtime),
    is_dir: fileType(attrs) === "dir",
    ...(target !== undefined ? { target } : {}),
  };
}

/**
 * Explains an SFTP FAILURE (a generic status) by looking at what is at `path`: a directory
 * where a file was expected, a file where a directory was expected, or the raw error.
 */
async function refine(
  sftp: SFTPWrapper,
  action: string,
  path: string,
  err: unknown,
  expect: "file" | "dir" | "absent",
): Promise<RsmError> {
  const code = sftpCode(err);
  if (code === SFTP_STATUS.FAILURE || code === SFTP_STATUS.NO_SUCH_FILE) {
    const st = await lstatOrNull(sftp, path).catch(() => null);
    if (st && expect === "file" && fileType(st) === "dir") {
      return new RsmError(
        "IS_A_DIRECTORY",
        `Cannot ${action} ${path}: it is a directory, not a file; use ssh_file_list to see ` +
          `its entries, or ssh_download for the whole tree`,
      );
    }
    if (st && expect === "dir" && fileType(st) !== "dir") {
      return new RsmError(
        "NOT_A_DIRECTORY",
        `Cannot ${action} ${path}: it is a ${fileType(st)}, not a directory; use ssh_file_stat`,
      );
    }
    if (st && expect === "absent" && code === SFTP_STATUS.FAILURE) {
      return new RsmError(
        "ALREADY_EXISTS",
        `Cannot ${action} ${path}: it already exists (${modeString(st.mode)})`,
      );
    }
  }
  return sftpError(action, path, err);
}

/** Runs `fn` over `items` with at most `limit` at once. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++] as T); // next < length: in range
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Lists a directory (symlinks are not followed; `target` says where they point). */
export async function listDir(sftp: SFTPWrapper, path: string): Promise<FileEntry[]> {
  const p = remotePath(path);
  let list;
  try {
    list = await ops.readdir(sftp, p);
  } catch (err) {
    throw await refine(sftp, "list", path, err, "dir");
  }
  const out = list.map((e) => ({ e, target: undefined as string | undefined }));
  await pool(out.filter((x) => fileType(x.e.attrs) === "symlink"), 16, async (x) => {
    x.target = await readlink(sftp, rjoin(p, x.e.filename)).catch(() => "");
  });
  // when any row has a target, every row gets one ("" if not a link): one uniform table
  const links = out.some((x) => x.target !== undefined);
  return out.map(({ e, target }) => entry(e.filename, e.attrs, links ? target ?? "" : undefined))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** stat (follows symlinks) or lstat (the link itself, with `target`). */
export async function statPath(
  sftp: SFTPWrapper,
  path: string,
  options: { lstat?: boolean | undefined } = {},
): Promise<FileEntry> {
  const p = remotePath(path);
  try {
    const attrs = options.lstat ? await lstat(sftp, p) : await stat(sftp, p);
    const target = fileType(attrs) === "symlink" ? await readlink(sftp, p) : undefined;
    // `name` is the base name, as in a listing (the path is what the caller gave)
    const base = p.replace(/\/+$/, "").split("/").pop() || p;
    return entry(base, attrs, target);
  } catch (err) {
    throw sftpError(options.lstat ? "lstat" : "stat", path, err);
  }
}

/** What {@link readRange} returns. */
export interface ReadRange {
  /** Where the returned bytes start (moved past a split UTF-8 character, if any). */
  offset: number;
  /** Whole UTF-8 characters, valid text, no NUL. */
  bytes: Uint8Array;
  /** The file's size when it was read. */
  size: number;
}

/**
 * Reads up to `length` bytes of a text file from `offset`, cut at a UTF-8 character boundary.
 * A file holding NUL bytes or invalid UTF-8 is an error (BINARY_FILE) pointing to ssh_download.
 */
export async function readRange(
  sftp: SFTPWrapper,
  path: string,
  options: { offset?: number | undefined; length: number },
): Promise<ReadRange> {
  const p = remotePath(path);
  const offset = options.offset ?? 0;
  const length = Math.min(options.length, MAX_READ_BYTES);
  let handle: Uint8Array;
  try {
    handle = await open(sftp, p, "r");
  } catch (err) {
    throw await refine(sftp, "read", path, err, "file");
  }
  try {
    const attrs = await ops.fstat(sftp, handle);
    if (fileType(attrs) === "dir") throw await refine(sftp, "read", path, { code: 4 }, "file");
    const want = Math.max(0, Math.min(length + 4, attrs.size - offset + 4));
    const buf = Buffer.alloc(want);
    let got = 0;
    while (got < want) {
      const n = await readAt(sftp, handle, buf, got, want - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    const atEof = got < want;
    let data = buf.subarray(0, got);
    const start = offset > 0 ? nextBoundary(data, 0) : 0;
    data = data.subarray(start);
    const end = Math.min(data.length, length);
    data = data.subarray(0, atEof && end === data.length ? end : prevBoundary(data, end));
    if (data.includes(0) || !validUtf8(data)) {
      throw new RsmError(
        "BINARY_FILE",
        `Cannot read ${path} as text: it holds binary data (NUL bytes or invalid UTF-8` +
          ` near offset ${offset + start}); use ssh_download to copy it to a local file`,
      );
    }
    return { offset: offset + start, bytes: data, size: attrs.size };
  } catch (err) {
    throw sftpError("read", path, err);
  } finally {
    await close(sftp, handle, true);
  }
}

function validUtf8(bytes: Uint8Array): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** Writes `data` to a file (created if missing), or appends; `mode` sets the permission bits. */
export async function writeData(
  sftp: SFTPWrapper,
  path: string,
  data: Uint8Array,
  options: { append?: boolean | undefined; mode?: number | undefined } = {},
): Promise<number> {
  const p = remotePath(path);
  let handle: Uint8Array;
  try {
    handle = await open(
      sftp,
      p,
      options.append ? "a" : "w",
      options.mode !== undefined ? { mode: options.mode } : {},
    );
  } catch (err) {
    throw await refine(sftp, "write", path, err, "file");
  }
  try {
    let pos = 0;
    if (options.append) pos = (await ops.fstat(sftp, handle)).size ?? 0;
    if (data.length) {
      const buf = Buffer.from(data.buffer, data.byteOffset, data.length);
      await writeAt(sftp, handle, buf, 0, data.length, pos);
    }
    if (options.mode !== undefined) await ops.fsetstat(sftp, handle, { mode: options.mode });
    await close(sftp, handle);
    return data.length;
  } catch (err) {
    await close(sftp, handle, true);
    throw sftpError("write", path, err);
  }
}

function refuseRoot(action: string, path: string): void {
  const n = posix.normalize(path).replace(/(.)\/+$/, "$1");
  if (n === "/" || n === "." || n === ".." || n === "~" || n === "./" || n === "../") {
    throw new RsmError(
      "BAD_ARGUMENT",
      `Cannot ${action} ${path}: refusing to touch the root or the start directory; ` +
        `name a path below it`,
    );
  }
}

/**
 * Deletes a file, a symlink (never its target) or an empty directory; with `recursive`, a
 * whole tree (symlinks inside are removed, not followed). Returns the number of entries removed.
 */
export async function removePath(
  sftp: SFTPWrapper,
  path: string,
  options: { recursive?: boolean | undefined; signal?: AbortSignal | undefined } = {},
): Promise<number> {
  refuseRoot("delete", path);
  const p = remotePath(path);
  let st;
  try {
    st = await lstat(sftp, p);
  } catch (err) {
    throw sftpError("delete", path, err);
  }
  if (fileType(st) !== "dir") {
    await ops.unlink(sftp, p).catch((err) => {
      throw sftpError("delete", path, err);
    });
    return 1;
  }
  if (!options.recursive) {
    try {
      await ops.rmdir(sftp, p);
      return 1;
    } catch (err) {
      if (sftpCode(err) === SFTP_STATUS.FAILURE) {
        const n = (await ops.readdir(sftp, p).catch(() => [])).length;
        if (n > 0) {
          throw new RsmError(
            "NOT_EMPTY",
            `Cannot delete ${path}: the directory is not empty (${n} entries); pass ` +
              `recursive: true to delete the whole tree`,
          );
        }
      }
      throw sftpError("delete", path, err);
    }
  }
  return await removeTree(sftp, p, path, options.signal);
}

async function removeTree(
  sftp: SFTPWrapper,
  p: string,
  shown: string,
  signal?: AbortSignal,
): Promise<number> {
  signal?.throwIfAborted();
  let list;
  try {
    list = await ops.readdir(sftp, p);
  } catch (err) {
    throw sftpError("delete", shown, err);
  }
  let count = 0;
  const files = list.filter((e) => fileType(e.attrs) !== "dir");
  const dirs = list.filter((e) => fileType(e.attrs) === "dir");
  await pool(files, 32, async (e) => {
    signal?.throwIfAborted();
    const child = rjoin(p, e.filename);
    await ops.unlink(sftp, child).catch((err) => {
      throw sftpError("delete", child, err);
    });
    count++;
  });
  for (const d of dirs) {
    const child = rjoin(p, d.filename);
    count += await removeTree(sftp, child, child, signal);
  }
  await ops.rmdir(sftp, p).catch((err) => {
    throw sftpError("delete", shown, err);
  });
  return count + 1;
}

/** Creates a directory; `recursive` creates missing parents and accepts an existing one. */
export async function makeDir(
  sftp: SFTPWrapper,
  path: string,
  options: { recursive?: boolean | undefined; mode?: number | undefined } = {},
): Promise<void> {
  const p = remotePath(path);
  const attrs = options.mode !== undefined ? { mode: options.mode } : {};
  try {
    await ops.mkdir(sftp, p, attrs);
    return;
  } catch (err) {
    const code = sftpCode(err);
    if (options.recursive && code === SFTP_STATUS.NO_SUCH_FILE) {
      const parent = posix.dirname(p);
      if (parent !== p) {
        await makeDir(sftp, parent, { recursive: true });
        try {
          await ops.mkdir(sftp, p, attrs);
          return;
        } catch (err2) {
          throw await refine(sftp, "create directory", path, err2, "absent");
        }
      }
    }
    if (options.recursive && code === SFTP_STATUS.FAILURE) {
      const st = await stat(sftp, p).catch(() => null);
      if (st && fileType(st) === "dir") return;
    }
    if (code === SFTP_STATUS.NO_SUCH_FILE) {
      throw sftpError(
        "create directory",
        path,
        err,
        "its parent directory does not exist; pass recursive: true to create parents",
      );
    }
    throw await refine(sftp, "create directory", path, err, "absent");
  }
}

/** Sets the permission bits of `path` (follows symlinks, like chmod(1)). */
export async function chmodPath(sftp: SFTPWrapper, path: string, mode: number): Promise<void> {
  try {
    await ops.setstat(sftp, remotePath(path), { mode });
  } catch (err) {
    throw sftpError("chmod", path, err);
  }
}

/**
 * Renames `from` to `to`. An existing `to` is an error unless `overwrite`, which replaces it
 * atomically with `posix-rename@openssh.com` when the server has it (else remove, then rename).
 */
export async function renamePath(
  sftp: SFTPWrapper,
  from: string,
  to: string,
  options: { overwrite?: boolean | undefined } = {},
): Promise<void> {
  const a = remotePath(from);
  const b = remotePath(to);
  try {
    await lstat(sftp, a);
  } catch (err) {
    throw sftpError("rename", from, err);
  }
  const existing = await lstatOrNull(sftp, b).catch(() => null);
  if (existing && !options.overwrite) {
    throw new RsmError(
      "ALREADY_EXISTS",
      `Cannot rename ${from} to ${to}: ${to} already exists (${modeString(existing.mode)}); ` +
        `pass overwrite: true to replace it`,
    );
  }
  try {
    if (existing && hasPosixRename(sftp)) await ops.posixRename(sftp, a, b);
    else {
      if (existing && fileType(existing) !== "dir") await ops.unlink(sftp, b);
      else if (existing) await ops.rmdir(sftp, b);
      await ops.rename(sftp, a, b);
    }
  } catch (err) {
    if (existing && fileType(existing) === "dir" && sftpCode(err) === SFTP_STATUS.FAILURE) {
      throw new RsmError(
        "NOT_EMPTY",
        `Cannot rename ${from} to ${to}: ${to} is a directory that is not empty (or ${from} ` +
          `is not a directory); delete it first with ssh_file_delete`,
      );
    }
    throw sftpError("rename", `${from} to ${to}`, err);
  }
}
