/**
 * Bounded output and the output store (see the README, "Readable results" and "Output
 * store"): one collector for every stream a tool shows ({@link Capture}), one way to cut a
 * text honestly ({@link cutText}), and the store that keeps what a result left out.
 */
export { Capture, type CaptureOptions } from "./capture.ts";
export { splitBudget } from "./budget.ts";
export {
  boundPlain,
  type CapturedStream,
  type Cut,
  cutText,
  isTextSource,
  type Keep,
  marker,
  MARKER_ROOM,
  prepare,
  type Prepared,
  type TextSource,
  wholeCost,
} from "./cut.ts";
export {
  type ByteCost,
  completeLength,
  concatBytes,
  fitHead,
  JSON_COST,
  nextBoundary,
  prevBoundary,
  RAW_COST,
} from "./bytes.ts";
export {
  type GrepLine,
  type OutputInfo,
  OutputStore,
  type OutputStoreOptions,
  type OutputWriter,
} from "./store.ts";
export { type ExecOutcome, execView } from "./exec.ts";
