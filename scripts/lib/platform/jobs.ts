/**
 * Which platform jobs a cluster runs, and the cluster-specific inputs they read
 * from their Nomad variables (nomad/jobs/<job> in the platform namespace):
 * alert rules, dashboards, Vault's addresses and the few secrets (Grafana's
 * admin password, a Slack webhook, a GitLab runner token). Job files stay free
 * of cluster specifics and secrets, so CI can redeploy them as they are.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { certificateAlarmSeconds, type ClusterConfig, runtimeProfile } from "../config/schema.ts";
import { InputError } from "../errors.ts";
import { hostsWithRole, type Inventory } from "../inventory/schema.ts";
import { ports } from "../render/layout.ts";
import type { SecretStore } from "../state/secrets.ts";

export const jobsDir = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "jobs");

export type PlatformJobName = "prometheus" | "alertmanager" | "grafana" | "fabio" | "gitlab-runner" | "energy-exporter";

export interface PlatformJob {
  name: PlatformJobName;
  file: string;
  /** why a configured job is not deployed (shown to the user), if it is not */
  skipped?: string;
}

/** Environment variables `bootstrap` reads secrets from once; they are then kept 0600 in the state. */
export const secretInputs = {
  slackWebhook: { env: "SLACK_WEBHOOK_URL", secret: "alertmanager-slack-webhook-url" },
  runnerToken: { env: "GITLAB_RUNNER_TOKEN", secret: "gitlab-runner-token" },
} as const;

export const jobFile = (name: PlatformJobName) => join(jobsDir, `${name}.nomad.hcl`);

/** The platform jobs the config enables, each with the reason it is skipped where it cannot run. */
export async function platformJobs(
  config: ClusterConfig,
  secrets: SecretStore,
  clientHas: (path: string) => Promise<boolean>,
): Promise<PlatformJob[]> {
  const exec = runtimeProfile(config) === "exec";
  const jobs: PlatformJob[] = [];
  const add = (name: PlatformJobName, skipped?: string) => jobs.push({ name, file: jobFile(name), skipped });
  if (config.jobs.prometheus.enabled) add("prometheus");
  if (config.jobs.alertmanager.enabled) add("alertmanager");
  if (config.jobs.fabio.enabled) add("fabio");
  if (config.jobs.grafana.enabled) {
    add(
      "grafana",
      exec && !(await clientHas("/usr/share/grafana/bin/grafana"))
        ? "the exec profile needs the grafana package (apt.grafana.com) on the clients; it is not there"
        : undefined,
    );
  }
  if (config.jobs.gitlabRunner.enabled) {
    const token = await runnerToken(secrets);
    add(
      "gitlab-runner",
      !token
        ? `no runner authentication token: set ${secretInputs.runnerToken.env}=glrt-… for one bootstrap run`
        : exec && !(await clientHas("/usr/bin/gitlab-runner"))
          ? "the exec profile needs the gitlab-runner package (packages.gitlab.com) on the clients; it is not there"
          : undefined,
    );
  }
  if (config.jobs.energyExporter.enabled && existsSync(jobFile("energy-exporter"))) add("energy-exporter");
  return jobs;
}

/** A secret given once through the environment is validated and kept in the state. */
async function secretFromEnv(
  secrets: SecretStore,
  input: { env: string; secret: string },
  valid: RegExp,
  expected: string,
): Promise<string | undefined> {
  const given = process.env[input.env]?.trim();
  if (given) {
    if (!valid.test(given)) {
      throw new InputError(`${input.env} does not look like ${expected}.`, {
        hint: `Unset it, or set it to ${expected}. The value is not shown here on purpose.`,
      });
    }
    await secrets.write(input.secret, given);
    return given;
  }
  return secrets.read(input.secret);
}

export const runnerToken = (secrets: SecretStore) =>
  secretFromEnv(secrets, secretInputs.runnerToken, /^glrt-[A-Za-z0-9_-]{10,}$/, "a runner authentication token (glrt-…)");

export const slackWebhook = (secrets: SecretStore) =>
  secretFromEnv(
    secrets,
    secretInputs.slackWebhook,
    /^https:\/\/hooks\.slack\.com\/services\/\S+$/,
    "a Slack incoming-webhook URL (https://hooks.slack.com/services/…)",
  );

async function repoFile(relative: string, fallback?: string): Promise<string> {
  const file = join(jobsDir, "files", relative);
  if (!existsSync(file) && fallback !== undefined) return fallback;
  return readFile(file, "utf8");
}

/** Nomad variables (path → items) the enabled jobs read. */
export async function platformVariables(
  config: ClusterConfig,
  inventory: Inventory,
  secrets: SecretStore,
  jobs: PlatformJob[],
): Promise<Record<string, Record<string, string>>> {
  const names = new Set(jobs.filter((j) => !j.skipped).map((j) => j.name));
  const variables: Record<string, Record<string, string>> = {};
  if (names.has("prometheus")) {
    // the same threshold `status` uses: renewal happens at 85-90 % of the lifetime
    const alarmSeconds = certificateAlarmSeconds(config);
    variables["nomad/jobs/prometheus"] = {
      cluster_rules: (await repoFile("prometheus/rules/cluster.rules.yml")).replaceAll(
        "__CERT_ALARM_SECONDS__",
        String(alarmSeconds),
      ),
      energy_rules: await repoFile("prometheus/rules/energy.rules.yml", "groups: []\n"),
      vault_targets: hostsWithRole(inventory, "vault")
        .map((h) => JSON.stringify(`${h.privateIp}:${ports.vaultApi}`))
        .join(", "),
    };
  }
  if (names.has("alertmanager")) {
    const webhook = await slackWebhook(secrets);
    // a variable needs at least one item; "receiver" documents which route is live
    variables["nomad/jobs/alertmanager"] = webhook ? { receiver: "slack", slack_webhook_url: webhook } : { receiver: "null" };
  }
  if (names.has("grafana")) {
    variables["nomad/jobs/grafana"] = {
      admin_password: (await secrets.ensure("grafana-admin-password", "uuid")).value,
      dashboard_cluster: await repoFile("grafana/dashboards/cluster.json"),
      dashboard_energy: await repoFile("grafana/dashboards/energy.json", "{}"),
    };
  }
  if (names.has("gitlab-runner")) {
    variables["nomad/jobs/gitlab-runner"] = {
      url: config.jobs.gitlabRunner.url,
      token: (await runnerToken(secrets)) as string,
    };
  }
  return variables;
}
