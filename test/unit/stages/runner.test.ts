import { describe, expect, it } from "vitest";
import { createRecordingReporter } from "../../../scripts/lib/cli/output.ts";
import { ExitCode, InputError, OperationError } from "../../../scripts/lib/errors.ts";
import { stageNames } from "../../../scripts/lib/stages/pipeline.ts";
import { executeStages, planStages, selectStages, StageError, type StageRecords } from "../../../scripts/lib/stages/runner.ts";
import type { Stage } from "../../../scripts/lib/stages/stage.ts";

/** The fake run every fake stage writes into: what happened, in order. */
interface FakeRun {
  events: string[];
}

const stage = (name: string, hooks: Partial<Stage<FakeRun>> = {}): Stage<FakeRun> => ({
  name,
  description: `fake ${name}`,
  run: async (run) => {
    run.events.push(`run ${name}`);
    return `${name} done`;
  },
  ...hooks,
});

function harness(initial: StageRecords = {}) {
  const saved: StageRecords[] = [];
  let clock = 1_700_000_000_000;
  return {
    saved,
    reporter: createRecordingReporter(),
    options(reporter = createRecordingReporter()) {
      return {
        reporter,
        records: structuredClone(initial),
        save: async (records: StageRecords) => {
          saved.push(structuredClone(records));
        },
        // every reading of the clock is 1.5 s after the previous one
        now: () => (clock += 1500),
      };
    },
  };
}

