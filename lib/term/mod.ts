/** The terminal engine and the shell manager over registered backends (lib/term/backend.ts). */
export { ShellManager } from "./manager.ts";
export type {
  OpenShellOptions,
  ShellInfo,
  ShellManagerOptions,
  ShellRef,
  ShellStore,
} from "./manager.ts";
export { ShellBackends } from "./backend.ts";
export type {
  BackendShell,
  OpenFields,
  OpenRequest,
  ShellBackend,
  ShellControl,
  ShellToolFlavour,
} from "./backend.ts";
export type { Shell } from "./shell.ts";
export { looksLikeShell } from "./integration.ts";
export { PtyEvents } from "./pty.ts";
export type { PtyOpener, PtyOpenOptions, PtyStream } from "./pty.ts";
export { PERSON_QUIET_MS, PERSON_WAIT_MS, ShellWatch } from "./watch.ts";
