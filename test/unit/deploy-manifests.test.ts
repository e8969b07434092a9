/**
 * Deployment files checked without a Docker engine or a cluster: config profiles load and
 * validate, docker/compose.yaml passes only known settings and waits for the drain, and the
 * Kubernetes manifests validate against the Kubernetes JSON schemas (kubernetes-models) and
 * agree with each other and with the server (ports, /health, metric names, grace periods).
 */
import { kvLayout } from "../../src/engine/kv/layout.js";
import { describe, it, expect } from "vitest";
import { readFileSync, readdirSync } from "node:fs";
import { parse as parseYaml, parseAllDocuments } from "yaml";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { Service } from "kubernetes-models/v1/Service";
import { PersistentVolumeClaim } from "kubernetes-models/v1/PersistentVolumeClaim";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import { loadConfig } from "../../src/config/load.js";
import { createMetrics } from "../../src/metrics/definitions.js";
import { REPO_ROOT } from "../helpers/cli.js";

const PROFILES = ["edge-1gb", "edge-4gb", "server"];
const profile = (name: string) => loadConfig({ file: `${REPO_ROOT}/config/${name}.yaml` }, {});

/** A name the server accepts as EDGELLM_* (or the entrypoint's EDGELLM_PROFILE). */
function knownEnv(name: string): boolean {
  if (name === "EDGELLM_PROFILE") return true;
  try {
    loadConfig({}, { [name]: "1" });
    return true;
  } catch (err) {
    return !(err as Error).message.includes("unknown environment variable");
  }
}

describe("config profiles", () => {
  it.each(PROFILES)("%s loads and validates", (name) => {
    expect(() => profile(name)).not.toThrow();
  });

  it("edge-1gb: a q4 model, q8_0 KV, 2 sequences, a small KV pool, a budget under 1 GiB", () => {
    const c = profile("edge-1gb");
    expect(c.model.source).toMatch(/Q4/i);
    expect(c.model.kvCacheType).toBe("q8_0");
    expect(c.model.sequences).toBe(2);
    expect(kvLayout(c.model, true).poolTokens).toBeLessThanOrEqual(4096);
    expect(c.model.memoryBudgetMB).toBeGreaterThan(0);
    expect(c.model.memoryBudgetMB).toBeLessThan(1024);
    // A default request fits a sequence's share of the pool, so per-sequence pools serve it too.
    expect(c.limits.maxPromptTokens + c.generation.defaultMaxTokens).toBeLessThanOrEqual(kvLayout(c.model, false).contextPerSequence);
  });

  it("edge-4gb and server grow from there", () => {
    const [small, mid, big] = PROFILES.map(profile);
    const pool = (c: typeof small) => kvLayout(c!.model, true).poolTokens;
    expect(pool(mid)).toBeGreaterThan(pool(small));
    expect(pool(big)).toBeGreaterThan(pool(mid));
    expect(mid!.model.memoryBudgetMB).toBeLessThan(4096);
  });

  it("no profile leaves an unknown file in config/", () => {
    const files = readdirSync(`${REPO_ROOT}/config`).filter((f) => f.endsWith(".yaml")).sort();
    expect(files).toEqual(["default.yaml", ...PROFILES.map((p) => `${p}.yaml`)].sort());
  });
});

describe("docker/compose.yaml", () => {
  const compose = parseYaml(readFileSync(`${REPO_ROOT}/docker/compose.yaml`, "utf8"));
  const service = compose.services.edgellm;

  it("builds the image from the repo with the models volume", () => {
    expect(service.build.context).toBe("..");
    expect(service.volumes).toContain("models:/models");
    expect(compose.volumes).toHaveProperty("models");
  });

  it("passes only settings the server knows", () => {
    const names: string[] = service.environment.map((e: string) => e.split("=")[0]);
    expect(names.length).toBeGreaterThan(0);
    for (const name of names) expect(knownEnv(name), name).toBe(true);
    expect(knownEnv("EDGELLM_NOT_A_SETTING")).toBe(false);
  });

  it("gives the drain time before Docker's SIGKILL, for every profile", () => {
    const graceS = Number(/^(\d+)s$/.exec(service.stop_grace_period)![1]);
    for (const c of [loadConfig({}, {}), ...PROFILES.map(profile)]) expect(graceS * 1000).toBeGreaterThan(c.server.shutdownGraceMs + 5000);
  });
});