describe("stage runner", () => {
  it("runs the stages in order and records each one's summary as it completes", async () => {
    const run: FakeRun = { events: [] };
    const h = harness();
    const records = await executeStages(run, [stage("a"), stage("b"), stage("c")], h.options());
    expect(run.events).toEqual(["run a", "run b", "run c"]);
    expect(Object.keys(records)).toEqual(["a", "b", "c"]);
    expect(records.b).toMatchObject({ summary: "b done", seconds: 1.5 });
    // saved after every stage, so an interrupt keeps what finished
    expect(h.saved.map((r) => Object.keys(r))).toEqual([["a"], ["a", "b"], ["a", "b", "c"]]);
  });

  it("a stage that throws runs its cleanup with the error, stops the run and fails with a StageError naming it", async () => {
    const run: FakeRun = { events: [] };
    const cause = new OperationError("Vault did not answer.", { hint: "check it", details: ["host-1: timeout"] });
    const failing = stage("b", {
      run: async () => {
        throw cause;
      },
      cleanup: async (r, error) => {
        r.events.push(`cleanup b after ${(error as Error).message}`);
      },
    });
    const h = harness();
    const reporter = createRecordingReporter();
    const error = await executeStages(run, [stage("a"), failing, stage("c")], h.options(reporter)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StageError);
    expect(error).toMatchObject({
      stage: "b",
      message: "Vault did not answer.",
      hint: "check it",
      details: ["host-1: timeout"],
      exitCode: ExitCode.operation,
      cause,
    });
    expect(run.events).toEqual(["run a", "cleanup b after Vault did not answer."]);
    expect(Object.keys(h.saved.at(-1) ?? {})).toEqual(["a"]);
    expect(reporter.messages.filter((m) => m.kind === "error").map((m) => m.text)).toEqual(["b"]);
  });

  it("an unexpected error (a bug) keeps exit code 1; a cleanup that fails too is reported, not thrown", async () => {
    const run: FakeRun = { events: [] };
    const reporter = createRecordingReporter();
    const failing = stage("a", {
      run: async () => {
        throw new TypeError("x is undefined");
      },
      cleanup: async () => {
        throw new Error("tunnel already closed");
      },
    });
    const error = (await executeStages(run, [failing], harness().options(reporter)).catch((e: unknown) => e)) as StageError;
    expect(error).toBeInstanceOf(StageError);
    expect(error.message).toBe("Stage 'a' failed unexpectedly: x is undefined");
    expect(error.exitCode).toBe(ExitCode.bug);
    expect(reporter.messages).toContainEqual({
      kind: "warn",
      text: "Cleaning up after stage 'a' failed too: tunnel already closed",
    });
  });

  it("a run after a failure starts again from the top and resumes the records", async () => {
    const run: FakeRun = { events: [] };
    let broken = true;
    const flaky = stage("b", {
      run: async (r) => {
        r.events.push("run b");
        if (broken) throw new OperationError("not yet");
        return "b done";
      },
    });
    const list = [stage("a"), flaky, stage("c")];
    const first = harness();
    await expect(executeStages(run, list, first.options())).rejects.toBeInstanceOf(StageError);
    broken = false;
    const second = harness(first.saved.at(-1));
    const records = await executeStages(run, list, second.options());
    expect(run.events).toEqual(["run a", "run b", "run a", "run b", "run c"]);
    expect(Object.keys(records)).toEqual(["a", "b", "c"]);
  });

  it("shouldRun skips a stage with its reason, records the skip, and lets later stages run", async () => {
    const run: FakeRun = { events: [] };
    const reporter = createRecordingReporter();
    const list = [
      stage("a", { shouldRun: () => "no Nomad clients" }),
      stage("b", { shouldRun: async () => false }),
      stage("c", { shouldRun: async () => true }),
    ];
    const records = await executeStages(run, list, harness().options(reporter));
    expect(run.events).toEqual(["run c"]);
    expect(records.a).toMatchObject({ summary: "no Nomad clients", skipped: true });
    expect(records.b).toMatchObject({ summary: "nothing to do", skipped: true });
    expect(records.c?.skipped).toBeUndefined();
    expect(reporter.messages.filter((m) => m.kind === "success").map((m) => m.text)).toEqual([
      "skipped: no Nomad clients",
      "skipped: nothing to do",
      "c done",
    ]);
  });

  it("a shouldRun that throws fails the stage like its body would", async () => {
    const run: FakeRun = { events: [] };
    const list = [
      stage("a", {
        shouldRun: () => {
          throw new OperationError("cannot tell");
        },
        cleanup: async (r) => {
          r.events.push("cleanup a");
        },
      }),
    ];
    await expect(executeStages(run, list, harness().options())).rejects.toMatchObject({ stage: "a", message: "cannot tell" });
    expect(run.events).toEqual(["cleanup a"]);
  });

  it("plans without running: each stage's planned changes, skips with their reason, no plan hook as undefined", async () => {
    const run: FakeRun = { events: [] };
    const plans = await planStages(run, [
      stage("a", { plan: async () => ["upload consul to node-1"] }),
      stage("b", { shouldRun: () => "nothing enabled", plan: async () => ["never asked"] }),
      stage("c"),
    ]);
    expect(plans).toEqual([
      { stage: "a", changes: ["upload consul to node-1"] },
      { stage: "b", changes: [], skipped: "nothing enabled" },
      { stage: "c", changes: undefined },
    ]);
    expect(run.events).toEqual([]);
  });
});

describe("stage selection (--stages)", () => {
  const all = [stage("prepare"), stage("vault"), stage("verify")];

  it("keeps pipeline order whatever order the names are given in; no names means all stages", () => {
    expect(selectStages(all, ["verify", " prepare"]).map((s) => s.name)).toEqual(["prepare", "verify"]);
    expect(selectStages(all).map((s) => s.name)).toEqual(["prepare", "vault", "verify"]);
  });

  it("an unknown name is an input error (exit 2) that lists the stages there are", () => {
    let error: unknown;
    try {
      selectStages(all, ["prepare", "consol"]);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InputError);
    expect(error).toMatchObject({
      message: "Unknown stage 'consol' in --stages.",
      hint: "The stages, in the order they run: prepare, vault, verify.",
      exitCode: ExitCode.usage,
    });
    expect(() => selectStages(all, [""])).toThrow("--stages names no stage.");
  });

  it("the real pipeline's stages have unique names", () => {
    expect(new Set(stageNames).size).toBe(stageNames.length);
    expect(stageNames[0]).toBe("prepare");
    expect(stageNames.at(-1)).toBe("verify");
  });
});
