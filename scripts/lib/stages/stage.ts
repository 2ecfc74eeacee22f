/**
 * The contract every bootstrap stage follows. Only `run` is required; the hooks
 * let the runner skip a stage, show what it would change, and clean up after a
 * failure without each stage body doing that itself.
 */
import type { ClusterRun } from "./run-context.ts";

export interface Stage<Run = ClusterRun> {
  name: string;
  /** one line for `--help` and the docs */
  description: string;
  /**
   * Whether the stage has anything to do on this cluster: `true` runs it; `false`
   * or a reason (shown to the user and recorded) skips it.
   */
  shouldRun?(run: Run): Promise<boolean | string> | boolean | string;
  /** The changes a run would make, without making them (empty: nothing to do). */
  plan?(run: Run): Promise<string[]>;
  /** Does the work (idempotently) and returns a one-line summary of what changed. */
  run(run: Run): Promise<string>;
  /** Called after `run` or `shouldRun` threw, with that error; its own failures are reported, not thrown. */
  cleanup?(run: Run, error: unknown): Promise<void>;
}
