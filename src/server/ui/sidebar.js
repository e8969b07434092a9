// The conversations list: open, rename in place, export as JSON, delete. Everything it shows
// comes from /v1/conversations; `state` is the page's shared state.
import { api } from "./api.js";
import { icons } from "./icons.js";

const $ = (id) => document.getElementById(id);

export const titleOf = (c) => c?.metadata?.title || "New chat";

export function initSidebar({ state, onTitleChanged, onOpen, onError }) {
  function renderConversationList() {
    const list = $("conversations");
    list.replaceChildren(
      ...state.conversations.map((c) => {
        const li = document.createElement("li");
        li.className = "conversation" + (c.id === state.current?.id ? " active" : "");
        li.dataset.id = c.id;
        const open = document.createElement("a");
        open.href = `#${c.id}`;
        open.className = "conversation-title";
        open.textContent = titleOf(c);
        open.title = titleOf(c);
        const actions = document.createElement("div");
        actions.className = "conversation-actions";
        for (const [action, label] of [["rename", "Rename"], ["export", "Export as JSON"], ["delete", "Delete"]]) {
          const b = document.createElement("button");
          b.type = "button";
          b.className = `icon-btn small ${action}`;
          b.dataset.action = action;
          b.title = label;
          b.setAttribute("aria-label", `${label}: ${titleOf(c)}`);
          b.innerHTML = icons[action];
          actions.append(b);
        }
        li.append(open, actions);
        return li;
      }),
    );
    $("conversations-empty").hidden = state.conversations.length > 0;
  }

  async function loadConversations() {
    const page = await api.get("/v1/conversations?limit=100");
    state.conversations = page.data;
    renderConversationList();
  }

  function touch(conversation) {
    state.conversations = [conversation, ...state.conversations.filter((c) => c.id !== conversation.id)];
    renderConversationList();
  }

  function rename(li, conversation) {
    const input = document.createElement("input");
    input.className = "rename-input";
    input.value = titleOf(conversation);
    input.setAttribute("aria-label", "New title");
    li.querySelector(".conversation-title").replaceWith(input);
    input.focus();
    input.select();
    let done = false;
    const finish = (commit) =>
      save(commit).catch((err) => {
        onError(err);
        renderConversationList();
      });
    const save = async (commit) => {
      if (done) return;
      done = true;
      const title = input.value.trim();
      if (commit && title && title !== titleOf(conversation)) {
        const updated = await api.post(`/v1/conversations/${conversation.id}`, { metadata: { ...conversation.metadata, title } });
        Object.assign(conversation, updated);
        if (state.current?.id === conversation.id) onTitleChanged();
      }
      renderConversationList();
    };
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") finish(true);
      if (e.key === "Escape") finish(false);
    });
    input.addEventListener("blur", () => finish(true));
  }

  async function exportConversation(conversation) {
    const data = await api.get(`/v1/conversations/${conversation.id}/export`);
    const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: "application/json" }));
    const a = Object.assign(document.createElement("a"), { href: url, download: `${conversation.id}.json` });
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  async function remove(conversation) {
    if (!confirm(`Delete "${titleOf(conversation)}"? This cannot be undone.`)) return;
    await api.delete(`/v1/conversations/${conversation.id}`);
    state.conversations = state.conversations.filter((c) => c.id !== conversation.id);
    if (state.current?.id === conversation.id) location.hash = "";
    renderConversationList();
  }

  $("conversations").addEventListener("click", (e) => {
    const button = e.target.closest("button[data-action]");
    const li = e.target.closest("li.conversation");
    if (!li) return;
    if (!button) return onOpen();
    const conversation = state.conversations.find((c) => c.id === li.dataset.id);
    const run = { rename: async () => rename(li, conversation), export: () => exportConversation(conversation), delete: () => remove(conversation) }[button.dataset.action];
    run().catch(onError);
  });

  return { render: renderConversationList, load: loadConversations, touch };
}
