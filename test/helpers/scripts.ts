/**
 * Scripts several e2e tests run their scripted Qwen3 models on, with the facts their assertions
 * derive from them, so that every test asserts against the same model output.
 */
import { planScript, type ScriptSegment } from "../../src/models/synthetic/index.js";

/** Qwen3's `</think>` token id. */
const THINK_CLOSE = 151668;

/** Thinks `thought`, then answers `answer`. */
export function thinkingScript(thought: string, answer: string): ScriptSegment[] {
  return [{ token: "<think>" }, `\n${thought}\n`, { token: "</think>" }, `\n\n${answer}`];
}

export const THOUGHT = "The user says hi. A short friendly greeting fits here.";
export const ANSWER = "Hi there! How can I help?";
/** With thinking on the script is all of this; with thinking off the prompt already holds `</think>\n\n`, so the model goes on with ANSWER. */
export const THINKING_SCRIPT = thinkingScript(THOUGHT, ANSWER);
export const PLAN = planScript({ segments: THINKING_SCRIPT });
/** `<think>`, the thought and `</think>`: the tokens usage must report as reasoning. */
export const REASONING_TOKENS = PLAN.tokens.indexOf(THINK_CLOSE) + 1;
/** After `</think>` and the blank line. */
export const ANSWER_TOKENS = PLAN.tokens.length - REASONING_TOKENS - 1;

export const WEATHER_THOUGHT = "The user wants the weather in Paris. I will call get_weather.";
/** The arguments of the call WEATHER_CALL_SCRIPT writes. */
export const WEATHER_CALL = { city: "Paris", unit: "celsius" };
/** Thinks, then calls get_weather once with WEATHER_CALL. */
export const WEATHER_CALL_SCRIPT: ScriptSegment[] = [
  { token: "<think>" },
  `\n${WEATHER_THOUGHT}\n`,
  { token: "</think>" },
  "\n\n",
  { token: "<tool_call>" },
  '\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n',
  { token: "</tool_call>" },
];

/** The get_weather tool WEATHER_CALL_SCRIPT calls, for each API to wrap in its own tool shape. */
export const WEATHER_TOOL = {
  name: "get_weather",
  description: "Current weather in a city",
  parameters: {
    type: "object" as const,
    properties: { city: { type: "string" }, unit: { type: "string", enum: ["celsius", "fahrenheit"] } },
    required: ["city", "unit"],
    additionalProperties: false,
  },
};
/** Its arguments can only be one of two strings, so a call forced against the script stays short. */
export const TIME_TOOL = {
  name: "get_time",
  description: "Current time in a time zone",
  parameters: { type: "object" as const, properties: { timezone: { enum: ["UTC", "CET"] } }, required: ["timezone"] },
};
