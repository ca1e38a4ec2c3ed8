/**
 * Small SFTP helpers shared by the file operations and the transfers: promise wrappers
 * around ssh2's callback API, error translation into {@link RsmError}s that name the path and
 * say what to try, mode strings, octal mode parsing and remote path joining.
 */
import { posix } from "node:path";
import type { Attributes, InputAttributes, SFTPWrapper, Stats } from "ssh2";
import { type ErrorCode, RsmError } from "../errors.ts";
import { randomHex } from "../random.ts";

/** SFTP status codes (draft-ietf-secsh-filexfer-02). */
export const SFTP_STATUS = {
  EOF: 1,
  NO_SUCH_FILE: 2,
  PERMISSION_DENIED: 3,
  FAILURE: 4,
  OP_UNSUPPORTED: 8,
} as const;

/** File type bits of `st_mode`. */
export const S_IFMT = 0o170000;
/** Directory. */
export const S_IFDIR = 0o040000;
/** Regular file. */
export const S_IFREG = 0o100000;
/** Symbolic link. */
export const S_IFLNK = 0o120000;

/** The SFTP status code of an ssh2 error, if any. */
export function sftpCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown | undefined })?.code;
  return typeof code === "number" ? code : undefined;
}

/**
 * An {@link RsmError} for a failed SFTP call: `Cannot <action> <path>: <why>; <what to try>`.
 * `hint` replaces the default advice.
 */
export function sftpError(action: string, path: string, err: unknown, hint?: string): RsmError {
  if (err instanceof RsmError) return err;
  const code = sftpCode(err);
  const raw = (err as Error)?.message ?? String(err);
  let rsmCode: ErrorCode = "SFTP_FAILED";
  let why = raw;
  let tip = hint ?? "check the path with ssh_file_stat or ssh_file_list";
  if (code === SFTP_STATUS.NO_SUCH_FILE) {
    rsmCode = "NOT_FOUND";
    why = "no such file or directory";
    tip = hint ?? "check the path with ssh_file_list on its parent directory";
  } else if (code === SFTP_STATUS.PERMISSION_DENIED) {
    rsmCode = "PERMISSION_DENIED";
    why = "permission denied";
    tip = hint ??
      "the session's user lacks the rights; check ownership and modes with ssh_file_stat, " +
        "or use ssh_exec with sudo";
  } else if (code === SFTP_STATUS.OP_UNSUPPORTED) {
    rsmCode = "UNSUPPORTED";
    why = "the SFTP server does not support this operation";
  } else if (
    code === undefined && /No response from server|No SFTP|not connected|closed/i.test(raw)
  ) {
    rsmCode = "CONNECTION_LOST";
    tip = "the connection dropped; see ssh_info, then ssh_reconnect";
  }
  return new RsmError(rsmCode, `Cannot ${action} ${path}: ${why}; ${tip}`, { cause: err });
}

/**
 * Throws CONNECTION_LOST when the SFTP channel is no longer open: ssh2 silently drops a
 * request sent on a closed channel, and its callback would never run.
 */
export function assertOpen(sftp: SFTPWrapper): void {
  const ch = sftp as unknown as {
    outgoing?: { state?: string | undefined } | undefined;
    incoming?: { state?: string | undefined } | undefined;
    readable?: boolean | undefined;
  };
  // a dead connection marks only `incoming` closed (and ends `readable`) on SFTP channels
  const out = ch.outgoing?.state;
  if ((out !== undefined && out !== "open") || ch.incoming?.state === "closed" || !ch.readable) {
    throw new RsmError(
      "CONNECTION_LOST",
      "The SFTP channel is closed (the connection dropped); see ssh_info, then retry",
    );
  }
}

/** Wraps a callback-style call on `sftp` into a promise (rejects at once on a closed channel). */
export function cb<T>(
  sftp: SFTPWrapper,
  fn: (done: (err: Error | undefined | null, value?: T) => void) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    assertOpen(sftp);
    fn((err, value) => (err ? reject(err) : resolve(value as T)));
  });
}

