#!/usr/bin/env -S npx tsx
import { existsSync } from "node:fs";
import { runCommand } from "./lib/cli/command.ts";
import { clusterContext } from "./lib/cli/cluster-context.ts";
import { printJson } from "./lib/cli/output.ts";
import { plannedRemovals } from "./lib/cluster/removal-plan.ts";
import { replaceNode } from "./lib/cluster/replace.ts";
import { scaleIn } from "./lib/cluster/scale-in.ts";
import { ExitCode, InputError } from "./lib/errors.ts";
import { providerFor } from "./lib/providers/index.ts";
import { providerOptionHelp } from "./lib/providers/registry.ts";
import { hostsWithRole } from "./lib/inventory/schema.ts";
import { loadInventory } from "./lib/inventory/load.ts";
import type { ProviderContext } from "./lib/providers/types.ts";
import { planPipeline, runPipeline, stageNames, stages } from "./lib/stages/pipeline.ts";
import { selectStages } from "./lib/stages/runner.ts";

await runCommand<{ provider?: string; stages?: string; replace?: string }>({
  name: "bootstrap",
  summary: "provision nodes and bootstrap a secure Consul/Nomad/Vault cluster",
  common: { cluster: true, config: true, yes: true, dryRun: true, output: true },
  options: {
    provider: {
      type: "string",
      description: providerOptionHelp("overrides the config"),
      valueName: "NAME",
    },
    stages: {
      type: "string",
      description: `run only these stages (comma-separated, in pipeline order): ${stageNames.join(", ")}`,
      valueName: "LIST",
    },
    replace: {
      type: "string",
      description:
        "replace this node (e.g. server-2) with a fresh one of the same name, keeping the quorum: it leaves the cluster, is destroyed, provisioned anew and joins (local provider)",
      valueName: "NODE",
    },
  },
  examples: [
    "npm run bootstrap",
    "npm run bootstrap -- --provider static --config cluster.yaml",
    "npm run bootstrap -- --stages platform,verify",
    "npm run bootstrap -- --dry-run",
    "npm run bootstrap -- --replace server-2 --yes",
  ],
  async run({ flags, reporter }) {
    // checked before anything is provisioned: an unknown name is a usage error listing the stages
    const selected = selectStages(stages, flags.stages?.split(","));
    if (flags.replace !== undefined && flags.stages !== undefined)
      throw new InputError("--replace runs every stage (the new node needs them all): drop --stages.");
    const context = await clusterContext(flags, reporter);
    const provider = providerFor(context.config.provider.type);
    reporter.info(`cluster '${context.config.name}' on the ${provider.name} provider`);
    if (flags.dryRun)
      return dryRun(
        context,
        selected.map((s) => s.name),
        flags.output === "json",
        flags.replace,
      );
    // a replaced node leaves and is destroyed here; the provider provisions it again below
    if (flags.replace !== undefined)
      for (const line of await replaceNode(context, provider, flags.replace)) reporter.info(`replace: ${line}`);
    // fewer nodes than provisioned: they leave and go before the provider sees the smaller topology
    for (const line of await scaleIn(context, provider)) reporter.info(`scale in: ${line}`);
    const inventory = await provider.up(context);
    for (const host of inventory.hosts) reporter.info(`${host.name} (${host.roles.join(", ")}) ${host.privateIp}`);
    const { records, skipped } = await runPipeline(
      context,
      inventory,
      selected.map((s) => s.name),
      { skipUnreachableClients: true },
    );
    if (flags.output === "json")
      printJson({
        cluster: context.config.name,
        provider: provider.name,
        inventory,
        stages: records,
        skipped: skipped.map((h) => ({ name: h.name, address: h.privateIp, reason: "unreachable over SSH" })),
      });
    if (skipped.length) {
      const names = skipped.map((h) => h.name).join(", ");
      reporter.warn(
        `Done on every reachable host: ${selected.map((s) => s.name).join(", ")}. Skipped (unreachable over SSH): ${names}. Bring ${skipped.length === 1 ? "it" : "them"} back and run bootstrap again (exit ${ExitCode.partial}).`,
      );
      return ExitCode.partial;
    }
    reporter.success(
      `Done: ${selected.map((s) => s.name).join(", ")}. 'npm run status' shows the cluster; 'npm run env' points the CLIs at it.`,
    );
    return ExitCode.ok;
  },
});

/**
 * `--dry-run`: what each stage's `plan` hook says a run would change on the
 * provisioned cluster (files, starts, restarts in their order); nothing is
 * provisioned, uploaded or restarted. Exit 5 when something would change.
 */
async function dryRun(context: ProviderContext, names: string[], json: boolean, replace?: string): Promise<ExitCode> {
  const { reporter, config } = context;
  if (!existsSync(context.state.inventoryCopy)) {
    if (replace !== undefined) plannedRemovals(config, undefined, replace);
    reporter.info(`cluster '${config.name}' is not provisioned yet: a run would provision its nodes and run every stage`);
    return ExitCode.changesPending;
  }
  const inventory = await loadInventory(context.state.inventoryCopy);
  // the nodes that would leave first (and the refusals a run would meet)
  const removals = plannedRemovals(config, inventory, replace);
  const topology: string[] = [];
  for (const [role, wanted] of [
    ["server", config.topology.servers],
    ["client", config.topology.clients],
  ] as const) {
    const have = hostsWithRole(inventory, role).length;
    if (have !== wanted)
      topology.push(`the topology asks for ${wanted} ${role}s, the inventory has ${have}: the provider would change the nodes`);
  }
  const { plans, skipped } = await planPipeline(context, inventory, names, { skipUnreachableClients: true });
  const pending = topology.length > 0 || removals.length > 0 || plans.some((p) => p.changes?.length);
  // changes to apply say more than a skipped host; a dry run that skipped hosts is not a clean 0
  const exitCode = pending ? ExitCode.changesPending : skipped.length ? ExitCode.partial : ExitCode.ok;
  if (json) {
    const skippedHosts = skipped.map((h) => ({ name: h.name, address: h.privateIp, reason: "unreachable over SSH" }));
    printJson({
      cluster: config.name,
      dryRun: true,
      changesPending: pending,
      topology,
      removals,
      skipped: skippedHosts,
      stages: plans,
    });
    return exitCode;
  }
  for (const line of topology) reporter.warn(line);
  for (const line of removals) reporter.info(line);
  for (const plan of plans) {
    if (plan.skipped) reporter.info(`${plan.stage}: skipped (${plan.skipped})`);
    else if (plan.changes === undefined) reporter.info(`${plan.stage}: no dry run for this stage (it decides while it runs)`);
    else if (!plan.changes.length) reporter.success(`${plan.stage}: no changes`);
    else {
      reporter.info(`${plan.stage}:`);
      for (const change of plan.changes) reporter.info(`  ${change}`);
    }
  }
  if (pending) reporter.info("changes pending (exit 5): run without --dry-run to apply them");
  else if (skipped.length)
    reporter.warn(`no changes on the reachable hosts; not planned: ${skipped.map((h) => h.name).join(", ")} (exit 6)`);
  return exitCode;
}
