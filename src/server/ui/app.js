// The playground: conversations on the left (stored on the server), the chat in the middle,
// settings on the right. A conversation's URL is /#<id>, so a reload reopens it.
import { api, onKeyNeeded, streamChat } from "./api.js";
import { enableCopy } from "./markdown.js";
import { AssistantMessage, errorMessage, itemElement, userMessage } from "./messages.js";
import { initSettings, requestParams, systemPrompt } from "./settings.js";
import { icons, placeIcons } from "./icons.js";
import { initSidebar, titleOf } from "./sidebar.js";

const $ = (id) => document.getElementById(id);
const state = { models: [], conversations: [], current: null, items: [], streaming: null };
placeIcons();

// ---- theme -----------------------------------------------------------------------------------
function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
  $("hljs-dark").disabled = theme !== "dark";
  $("hljs-light").disabled = theme !== "light";
  $("theme-toggle").innerHTML = theme === "dark" ? icons.sun : icons.moon;
  localStorage.setItem("edgellm.theme", theme);
}
$("theme-toggle").addEventListener("click", () => applyTheme(document.documentElement.dataset.theme === "dark" ? "light" : "dark"));
applyTheme(localStorage.getItem("edgellm.theme") === "light" ? "light" : "dark");

// ---- panels ----------------------------------------------------------------------------------
function toggleSettings(open = $("settings").hidden) {
  $("settings").hidden = !open;
  $("settings-toggle").setAttribute("aria-expanded", String(open));
}
$("settings-toggle").addEventListener("click", () => toggleSettings());
$("settings-close").addEventListener("click", () => toggleSettings(false));

function toggleSidebar(open) {
  document.body.classList.toggle("sidebar-open", open);
  $("scrim").hidden = !open;
}
$("sidebar-toggle").addEventListener("click", () => toggleSidebar(true));
$("scrim").addEventListener("click", () => toggleSidebar(false));

// ---- API key ---------------------------------------------------------------------------------
onKeyNeeded(
  (rejected) =>
    new Promise((resolve) => {
      const dialog = $("key-dialog");
      $("key-error").hidden = !rejected;
      $("key-error").textContent = rejected ?? "";
      $("key-input").value = "";
      dialog.addEventListener("close", () => resolve($("key-input").value.trim()), { once: true });
      dialog.showModal();
    }),
);

// ---- conversations list ----------------------------------------------------------------------
const sidebar = initSidebar({
  state,
  onTitleChanged: () => showTitle(),
  onOpen: () => toggleSidebar(false),
  onError: (err) => addMessage(errorMessage(err.message)),
});

$("new-chat").addEventListener("click", () => {
  location.hash = "";
  toggleSidebar(false);
  $("prompt").focus();
});

// ---- the chat --------------------------------------------------------------------------------
const messages = $("messages");
enableCopy(messages);

function showTitle() {
  $("chat-title").textContent = titleOf(state.current);
  document.title = state.current ? `${titleOf(state.current)} · edgellm` : "edgellm playground";
}

const nearBottom = () => messages.scrollHeight - messages.scrollTop - messages.clientHeight < 120;
function addMessage(element) {
  $("empty-state").hidden = true;
  messages.append(element);
  messages.scrollTop = messages.scrollHeight;
}

async function allItems(id) {
  const items = [];
  let after = "";
  for (;;) {
    const page = await api.get(`/v1/conversations/${id}/items?order=asc&limit=100${after && `&after=${after}`}`);
    items.push(...page.data);
    if (!page.has_more) return items;
    after = page.last_id;
  }
}

async function openConversation(id) {
  state.streaming?.controller.abort();
  messages.querySelectorAll(".msg").forEach((m) => m.remove());
  state.current = null;
  state.items = [];
  if (id) {
    try {
      state.current = await api.get(`/v1/conversations/${id}`);
      state.items = await allItems(id);
    } catch (err) {
      state.current = null;
      addMessage(errorMessage(`Cannot open this conversation: ${err.message}`));
    }
  }
  $("empty-state").hidden = state.items.length > 0 || !!state.current;
  for (const item of state.items) if (item.role === "user" || item.role === "assistant") addMessage(itemElement(item));
  showTitle();
  sidebar.render();
}

window.addEventListener("hashchange", () => openConversation(location.hash.slice(1)));

/** The history the model sees: the system prompt, then the stored user and assistant turns. */
function chatMessages() {
  const system = systemPrompt();
  const turns = state.items
    .filter((i) => i.role === "user" || i.role === "assistant")
    .map((i) => ({ role: i.role, content: i.content.map((p) => p.text).join("") }));
  return [...(system ? [{ role: "system", content: system }] : []), ...turns];
}