/** `stat` (follows symlinks). */
export function stat(sftp: SFTPWrapper, path: string): Promise<Stats> {
  return cb<Stats>(sftp, (d) => sftp.stat(path, d));
}

/** `lstat` (the link itself). */
export function lstat(sftp: SFTPWrapper, path: string): Promise<Stats> {
  return cb<Stats>(sftp, (d) => sftp.lstat(path, d));
}

/** `lstat`, or null when the path does not exist. */
export async function lstatOrNull(sftp: SFTPWrapper, path: string): Promise<Stats | null> {
  try {
    return await lstat(sftp, path);
  } catch (err) {
    if (sftpCode(err) === SFTP_STATUS.NO_SUCH_FILE) return null;
    throw err;
  }
}

/** `readlink`. */
export function readlink(sftp: SFTPWrapper, path: string): Promise<string> {
  return cb<string>(sftp, (d) => sftp.readlink(path, d));
}

/** `open` returning the handle. */
export function open(
  sftp: SFTPWrapper,
  path: string,
  flags: Parameters<SFTPWrapper["open"]>[1],
  attrs: InputAttributes = {},
): Promise<Uint8Array> {
  return cb<Uint8Array>(sftp, (d) => sftp.open(path, flags, attrs, d as never));
}

/** `close` of a handle; errors ignored when `quiet`. */
export async function close(sftp: SFTPWrapper, handle: Uint8Array, quiet = false): Promise<void> {
  try {
    await cb<void>(sftp, (d) => sftp.close(handle as never, d));
  } catch (err) {
    if (!quiet) throw err;
  }
}

/** Reads up to `len` bytes at `pos` into `buf[off…]`; 0 means EOF. `buf` must be a Buffer. */
export function readAt(
  sftp: SFTPWrapper,
  handle: Uint8Array,
  buf: Uint8Array,
  off: number,
  len: number,
  pos: number,
): Promise<number> {
  return cb<number>(
    sftp,
    (d) => sftp.read(handle as never, buf as never, off, len, pos, (err, nb) => d(err, nb)),
  );
}

/** Writes `buf[off…off+len)` at `pos` (ssh2 splits large writes). `buf` must be a Buffer. */
export function writeAt(
  sftp: SFTPWrapper,
  handle: Uint8Array,
  buf: Uint8Array,
  off: number,
  len: number,
  pos: number,
): Promise<void> {
  return cb<void>(sftp, (d) => sftp.write(handle as never, buf as never, off, len, pos, d));
}

/** Promise wrapper for the remaining simple calls. */
export const ops = {
  fstat: (s: SFTPWrapper, h: Uint8Array) => cb<Stats>(s, (d) => s.fstat(h as never, d)),
  fsetstat: (s: SFTPWrapper, h: Uint8Array, a: InputAttributes) =>
    cb<void>(s, (d) => s.fsetstat(h as never, a, d)),
  setstat: (s: SFTPWrapper, p: string, a: InputAttributes) =>
    cb<void>(s, (d) => s.setstat(p, a, d)),
  unlink: (s: SFTPWrapper, p: string) => cb<void>(s, (d) => s.unlink(p, d)),
  rmdir: (s: SFTPWrapper, p: string) => cb<void>(s, (d) => s.rmdir(p, d)),
  mkdir: (s: SFTPWrapper, p: string, a: InputAttributes = {}) =>
    cb<void>(s, (d) => s.mkdir(p, a, d)),
  rename: (s: SFTPWrapper, a: string, b: string) => cb<void>(s, (d) => s.rename(a, b, d)),
  posixRename: (s: SFTPWrapper, a: string, b: string) =>
    cb<void>(s, (d) => s.ext_openssh_rename(a, b, d)),
  symlink: (s: SFTPWrapper, target: string, link: string) =>
    cb<void>(s, (d) => s.symlink(target, link, d)),
  readdir: (s: SFTPWrapper, p: string) =>
    cb<{ filename: string; longname: string; attrs: Stats }[]>(s, (d) => s.readdir(p, d)),
};

