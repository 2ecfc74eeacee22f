/**
 * Node.js flags the exporter runs with: the Nomad job passes the same (keep
 * jobs/energy-exporter.nomad.hcl in step; a unit test checks), and the bench
 * measures with them. A 1 MB young generation keeps the RSS of a process that
 * allocates a little every second near its live size (measured at 500 tasks:
 * RSS about 75 MB instead of 105 MB; 2 and 4 MB gave 88 and 85 MB).
 */
export const exporterNodeFlags: string[] = ["--max-semi-space-size=1"];
