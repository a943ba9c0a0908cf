// The search box at the top of the chat list: `GET /api/v1/search` as you type (debounced; an
// answer to an older query is dropped), tabs for messages, people, chats and apps, highlighted
// snippets (text nodes and <mark>, never HTML), and results that open what they found — a message
// result opens its chat at that message, loading history back to it.

import { openConversation, upsertConversation } from "./conversations.js";
import { $, clear, el, formatTime, openSheet } from "./dom.js";
import { showMessage } from "./messages.js";
import { api, nameOf, rememberUser, showError, state } from "./state.js";

const TYPES = ["messages", "people", "conversations", "apps"];
const DEBOUNCE_MS = 250;
const PAGE = 20;

/** `snippet` as nodes, the `[start, end]` ranges (code point offsets) wrapped in <mark>. */
export function highlighted(snippet, highlights) {
  const chars = Array.from(snippet || "");
  const ranges = (Array.isArray(highlights) ? highlights : [])
    .map(([start, end]) => [Math.max(0, start | 0), Math.min(chars.length, end | 0)])
    .filter(([start, end]) => end > start)
    .sort((a, b) => a[0] - b[0]);
  const nodes = [];
  let at = 0;
  for (const [start, end] of ranges) {
    if (start < at) continue; // overlapping ranges: the first wins
    if (start > at) nodes.push(chars.slice(at, start).join(""));
    nodes.push(el("mark", { "data-testid": "search-highlight" }, chars.slice(start, end).join("")));
    at = end;
  }
  if (at < chars.length) nodes.push(chars.slice(at).join(""));
  return nodes;
}

function active() {
  return Boolean(state.search.query);
}

function showResults(show) {
  $("#search-results").hidden = !show;
  $("#search-tabs").hidden = !show;
  $("#conversation-list").hidden = show;
  $("#search-scope").hidden = !(show && state.search.type === "messages" && state.currentId);
}

function setType(type) {
  state.search.type = type;
  for (const tab of document.querySelectorAll("#search-tabs [role=tab]")) {
    tab.setAttribute("aria-selected", String(tab.dataset.type === type));
  }
  run();
}

function scheduled() {
  clearTimeout(state.search.timer);
  state.search.timer = setTimeout(run, DEBOUNCE_MS);
}

/** Run the current query (a first page), or a further page after `before`. */
async function run(before = null) {
  clearTimeout(state.search.timer);
  const query = $("#search-input").value.trim();
  state.search.query = query;
  const ticket = ++state.search.ticket;
  const list = $("#search-results");
  showResults(active());
  if (!query) {
    clear(list);
    return;
  }
  const { type } = state.search;
  const params = new URLSearchParams({ q: query, type, limit: String(PAGE) });
  if (before) params.set("before", before);
  if (type === "messages" && state.currentId && $("#search-here").checked) params.set("conversation_id", state.currentId);
  list.setAttribute("aria-busy", "true");
  try {
    const answer = await api.get(`/api/v1/search?${params}`);
    if (ticket !== state.search.ticket) return; // a newer query is on its way
    if (!before) clear(list);
    list.querySelector("[data-testid=search-more]")?.closest("li")?.remove();
    for (const result of answer.results || []) list.append(el("li", {}, renderResult(result)));
    if (!list.children.length) list.append(el("li", { class: "muted search-empty", "data-testid": "search-empty" }, "Nothing found."));
    state.search.nextBefore = answer.next_before || null;
    if (state.search.nextBefore) {
      const more = el("button", { type: "button", class: "btn btn-quiet", "data-testid": "search-more" }, "More results");
      more.addEventListener("click", () => run(state.search.nextBefore));
      list.append(el("li", {}, more));
    }
  } catch (error) {
    if (ticket !== state.search.ticket) return;
    clear(list);
    list.append(el("li", { class: "error", "data-testid": "search-error" }, error.message || "Search failed."));
  } finally {
    if (ticket === state.search.ticket) list.removeAttribute("aria-busy");
  }
}

