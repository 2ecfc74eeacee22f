/**
 * The bootstrap stages, in order. Every stage is idempotent, so a run after an
 * interrupt simply starts again from the top and passes quickly over finished
 * stages; the records in stages.json say what completed when and how long it took.
 */
import { tryLock } from "../binaries/lock.ts";
import type { Inventory } from "../inventory/schema.ts";
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

export async function runStages(context: ProviderContext, inventory: Inventory, only?: string[]): Promise<StageRecords> {
  const selected = selectStages(stages, only);
  const release = await tryLock(context.state.lock, `A bootstrap of cluster '${context.config.name}'`);
  let run: ClusterRun;
  try {
    run = await openClusterRun(context, inventory);
  } catch (error) {
    await release();
    throw error;
  }
  try {
    return await executeStages(run, selected, {
      reporter: context.reporter,
      records: await readStageRecords(context),
      save: (records) => writeFileAtomic(context.state.stages, `${JSON.stringify(records, null, 2)}\n`, 0o600),
    });
  } finally {
    run.close();
    await release();
  }
}

/** What a run of these stages would change on this cluster, changing nothing (`bootstrap --dry-run`). */
export async function planStagesOn(context: ProviderContext, inventory: Inventory, only?: string[]) {
  const selected = selectStages(stages, only);
  const run = await openClusterRun(context, inventory);
  try {
    return await planStages(run, selected);
  } finally {
    run.close();
  }
}
