#!/usr/bin/env -S npx tsx
import { existsSync } from "node:fs";
import { runCommand } from "./lib/cli/command.ts";
import { clusterContext } from "./lib/cli/cluster-context.ts";
import { printJson } from "./lib/cli/output.ts";
import { ExitCode } from "./lib/errors.ts";
import { loadInventory } from "./lib/inventory/load.ts";
import { providerFor } from "./lib/providers/index.ts";
import { providerTypes } from "./lib/providers/registry.ts";
import { type ClusterHealth, clusterHealth, credentialPaths } from "./lib/stages/health.ts";
import { readStageRecords } from "./lib/stages/pipeline.ts";
import { openClusterRun } from "./lib/stages/run-context.ts";

await runCommand<{ provider?: string }>({
  name: "status",
  summary: "show the nodes and the cluster's health: members, raft peers, leaders, clients, Vault seal, certificate expiry",
  common: { cluster: true, config: true, output: true },
  options: {
    provider: {
      type: "string",
      description: `provider (${providerTypes.join(", ")}; default: from the config)`,
      valueName: "NAME",
    },
  },
  async run({ flags, reporter }) {
    const context = await clusterContext(flags, reporter);
    const nodes = await providerFor(context.config.provider.type).status(context);
    const stages = await readStageRecords(context);
    let health: ClusterHealth | undefined;
    let credentials: ReturnType<typeof credentialPaths> | undefined;
    if (stages.nomad && existsSync(context.state.inventoryCopy)) {
      const run = await openClusterRun(context, await loadInventory(context.state.inventoryCopy), { tolerateUnreachable: true });
      try {
        health = await clusterHealth(run);
        credentials = credentialPaths(run);
      } finally {
        run.close();
      }
    }
    const healthy = nodes.nodes.every((n) => n.state === "running") && (!health || health.problems.length === 0);
    if (flags.output === "json") {
      printJson({ cluster: context.config.name, healthy, ...nodes, stages, health, credentials });
      return healthy ? ExitCode.ok : ExitCode.operation;
    }
    reporter.info(`cluster '${context.config.name}' on the ${nodes.provider} provider`);
    for (const n of nodes.nodes) {
      const line = `${n.name.padEnd(10)} ${n.address.padEnd(15)} ${n.state}${n.detail ? ` (${n.detail})` : ""}`;
      if (n.state === "running") reporter.success(line);
      else reporter.warn(line);
    }
    if (!health) {
      reporter.info("the cluster stages have not run yet: npm run bootstrap");
      return healthy ? ExitCode.ok : ExitCode.operation;
    }
    reporter.info(
      `Consul: leader ${health.consul.leader ?? "none"}, ${health.consul.peers} raft peers, ${health.consul.members.filter((m) => m.status === "alive").length}/${health.consul.members.length} members alive`,
    );
    reporter.info(
      `Nomad: leader ${health.nomad.leader ?? "none"}, ${health.nomad.peers} servers, ${health.nomad.nodes.filter((n) => n.status === "ready").length}/${health.nomad.nodes.length} clients ready`,
    );
    if (health.nomad.jobs.length)
      reporter.info(
        `platform jobs: ${health.nomad.jobs.map((j) => `${j.id} ${j.status === "running" ? `${j.running} running` : j.status}`).join(", ")}`,
      );
    for (const v of health.vault)
      reporter.info(
        `Vault on ${v.host}: ${v.error ? `unreachable (${v.error})` : v.sealed ? "sealed" : `unsealed, ${v.version}`}`,
      );
    const trusted = health.identity.proxies.filter((x) => x.keys && health.identity.nomadKeys.every((k) => x.keys?.includes(k)));
    reporter.info(
      `workload identity: ${health.identity.nomadKeys.length} Nomad signing keys, served by the JWKS proxy on ${trusted.length}/${health.identity.proxies.length} Consul/Vault nodes`,
    );
    const soonest = health.certificates
      .filter((c) => c.hoursLeft !== undefined)
      .sort((a, b) => (a.hoursLeft ?? 0) - (b.hoursLeft ?? 0))[0];
    if (soonest) reporter.info(`certificates: the first expires in ${soonest.hoursLeft} h (${soonest.host} ${soonest.file})`);
    for (const problem of health.problems) reporter.warn(problem);
    if (credentials) {
      reporter.info(`CA certificate: ${credentials.caCertificate}; operator certificate: ${credentials.operatorCertificate}`);
      reporter.info(`tokens (0600 files): ${context.state.secrets}/ — 'npm run env -- --with-tokens' exports them`);
    }
    return healthy ? ExitCode.ok : ExitCode.operation;
  },
});
