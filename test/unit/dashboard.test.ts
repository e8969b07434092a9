import { describe, it, expect } from "vitest";
import { existsSync, readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
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

describe("compose monitoring stack", () => {
  const dockerDir = new URL("../../docker/", import.meta.url);
  const compose = parseYaml(readFileSync(new URL("compose.yaml", dockerDir), "utf8"));

  it("mounts files that exist, at the paths the provisioning config reads", () => {
    for (const name of ["prometheus", "grafana"]) {
      for (const volume of compose.services[name].volumes as string[]) {
        const [host] = volume.split(":");
        expect(existsSync(new URL(host!, dockerDir)), volume).toBe(true);
      }
    }
    const provider = parseYaml(readFileSync(new URL("grafana/provisioning/dashboards/edgellm.yml", dockerDir), "utf8"));
    const dashboardsMount = (compose.services.grafana.volumes as string[]).find((v) => v.startsWith("./grafana/dashboards:"))!;
    expect(dashboardsMount.split(":")[1]).toBe(provider.providers[0].options.path);
  });

  it("scrapes the edgellm service on its container port", () => {
    const prom = parseYaml(readFileSync(new URL("prometheus/prometheus.yml", dockerDir), "utf8"));
    const target: string = prom.scrape_configs[0].static_configs[0].targets[0];
    const [host, port] = target.split(":");
    expect(compose.services).toHaveProperty(host!);
    expect((compose.services[host!].ports as string[]).some((p) => p.endsWith(`:${port}`))).toBe(true);
  });
});
