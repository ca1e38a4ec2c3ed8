/**
 * Narrows Deno's `run` permission at start-up to what this process will use (README "Security
 * model"). The permission set in deno.json has to allow both `deno` (rsm from source) and `rsm`
 * (the compiled binary) because one set serves both; a process drops the one it is not, and
 * the daemon drops both: it never starts rsm itself (launchers start daemons). `sh` (permission
 * set `rsm-proxy`, for ssh_config ProxyCommand) is left as granted. Under `--allow-all`
 * revoking one command does nothing, as Deno defines it.
 */
const SELF_COMMANDS = ["deno", "rsm"];

/** Whether this process runs from source under `deno` (not the compiled `rsm`). */
export function fromSource(): boolean {
  const base = Deno.execPath().split(/[\\/]/).pop() ?? "";
  return /^deno(\.exe)?$/.test(base);
}

/** Revokes `run` for the commands `role` never starts. */
export async function narrowRun(role: "daemon" | "client"): Promise<void> {
  const drop = role === "daemon" ? SELF_COMMANDS : [fromSource() ? "rsm" : "deno"];
  for (const command of drop) {
    await Deno.permissions.revoke({ name: "run", command }).catch(() => {});
  }
}

/** The programs this process may still start, of those rsm knows about (for `status`). */
export function mayRun(): string[] {
  return [...SELF_COMMANDS, "sh"].filter((command) =>
    Deno.permissions.querySync({ name: "run", command }).state === "granted"
  );
}
