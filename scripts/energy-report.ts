#!/usr/bin/env -S npx tsx
// Energy and CO2e of a Nomad job or namespace over a time window, from Prometheus (for CI artifacts).
import { runCommand } from "./lib/cli/command.ts";
import { printJson } from "./lib/cli/output.ts";
import { energyReport, parseTime, reportMarkdown, reportText } from "./lib/energy/report.ts";
import { InputError } from "./lib/errors.ts";

interface Flags {
  job?: string;
  namespace?: string;
  from?: string;
  to?: string;
  prometheus?: string;
}

await runCommand<Flags>({
  name: "energy-report",
  summary: "how much energy and CO2e a Nomad job or namespace used between two times",
  outputs: ["text", "json", "markdown"],
  options: {
    job: { type: "string", description: "Nomad job ID", valueName: "NAME" },
    namespace: { type: "string", description: "Nomad namespace (alone: the whole namespace)", valueName: "NS" },
    from: {
      type: "string",
      description: "start: RFC 3339, Unix seconds, or -DURATION before now (write --from=-1h)",
      valueName: "T",
    },
    to: { type: "string", description: "end (default now)", valueName: "T" },
    prometheus: { type: "string", description: "Prometheus base URL (PROMETHEUS_URL)", valueName: "URL" },
    output: { type: "string", short: "o", description: "text, json or markdown", valueName: "FORMAT" },
  },
  examples: [
    "npm run energy-report -- --job web --namespace prod --from=-1h --prometheus http://127.0.0.1:9090",
    "npm run -s energy-report -- --namespace dev --from 2026-11-22T00:00:00Z --to 2026-11-23T00:00:00Z -o markdown > energy.md",
  ],
  async run({ flags, reporter }) {
    const prometheus = flags.prometheus ?? process.env.PROMETHEUS_URL;
    if (!prometheus) throw new InputError("Which Prometheus? Give --prometheus URL or set PROMETHEUS_URL.");
    if (!flags.from) throw new InputError("--from is required (e.g. --from=-1h or an RFC 3339 time).");
    const report = await energyReport({
      prometheus,
      job: flags.job,
      namespace: flags.namespace,
      from: parseTime(flags.from, "--from"),
      to: parseTime(flags.to ?? "now", "--to"),
    });
    const output = flags.output as string;
    if (output === "json") printJson(report);
    else if (output === "markdown") process.stdout.write(reportMarkdown(report));
    else for (const line of reportText(report)) reporter.info(line);
    return 0;
  },
});
