/** Scrape-time refresh of the gauges (and batch histogram) from every worker. */
import type { Metrics } from "./definitions.js";
import type { ModelRegistry } from "../router/registry.js";
import type { ServedModel, ModelStatus } from "../router/served-model.js";

/** Preemption counts last seen per worker: the counter moves by the difference. */
const seenPreemptions = new WeakMap<ServedModel, number>();

const MODEL_STATES: readonly ModelStatus[] = ["loaded", "loading", "unloaded"];

export async function refreshFromWorkers(metrics: Metrics, registry: ModelRegistry): Promise<void> {
  const workers = registry.list();
  metrics.modelsLoaded.set(workers.filter((w) => w.state === "ready").length);
  for (const w of workers) {
    for (const state of MODEL_STATES) metrics.modelState.set({ model: w.id, state }, w.loadStatus === state ? 1 : 0);
    metrics.modelVariant.set({ model: w.id }, w.variant);
  }
  await Promise.all(workers.map((w) => refreshOne(metrics, w)));
}

async function refreshOne(metrics: Metrics, worker: ServedModel): Promise<void> {
  const m = { model: worker.id };
  const status = await worker.status(true);
  const sequences = worker.info?.sequences ?? 0;
  metrics.sequencesTotal.set(m, sequences);
  if (!status) {
    metrics.requestsRunning.set(m, 0);
    metrics.requestsWaiting.set(m, 0);
    metrics.sequencesBusy.set(m, 0);
    return;
  }
  const { usedPages: used, totalPages: total } = status.kv;
  const seen = seenPreemptions.get(worker) ?? 0;
  // A restarted worker counts from 0 again.
  const newPreemptions = status.preemptions >= seen ? status.preemptions - seen : status.preemptions;
  if (newPreemptions > 0) metrics.preemptions.inc(m, newPreemptions);
  seenPreemptions.set(worker, status.preemptions);
  metrics.requestsRunning.set(m, status.running);
  metrics.requestsWaiting.set(m, status.queued);
  metrics.sequencesBusy.set(m, status.slots.filter((s) => s.phase !== "idle").length);
  metrics.kvPagesUsed.set(m, used);
  metrics.kvPagesTotal.set(m, total);
  metrics.kvUsageRatio.set(m, total ? used / total : 0);
  for (const tokens of status.roundTokens ?? []) metrics.batchTokens.observe(m, tokens);
  for (const { sequences, nativeCalls } of status.decodeCalls ?? []) {
    metrics.batchSequences.observe(m, sequences);
    metrics.roundNativeCalls.observe(m, nativeCalls);
  }
}
