/** SSH: sessions, exec, forwards, SFTP. The tool layer imports through this file only. */
export { SshManager } from "./manager.ts";
export type { SessionDetails, SessionSummary, SshManagerOptions } from "./manager.ts";
export { BACKOFF_S, SshSession } from "./session.ts";
export type { SessionState } from "./session.ts";
export type { AuthSpec, HopSpec, HostKeyPolicy, SessionSpec } from "./spec.ts";
export { parseAddress } from "./spec.ts";
export { execCommand, killGroup, shellQuote, signalGroup } from "./exec.ts";
export type { ExecOptions, ExecResult } from "./exec.ts";
export { ForwardManager, type ForwardManagerOptions } from "./forwards.ts";
export { sshShellBackend } from "./shell/backend.ts";
export type { ShellSession, SshShellOptions } from "./shell/backend.ts";
export type { ForwardInfo } from "./forwards.ts";
export {
  chmodPath,
  listDir,
  makeDir,
  MAX_READ_BYTES,
  readRange,
  removePath,
  renamePath,
  statPath,
  writeData,
} from "./sftp.ts";
export type { FileEntry, ReadRange } from "./sftp.ts";
export { parseMode } from "./sftp_util.ts";
export { download, upload } from "./transfer.ts";
export type { TransferOptions, TransferResult } from "./transfer.ts";
export { connectMany, execMany, selectSessions, targetsFromConfig } from "./fleet.ts";
export type { ConnectOutcome, ExecOutcome, FleetTarget } from "./fleet.ts";
export {
  type ClientSource,
  durableKind,
  type DurableRecord,
  followDetached,
  removeDetached,
  startDetached,
} from "./durable.ts";
export { compareHashes, HASH_ALGORITHMS, localSha256, remoteHash, remoteSha256 } from "./verify.ts";
