/**
 * Runs a list of stages in order against one cluster run: asks each stage's
 * `shouldRun`, records what completed (stages.json), and on a failure runs the
 * stage's `cleanup` and stops with a `StageError` naming the stage.
 */
import type { Reporter } from "../cli/output.ts";
import { errorMessage, ExitCode, InputError, isUserError, UserError } from "../errors.ts";
import type { Stage } from "./stage.ts";

export interface StageRecord {
  completedAt: string;
  seconds: number;
  summary: string;
  /** set when `shouldRun` skipped the stage; the summary is its reason */
  skipped?: boolean;
}

export type StageRecords = Record<string, StageRecord>;

/** A stage failed: carries the stage's name and keeps the cause's message, hint, details and exit code. */
export class StageError extends UserError {
  readonly stage: string;

  constructor(stage: string, cause: unknown) {
    const user = isUserError(cause);
    super(user ? cause.message : `Stage '${stage}' failed unexpectedly: ${errorMessage(cause)}`, {
      cause,
      hint: user
        ? cause.hint
        : "This is a bug in hashistack-bootstrap. Re-run with --debug and report the output (check it for secrets first).",
      details: user ? cause.details : [],
      exitCode: user ? cause.exitCode : ExitCode.bug,
    });
    this.stage = stage;
    if (!user && cause instanceof Error && cause.stack) this.stack = cause.stack;
  }
}

/** The named stages in pipeline order; unknown names are an input error listing the stages there are. */
export function selectStages<S extends { name: string }>(all: readonly S[], names?: readonly string[]): S[] {
  if (!names) return [...all];
  const wanted = names.map((n) => n.trim()).filter(Boolean);
  const known = new Set(all.map((s) => s.name));
  const unknown = wanted.filter((n) => !known.has(n));
  if (unknown.length || !wanted.length) {
    throw new InputError(
      unknown.length
        ? `Unknown stage${unknown.length > 1 ? "s" : ""} ${unknown.map((n) => `'${n}'`).join(", ")} in --stages.`
        : "--stages names no stage.",
      { hint: `The stages, in the order they run: ${all.map((s) => s.name).join(", ")}.` },
    );
  }
  return all.filter((s) => wanted.includes(s.name));
}

export interface RunStagesOptions {
  reporter: Reporter;
  /** the records so far (from stages.json); updated in place */
  records: StageRecords;
  /** persists the records after each stage */
  save(records: StageRecords): Promise<void>;
  /** for tests */
  now?: () => number;
}

export async function executeStages<Run>(
  run: Run,
  list: readonly Stage<Run>[],
  options: RunStagesOptions,
): Promise<StageRecords> {
  const { reporter, records } = options;
  const now = options.now ?? Date.now;
  for (const stage of list) {
    const step = reporter.step(stage.name);
    const started = now();
    const record = async (summary: string, skipped?: boolean) => {
      const seconds = Math.round((now() - started) / 100) / 10;
      records[stage.name] = { completedAt: new Date(now()).toISOString(), seconds, summary, ...(skipped ? { skipped } : {}) };
      await options.save(records);
    };
    try {
      const decision = stage.shouldRun ? await stage.shouldRun(run) : true;
      if (decision !== true) {
        const reason = typeof decision === "string" ? decision : "nothing to do";
        await record(reason, true);
        step.done(`skipped: ${reason}`);
        continue;
      }
      const summary = await stage.run(run);
      await record(summary);
      step.done(summary);
    } catch (error) {
      step.fail();
      if (stage.cleanup) {
        try {
          await stage.cleanup(run, error);
        } catch (cleanupError) {
          reporter.warn(`Cleaning up after stage '${stage.name}' failed too: ${errorMessage(cleanupError)}`);
        }
      }
      throw error instanceof StageError ? error : new StageError(stage.name, error);
    }
  }
  return records;
}

/** What each stage with a `plan` hook would change; stages without one are listed as "not planned". */
export async function planStages<Run>(
  run: Run,
  list: readonly Stage<Run>[],
): Promise<{ stage: string; changes: string[] | undefined; skipped?: string }[]> {
  const plans = [];
  for (const stage of list) {
    const decision = stage.shouldRun ? await stage.shouldRun(run) : true;
    if (decision !== true) {
      plans.push({ stage: stage.name, changes: [], skipped: typeof decision === "string" ? decision : "nothing to do" });
      continue;
    }
    plans.push({ stage: stage.name, changes: stage.plan ? await stage.plan(run) : undefined });
  }
  return plans;
}
