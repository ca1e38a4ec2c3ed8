import type { Handle } from "../http/handle.ts";

/** Prints the daemon status for a person (the `--json` form is the raw report). */
export function printStatus(handle: Handle, report: Record<string, unknown>): void {
  const list = (key: string) => (report[key] as Record<string, unknown>[] | undefined) ?? [];
  const lines = [
    `rsm daemon ${report.version} — pid ${report.pid}, up ${report.uptime}`,
    `url        ${handle.url}`,
    `state      ${report.state_path}`,
    `format     ${report.format}`,
    ...policyLines(report.policy as Record<string, unknown> | undefined),
    `sessions   ${list("sessions").length}`,
    ...list("sessions").map((s) =>
      `  ${s.id}  ${s.user}@${s.address}  ${s.state}${s.last_error ? `  (${s.last_error})` : ""}`
    ),
    `shells     ${list("shells").length}`,
    ...list("shells").map((s) =>
      `  ${s.id}  on ${s.session_id ?? s.host_id}${s.closed ? "  closed" : ""}${
        s.lost ? "  lost" : ""
      }`
    ),
    `forwards   ${list("forwards").length}`,
    ...list("forwards").map((f) =>
      `  ${f.id}  ${f.kind} ${f.bind_addr}:${f.bind_port} → ${f.target_host}:${f.target_port}`
    ),
    `docker     ${list("hosts").length}`,
    ...list("hosts").map((h) => `  ${h.id}  ${h.host}  ${h.state}`),
    `jobs       ${list("jobs").length}`,
    ...list("jobs").map((j) =>
      `  ${j.id}  ${j.kind} on ${j.target}  ${j.state}` +
      `${j.exit_code !== null && j.exit_code !== undefined ? ` ${j.exit_code}` : ""}  ${j.summary}`
    ),
  ];
  console.log(lines.join("\n"));
}

/** The policy line of `rsm status`: file, mode, rules, and why a broken file is not in force. */
function policyLines(p: Record<string, unknown> | undefined): string[] {
  if (!p) return [];
  const line = p.loaded
    ? `policy     ${p.file} (mode ${p.mode}, ${p.rules} rules, redact ${p.redact ? "on" : "off"})`
    : `policy     none (${p.file} absent; redaction on)`;
  return p.error ? [line, `  NOT LOADED: ${p.error}`] : [line];
}
