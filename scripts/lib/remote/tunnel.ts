/**
 * A local port forwarded over SSH to an address seen from a node (usually its
 * loopback). The tool talks to Vault, Consul and Nomad this way on every
 * provider, so no API port ever has to be reachable from the operator's machine.
 */
import { createServer, type Socket } from "node:net";
import type { Remote } from "./remote.ts";

export interface Tunnel {
  port: number;
  address: string;
  close(): Promise<void>;
}

export async function openTunnel(remote: Pick<Remote, "forwardOut">, host: string, port: number): Promise<Tunnel> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    remote.forwardOut(host, port).then(
      (stream) => {
        socket.pipe(stream).pipe(socket);
        stream.on("error", () => socket.destroy());
        socket.on("error", () => stream.destroy());
      },
      () => socket.destroy(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const localPort = typeof address === "object" && address ? address.port : 0;
  return {
    port: localPort,
    address: `127.0.0.1:${localPort}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
