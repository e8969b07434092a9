/**
 * Quantization fallback: while memory pressure is sustained (the PressureMonitor's "pressure"),
 * every model that names fallbacks is swapped blue-green to its next smaller variant; once the
 * pressure has been gone long enough ("relief"; the monitor's hysteresis) it is swapped back to
 * its own source. Requests in flight finish on the variant they started on.
 */
import type { Logger } from "pino";
import type { PressureMonitor, PressureReading } from "../models/pressure.js";
import type { ModelRegistry } from "./registry.js";
import type { ServedModel } from "./served-model.js";

/** What a swap reports: the model, the variant it left and the one it serves now. */
export interface SwapEvent {
  model: string;
  direction: "down" | "up";
  from: string;
  to: string;
}

const MiB = 2 ** 20;

/** The reading's numbers for the log and /health. */
function readingFields(reading: PressureReading) {
  return {
    signal: reading.source,
    reason: reading.reason,
    ...(reading.psi && { psiSomeAvg10: reading.psi.someAvg10, psiFullAvg10: reading.psi.fullAvg10 }),
    ...(reading.events && { events: reading.events }),
    ...(reading.availableBytes !== undefined && { availableMiB: Math.floor(reading.availableBytes / MiB) }),
    ...(reading.budgetBytes !== undefined && { budgetMiB: Math.floor(reading.budgetBytes / MiB) }),
  };
}

export class QuantizationFallback {
  constructor(
    private readonly registry: ModelRegistry,
    private readonly monitor: PressureMonitor,
    private readonly logger: Logger,
    private readonly onSwap: (event: SwapEvent) => void,
  ) {}

  start(): void {
    this.monitor.on("pressure", (reading: PressureReading) => void this.stepDown(reading));
    this.monitor.on("relief", (reading: PressureReading) => void this.restore(reading));
    this.monitor.on("error", (err: Error) => this.logger.warn({ err: err.message }, "memory pressure: reading failed"));
    this.monitor.start();
  }

  stop(): void {
    this.monitor.stop();
  }

  private async stepDown(reading: PressureReading): Promise<void> {
    const models = this.registry.list().filter((m) => m.variant < m.spec.sources.length - 1);
    await Promise.all(models.map((m) => this.swap(m, m.variant + 1, "down", reading)));
  }

  private async restore(reading: PressureReading): Promise<void> {
    const models = this.registry.list().filter((m) => m.variant > 0);
    await Promise.all(models.map((m) => this.swap(m, 0, "up", reading)));
  }

  private async swap(model: ServedModel, variant: number, direction: SwapEvent["direction"], reading: PressureReading): Promise<void> {
    const from = model.source;
    const to = model.spec.sources[variant]!;
    const fields = { model: model.id, from, to, loaded: model.worker !== null, ...readingFields(reading) };
    const why = direction === "down" ? `memory pressure: ${reading.reason}` : `memory pressure relieved: ${reading.reason}`;
    this.logger.warn(fields, direction === "down" ? "memory pressure: swapping to a smaller variant" : "memory pressure relieved: swapping back");
    try {
      await model.reload(why, model.spec, variant);
    } catch (err) {
      this.logger.error({ ...fields, err: (err as Error).message }, "memory pressure: the swap failed; the current variant keeps serving");
      return;
    }
    model.fallback = direction === "down" ? { since: new Date(reading.at).toISOString(), ...readingFields(reading) } : null;
    this.onSwap({ model: model.id, direction, from, to });
  }
}
