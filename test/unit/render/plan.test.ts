import { parse as parseHcl } from "@cdktf/hcl2json";
import { describe, expect, it } from "vitest";
import { nodeLayout } from "../../../scripts/lib/render/layout.ts";
import { type HostPlan, planCluster } from "../../../scripts/lib/render/plan.ts";
import { plannedInventory } from "../../../scripts/lib/topology.ts";
import { fixedSecrets, makeConfig } from "../../helpers/fixtures.ts";

const config = makeConfig({ topology: { servers: 3, clients: 2, vaultHa: false } });
const inventory = plannedInventory(config, "10.99.0.0/24", { user: "root", port: 22 }, "local");
const secrets = fixedSecrets(inventory.hosts.map((h) => h.name));
const plans = planCluster(config, inventory, secrets);
const layout = nodeLayout();

function fileOf(plan: HostPlan | undefined, path: string) {
  const file = plan?.files.find((f) => f.path === path);
  if (!file) throw new Error(`no ${path} for ${plan?.host.name}`);
  return file;
}
// hcl2json turns blocks into lists of objects
type Hcl = Record<string, unknown>;
const block = (value: unknown): Hcl => (value as Hcl[])[0] as Hcl;
const hclOf = async (plan: HostPlan | undefined, path: string) => (await parseHcl(path, fileOf(plan, path).content)) as Hcl;
const server = plans.find((p) => p.host.name === "server-1");
const client = plans.find((p) => p.host.name === "client-1");