describe("Kubernetes manifests (docker/k8s)", () => {
  const docs = readdirSync(`${REPO_ROOT}/docker/k8s`)
    .filter((f) => f.endsWith(".yaml"))
    .flatMap((f) => parseAllDocuments(readFileSync(`${REPO_ROOT}/docker/k8s/${f}`, "utf8")).map((d) => ({ file: f, obj: d.toJSON() })));
  const byKind = (kind: string) => docs.filter((d) => d.obj.kind === kind).map((d) => d.obj);
  const MODELS = { Deployment, Service, PersistentVolumeClaim, HorizontalPodAutoscaler } as const;

  it("every document validates against the Kubernetes JSON schema of its kind", () => {
    expect(docs.map((d) => d.obj.kind).sort()).toEqual(["Deployment", "HorizontalPodAutoscaler", "PersistentVolumeClaim", "Service"]);
    for (const { file, obj } of docs) {
      const Model = MODELS[obj.kind as keyof typeof MODELS];
      expect(() => new Model(obj).validate(), file).not.toThrow();
    }
  });

  it("the schema check rejects a broken manifest (it is not a no-op)", () => {
    const broken = structuredClone(byKind("Deployment")[0]);
    broken.spec.replicas = "two";
    expect(() => new Deployment(broken).validate()).toThrowError(/replicas must be integer/);
  });

  const deployment = byKind("Deployment")[0]!;
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0];

  it("probes /health on the container's port: startup, readiness and liveness", () => {
    const http = container.ports.find((p: { name: string }) => p.name === "http");
    expect(http.containerPort).toBe(8080);
    for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
      expect(container[probe].httpGet).toEqual({ path: "/health", port: "http" });
    }
    // Liveness tolerates a worker restart at the longest backoff (30 s) plus a model load.
    expect(container.livenessProbe.periodSeconds * container.livenessProbe.failureThreshold).toBeGreaterThanOrEqual(120);
  });

  it("selectors, service port, volume claim and settings line up", () => {
    expect(deployment.spec.selector.matchLabels).toEqual(deployment.spec.template.metadata.labels);
    const service = byKind("Service")[0]!;
    expect(service.spec.selector).toEqual(deployment.spec.template.metadata.labels);
    expect(service.spec.ports[0].targetPort).toBe("http");
    const claim = pod.volumes.find((v: { name: string }) => v.name === "models").persistentVolumeClaim.claimName;
    expect(byKind("PersistentVolumeClaim")[0]!.metadata.name).toBe(claim);
    expect(container.volumeMounts).toContainEqual({ name: "models", mountPath: "/models" });
    for (const env of container.env) expect(knownEnv(env.name), env.name).toBe(true);
    expect(pod.securityContext.runAsNonRoot).toBe(true);
  });

  it("the termination grace period covers preStop and the profile's drain", () => {
    const name = container.env.find((e: { name: string }) => e.name === "EDGELLM_PROFILE").value;
    const preStopS = Number(container.lifecycle.preStop.exec.command[1]);
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(preStopS * 1000 + profile(name).server.shutdownGraceMs + 5000);
    expect(container.resources.limits.memory).toBe("4Gi");
    expect(name).toBe("edge-4gb");
  });

  it("the HPA scales the Deployment on the waiting-requests metric the server exports", async () => {
    const hpa = byKind("HorizontalPodAutoscaler")[0]!;
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: "apps/v1", kind: "Deployment", name: deployment.metadata.name });
    const metric = hpa.spec.metrics[0].pods.metric.name;
    expect(metric).toBe("edgellm_num_requests_waiting");
    const exported = (await createMetrics().registry.getMetricsAsJSON()).map((m) => m.name);
    expect(exported).toContain(metric);
  });
});
