/**
 * Node.js flags the exporter runs with: the Nomad job passes the same (keep
 * jobs/energy-exporter.nomad.hcl in step; a unit test checks), and the bench
 * measures with them. A 1 MB young generation keeps the RSS of a process that
 * allocates a little every second near its live size (measured at 500 tasks:
 * RSS about 75 MB instead of 105 MB; 2 and 4 MB gave 88 and 85 MB).
 * `--single-threaded` (V8: no GC, compiler or platform worker threads; the JS
 * heap is about 17 MB at 500 tasks, so GC on the main thread costs little)
 * lowers peak RSS by 6–8 MB at 500 tasks (72–75 MB instead of 80–83 MB on the
 * 2-core CI machine) at the same CPU time.
 */
export const exporterNodeFlags: string[] = ["--max-semi-space-size=1", "--single-threaded"];