/** Whether the server offers `posix-rename@openssh.com` (atomic rename over an existing file). */
export function hasPosixRename(sftp: SFTPWrapper): boolean {
  const ext = (sftp as unknown as { _extensions?: Record<string, string> })._extensions;
  return !!ext && "posix-rename@openssh.com" in ext;
}

/** Type of an SFTP attrs object. */
export function fileType(attrs: Attributes): "dir" | "file" | "symlink" | "other" {
  const t = attrs.mode & S_IFMT;
  if (t === S_IFDIR) return "dir";
  if (t === S_IFREG) return "file";
  if (t === S_IFLNK) return "symlink";
  return "other";
}

/**
 * `ls -l` style mode string of a full `st_mode`, e.g. `-rw-r--r--`, `drwxr-xr-x`,
 * `lrwxrwxrwx`, with `s`/`S`/`t`/`T` for setuid, setgid and sticky.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(modeString(0o100644), "-rw-r--r--");
 * ```
 */
export function modeString(mode: number): string {
  const types: Record<number, string> = {
    [S_IFDIR]: "d",
    [S_IFREG]: "-",
    [S_IFLNK]: "l",
    0o020000: "c",
    0o060000: "b",
    0o010000: "p",
    0o140000: "s",
  };
  const t = types[mode & S_IFMT] ?? "?";
  const rwx = (bits: number, special: boolean, ch: string) => {
    const x = bits & 1;
    return (bits & 4 ? "r" : "-") + (bits & 2 ? "w" : "-") +
      (special ? (x ? ch : ch.toUpperCase()) : (x ? "x" : "-"));
  };
  return t + rwx((mode >> 6) & 7, !!(mode & 0o4000), "s") +
    rwx((mode >> 3) & 7, !!(mode & 0o2000), "s") + rwx(mode & 7, !!(mode & 0o1000), "t");
}

/** Permission bits as a 4-digit octal string, e.g. `"0755"`. */
export function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, "0");
}

/**
 * Parses an octal mode string: `"0755"`, `"755"`, `"0o755"`, `"4755"`, `"04755"`.
 * Throws BAD_MODE with a clear message otherwise (e.g. `"999"`, `"rwx"`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(parseMode("0o640"), 0o640);
 * ```
 */
export function parseMode(text: string): number {
  const s = text.trim();
  const m = /^(?:0o|0O)?([0-7]{1,5})$/.exec(s);
  const value = m ? parseInt(m[1]!, 8) : NaN;
  if (!m || value > 0o7777) {
    throw new RsmError(
      "BAD_MODE",
      `Cannot use mode "${text}": expected an octal permission string of up to 4 digits, ` +
        `each 0-7, like "0755", "755", "0o640" or "4755"`,
    );
  }
  return value;
}

/** Expands a leading `~/` (or a bare `~`) to the SFTP server's start directory (the home). */
export function remotePath(path: string): string {
  if (path === "~") return ".";
  if (path.startsWith("~/")) return path.slice(2) || ".";
  return path;
}

/** Joins remote path parts with `/`. */
export function rjoin(...parts: string[]): string {
  return posix.join(...parts);
}

/**
 * Whether `name` is a safe single path component from a directory listing: not empty, not
 * `.`/`..`, no `/`, no NUL. Anything else could make a transfer escape its destination.
 */
export function safeName(name: string): boolean {
  return name !== "" && name !== "." && name !== ".." && !name.includes("/") &&
    !name.includes("\0");
}

/** ISO 8601 time of SFTP seconds. */
export function isoTime(seconds: number | undefined): string {
  return new Date((seconds ?? 0) * 1000).toISOString().replace(".000Z", "Z");
}

/** A short random hex string for temp names. */
export function randomTag(): string {
  return randomHex(4);
}
