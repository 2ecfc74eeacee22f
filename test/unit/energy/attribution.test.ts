import { describe, expect, it } from "vitest";
import { attribute } from "../../../scripts/lib/energy/attribution.ts";
import { prng } from "../../helpers/energy-trees.ts";

describe("attribution", () => {
  it("gives idle to unattributed, and shares dynamic by CPU time with the rest to system", () => {
    const a = attribute({
      nodeJoules: 100,
      idleJoules: 40,
      nodeCpuSeconds: 4,
      tasks: [
        { key: "a", cpuSeconds: 2 },
        { key: "b", cpuSeconds: 1 },
      ],
    });
    expect(a.tasks.get("a")).toBeCloseTo(30, 9);
    expect(a.tasks.get("b")).toBeCloseTo(15, 9);
    expect(a.system).toBeCloseTo(15, 9);
    expect(a.unattributed).toBeCloseTo(40, 9);
  });

  it("normalises when tasks report more CPU than the node (reads a few ms apart)", () => {
    const a = attribute({
      nodeJoules: 10,
      idleJoules: 0,
      nodeCpuSeconds: 1,
      tasks: [
        { key: "a", cpuSeconds: 1.5 },
        { key: "b", cpuSeconds: 0.5 },
      ],
    });
    expect(a.tasks.get("a")).toBeCloseTo(7.5, 9);
    expect(a.tasks.get("b")).toBeCloseTo(2.5, 9);
    expect(a.system).toBeCloseTo(0, 9);
  });

  it("caps idle at the node's energy and attributes nothing when no CPU time was seen", () => {
    expect(attribute({ nodeJoules: 5, idleJoules: 9, nodeCpuSeconds: 1, tasks: [{ key: "a", cpuSeconds: 1 }] })).toMatchObject({
      idle: 5,
      dynamic: 0,
      unattributed: 5,
    });
    const none = attribute({ nodeJoules: 5, idleJoules: 1, nodeCpuSeconds: 0, tasks: [{ key: "a", cpuSeconds: 0 }] });
    expect([none.tasks.get("a"), none.system, none.unattributed]).toEqual([0, 0, 5]);
  });

  it("conserves energy: tasks + system + unattributed = node, over 2000 random intervals (seeded)", () => {
    const random = prng(20261122);
    for (let i = 0; i < 2000; i++) {
      const scale = 10 ** Math.floor(random() * 6 - 2); // 0.01 J … 1000 J
      const nodeJoules = random() < 0.05 ? 0 : random() * scale;
      const idleJoules = random() * scale * 1.5; // sometimes above the node's energy
      const tasks = Array.from({ length: Math.floor(random() * 60) }, (_, k) => ({
        key: `t${k}`,
        cpuSeconds: random() < 0.1 ? 0 : random() * 5,
      }));
      const nodeCpuSeconds = random() < 0.05 ? 0 : random() * 200;
      const a = attribute({ nodeJoules, idleJoules, nodeCpuSeconds, tasks });
      const taskSum = [...a.tasks.values()].reduce((s, v) => s + v, 0);
      const values = [...a.tasks.values(), a.system, a.unattributed];
      expect(values.every((v) => v >= 0 && Number.isFinite(v))).toBe(true);
      expect(Math.abs(taskSum + a.system + a.unattributed - nodeJoules)).toBeLessThanOrEqual(1e-9 * Math.max(1, nodeJoules));
      expect(a.tasks.size).toBe(tasks.length);
    }
  });
});
