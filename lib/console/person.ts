/**
 * What waits for a person, on the overview: approvals of commands a policy `confirm` rule
 * matched, and secrets to type. Each links to its page (lib/http/web/pages.ts), which the
 * console's login cookie already opens.
 */
import { esc } from "./page.ts";
import type { Section } from "./section.ts";

/** The overview's "waiting for you" section. */
export const personSection: Section = {
  id: "waiting",
  title: "Waiting for you: approvals and secrets",
  render(app) {
    const rows: string[] = [];
    for (const a of app.guard.approvals.pending()) {
      rows.push(
        `<tr><td>approve</td><td>${esc(a.tool)} on ${esc(a.target)}</td>` +
          `<td><code>${esc(a.command.slice(0, 200))}</code></td><td>${esc(a.rule)}</td>` +
          `<td><a class="approval" href="/web/approvals/${esc(a.id)}">decide…</a></td></tr>`,
      );
    }
    for (const s of app.secretAsks.pending()) {
      rows.push(
        `<tr><td>secret</td><td colspan="3">${esc(s.need.label)}</td>` +
          `<td><a class="secret" href="/web/secrets/${esc(s.id)}">type it…</a></td></tr>`,
      );
    }
    if (rows.length === 0) return `<p class="empty">Nothing waits for you.</p>`;
    return `<table><thead><tr><th scope="col">what</th><th scope="col">where</th>` +
      `<th scope="col">command</th><th scope="col">rule</th><th scope="col"></th></tr>` +
      `</thead><tbody>${rows.join("")}</tbody></table>`;
  },
};
