/**
 * One section of the console's overview. Its own module so that the sections (jobs, person…)
 * and the overview that lists them import it without importing each other.
 */
import type { App } from "../app.ts";

/** One section of the overview. */
export interface Section {
  /** Element id (stable: the live stream addresses sections by it). */
  id: string;
  title: string;
  /** The section's inner HTML now. */
  render(app: App): string;
}
