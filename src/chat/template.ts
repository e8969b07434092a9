import { Template } from "@huggingface/jinja";

/**
 * A chat message as chat templates expect it: OpenAI's wire format after normalisation
 * (content parts joined to a string, `developer` mapped to `system`).
 */
export interface ChatMessage {
  readonly role: "system" | "user" | "assistant" | "tool";
  readonly content: string;
  /** Reasoning of an earlier assistant turn; Qwen3 re-renders it only after the last user query. */
  readonly reasoning_content?: string | undefined;
  readonly tool_calls?: readonly ChatToolCall[] | undefined;
  readonly tool_call_id?: string | undefined;
  readonly name?: string | undefined;
}

export interface ChatToolCall {
  readonly id?: string | undefined;
  readonly type: "function";
  readonly function: {
    readonly name: string;
    /**
     * Pass the parsed object. Qwen3 applies `tojson` to anything that is not a string, which
     * renders `{"city": "Paris"}` with Python's json.dumps spacing, the form the model was trained
     * on; a string is pasted verbatim, so a client's compact `{"city":"Paris"}` would be kept as is.
     */
    readonly arguments: unknown;
  };
}

/** A tool as OpenAI's `tools` array holds it; the template shows it to the model via `tojson`. */
export interface ChatTool {
  readonly type: "function";
  readonly function: {
    readonly name: string;
    readonly description?: string | undefined;
    readonly parameters?: Readonly<Record<string, unknown>> | undefined;
  };
}

export interface RenderOptions {
  readonly messages: readonly ChatMessage[];
  readonly tools?: readonly ChatTool[] | undefined;
  readonly addGenerationPrompt: boolean;
  /** Left undefined, the template's own default applies (Qwen3: thinking on). */
  readonly enableThinking?: boolean | undefined;
  /** chat_template_kwargs: extra template variables; they cannot override the ones above. */
  readonly extraKwargs?: Readonly<Record<string, unknown>> | undefined;
  readonly bosToken?: string | undefined;
  readonly eosToken?: string | undefined;
}

/**
 * Rendering failed. `raised`: the template itself rejected the conversation through
 * `raise_exception` (a client error, 400). `syntax` and `render`: the template cannot be parsed or
 * evaluated (a server-side problem with the model's template, 500).
 */
export class ChatTemplateError extends Error {
  readonly kind: "syntax" | "raised" | "render";

  constructor(kind: ChatTemplateError["kind"], message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ChatTemplateError";
    this.kind = kind;
  }
}

/**
 * Compiled templates by source. A model has one template, so this stays tiny; the bound only
 * matters if templates ever come from requests.
 */
const compiled = new Map<string, Template>();
const MAX_COMPILED = 16;

function compile(source: string): Template {
  const cached = compiled.get(source);
  if (cached) return cached;
  let template: Template;
  try {
    template = new Template(source);
  } catch (err) {
    throw new ChatTemplateError("syntax", `Chat template cannot be parsed: ${errorMessage(err)}`, { cause: err });
  }
  redirectRaiseException(template.parsed);
  if (compiled.size >= MAX_COMPILED) {
    const oldest = compiled.keys().next();
    if (!oldest.done) compiled.delete(oldest.value);
  }
  compiled.set(source, template);
  return template;
}

/**
 * @huggingface/jinja predefines `raise_exception` as a plain `Error`, indistinguishable from a
 * failure of the template itself, and refuses render variables that redefine a predefined name.
 * So the template's calls are pointed at a variable of ours, which throws the typed error.
 */
const RAISE_EXCEPTION = "__edgellm_raise_exception";

function redirectRaiseException(node: unknown): void {
  if (typeof node !== "object" || node === null) return;
  if (Array.isArray(node)) {
    for (const child of node) redirectRaiseException(child);
    return;
  }
  const fields = node as Record<string, unknown>;
  const callee = fields["callee"];
  if (fields["type"] === "CallExpression" && isIdentifier(callee, "raise_exception")) callee.value = RAISE_EXCEPTION;
  for (const child of Object.values(fields)) redirectRaiseException(child);
}

function isIdentifier(node: unknown, name: string): node is { value: string } {
  return typeof node === "object" && node !== null && "type" in node && node.type === "Identifier" && "value" in node && node.value === name;
}

export function renderChatTemplate(source: string, options: RenderOptions): string {
  const template = compile(source);
  const variables: Record<string, unknown> = {
    ...options.extraKwargs,
    messages: plainJson(options.messages),
    add_generation_prompt: options.addGenerationPrompt,
    bos_token: options.bosToken ?? "",
    eos_token: options.eosToken ?? "",
    [RAISE_EXCEPTION]: (message: unknown) => {
      throw new ChatTemplateError("raised", `Chat template rejected the request: ${String(message)}`);
    },
  };
  // Templates test `if tools`; an empty list must look like no tools at all.
  if (options.tools?.length) variables["tools"] = plainJson(options.tools);
  // Qwen3 tests `enable_thinking is defined`: an explicit undefined must not be passed down.
  if (options.enableThinking !== undefined) variables["enable_thinking"] = options.enableThinking;
  try {
    return template.render(variables);
  } catch (err) {
    if (err instanceof ChatTemplateError) throw err;
    throw new ChatTemplateError("render", `Chat template failed to render: ${errorMessage(err)}`, { cause: err });
  }
}

/**
 * @huggingface/jinja turns an `undefined` property into a value that `tojson` prints as `null`,
 * where Python would have no key at all: `{"description": null}` in the tool list the model reads.
 * A JSON round trip drops such properties.
 */
function plainJson(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value));
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export interface TemplateFacts {
  /** The template reads `enable_thinking`, so thinking can be switched on and off per request. */
  readonly supportsThinking: boolean;
  /** The template reads `tools`. */
  readonly supportsTools: boolean;
  /**
   * With thinking on, the generation prompt itself ends inside an open `<think>` (as some newer
   * Qwen3 templates do): the output starts as reasoning (ReasoningParser `startsInReasoning`).
   */
  readonly generationOpensThink: boolean;
}

/** What the engine needs to know about a model's template, found by rendering a probe. */
export function templateFacts(source: string): TemplateFacts {
  const supportsThinking = source.includes("enable_thinking");
  const probe = (addGenerationPrompt: boolean) =>
    renderChatTemplate(source, {
      messages: [{ role: "user", content: "ping" }],
      addGenerationPrompt,
      enableThinking: supportsThinking ? true : undefined,
    });
  const withPrompt = probe(true);
  const withoutPrompt = probe(false);
  const generationPrompt = withPrompt.startsWith(withoutPrompt) ? withPrompt.slice(withoutPrompt.length) : withPrompt;
  return {
    supportsThinking,
    supportsTools: source.includes("tools"),
    generationOpensThink: generationPrompt.lastIndexOf("<think>") > generationPrompt.lastIndexOf("</think>"),
  };
}
