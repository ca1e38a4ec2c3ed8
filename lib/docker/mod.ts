/** Docker hosts, containers, images, exec, run, copy. */
export { DockerManager } from "./manager.ts";
export type { HostRow } from "./manager.ts";
