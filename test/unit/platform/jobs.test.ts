import { stat } from "node:fs/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { InputError } from "../../../scripts/lib/errors.ts";
import { platformJobs, platformVariables, secretInputs } from "../../../scripts/lib/platform/jobs.ts";
import { statePaths } from "../../../scripts/lib/state/paths.ts";
import { SecretStore } from "../../../scripts/lib/state/secrets.ts";
import { loopbackInventory, makeConfig, tempDir } from "../../helpers/fixtures.ts";

let dir: Awaited<ReturnType<typeof tempDir>>;
let secrets: SecretStore;
const inventory = loopbackInventory([
  { name: "server-1", roles: ["server", "vault"], ip: "10.0.0.11" },
  { name: "client-1", roles: ["client"], ip: "10.0.0.101" },
]);
const nothingInstalled = async () => false;
const savedEnv = { ...process.env };

beforeEach(async () => {
  dir = await tempDir("platform");
  process.env.HASHISTACK_STATE_DIR = dir.path;
  secrets = new SecretStore(statePaths("lab"));
  delete process.env[secretInputs.runnerToken.env];
  delete process.env[secretInputs.slackWebhook.env];
});
afterEach(async () => {
  process.env = { ...savedEnv };
  await dir.remove();
});

describe("platform jobs", () => {
  it("deploys what the config enables and says why Grafana and the runner are skipped on exec nodes", async () => {
    const config = makeConfig({ jobs: { runtime: "exec", gitlabRunner: { enabled: true } } });
    const jobs = await platformJobs(config, secrets, nothingInstalled);
    const byName = Object.fromEntries(jobs.map((j) => [j.name, j.skipped]));
    expect(Object.keys(byName)).toEqual(expect.arrayContaining(["prometheus", "alertmanager", "fabio", "grafana"]));
    expect(byName.prometheus).toBeUndefined();
    expect(byName.grafana).toMatch(/grafana package/);
    expect(byName["gitlab-runner"]).toMatch(/GITLAB_RUNNER_TOKEN/);
  });

  it("leaves disabled jobs out and runs Grafana where its image exists (docker)", async () => {
    const config = makeConfig({ jobs: { runtime: "docker", alertmanager: { enabled: false } } });
    const names = (await platformJobs(config, secrets, nothingInstalled)).filter((j) => !j.skipped).map((j) => j.name);
    expect(names).toContain("grafana");
    expect(names).not.toContain("alertmanager");
    // Grafana reads Prometheus through Fabio: the config says so instead of deploying a dashboard without data
    expect(() => makeConfig({ jobs: { fabio: { enabled: false } } })).toThrow(/Grafana needs jobs.prometheus and jobs.fabio/);
  });

  it("fills the certificate alarm from the leaf TTL and lists Vault's addresses", async () => {
    const config = makeConfig({ tls: { leafTtl: "24h" } });
    const jobs = await platformJobs(config, secrets, nothingInstalled);
    const vars = await platformVariables(config, inventory, secrets, jobs);
    const prometheus = vars["nomad/jobs/prometheus"] as Record<string, string>;
    // 7 % (tls.alertLifetimeLeft) of 24 h: no longer capped at an hour
    expect(prometheus.cluster_rules).toContain("consul_agent_tls_cert_expiry < 6048");
    expect(prometheus.cluster_rules).not.toContain("__CERT_ALARM_SECONDS__");
    expect(prometheus.vault_targets).toBe('"10.0.0.11:8200"');
    expect(vars["nomad/jobs/alertmanager"]).toEqual({ receiver: "null" });
  });

  it("keeps a runner token given once in a 0600 file, and rejects a malformed one without echoing it", async () => {
    const config = makeConfig({ jobs: { runtime: "docker", gitlabRunner: { enabled: true } } });
    process.env[secretInputs.runnerToken.env] = "not-a-token-value";
    const error = await platformJobs(config, secrets, nothingInstalled).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect(JSON.stringify({ m: (error as InputError).message, h: (error as InputError).hint })).not.toContain(
      "not-a-token-value",
    );

    process.env[secretInputs.runnerToken.env] = "glrt-abcdefghijklmnop";
    const jobs = await platformJobs(config, secrets, nothingInstalled);
    expect(jobs.find((j) => j.name === "gitlab-runner")?.skipped).toBeUndefined();
    delete process.env[secretInputs.runnerToken.env];
    const vars = await platformVariables(config, inventory, secrets, jobs);
    expect(vars["nomad/jobs/gitlab-runner"]).toEqual({ url: "https://gitlab.com", token: "glrt-abcdefghijklmnop" });
    expect((await stat(secrets.fileFor(secretInputs.runnerToken.secret))).mode & 0o777).toBe(0o600);
  });

  it("routes alerts to Slack once a webhook is given, and generates Grafana's password once", async () => {
    const config = makeConfig({ jobs: { runtime: "docker" } });
    process.env[secretInputs.slackWebhook.env] = "https://hooks.slack.com/services/T000/B000/XXXX";
    const jobs = await platformJobs(config, secrets, nothingInstalled);
    const first = await platformVariables(config, inventory, secrets, jobs);
    const second = await platformVariables(config, inventory, secrets, jobs);
    expect(first["nomad/jobs/alertmanager"]?.receiver).toBe("slack");
    expect(first["nomad/jobs/grafana"]?.admin_password).toMatch(/^[0-9a-f-]{36}$/);
    expect(second["nomad/jobs/grafana"]?.admin_password).toBe(first["nomad/jobs/grafana"]?.admin_password);
    expect(JSON.parse(first["nomad/jobs/grafana"]?.dashboard_cluster ?? "").uid).toBe("hashistack-cluster");
  });
});
