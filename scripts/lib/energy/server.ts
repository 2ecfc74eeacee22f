/** The HTTP endpoints: /metrics for Prometheus, /healthz for Nomad's check. */
import { createServer, type Server } from "node:http";
import type { EnergyExporter } from "./exporter.ts";

export function createExporterServer(exporter: EnergyExporter, intervalSeconds: number, now: () => number = Date.now): Server {
  return createServer((request, response) => {
    const path = (request.url ?? "/").split("?")[0];
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.writeHead(405, { Allow: "GET, HEAD" }).end();
      return;
    }
    if (path === "/metrics") {
      const body = exporter.renderBytes();
      response.writeHead(200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" }).end(body);
      return;
    }
    if (path === "/healthz") {
      // healthy while samples keep coming: a stuck loop fails the check
      const last = exporter.lastSampleMs;
      const fresh = last !== undefined && now() - last <= 3 * intervalSeconds * 1000 + 1000;
      response.writeHead(fresh ? 200 : 503, { "Content-Type": "text/plain" }).end(fresh ? "ok\n" : "no recent sample\n");
      return;
    }
    response.writeHead(404, { "Content-Type": "text/plain" }).end("not found: try /metrics or /healthz\n");
  });
}
