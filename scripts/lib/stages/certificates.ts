/**
 * certificates: every node gets the cluster root CA, its renewal token (0600)
 * and consul-template, which issues the Consul, Nomad (and Vault) certificates
 * from the PKI, renews them before expiry and reloads the agents.
 *
 * Nodes without Vault renew through vault.service.consul, which needs their Consul
 * agent, which needs a certificate: their first certificates are issued by one
 * `consul-template -once` run against a Vault node's address.
 */
import { readFile } from "node:fs/promises";
import { OperationError } from "../errors.ts";
import { hostsWithRole, type InventoryHost } from "../inventory/schema.ts";
import { onEachHost, requireAllSucceeded } from "../remote/fanout.ts";
import { sh } from "../remote/command.ts";
import type { Remote } from "../remote/remote.ts";
import { nodeLayout, ports } from "../render/layout.ts";
import { ensureService, filesUnder, installFiles } from "./install.ts";
import { resumableRollout } from "./resume.ts";
import type { ClusterRun } from "./run-context.ts";
import type { Stage } from "./stage.ts";

const layout = nodeLayout();

export const certificatesStage: Stage = {
  name: "certificates",
  description: "the root CA and consul-template on every node, which issues and renews the agents' certificates",
  run: runCertificates,
};

async function runCertificates(run: ClusterRun): Promise<string> {
  const rootCa = await readFile(run.state.tlsFiles.rootCa, "utf8");
  // a node whose new files were written by a run that stopped before reloading consul-template reloads now
  const resume = await resumableRollout(run.state, "consul-template", run.inventory.hosts);
  const outcomes = await onEachHost(
    run.inventory.hosts,
    async (host) => {
      const remote = run.remote(host);
      const token = await run.secrets.read(`vault-renewal-token.${host.name}`);
      if (!token) throw new OperationError(`${host.name}: no renewal token in the state; run the vault stage first.`);
      const plan = run.plans.get(host.name);
      const vaultAddresses = hostsWithRole(run.inventory, "vault").map((v) => `https://${v.privateIp}:${ports.vaultApi}`);
      const file = (path: string, content: string, mode: number) => ({ path, content, mode, owner: "root", group: "root" });
      const caFiles = [layout.consul.caFile, layout.nomad.caFile];
      // the CA copies, the token and consul-template's files: checked with one command
      const written = await installFiles(
        remote,
        [
          ...caFiles.map((caFile) => ({ ...file(caFile, rootCa, 0o644), secret: false })),
          { ...file(layout.consulTemplate.tokenFile, `${token}\n`, 0o600), secret: true },
          ...filesUnder(
            plan?.files ?? [],
            layout.consulTemplate.configDir,
            layout.consulTemplate.installScript,
            layout.consulTemplate.unit,
          ),
        ],
        // the rollout journal records the host before anything consul-template reads changes (the CA copies are the agents')
        (paths) => (paths.some((p) => !caFiles.includes(p)) ? resume.writing(host) : Promise.resolve()),
      );
      const changed = written.filter((f) => caFiles.includes(f)).length;
      const tokenChanged = written.includes(layout.consulTemplate.tokenFile);
      const files = written.filter((f) => !caFiles.includes(f) && f !== layout.consulTemplate.tokenFile);
      if (!host.roles.includes("vault") && !(await hasCertificates(remote)))
        await issueFirstCertificates(remote, host, vaultAddresses);
      const outcome = await ensureService(remote, "consul-template", {
        changed: files.length > 0 || tokenChanged || resume.isLeft(host),
        unitFileChanged: files.includes(layout.consulTemplate.unit),
        reload: !files.includes(layout.consulTemplate.unit),
      });
      await resume.done([host]);
      await waitForCertificates(remote, host);
      return changed + files.length + (outcome === "unchanged" ? 0 : 1);
    },
    { concurrency: run.config.concurrency },
  );
  const changes = requireAllSucceeded("certificates", outcomes).reduce((a, b) => a + b, 0);
  await resume.finish();
  return changes ? `renewal agent configured on ${run.inventory.hosts.length} nodes, certificates issued` : "no changes";
}

const certificateFiles = [layout.consul.certFile, layout.consul.keyFile, layout.nomad.certFile, layout.nomad.keyFile];
const certificatesPresent = certificateFiles.map((f) => sh`test -s ${f}`).join(" && ");

async function hasCertificates(remote: Remote): Promise<boolean> {
  return (await remote.runAsRoot(certificatesPresent, { allowFailure: true })).code === 0;
}

/** One consul-template run that renders every template once, through the first Vault node that answers. */
async function issueFirstCertificates(remote: Remote, host: InventoryHost, vaultAddresses: string[]): Promise<void> {
  const binary = `${layout.binDir}/consul-template`;
  const failures: string[] = [];
  for (const address of vaultAddresses) {
    const once = await remote.runAsRoot(
      sh`timeout 45 ${binary} -config=${layout.consulTemplate.configFile} -once -vault-addr=${address}`,
      { allowFailure: true, timeoutMs: 60_000 },
    );
    if (once.code === 0 && (await hasCertificates(remote))) return;
    failures.push(`${address}: ${once.stderr.trim().split("\n").slice(-3).join(" ") || `exit ${once.code}`}`);
  }
  throw new OperationError(`${host.name}: no Vault node issued its first certificates.`, {
    details: failures,
    hint: "Check that a Vault node is unsealed (npm run status) and reachable from this node on port 8200.",
  });
}

async function waitForCertificates(remote: Remote, host: InventoryHost): Promise<void> {
  const check = certificatesPresent;
  const wait = await remote.runAsRoot(`for i in $(seq 1 120); do ${check} && exit 0; sleep 0.5; done; exit 1`, {
    allowFailure: true,
    timeoutMs: 90_000,
  });
  if (wait.code !== 0) {
    const journal = await remote.runAsRoot("journalctl -u consul-template -n 15 --no-pager", { allowFailure: true });
    throw new OperationError(`${host.name}: consul-template did not write the certificates within 60s.`, {
      details: journal.stdout.trim().split("\n"),
      hint: "Check that Vault is reachable from the node and that the renewal token is valid.",
    });
  }
}
