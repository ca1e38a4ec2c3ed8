import { z } from "zod";

/**
 * Turns zod issues into one sentence a model can act on, naming every bad field.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { describeIssues } from "./validate.ts";
 *
 * const parsed = z.strictObject({ timeout_ms: z.number() }).safeParse({ timeout_ms: "5s" });
 * const message = describeIssues("ssh_exec", parsed.error?.issues ?? []);
 * console.assert(message.includes("timeout_ms"), message);
 * ```
 */
export function describeIssues(tool: string, issues: readonly z.core.$ZodIssue[]): string {
  const parts = issues.slice(0, 8).map((issue) => {
    const path = issue.path.map(String).join(".");
    if (issue.code === "unrecognized_keys") {
      const keys = (issue as { keys: string[] }).keys.map((k) => JSON.stringify(k)).join(", ");
      return `unknown field${issue.keys.length > 1 ? "s" : ""} ${keys}${
        path ? ` in "${path}"` : ""
      } (not accepted; see the tool's input schema)`;
    }
    const where = path ? `field "${path}"` : "arguments";
    return `${where}: ${issue.message}`;
  });
  if (issues.length > 8) parts.push(`and ${issues.length - 8} more problems`);
  return `invalid arguments for ${tool}: ${parts.join("; ")}`;
}

/** Zod error map wording: "expected number, received string". */
export function zodConfig(): void {
  z.config({
    customError: (issue) => {
      if (issue.code === "invalid_type") {
        const got = issue.input === null
          ? "null"
          : Array.isArray(issue.input)
          ? "array"
          : typeof issue.input;
        if (issue.input === undefined) return `required ${issue.expected} is missing`;
        return `expected ${issue.expected}, received ${got}`;
      }
      // a missing field with several accepted forms: say it is missing, not "Invalid input"
      if (issue.code === "invalid_union" && issue.input === undefined) {
        return "required value is missing";
      }
      return undefined;
    },
  });
}
