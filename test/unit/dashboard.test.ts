import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import { createMetrics } from "../../src/metrics/definitions.js";

const dashboard = JSON.parse(readFileSync(new URL("../../docker/grafana/dashboards/edgellm.json", import.meta.url), "utf8"));

describe("Grafana dashboard", () => {
  it("queries only metrics that edgellm exports", async () => {
    const { registry } = createMetrics();
    const exported = new Set((await registry.getMetricsAsJSON()).map((m) => m.name));
    const exprs: string[] = dashboard.panels.flatMap((p: { targets: Array<{ expr: string }> }) => p.targets.map((t) => t.expr));
    const used = new Set(exprs.flatMap((e) => e.match(/\b(edgellm_[a-z_]+|process_[a-z_]+)/g) ?? []).map((n) => n.replace(/_bucket$/, "")));
    expect(used.size).toBeGreaterThan(8);
    for (const name of used) expect(exported, name).toContain(name);
  });
});
