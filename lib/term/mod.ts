/** The terminal engine shared by SSH and Docker shells. */
export { ShellManager } from "./manager.ts";
export type { DockerShellOptions, ShellInfo, ShellKind, SshShellOptions } from "./manager.ts";
export { PtyEvents } from "./pty.ts";
export type { PtyOpener, PtyOpenOptions, PtyStream } from "./pty.ts";
export { PERSON_QUIET_MS, PERSON_WAIT_MS, ShellWatch } from "./watch.ts";
