/**
 * `output_read`: pages or searches the full text behind a cut result (README, "Output store").
 */
import { z } from "zod";
import { RsmError } from "../errors.ts";
import { JSON_COST } from "../output/mod.ts";
import { fitHead } from "../output/bytes.ts";
import { defineTool, type ToolDef } from "./tool.ts";

/** Room kept for the fields around the page's text. */
const FIELDS_ROOM = 600;

function compile(pattern: string): RegExp {
  try {
    return new RegExp(pattern);
  } catch (err) {
    throw new RsmError(
      "BAD_REGEX",
      `Cannot search with grep ${JSON.stringify(pattern)}: not a valid regular expression ` +
        `(${(err as Error).message}); escape special characters like ( [ . * with \\`,
    );
  }
}

/** The output store's tool. */
export const outputTools: ToolDef[] = [
  defineTool({
    name: "output_read",
    group: "meta",
    always: true,
    description: "Reads the full text behind a cut result's output_id: exact bytes at offset " +
      "(next_offset continues), or with grep the matching lines as N:line (context as N-line).",
    input: {
      output_id: z.string().min(1).max(100).describe("output_id from a result"),
      offset: z.number().int().nonnegative().optional().describe("byte offset (default 0)"),
      length: z.number().int().positive().max(1 << 20).optional().describe(
        "bytes to return (default: what fits the output bound)",
      ),
      grep: z.string().min(1).max(2000).optional().describe(
        "JavaScript regex; return matching lines instead of a page",
      ),
      context: z.number().int().min(0).max(50).optional().describe(
        "lines shown around each grep match (default 0)",
      ),
    },
    annotations: { readOnlyHint: true },
    run: async (a, ctx) => {
      const store = ctx.app.outputs;
      const info = store.info(a.output_id);
      if (!info) await store.read(a.output_id, 0, 0); // throws the explanation
      const total = info!.total_bytes;
      const partial = info!.stored_bytes < total
        ? { stored_bytes: info!.stored_bytes, note: "only the first stored_bytes were kept" }
        : {};
      if (a.grep !== undefined) {
        const re = compile(a.grep);
        const maxLines = 400;
        const r = await store.grep(a.output_id, re, { context: a.context, maxLines });
        const text = r.lines.map((l) => `${l.line}${l.match ? ":" : "-"}${l.text}`).join("\n");
        return {
          output_id: a.output_id,
          total_bytes: total,
          ...partial,
          matches: r.matches,
          ...(r.more ? { more: true, searched_bytes: r.scanned_bytes } : {}),
          output: text ? text + "\n" : "",
        };
      }
      const offset = a.offset ?? 0;
      const room = Math.max(256, ctx.app.maxOutput - FIELDS_ROOM);
      const want = Math.min(a.length ?? room * 2, 1 << 20);
      const bytes = await store.read(a.output_id, offset, want);
      // Cut so the page fits the bound even as a JSON string (the stricter of both formats).
      const n = fitHead(bytes, room, JSON_COST);
      const end = offset + n;
      const eof = end >= info!.stored_bytes;
      return {
        output_id: a.output_id,
        offset,
        bytes: n,
        total_bytes: total,
        ...partial,
        eof,
        ...(eof ? {} : { next_offset: end }),
        data: bytes.subarray(0, n),
      };
    },
  }),
];