function resultButton(result, attrs, ...children) {
  return el("button", { type: "button", class: "search-result", "data-testid": "search-result", "data-type": result.type, ...attrs }, ...children);
}

function renderResult(result) {
  if (result.type === "message") {
    const conversation = state.conversations.get(result.conversation_id);
    const message = result.message || {};
    const where = conversation?.title || "Chat";
    const node = resultButton(result, { "data-conversation-id": result.conversation_id, "data-seq": result.seq },
      el("span", { class: "search-result-head" },
        el("span", { class: "search-result-title" }, `${where} · ${nameOf(message.sender_id)}`),
        el("time", { class: "muted" }, formatTime(message.created_at))),
      el("span", { class: "search-snippet", "data-testid": "search-snippet" }, ...highlighted(result.snippet ?? message.text ?? "", result.highlights)));
    node.addEventListener("click", () => openMessage(result.conversation_id, result.seq));
    return node;
  }
  if (result.type === "person") {
    const { user } = result;
    rememberUser(user);
    const node = resultButton(result, { "data-user-id": user.id },
      el("span", { class: "search-result-title" }, user.display_name || user.username),
      el("span", { class: "muted" }, ` @${user.username}`));
    node.addEventListener("click", () => openDirect(user));
    return node;
  }
  if (result.type === "conversation") {
    const { conversation } = result;
    const node = resultButton(result, { "data-conversation-id": conversation.id },
      el("span", { class: "search-result-title" }, conversation.title || "Chat"),
      conversation.type === "group" ? el("span", { class: "muted" }, ` · ${conversation.member_count ?? ""} members`) : null);
    node.addEventListener("click", () => {
      upsertConversation(conversation);
      openConversation(conversation.id);
    });
    return node;
  }
  if (result.type === "app") {
    const { app } = result;
    const node = resultButton(result, { "data-app-id": app.id },
      el("span", { class: "search-result-title" }, app.name || app.id),
      el("span", { class: "search-snippet muted" }, app.description || ""));
    node.addEventListener("click", () => showApp(app));
    return node;
  }
  return el("span", { class: "muted" }, "");
}

async function openMessage(cid, seq) {
  try {
    await showMessage(cid, Number(seq));
  } catch (error) {
    showError(error);
  }
}

async function openDirect(user) {
  const known = [...state.conversations.values()].find((c) => c.type === "direct" && c.peer?.id === user.id);
  try {
    const conversation = known || (await api.post("/api/v1/conversations", { type: "direct", user_id: user.id })).conversation;
    upsertConversation(conversation);
    openConversation(conversation.id);
  } catch (error) {
    showError(error);
  }
}

function showApp(app) {
  const chat = [...state.conversations.values()].find((c) => c.type === "service" && c.app_id === app.id);
  openSheet({
    title: app.name || app.id,
    testid: "app-sheet",
    body: el("p", {}, app.description || ""),
    actions: [
      { label: "Close" },
      chat ? { label: "Open its chat", style: "primary", testid: "app-open-chat", run: () => openConversation(chat.id) } : null,
    ].filter(Boolean),
  });
}

/** Clear the box and go back to the chat list. */
export function closeSearch() {
  $("#search-input").value = "";
  state.search.ticket += 1;
  state.search.query = "";
  clear($("#search-results"));
  showResults(false);
}

export function wireSearch() {
  const input = $("#search-input");
  input.addEventListener("input", scheduled);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && input.value) {
      event.preventDefault();
      closeSearch();
    } else if (event.key === "Enter") {
      event.preventDefault();
      run();
    }
  });
  for (const tab of document.querySelectorAll("#search-tabs [role=tab]")) {
    tab.addEventListener("click", () => setType(tab.dataset.type));
  }
  $("#search-here").addEventListener("change", () => run());
  setType(TYPES[0]);
}
