/**
 * Human titles of the tools (shown by MCP clients instead of the snake_case name) and the
 * server's `instructions`, the short guide a model gets at initialize.
 */
import type { ToolDef } from "./tool.ts";

const TITLES: Record<string, string> = {
  ssh_connect: "Connect SSH session",
  ssh_disconnect: "Disconnect SSH session",
  ssh_list: "List SSH sessions",
  ssh_info: "SSH session details",
  ssh_reconnect: "Reconnect SSH session",
  ssh_clone: "Clone SSH session",
  ssh_exec: "Run command over SSH",
  ssh_file_list: "List remote directory",
  ssh_file_stat: "Stat remote path",
  ssh_file_read: "Read remote file",
  ssh_file_write: "Write remote file",
  ssh_file_delete: "Delete remote path",
  ssh_file_mkdir: "Make remote directory",
  ssh_file_chmod: "Change remote mode",
  ssh_file_rename: "Rename remote path",
  ssh_file_hash: "Hash remote file",
  ssh_upload: "Upload over SFTP",
  ssh_download: "Download over SFTP",
  ssh_forward_local: "Forward local port",
  ssh_forward_remote: "Forward remote port",
  ssh_forward_dynamic: "SOCKS5 proxy",
  ssh_forwards_list: "List forwards",
  ssh_forward_cancel: "Close forward",
  docker_connect: "Connect Docker host",
  docker_disconnect: "Disconnect Docker host",
  docker_list_hosts: "List Docker hosts",
  docker_containers: "List containers",
  docker_container_inspect: "Inspect container",
  docker_container_logs: "Container logs",
  docker_container_start: "Start container",
  docker_container_restart: "Restart container",
  docker_container_stop: "Stop container",
  docker_container_kill: "Kill container",
  docker_container_remove: "Remove container",
  docker_exec: "Run command in container",
  docker_run: "Run new container",
  docker_image_list: "List images",
  docker_image_pull: "Pull image",
  docker_image_remove: "Remove image",
  docker_upload: "Copy into container",
  docker_download: "Copy out of container",
  output_read: "Read stored output",
  status: "Daemon status",
  snapshot: "Save state now",
};

const SHELL_VERBS: Record<string, string> = {
  open: "Open",
  write: "Type into",
  read: "Read",
  run: "Run in",
  screen: "Screen of",
  resize: "Resize",
  close: "Close",
  list: "List",
};

/**
 * A tool's title: its own, the table's, or one made from its name
 * (`ssh_shell_run` → "Run in SSH shell", `job_wait` → "Job wait").
 */
export function titleOf(def: Pick<ToolDef, "name" | "title">): string {
  if (def.title) return def.title;
  const known = TITLES[def.name];
  if (known) return known;
  const shell = /^(ssh|docker)_shell_(\w+)$/.exec(def.name);
  if (shell) {
    const verb = SHELL_VERBS[shell[2]!] ?? shell[2]!;
    const what = `${shell[1] === "ssh" ? "SSH" : "Docker"} shell${verb === "List" ? "s" : ""}`;
    return `${verb} ${what}`;
  }
  const words = def.name.split("_").map((w) => w === "ssh" ? "SSH" : w === "docker" ? "Docker" : w);
  const title = words.join(" ");
  return title.charAt(0).toUpperCase() + title.slice(1);
}

/** What a model should know before its first call (at most 2 KB). */
export const INSTRUCTIONS = [
  "rsm keeps SSH sessions, Docker hosts, shells and forwards alive in a daemon: they outlive " +
  "this conversation (see status). Ids are names you choose: session_id is the id given to " +
  "ssh_connect (see ssh_list), host_id the one given to docker_connect, shell_id the one given " +
  "to *_shell_open; job_id and output_id come from results.",
  "Which tool: ssh_exec/docker_exec for one command (exact stdout, stderr, exit code; no state " +
  "kept between calls). *_shell_run when state must persist (cd, exports, virtualenvs); " +
  "*_shell_write + read/screen for interactive programs (REPLs, prompts, vim, top). Work that " +
  "runs longer than a call's wait_ms (default 20 s) becomes a job and goes on: the result has " +
  "job_id; follow it with job_wait and job_output instead of raising timeouts (timeout_ms is " +
  "the hard stop).",
  "Results: scalar fields first, then program output as raw text under " +
  "'--- stdout (N bytes) ---' lines. Output is bounded (max_output, default 32 KiB; keep: " +
  "head|tail|both). When bytes are left out, truncated is true, omitted_bytes says how many " +
  "and output_id names the full text: output_read(output_id, offset, length) pages it, " +
  "output_read(output_id, grep, context) searches it with line numbers. Never re-run a " +
  "command just to see more of its output.",
  "Errors say what failed, why and what to try.",
].join("\n\n");