describe("rendered files", () => {
  it("every HCL file parses with the real HCL2 parser", async () => {
    let parsed = 0;
    for (const plan of plans) {
      for (const file of plan.files.filter((f) => f.path.endsWith(".hcl"))) {
        await expect(parseHcl(file.path, file.content), `${plan.host.name}:${file.path}`).resolves.toBeTypeOf("object");
        parsed++;
      }
    }
    expect(parsed).toBe(5 * 3 + 1); // consul, nomad, consul-template per host + vault on server-1
  });

  it("the parser does reject broken HCL (the check above can fail)", async () => {
    await expect(parseHcl("x.hcl", 'a = "unterminated\n')).rejects.toThrow();
  });

  it("Consul servers: private bind/advertise, literal retry_join, TLS verification, ACL default deny, gossip", async () => {
    const hcl = await hclOf(server, layout.consul.configFile);
    expect(hcl).toMatchObject({
      server: true,
      bootstrap_expect: 3,
      bind_addr: "10.99.0.11",
      advertise_addr: "10.99.0.11",
      retry_join: ["10.99.0.11", "10.99.0.12", "10.99.0.13"],
      encrypt: secrets.consulGossipKey,
      encrypt_verify_incoming: true,
    });
    const tls = block(hcl.tls);
    expect(block(tls.defaults)).toMatchObject({ verify_incoming: true, verify_outgoing: true, ca_file: layout.consul.caFile });
    expect(block(tls.internal_rpc)).toEqual({ verify_server_hostname: true });
    expect(block(hcl.ports)).toMatchObject({ http: -1, https: 8501 });
    expect(block(hcl.auto_encrypt)).toEqual({ allow_tls: true });
    const acl = block(hcl.acl);
    expect(acl).toMatchObject({ enabled: true, default_policy: "deny" });
    const agentToken = secrets.consulAgentTokens["server-1"];
    expect(block(acl.tokens)).toEqual({ agent: agentToken, dns: agentToken });
  });

  it("Consul clients: auto_encrypt, no server settings, their own agent token", async () => {
    const hcl = await hclOf(client, layout.consul.configFile);
    expect(hcl.server).toBeUndefined();
    expect(hcl.bootstrap_expect).toBeUndefined();
    expect(hcl.bind_addr).toBe("10.99.0.101");
    expect(block(hcl.auto_encrypt)).toEqual({ tls: true });
    const agentToken = secrets.consulAgentTokens["client-1"];
    expect(block(block(hcl.acl).tokens)).toEqual({ agent: agentToken, dns: agentToken });
  });

  it("Nomad servers and clients: mTLS with hostname and client verification, ACLs, workload identity, telemetry", async () => {
    const serverHcl = await hclOf(server, layout.nomad.configFile);
    const serverBlock = block(serverHcl.server);
    expect(serverBlock).toMatchObject({ enabled: true, bootstrap_expect: 3, encrypt: secrets.nomadGossipKey });
    expect(block(serverBlock.server_join).retry_join).toEqual(["10.99.0.11", "10.99.0.12", "10.99.0.13"]);
    expect(serverHcl.client).toBeUndefined();
    for (const hcl of [serverHcl, await hclOf(client, layout.nomad.configFile)]) {
      expect(block(hcl.tls)).toMatchObject({ http: true, rpc: true, verify_server_hostname: true, verify_https_client: true });
      expect(block(hcl.acl)).toEqual({ enabled: true });
      const consul = block(hcl.consul);
      expect(block(consul.service_identity)).toMatchObject({ aud: ["consul.io"] });
      expect(block(consul.task_identity)).toMatchObject({ aud: ["consul.io"] });
      expect(block(block(hcl.vault).default_identity)).toMatchObject({ aud: ["vault.io"] });
      expect(block(hcl.telemetry)).toMatchObject({ prometheus_metrics: true, publish_allocation_metrics: true });
    }
    const clientHcl = await hclOf(client, layout.nomad.configFile);
    expect(block(block(clientHcl.client).server_join).retry_join).toEqual([
      "10.99.0.11:4647",
      "10.99.0.12:4647",
      "10.99.0.13:4647",
    ]);
    expect(Object.keys(clientHcl.plugin as object).sort()).toEqual(["exec", "raw_exec"]);
  });

  it("the docker runtime profile configures the docker plugin instead", async () => {
    const docker = planCluster(makeConfig({ jobs: { runtime: "docker" } }), inventory, secrets);
    const hcl = await hclOf(
      docker.find((p) => p.host.name === "client-1"),
      layout.nomad.configFile,
    );
    expect(Object.keys(hcl.plugin as object)).toEqual(["docker", "exec"]);
    const plugin = block(block((hcl.plugin as Record<string, unknown>).docker).config);
    // tasks cannot mount host paths or run privileged; NET_RAW and DAC_OVERRIDE are not grantable
    expect(block(plugin.volumes)).toEqual({ enabled: false });
    expect(plugin.allow_privileged).toBe(false);
    expect(plugin.allow_caps).toEqual(expect.arrayContaining(["CHOWN", "SETUID", "SETGID", "KILL", "NET_BIND_SERVICE"]));
    for (const cap of ["NET_RAW", "DAC_OVERRIDE", "SYS_ADMIN", "MKNOD", "SETFCAP", "ALL"])
      expect(plugin.allow_caps).not.toContain(cap);
    expect(plugin.extra_labels).toContain("namespace");
  });

  it("docker-profile clients offer the platform's host paths as read-only host volumes; exec clients do not", async () => {
    const dockerPlans = planCluster(makeConfig({ jobs: { runtime: "docker" } }), inventory, secrets);
    const volumes = async (plansOf: HostPlan[]) =>
      block(
        (
          await hclOf(
            plansOf.find((p) => p.host.name === "client-1"),
            layout.nomad.configFile,
          )
        ).client,
      ).host_volume as Record<string, Hcl[]>;
    const docker = await volumes(dockerPlans);
    expect(block(docker["host-sys"])).toEqual({ path: "/sys", read_only: true });
    expect(block(docker["host-proc"])).toEqual({ path: "/proc", read_only: true });
    // no host volume reaches the agents' keys
    expect(Object.values(docker).map((v) => block(v).path)).not.toContain(layout.nomad.tlsDir);
    expect(block(docker["docker-sock"])).toMatchObject({ path: "/var/run/docker.sock" });
    expect(Object.keys(await volumes(plans)).sort()).toEqual(["grafana", "prometheus"]);
  });

  it("clients skip the cloud metadata probes their provider's nodes cannot answer; static hosts keep them", async () => {
    const denied = async (provider: "local" | "vagrant" | "digitalocean" | "static") => {
      const plan = planCluster(config, { ...inventory, provider }, secrets).find((p) => p.host.name === "client-1");
      const client = block((await hclOf(plan, layout.nomad.configFile)).client);
      const options = ((client.options as Hcl[])[0] ?? client.options) as Record<string, string>;
      return options["fingerprint.denylist"]?.split(",").sort();
    };
    const clouds = ["env_aws", "env_azure", "env_digitalocean", "env_gce"];
    expect(await denied("local")).toEqual(clouds);
    expect(await denied("vagrant")).toEqual(clouds);
    expect(await denied("digitalocean")).toEqual(["env_aws", "env_azure", "env_gce"]);
    expect(await denied("static")).toBeUndefined();
  });

  it("exec tasks on every client: a chroot without the agents' folders, no root or agent users, no file-permission capabilities", async () => {
    for (const runtime of ["exec", "docker"]) {
      const plan = planCluster(makeConfig({ jobs: { runtime } }), inventory, secrets).find((p) => p.host.name === "client-1");
      const hcl = await hclOf(plan, layout.nomad.configFile);
      const client = (hcl.client as Hcl[])[0] as Hcl;
      const chroot = Object.keys(((client.chroot_env as Hcl[])[0] ?? client.chroot_env) as Hcl);
      expect(chroot).toContain("/usr");
      expect(chroot.filter((path) => path === "/etc" || path.startsWith("/etc/consul") || path.startsWith("/etc/nomad"))).toEqual(
        [],
      );
      const options = ((client.options as Hcl[])[0] ?? client.options) as Record<string, string>;
      expect(options["user.denylist"]?.split(",")).toEqual(expect.arrayContaining(["root", "consul", "nomad", "vault"]));
      const exec = (((hcl.plugin as Hcl).exec as Hcl[])[0]?.config as Hcl[])[0] as Hcl;
      expect(exec.allow_caps).not.toContain("dac_override");
      for (const cap of ["chown", "fowner", "setuid", "setgid", "setfcap", "sys_chroot", "mknod"])
        expect(exec.allow_caps).not.toContain(cap);
      expect(exec.denied_host_uids).toBe("0-999");
    }
  });

  it("Vault only on its host: raft storage, TLS listeners on the private address and loopback", async () => {
    expect(plans.filter((p) => p.files.some((f) => f.path === layout.vault.configFile)).map((p) => p.host.name)).toEqual([
      "server-1",
    ]);
    const hcl = await hclOf(server, layout.vault.configFile);
    expect(hcl.api_addr).toBe("https://10.99.0.11:8200");
    const listeners = (hcl.listener as { tcp: Hcl[] }).tcp;
    expect(listeners.map((l) => l.address)).toEqual(["10.99.0.11:8200", "127.0.0.1:8200"]);
    for (const listener of listeners) {
      expect(listener.tls_disable).toBeUndefined();
      expect(listener.tls_cert_file).toBe(layout.vault.certFile);
    }
    expect(Object.keys(hcl.storage as object)).toEqual(["raft"]);
  });

  it("Vault HA peers retry_join each other", async () => {
    const ha = makeConfig({ topology: { servers: 3, clients: 0, vaultHa: true } });
    const haInventory = plannedInventory(ha, "10.99.0.0/24", { user: "root", port: 22 }, "local");
    const haPlans = planCluster(ha, haInventory, fixedSecrets(haInventory.hosts.map((h) => h.name)));
    const hcl = await hclOf(haPlans[1], layout.vault.configFile);
    const raft = block((hcl.storage as { raft: Hcl[] }).raft);
    expect((raft.retry_join as Hcl[]).map((r) => r.leader_api_addr)).toEqual([
      "https://10.99.0.11:8200",
      "https://10.99.0.13:8200",
    ]);
  });

  it("certificate templates ask for the names verify_server_hostname checks", async () => {
    const templates = (plan: HostPlan | undefined) =>
      plan?.files.filter((f) => f.path.endsWith(".pem.tpl")).map((f) => /common_name=([^"]+)/.exec(f.content)?.[1]);
    expect(templates(server)).toEqual(["server.dc1.consul", "server.global.nomad", "vault.service.consul"]);
    expect(templates(client)).toEqual(["client.dc1.consul", "client.global.nomad"]);
    const nomadServer = fileOf(server, `${layout.consulTemplate.templatesDir}/nomad-server.pem.tpl`).content;
    expect(nomadServer).toContain('pkiCert "pki-nomad/issue/server"');
    expect(nomadServer).toContain('"ip_sans=127.0.0.1,10.99.0.11"');
    // the template only fills its bundle; the command installs the agent's files by rename (no writeToFile)
    expect(nomadServer).not.toContain("writeToFile");
    const renewal = await hclOf(server, layout.consulTemplate.configFile);
    const nomadTemplate = (renewal.template as Hcl[]).find((t) => String(t.source).endsWith("nomad-server.pem.tpl"));
    expect(nomadTemplate?.destination).toBe(`${layout.nomad.tlsDir}/agent-bundle.pem`);
    expect(nomadTemplate?.command).toEqual([
      layout.consulTemplate.installScript,
      `${layout.nomad.tlsDir}/agent-bundle.pem`,
      layout.nomad.certFile,
      layout.nomad.keyFile,
      "nomad",
      "nomad",
    ]);
    expect(fileOf(server, layout.consulTemplate.installScript).mode).toBe(0o755);
  });

  it("files holding secrets are marked and not world-readable", () => {
    for (const plan of plans) {
      for (const file of plan.files) {
        const holdsSecret = file.content.includes(secrets.consulGossipKey) || file.content.includes(secrets.nomadGossipKey);
        if (holdsSecret) expect(file.secret, file.path).toBe(true);
        if (file.secret) expect(file.mode & 0o007, file.path).toBe(0);
      }
    }
  });

  it("systemd units have the sections systemd needs and restart on failure", () => {
    for (const file of server?.files.filter((f) => f.path.endsWith(".service")) ?? []) {
      expect(file.content, file.path).toMatch(/^\[Unit\]$/m);
      expect(file.content, file.path).toMatch(/^\[Service\]$/m);
      expect(file.content, file.path).toMatch(/^Restart=on-failure$/m);
      expect(file.content, file.path).toMatch(/^\[Install\]\nWantedBy=multi-user.target$/m);
    }
  });

  it("values are quoted so they cannot inject HCL", async () => {
    const hostile = { ...secrets, consulGossipKey: 'x" \n evil = "${file("/etc/shadow")}' };
    const [plan] = planCluster(config, inventory, hostile);
    const hcl = await hclOf(plan, layout.consul.configFile);
    // hcl2json keeps template escapes as written: "$${" is a literal "${", not interpolation
    expect(hcl.encrypt).toBe('x" \n evil = "$${file("/etc/shadow")}');
    expect(hcl.evil).toBeUndefined();
  });
});

describe("the Nomad JWKS proxy", () => {
  it("is planned on every server (Consul servers, Vault) and on no client, as the nomad user on loopback", () => {
    for (const plan of plans) {
      const paths = plan.files.map((f) => f.path);
      const expected = plan.host.roles.includes("server") || plan.host.roles.includes("vault");
      expect(paths.includes(layout.jwksProxy.unit), plan.host.name).toBe(expected);
      expect(paths.includes(layout.jwksProxy.script), plan.host.name).toBe(expected);
    }
    const unit = fileOf(server, layout.jwksProxy.unit).content;
    expect(unit).toMatch(/^User=nomad$/m);
    expect(unit).toMatch(/^Environment=JWKS_PROXY_HOST=127\.0\.0\.1$/m);
    expect(unit).toMatch(/^Environment=JWKS_PROXY_PORT=4649$/m);
    // Nomad listens on the private address only
    expect(unit).toMatch(/^Environment=JWKS_PROXY_NOMAD_ADDR=https:\/\/10\.99\.0\.11:4646$/m);
    expect(unit).toMatch(/^ReloadPropagatedFrom=nomad\.service$/m);
    expect(unit).toContain(`ExecStart=/usr/bin/node ${layout.jwksProxy.script}`);
    const script = fileOf(server, layout.jwksProxy.script);
    expect(script.mode).toBe(0o644);
    expect(script.content).toContain('const path = "/.well-known/jwks.json"');
  });
});

describe("where renewal agents and Nomad reach Vault", () => {
  it("a Vault node uses its own Vault on loopback; other nodes' renewal agent and Nomad vault.service.consul", async () => {
    const ha = makeConfig({ topology: { servers: 3, clients: 1 } });
    const haInventory = plannedInventory(ha, "10.99.0.0/24", { user: "root", port: 22 }, "local");
    const haPlans = planCluster(ha, haInventory, fixedSecrets(haInventory.hosts.map((h) => h.name)));
    for (const plan of haPlans) {
      const template = fileOf(plan, layout.consulTemplate.configFile).content;
      const nomad = block((await hclOf(plan, layout.nomad.configFile)).vault);
      const isVault = plan.host.roles.includes("vault");
      const expected = isVault ? "https://127.0.0.1:8200" : "https://vault.service.consul:8200";
      expect(template, plan.host.name).toContain(`address                = "${expected}"`);
      expect(nomad.address, plan.host.name).toBe(expected);
      // Vault nodes register their Vault in Consul with a health check that drops sealed ones
      // `services` blocks: Consul refuses a second `service` block ("'service' expected a map or struct, got slice")
      const services = ((await hclOf(plan, layout.consul.configFile)).services as Hcl[] | undefined) ?? [];
      const vault = services.find((s) => s.name === "vault");
      if (!isVault) expect(vault, plan.host.name).toBeUndefined();
      else {
        expect(vault).toMatchObject({ name: "vault", address: plan.host.privateIp, port: 8200 });
        expect(block(vault?.check)).toMatchObject({ http: "https://127.0.0.1:8200/v1/sys/health?standbyok=true" });
      }
      // servers and Vault nodes register their JWKS proxy's metrics for Prometheus, checked on loopback
      const proxy = services.find((s) => s.name === "nomad-jwks-proxy");
      if (!plan.host.roles.includes("server") && !isVault) expect(proxy, plan.host.name).toBeUndefined();
      else {
        expect(proxy, plan.host.name).toMatchObject({ address: plan.host.privateIp, port: 4650, tags: ["prometheus"] });
        expect(block(proxy?.check)).toMatchObject({ http: "https://127.0.0.1:4649/.well-known/jwks.json" });
      }
    }
    expect(haPlans.filter((p) => p.host.roles.includes("vault"))).toHaveLength(3);
  });
});
