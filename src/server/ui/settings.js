// The settings panel: kept in local storage; an empty field means "the server's default",
// which is shown as the field's placeholder (from GET /props, per thinking mode).
const STORE = "edgellm.settings";
const NUMERIC = { thinking_budget: "thinking-budget", temperature: "temperature", top_p: "top-p", top_k: "top-k", max_tokens: "max-tokens", seed: "seed" };
const $ = (id) => document.getElementById(id);

let props = null;

function saved() {
  try {
    return JSON.parse(localStorage.getItem(STORE) ?? "{}");
  } catch {
    return {};
  }
}

function save() {
  const out = { system: $("system-prompt").value, thinking: $("thinking").checked };
  for (const [name, id] of Object.entries(NUMERIC)) out[name] = $(id).value;
  localStorage.setItem(STORE, JSON.stringify(out));
}

function showDefaults() {
  if (!props) return;
  const mode = $("thinking").checked ? props.sampling.thinking : props.sampling.non_thinking;
  const params = props.default_generation_settings.params;
  const defaults = { ...mode, thinking_budget: params.thinking_budget, max_tokens: params.max_tokens };
  for (const [name, id] of Object.entries(NUMERIC)) if (name in defaults) $(id).placeholder = String(defaults[name]);
  $("max-tokens").max = String(props.max_completion_tokens);
}

function fill(values) {
  $("system-prompt").value = values.system ?? "";
  $("thinking").checked = values.thinking ?? props?.default_generation_settings.params.enable_thinking ?? true;
  for (const [name, id] of Object.entries(NUMERIC)) $(id).value = values[name] ?? "";
  showDefaults();
}

export function initSettings(serverProps) {
  props = serverProps;
  fill(saved());
  $("settings-form").addEventListener("input", () => {
    showDefaults();
    save();
  });
  $("settings-reset").addEventListener("click", () => {
    fill({ system: $("system-prompt").value });
    save();
  });
}

export const systemPrompt = () => $("system-prompt").value.trim();

/** The request fields the panel sets; fields left empty are not sent. */
export function requestParams() {
  const out = { enable_thinking: $("thinking").checked };
  for (const [name, id] of Object.entries(NUMERIC)) {
    const value = $(id).value.trim();
    if (value !== "" && Number.isFinite(Number(value))) out[name] = Number(value);
  }
  return out;
}
