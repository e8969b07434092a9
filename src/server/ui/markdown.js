// Model output is untrusted: Markdown becomes HTML through marked, then DOMPurify keeps only safe markup.
import { Marked } from "marked";
import DOMPurify from "dompurify";
import hljs from "highlight.js";

const escape = (s) => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

const marked = new Marked({
  gfm: true,
  breaks: false,
  renderer: {
    code({ text, lang }) {
      const language = (lang ?? "").trim().split(/\s+/)[0];
      const known = language && hljs.getLanguage(language);
      const html = known ? hljs.highlight(text, { language, ignoreIllegals: true }).value : escape(text);
      const label = known ? language : language || "text";
      return `<div class="code-block"><div class="code-head"><span>${escape(label)}</span><button type="button" class="copy">Copy</button></div><pre><code class="hljs">${html}</code></pre></div>`;
    },
  },
});

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
});

export function renderMarkdown(text) {
  return DOMPurify.sanitize(marked.parse(text));
}

/** Copy buttons of code blocks, wired once on a container whose content is re-rendered. */
export function enableCopy(container) {
  container.addEventListener("click", async (e) => {
    const button = e.target.closest("button.copy");
    if (!button) return;
    await navigator.clipboard?.writeText(button.closest(".code-block").querySelector("code").textContent);
    button.textContent = "Copied";
    setTimeout(() => (button.textContent = "Copy"), 1200);
  });
}
