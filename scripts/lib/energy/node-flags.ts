/**
 * Node.js flags the exporter runs with: the Nomad job passes the same (keep
 * jobs/energy-exporter.nomad.hcl in step; a unit test checks), and the bench
 * measures with them. A 1 MB young generation keeps the RSS of a process that
 * allocates a little every second near its live size (about 25 MB less at
 * 500 tasks, for no measurable CPU).
 */
export const exporterNodeFlags: string[] =
  process.env.ENERGY_FLAGS !== undefined ? process.env.ENERGY_FLAGS.split(" ").filter(Boolean) : ["--max-semi-space-size=1"];
