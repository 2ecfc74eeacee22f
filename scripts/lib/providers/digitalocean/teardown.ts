/**
 * Teardown in a safe order: droplets (then wait until the tag lists none),
 * firewall, volume (retried while it detaches), VPC (retried while members
 * leave; never a default VPC), our project, our SSH key, and last the cluster
 * tag. Every failure is collected so one stuck resource does not hide the rest.
 */
import type { ClusterConfig } from "../../config/schema.ts";
import { OperationError, errorMessage } from "../../errors.ts";
import { DoApiError, type DoClient } from "./client.ts";
import { type Found, ownProject } from "./discover.ts";
import { doNames } from "./names.ts";
import type { Droplet } from "./resources.ts";
import { type DigitalOceanTiming, retryWhileBusy, waitUntil } from "./timing.ts";

/** Returns what was removed; throws an OperationError listing what could not be. */
export async function deleteCluster(
  api: DoClient,
  config: ClusterConfig,
  found: Found,
  timing: DigitalOceanTiming,
): Promise<string[]> {
  const tag = doNames(config.name).tag;
  const removed: string[] = [];
  const failed: string[] = [];
  const attempt = async (what: string, action: () => Promise<unknown>) => {
    try {
      await action();
      removed.push(what);
    } catch (error) {
      failed.push(`${what}: ${errorMessage(error)}`);
    }
  };
  // already gone is as good as deleted (a re-run after a partial teardown)
  const del = (path: string) =>
    api
      .delete(path)
      .catch((error: unknown) => (error instanceof DoApiError && error.status === 404 ? undefined : Promise.reject(error)));

  for (const d of found.droplets) await attempt(`droplet ${d.name} (${d.id})`, () => del(`/v2/droplets/${d.id}`));
  try {
    const empty = () => api.list<Droplet>("/v2/droplets", "droplets", { tag_name: tag }).then((p) => p.items.length === 0);
    await waitUntil(timing, empty, "the droplets to be deleted");
  } catch (error) {
    failed.push(errorMessage(error));
  }
  const { firewall, volume, vpc, key } = found;
  if (firewall) await attempt(`firewall ${firewall.name}`, () => del(`/v2/firewalls/${firewall.id}`));
  if (volume) {
    // a volume is detached asynchronously after its droplet is destroyed
    await attempt(`volume ${volume.name}`, () =>
      retryWhileBusy(timing, () => del(`/v2/volumes/${volume.id}`), `volume ${volume.name} to detach`),
    );
  }
  if (vpc && !vpc.default) {
    // members leave a VPC some time after the droplets are gone from the listing
    await attempt(`VPC ${vpc.name}`, () =>
      retryWhileBusy(timing, () => del(`/v2/vpcs/${vpc.id}`), `VPC ${vpc.name} to be empty`),
    );
  }
  const project = ownProject(config, found);
  if (project) {
    // a resource that could not be deleted stays in the project: waiting for it to empty would only time out
    const deleteProject = () => del(`/v2/projects/${project.id}`);
    await attempt(`project ${project.name}`, () =>
      failed.length ? deleteProject() : retryWhileBusy(timing, deleteProject, `project ${project.name} to be empty`),
    );
  }
  if (key) await attempt(`SSH key ${key.name}`, () => del(`/v2/account/keys/${key.id}`));
  // the cluster tag outlives its resources in the account; the role tags are shared and stay
  if (!failed.length) await attempt(`tag ${tag}`, () => del(`/v2/tags/${encodeURIComponent(tag)}`));
  if (failed.length) {
    throw new OperationError(`Teardown removed ${removed.length} resources but could not delete ${failed.length}.`, {
      details: failed,
      hint: "Run teardown again (it finds what is left by tag and name), or delete these in the control panel. Local state was kept.",
    });
  }
  return removed;
}
