/**
 * The tenant model (docs/security.md): whoever holds a CI token or writes a job in a
 * tenant namespace is untrusted. This module holds the rules every stage applies,
 * so the Nomad template, the namespaces, the Consul binding rules and the tests all
 * read the same lists.
 */
import type { RuntimeProfile } from "../config/schema.ts";

/** Namespaces for untrusted workloads; each gets its own CI token. */
export const tenantNamespaces = ["dev", "prod"] as const;
export type TenantNamespace = (typeof tenantNamespaces)[number];

export const platformNamespace = "platform";

export function isTenantNamespace(name: string): name is TenantNamespace {
  return (tenantNamespaces as readonly string[]).includes(name);
}

/** The secret (state file) holding one environment's CI deploy token. */
export function ciTokenSecret(namespace: TenantNamespace): string {
  return `nomad-ci-token-${namespace}`;
}

/** The Nomad ACL policy of one environment's CI token. */
export function ciPolicyName(namespace: TenantNamespace): string {
  return `ci-deploy-${namespace}`;
}

/**
 * Tenant services are named `<namespace>-<name>` in Consul: the name is what Consul's
 * ACLs enforce, so a prefix per namespace keeps dev from claiming prod's names and
 * both from claiming the platform's.
 */
export function tenantServicePrefix(namespace: TenantNamespace): string {
  return `${namespace}-`;
}

/**
 * The Consul services the platform jobs register (jobs/*.nomad.hcl); only the
 * platform namespace may register them, and only their tags become Fabio routes.
 * A unit test checks this list against the job files.
 */
export const platformServices = ["prometheus", "alertmanager", "grafana", "fabio", "energy-exporter", "gitlab-runner"] as const;

/** What every client's Nomad agent enforces on exec tasks (templates/partials/nomad-*.hbs). */
export const taskIsolation = {
  /**
   * Nomad's default set minus every capability that overrides file permissions
   * (dac_override), changes owners, modes or ids (chown, fowner, fsetid, setuid,
   * setgid, setpcap), sets file capabilities (setfcap), makes devices (mknod) or
   * chroots: the exec chroot is built from hard links to the node's files.
   */
  execCapabilities: ["audit_write", "kill", "net_bind_service"],
  /** host system users and groups (root, the agents' users): exec tasks may not run as them */
  deniedHostIds: "0-999",
  /** Nomad's user deny list (exec, java, qemu): root and the agents' users by name */
  deniedUsers: ["root", "consul", "nomad", "vault"],
} as const;

/** The task drivers tenant namespaces may use, per runtime profile: only isolating ones. */
export function tenantTaskDrivers(runtime: RuntimeProfile): string[] {
  return runtime === "docker" ? ["docker", "exec"] : ["exec"];
}
