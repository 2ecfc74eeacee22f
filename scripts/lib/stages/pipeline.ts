/**
 * The bootstrap stages, in order. Every stage is idempotent, so a run after an
 * interrupt simply starts again from the top and passes quickly over finished
 * stages; the records in stages.json say what completed when and how long it took.
 */
import { join } from "node:path";
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
import { vaultStage } from "./vault.ts";
import { verifyStage } from "./verify.ts";
import { workloadIdentityStage } from "./workload-identity.ts";

export interface Stage {
  name: string;
  run(run: ClusterRun): Promise<string>;
}

export const stages: Stage[] = [
  { name: "prepare", run: prepareStage },
  { name: "vault", run: vaultStage },
  { name: "certificates", run: certificatesStage },
  { name: "consul", run: consulStage },
  { name: "nomad", run: nomadStage },
  { name: "workload-identity", run: workloadIdentityStage },
  { name: "images", run: imagesStage },
  { name: "platform", run: platformStage },
  { name: "verify", run: verifyStage },
];

export interface StageRecord {
  completedAt: string;
  seconds: number;
  summary: string;
}

export async function readStageRecords(context: Pick<ProviderContext, "state">): Promise<Record<string, StageRecord>> {
  return JSON.parse((await readFileIfExists(context.state.stages)) ?? "{}") as Record<string, StageRecord>;
}

export async function runStages(
  context: ProviderContext,
  inventory: Inventory,
  only?: string[],
): Promise<Record<string, StageRecord>> {
  const release = await tryLock(join(context.state.root, "bootstrap.lock"), `A bootstrap of cluster '${context.config.name}'`);
  let run: ClusterRun;
  try {
    run = await openClusterRun(context, inventory);
  } catch (error) {
    await release();
    throw error;
  }
  const records = await readStageRecords(context);
  try {
    for (const stage of stages) {
      if (only && !only.includes(stage.name)) continue;
      const step = context.reporter.step(stage.name);
      const started = Date.now();
      try {
        const summary = await stage.run(run);
        const seconds = Math.round((Date.now() - started) / 100) / 10;
        records[stage.name] = { completedAt: new Date().toISOString(), seconds, summary };
        await writeFileAtomic(context.state.stages, `${JSON.stringify(records, null, 2)}\n`, 0o600);
        step.done(summary);
      } catch (error) {
        step.fail();
        throw error;
      }
    }
  } finally {
    run.close();
    await release();
  }
  return records;
}
