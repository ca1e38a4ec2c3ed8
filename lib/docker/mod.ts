/** Docker hosts, containers, images, exec, run, archive copy. */
export { DockerManager } from "./manager.ts";
export { dockerShellBackend } from "./shell.ts";
export type { DockerManagerOptions, HostInfo, HostRow, OpenShellOptions } from "./manager.ts";
export type { DockerHost, DockerHostSpec } from "./host.ts";
export { containerAction, inspectContainer, listContainers } from "./containers.ts";
export type { ContainerRow } from "./containers.ts";
export { containerLogs } from "./logs.ts";
export { dockerExec } from "./exec.ts";
export type { ExecResult } from "./exec.ts";
export { runContainer } from "./run.ts";
export type { RunResult, RunSpec } from "./run.ts";
export { listImages, pullImage, removeImage } from "./images.ts";
export { download, upload } from "./archive.ts";
