// Message elements: a user bubble, or an assistant reply with its thinking panel, its Markdown
// answer and a line of numbers (tokens, TTFT, tok/s).
import { renderMarkdown } from "./markdown.js";

const el = (tag, className, text) => {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
};

const textOf = (item) => item.content.map((p) => p.text).join("");

export function userMessage(text) {
  const article = el("article", "msg user");
  article.append(el("div", "bubble", text));
  return article;
}

export function errorMessage(text) {
  const article = el("article", "msg error");
  article.append(el("div", "bubble", text));
  return article;
}

function statsText({ usage, metrics, status }) {
  const parts = [];
  if (usage) {
    parts.push(`${usage.completion_tokens} tokens`);
    if (usage.reasoning_tokens) parts.push(`${usage.reasoning_tokens} thinking`);
    parts.push(`${usage.prompt_tokens} prompt`);
  }
  if (metrics?.ttft_ms !== undefined) parts.push(`TTFT ${Math.round(metrics.ttft_ms)} ms`);
  if (metrics?.tokens_per_second !== undefined) parts.push(`${metrics.tokens_per_second.toFixed(1)} tok/s`);
  if (status === "incomplete") parts.push("stopped");
  return parts;
}

/** Under a tenth of a second (a fast small model) "0.0 s" would read as "did not think". */
function thoughtLabel(ms) {
  if (ms === undefined) return "Thought process";
  return ms < 100 ? "Thought for a moment" : `Thought for ${(ms / 1000).toFixed(1)} s`;
}

/** An assistant reply that can be filled while it streams; `item` fills it at once. */
export class AssistantMessage {
  constructor(item) {
    this.element = el("article", "msg assistant");
    // Set once the reply is stored on the server: a stored reply carries its item id.
    if (item?.id) this.element.dataset.itemId = item.id;
    const avatar = el("div", "avatar");
    avatar.setAttribute("aria-hidden", "true");
    const body = el("div", "body");
    this.thinking = el("details", "thinking");
    this.thinkingLabel = el("span", "label", "Thinking");
    const summary = el("summary");
    summary.append(el("span", "pulse"), this.thinkingLabel);
    this.thinkingText = el("div", "thinking-text");
    this.thinking.append(summary, this.thinkingText);
    this.thinking.hidden = true;
    this.answer = el("div", "answer markdown");
    this.stats = el("div", "stats");
    body.append(this.thinking, this.answer, this.stats);
    this.element.append(avatar, body);
    this.reasoning = "";
    this.content = "";
    this.streaming = !item;
    if (item) {
      this.reasoning = item.reasoning_content ?? "";
      this.content = textOf(item);
      this.render();
      this.finish(item);
    }
  }

  /** Live: the panel is open and its label counts the seconds while the model thinks. */
  startThinking() {
    this.thinking.hidden = false;
    this.thinking.open = true;
    this.element.classList.add("is-thinking");
    const started = performance.now();
    const tick = () => (this.thinkingLabel.textContent = `Thinking… ${((performance.now() - started) / 1000).toFixed(1)} s`);
    tick();
    this.timer = setInterval(tick, 100);
    this.thinkingStarted = started;
  }

  /** The thought is over: the panel folds away, the answer takes the stage. */
  stopThinking() {
    if (!this.element.classList.contains("is-thinking")) return;
    clearInterval(this.timer);
    this.element.classList.remove("is-thinking");
    this.thinkingMs = performance.now() - this.thinkingStarted;
    this.thinkingLabel.textContent = thoughtLabel(this.thinkingMs);
    this.thinking.open = false;
  }

  append({ reasoning = "", content = "" }) {
    if (reasoning && !this.element.classList.contains("is-thinking") && !this.content) this.startThinking();
    if (content) this.stopThinking();
    this.reasoning += reasoning;
    this.content += content;
    this.scheduleRender();
  }

  scheduleRender() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = 0;
      this.render();
    });
  }

  render() {
    this.thinking.hidden = this.reasoning === "";
    this.thinkingText.textContent = this.reasoning.trim();
    this.answer.innerHTML = renderMarkdown(this.content);
    this.element.classList.toggle("is-streaming", this.streaming === true);
  }

  finish(info) {
    cancelAnimationFrame(this.pending);
    this.pending = 0;
    this.stopThinking();
    this.streaming = false;
    this.render();
    if (info.metrics) this.thinkingLabel.textContent = thoughtLabel(info.metrics.thinking_ms);
    // Each figure stays on one line; a narrow screen wraps between them.
    const parts = statsText(info);
    this.stats.replaceChildren(...parts.flatMap((text, i) => [...(i ? [" · "] : []), el("span", "", text)]));
  }
}

export function itemElement(item) {
  return item.role === "assistant" ? new AssistantMessage(item).element : userMessage(textOf(item));
}
