/** Jobs: work that outlives the call that started it (README "Jobs"). Knows nothing of MCP. */
export {
  Job,
  type JobControl,
  type JobOutcome,
  type JobRow,
  type JobState,
  type JobWork,
  type Killer,
  sigName,
} from "./job.ts";
export {
  type JobKind,
  JobManager,
  type JobManagerOptions,
  jobsDir,
  type SavedJob,
  type StartJobOptions,
  type WaitEnd,
  type WaitOptions,
} from "./manager.ts";
export { JobOutput, type JobStream, lastLineOf } from "./output.ts";
