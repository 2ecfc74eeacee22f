/**
 * The bootstrap stages, in order. Every stage is idempotent, so a run after an
 * interrupt simply starts again from the top and passes quickly over finished
 * stages; the records in stages.json say what completed when and how long it took.
 */
import { tryLock } from "../binaries/lock.ts";
import { skippedLine } from "../cluster/reachability.ts";
import type { Inventory, InventoryHost } from "../inventory/schema.ts";
import type { ProviderContext } from "../providers/types.ts";
import { readFileIfExists, writeFileAtomic } from "../util/fs.ts";
import { certificatesStage } from "./certificates.ts";
import { consulStage } from "./consul.ts";
import { imagesStage } from "./images.ts";
import { nomadStage } from "./nomad.ts";
import { platformStage } from "./platform.ts";
import { prepareStage } from "./prepare.ts";
import { openClusterRun, type ClusterRun } from "./run-context.ts";
import { executeStages, planStages, selectStages, type StageRecords } from "./runner.ts";
import type { Stage } from "./stage.ts";
import { vaultStage } from "./vault.ts";
import { verifyStage } from "./verify.ts";
import { workloadIdentityStage } from "./workload-identity.ts";

export type { Stage } from "./stage.ts";
export { StageError, type StageRecord, type StageRecords } from "./runner.ts";

export const stages: Stage<ClusterRun>[] = [
  prepareStage,
  vaultStage,
  certificatesStage,
  consulStage,
  nomadStage,
  workloadIdentityStage,
  imagesStage,
  platformStage,
  verifyStage,
];

/** The stage names, in the order they run (for `--stages` help and validation). */
export const stageNames = stages.map((s) => s.name);

export async function readStageRecords(context: Pick<ProviderContext, "state">): Promise<StageRecords> {
  return JSON.parse((await readFileIfExists(context.state.stages)) ?? "{}") as StageRecords;
}

export interface PipelineOptions {
  /**
   * go on without clients that do not answer over SSH (the bootstrap command):
   * each is named, every stage runs on the other hosts, and the result lists them
   */
  skipUnreachableClients?: boolean;
}

export interface PipelineResult {
  records: StageRecords;
  /** the unreachable clients the run went on without */
  skipped: InventoryHost[];
}

export async function runStages(context: ProviderContext, inventory: Inventory, only?: string[]): Promise<StageRecords> {
  return (await runPipeline(context, inventory, only)).records;
}

export async function runPipeline(
  context: ProviderContext,
  inventory: Inventory,
  only?: string[],
  options: PipelineOptions = {},
): Promise<PipelineResult> {
  const selected = selectStages(stages, only);
  const release = await tryLock(context.state.lock, `A bootstrap of cluster '${context.config.name}'`);
  let run: ClusterRun;
  try {
    run = await openRun(context, inventory, options);
  } catch (error) {
    await release();
    throw error;
  }
  try {
    const records = await executeStages(run, selected, {
      reporter: context.reporter,
      records: await readStageRecords(context),
      save: (records) => writeFileAtomic(context.state.stages, `${JSON.stringify(records, null, 2)}\n`, 0o600),
    });
    return { records, skipped: run.skipped };
  } finally {
    run.close();
    await release();
  }
}

async function openRun(context: ProviderContext, inventory: Inventory, options: PipelineOptions): Promise<ClusterRun> {
  const run = await openClusterRun(context, inventory, { skipUnreachableClients: options.skipUnreachableClients });
  for (const host of run.skipped) context.reporter.warn(skippedLine(host));
  return run;
}

/** What a run of these stages would change on this cluster, changing nothing (`bootstrap --dry-run`). */
export async function planStagesOn(context: ProviderContext, inventory: Inventory, only?: string[]) {
  return (await planPipeline(context, inventory, only)).plans;
}

/** `planStagesOn`, and the unreachable clients it went on without (`skipUnreachableClients`). */
export async function planPipeline(
  context: ProviderContext,
  inventory: Inventory,
  only?: string[],
  options: PipelineOptions = {},
) {
  const selected = selectStages(stages, only);
  const run = await openRun(context, inventory, options);
  try {
    return { plans: await planStages(run, selected), skipped: run.skipped };
  } finally {
    run.close();
  }
}
