#!/usr/bin/env -S npx tsx
import { runCommand } from "./lib/cli/command.ts";
import { printJson } from "./lib/cli/output.ts";
import { nomadFromClusterState, nomadFromEnv } from "./lib/deploy/connect.ts";
import { deployJobs } from "./lib/deploy/deploy.ts";
import { discoverJobFiles } from "./lib/deploy/discover.ts";
import { defaultLogLines } from "./lib/deploy/failures.ts";
import { deployExitCode } from "./lib/deploy/exit-code.ts";
import { parseVarFlags } from "./lib/deploy/variables.ts";
import { ExitCode, InputError } from "./lib/errors.ts";
import { durationSeconds, isDuration } from "./lib/util/duration.ts";

interface DeployFlags {
  namespace?: string;
  var?: string[];
  varFile?: string[];
  detach?: boolean;
  validateOnly?: boolean;
  timeout?: string;
  force?: boolean;
  concurrency?: string;
  logLines?: string;
}

await runCommand<DeployFlags>({
  name: "deploy",
  summary: "validate, plan, register and watch Nomad jobs (for CI)",
  usage: "npm run deploy -- [options] <job files or directories>",
  common: { cluster: true, config: true, dryRun: true, output: true },
  allowPositionals: true,
  options: {
    namespace: {
      type: "string",
      description:
        "namespace for jobs that name none (default: NOMAD_NAMESPACE, else default; from the cluster state: the environment whose CI token is used, dev by default)",
      valueName: "NS",
    },
    var: {
      type: "string",
      multiple: true,
      description: "set a job variable (repeatable; wins over --var-file)",
      valueName: "K=V",
    },
    "var-file": { type: "string", multiple: true, description: "HCL file of variable values (repeatable)", valueName: "FILE" },
    "validate-only": { type: "boolean", description: "parse and validate the job files only (no plan, no changes)" },
    detach: { type: "boolean", description: "return after registration with the evaluation ID" },
    timeout: { type: "string", description: "per job wait for the deployment (default 10m)", valueName: "DURATION" },
    force: { type: "boolean", description: "take over jobs not managed by hashistack-deploy" },
    concurrency: { type: "string", description: "jobs deployed at once (default 4)", valueName: "N" },
    "log-lines": {
      type: "string",
      description: "lines of a failed task's stderr and stdout in the failure report (default 20; 0: none)",
      valueName: "N",
    },
  },
  examples: [
    "npm run deploy -- jobs/",
    "npm run deploy -- --dry-run --namespace dev --var image=registry/app:1.2 app.nomad.hcl",
    "NOMAD_ADDR=https://10.99.0.11:4646 NOMAD_TOKEN=… NOMAD_CACERT=ca.pem npm run deploy -- -o json app.nomad.hcl",
  ],
  async run({ flags, positionals, reporter }) {
    const timeout = flags.timeout ?? "10m";
    if (!isDuration(timeout) || durationSeconds(timeout) <= 0) {
      throw new InputError(`--timeout must be a duration such as 90s or 10m, not '${timeout}'.`);
    }
    const concurrency = Number(flags.concurrency ?? "4");
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new InputError(`--concurrency must be a whole number ≥ 1, not '${flags.concurrency}'.`);
    }
    const logLines = Number(flags.logLines ?? String(defaultLogLines));
    if (!Number.isInteger(logLines) || logLines < 0) {
      throw new InputError(`--log-lines must be a whole number ≥ 0, not '${flags.logLines}'.`);
    }
    const variables = parseVarFlags(flags.var ?? []);
    // bad paths are input errors before any connection is made
    const files = await discoverJobFiles(positionals);
    const namespace = flags.namespace ?? (process.env.NOMAD_NAMESPACE || undefined);
    const connection = nomadFromEnv() ?? (await nomadFromClusterState({ ...flags, namespace }, reporter));
    reporter.debug(`Nomad via ${connection.via}`);
    // Nomad carries on with whatever was registered; say so rather than leave a silent 130
    process.once("SIGINT", () => {
      process.stderr.write("✖ Interrupted: jobs already registered keep deploying in Nomad (nomad job status <job>).\n");
      process.exit(ExitCode.interrupted);
    });
    try {
      const results = await deployJobs(
        connection.nomad,
        {
          files,
          namespace,
          variables,
          varFiles: flags.varFile ?? [],
          dryRun: flags.dryRun,
          validateOnly: Boolean(flags.validateOnly),
          detach: Boolean(flags.detach),
          timeoutMs: durationSeconds(timeout) * 1000,
          force: Boolean(flags.force),
          concurrency,
          logLines,
        },
        reporter,
      );
      for (const r of results) {
        if (!r.error) continue;
        process.stderr.write(`✖ ${r.error.message}\n`);
        for (const d of r.error.details) process.stderr.write(`    ${d}\n`);
        if (r.error.hint) process.stderr.write(`  hint: ${r.error.hint}\n`);
      }
      const code = deployExitCode(results, { dryRun: flags.dryRun });
      if (flags.output === "json") printJson({ exitCode: code, jobs: results });
      else if (flags.dryRun && code === 5) reporter.info("changes pending (exit 5): run without --dry-run to apply them");
      return code;
    } finally {
      await connection.close();
    }
  },
});
