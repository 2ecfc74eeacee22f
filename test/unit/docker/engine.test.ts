import { describe, expect, it } from "vitest";
import {
  aptInstallCommand,
  daemonJson,
  debFileName,
  debInstallCommand,
  dockerVersionFor,
  osFamily,
  parseSimulatedInstall,
  pinnedDockerVersions,
} from "../../../scripts/lib/docker/engine.ts";
import { InputError } from "../../../scripts/lib/errors.ts";

const debian12 = { id: "debian", versionId: "12" };
const ubuntu = { id: "ubuntu", versionId: "24.04", idLike: "debian" };

describe("Docker Engine install per OS family", () => {
  it("Debian and Ubuntu are the apt family; anything else is refused with the host named", () => {
    expect(osFamily(debian12, "client-1")).toBe("debian");
    expect(osFamily(ubuntu, "client-1")).toBe("debian");
    expect(osFamily({ id: "linuxmint", versionId: "21", idLike: "ubuntu debian" }, "c")).toBe("debian");
    expect(() => osFamily({ id: "rocky", versionId: "9", idLike: "rhel centos fedora" }, "client-2")).toThrow(
      /client-2: Docker Engine can only be installed on Debian or Ubuntu \(found rocky 9\)/,
    );
  });

  it("pins Debian 12's docker.io; other releases must name theirs", () => {
    expect(dockerVersionFor(debian12, "c")).toBe(pinnedDockerVersions["debian 12"]);
    expect(dockerVersionFor(debian12, "c")).toMatch(/^20\.10\.\d+\+dfsg/);
    expect(dockerVersionFor(ubuntu, "c", "26.1.3-0ubuntu1~24.04.1")).toBe("26.1.3-0ubuntu1~24.04.1");
    const error = (() => {
      try {
        dockerVersionFor(ubuntu, "client-1");
      } catch (e) {
        return e as InputError;
      }
    })();
    expect(error).toBeInstanceOf(InputError);
    expect(error?.message).toContain("client-1: no pinned docker.io version for ubuntu 24.04");
    expect(error?.hint).toContain("jobs.docker.version");
  });

  it("apt: refreshes the lists and installs exactly the pinned version, without recommends, quoted", () => {
    const command = aptInstallCommand("20.10.24+dfsg1-1+deb12u1+b6");
    expect(command).toBe(
      "DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io=20.10.24+dfsg1-1+deb12u1+b6",
    );
    // a hostile version string stays one argument
    expect(aptInstallCommand("1; rm -rf /")).toContain("'docker.io=1; rm -rf /'");
  });

  it("upload: installs the uploaded files and downloads nothing", () => {
    const command = debInstallCommand(["runc_1.1.5+ds1-1+deb12u1_amd64.deb", "docker.io_20.10.24+dfsg1-1+deb12u1+b6_amd64.deb"]);
    expect(command).toMatch(/^DEBIAN_FRONTEND=noninteractive dpkg --install /);
    expect(command).toContain("/var/cache/hashistack/debs/runc_1.1.5+ds1-1+deb12u1_amd64.deb");
    expect(command).not.toContain("apt-get update");
    expect(() => debInstallCommand([])).toThrow();
  });

  it("reads what apt would install from its simulation, upgrades included", () => {
    const output = [
      "NOTE: This is only a simulation!",
      "Inst runc (1.1.5+ds1-1+deb12u1 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [amd64])",
      "Inst libip6tc2 [1.8.8-1] (1.8.9-2 Debian:12.15/oldstable [amd64])",
      "Conf runc (1.1.5+ds1-1+deb12u1 Debian:12.15/oldstable [amd64])",
    ].join("\n");
    expect(parseSimulatedInstall(output)).toEqual([
      { name: "runc", version: "1.1.5+ds1-1+deb12u1" },
      { name: "libip6tc2", version: "1.8.9-2" },
    ]);
    expect(debFileName("tzdata", "1:2024a-0+deb12u1")).toBe("tzdata_1%3a2024a-0+deb12u1_amd64.deb");
  });

  it("daemon.json: rotated logs, live-restore, no TCP socket, insecure registry only when given", () => {
    const plain = JSON.parse(daemonJson()) as Record<string, unknown>;
    expect(plain).toEqual({
      "log-driver": "json-file",
      "log-opts": { "max-size": "10m", "max-file": "3" },
      "live-restore": true,
      "no-new-privileges": true,
    });
    expect(plain).not.toHaveProperty("hosts");
    const withRegistry = JSON.parse(daemonJson({ insecureRegistries: ["10.73.0.1:5000"] })) as Record<string, unknown>;
    expect(withRegistry["insecure-registries"]).toEqual(["10.73.0.1:5000"]);
    // stable text: an unchanged config is an unchanged file (no restart)
    expect(daemonJson({ insecureRegistries: ["b:1", "a:1"] })).toBe(daemonJson({ insecureRegistries: ["a:1", "b:1"] }));
  });
});
