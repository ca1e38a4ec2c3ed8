/** The terminal engine shared by SSH and Docker shells. */
export { ShellManager } from "./manager.ts";
export type { ShellInfo } from "./manager.ts";
