/** SSH: sessions, exec, forwards, SFTP. The tool layer imports through this file only. */
export { SshManager } from "./manager.ts";
export type { SessionRow } from "./manager.ts";
export { ForwardManager } from "./forwards.ts";
export type { ForwardInfo } from "./forwards.ts";