async function appendItem(conversationId, item) {
  const page = await api.post(`/v1/conversations/${conversationId}/items`, { items: [item] });
  return page.data[0];
}

function setStreaming(controller) {
  state.streaming = controller && { controller };
  $("send").hidden = !!controller;
  $("stop").hidden = !controller;
}

async function send(text) {
  let conversation = state.current;
  const userItem = { type: "message", role: "user", content: text };
  if (!conversation) {
    conversation = await api.post("/v1/conversations", { metadata: { title: text.replace(/\s+/g, " ").slice(0, 60) }, items: [userItem] });
    state.current = conversation;
    state.items = await allItems(conversation.id);
    // Set the hash without reopening: the page already shows this conversation.
    history.replaceState(null, "", `#${conversation.id}`);
  } else {
    state.items.push(await appendItem(conversation.id, userItem));
  }
  sidebar.touch(conversation);
  showTitle();
  addMessage(userMessage(text));

  const reply = new AssistantMessage();
  addMessage(reply.element);
  const controller = new AbortController();
  setStreaming(controller);
  const model = $("model-picker").hidden ? state.models[0] : $("model-picker").value;
  const started = performance.now();
  let firstToken = null;
  let usage = null;
  let status = "completed";
  try {
    for await (const chunk of streamChat({ model, messages: chatMessages(), ...requestParams() }, controller.signal)) {
      if (chunk.usage) usage = chunk.usage;
      const delta = chunk.choices?.[0]?.delta;
      if (!delta) continue;
      if ((delta.reasoning_content || delta.content) && firstToken === null) firstToken = performance.now();
      reply.append({ reasoning: delta.reasoning_content ?? "", content: delta.content ?? "" });
      if (nearBottom()) messages.scrollTop = messages.scrollHeight;
      if (chunk.choices[0].finish_reason === "length") status = "incomplete";
    }
  } catch (err) {
    if (err.name !== "AbortError") {
      reply.finish({});
      reply.element.remove();
      addMessage(errorMessage(err.message));
      setStreaming(null);
      return;
    }
    status = "incomplete";
  }
  setStreaming(null);
  reply.stopThinking();
  const end = performance.now();
  const metrics = { duration_ms: end - started, ...(reply.thinkingMs !== undefined && { thinking_ms: reply.thinkingMs }) };
  if (firstToken !== null) metrics.ttft_ms = firstToken - started;
  if (usage && firstToken !== null && end > firstToken && usage.completion_tokens > 1) {
    metrics.tokens_per_second = (usage.completion_tokens - 1) / ((end - firstToken) / 1000);
  }
  const item = {
    type: "message",
    role: "assistant",
    status,
    content: reply.content,
    model,
    metrics,
    ...(reply.reasoning && { reasoning_content: reply.reasoning }),
    ...(usage && {
      usage: {
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        reasoning_tokens: usage.completion_tokens_details?.reasoning_tokens ?? 0,
      },
    }),
  };
  reply.finish(item);
  const stored = await appendItem(conversation.id, item);
  reply.element.dataset.itemId = stored.id;
  if (state.current?.id === conversation.id) state.items.push(stored);
}

const prompt = $("prompt");
function autosize() {
  prompt.style.height = "auto";
  prompt.style.height = `${Math.min(prompt.scrollHeight, 240)}px`;
}
prompt.addEventListener("input", autosize);
prompt.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    $("composer").requestSubmit();
  }
});
$("composer").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = prompt.value.trim();
  if (!text || state.streaming) return;
  prompt.value = "";
  autosize();
  send(text).catch((err) => {
    setStreaming(null);
    addMessage(errorMessage(err.message));
  });
});
$("stop").addEventListener("click", () => state.streaming?.controller.abort());

// ---- start -----------------------------------------------------------------------------------
async function boot() {
  // One after the other: with API keys on, the first call asks for the key and the second uses it.
  const props = await api.get("/props");
  const models = await api.get("/v1/models");
  state.models = models.data.map((m) => m.id);
  const picker = $("model-picker");
  picker.replaceChildren(...state.models.map((id) => Object.assign(document.createElement("option"), { value: id, textContent: id })));
  picker.hidden = state.models.length < 2;
  $("model-label").textContent = state.models.length === 1 ? state.models[0] : "";
  $("empty-model").textContent = state.models.join(", ");
  initSettings(props);
  await sidebar.load();
  await openConversation(location.hash.slice(1));
  document.body.classList.add("ready");
}

boot().catch((err) => addMessage(errorMessage(`The server did not answer: ${err.message}`)));
