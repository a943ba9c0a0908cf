// People: finding them, friend requests, and new groups of friends.

import { openConversation, renderConversationList, upsertConversation } from "./conversations.js";
import { $, clear, el, openSheet } from "./dom.js";
import { api, rememberUser, showError, showingErrors } from "./state.js";

// --- contacts, groups ------------------------------------------------------------------------

export function findPeople() {
  const input = el("input", { id: "user-search-input", type: "search", "data-testid": "user-search-input", autocomplete: "off" });
  const results = el("ul", { class: "results", "data-testid": "user-results", "aria-live": "polite" });
  const body = el("div", {}, el("label", { for: "user-search-input" }, "Username"), input, results);
  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const q = input.value.trim();
      clear(results);
      if (!q) return;
      try {
        const { users } = await api.get(`/api/v1/users/search?q=${encodeURIComponent(q)}`);
        if (!users.length) results.append(el("li", { class: "muted" }, "Nobody by that name."));
        for (const user of users) {
          rememberUser(user);
          const add = el("button", { type: "button", class: "btn", "data-testid": "add-friend" }, "Add friend");
          add.addEventListener("click", async () => {
            try {
              const answer = await api.post("/api/v1/contacts/requests", { user_id: user.id });
              add.textContent = answer.friend ? "Friends" : "Request sent";
              add.disabled = true;
            } catch (error) {
              showError(error);
            }
          });
          const chat = el("button", { type: "button", class: "btn btn-primary", "data-testid": "open-chat" }, "Message");
          chat.addEventListener("click", async () => {
            try {
              const { conversation } = await api.post("/api/v1/conversations", { type: "direct", user_id: user.id });
              upsertConversation(conversation);
              sheet.close();
              openConversation(conversation.id);
            } catch (error) {
              showError(error);
            }
          });
          results.append(el("li", { class: "result", "data-testid": "user-result", "data-username": user.username },
            el("span", {}, `${user.display_name} (@${user.username})`), add, chat));
        }
      } catch (error) {
        showError(error);
      }
    }, 200);
  });
  const sheet = openSheet({ title: "Find people", body, testid: "find-sheet", actions: [{ label: "Close" }] });
}

export async function refreshRequests() {
  try {
    const { incoming } = await api.get("/api/v1/contacts/requests");
    const count = $("#requests-count");
    count.textContent = String(incoming.length);
    count.hidden = !incoming.length;
    return incoming;
  } catch {
    return [];
  }
}

export async function showRequests() {
  const incoming = await refreshRequests();
  const list = el("ul", { class: "results" });
  if (!incoming.length) list.append(el("li", { class: "muted" }, "No friend requests."));
  for (const request of incoming) {
    rememberUser(request.from);
    const accept = el("button", { type: "button", class: "btn btn-primary", "data-testid": "accept-request" }, "Accept");
    const decline = el("button", { type: "button", class: "btn", "data-testid": "decline-request" }, "Decline");
    accept.addEventListener("click", async () => {
      try {
        await api.post(`/api/v1/contacts/requests/${request.from.id}/accept`);
        accept.closest("li").replaceChildren(el("span", {}, `You and ${request.from.display_name} are friends.`));
        refreshRequests();
      } catch (error) {
        showError(error);
      }
    });
    decline.addEventListener("click", async () => {
      try {
        await api.post(`/api/v1/contacts/requests/${request.from.id}/decline`);
        accept.closest("li").remove();
        refreshRequests();
      } catch (error) {
        showError(error);
      }
    });
    list.append(el("li", { class: "result", "data-testid": "request-item" },
      el("span", {}, `${request.from.display_name} (@${request.from.username})${request.message ? `: ${request.message}` : ""}`), accept, decline));
  }
  openSheet({ title: "Friend requests", body: list, testid: "requests-sheet", actions: [{ label: "Close" }] });
}

export async function newGroup() {
  let friends = [];
  try {
    friends = (await api.get("/api/v1/contacts")).friends;
  } catch (error) {
    showError(error);
    return;
  }
  const title = el("input", { id: "group-title", "data-testid": "group-title", maxlength: 64 });
  const members = el("fieldset", {}, el("legend", {}, "Members"));
  if (!friends.length) members.append(el("p", { class: "muted" }, "Add friends first."));
  for (const friend of friends) {
    rememberUser(friend.user);
    const id = `member-${friend.user.id}`;
    members.append(el("div", {}, el("input", { type: "checkbox", id, value: friend.user.id, "data-testid": "group-member", "data-username": friend.user.username }), el("label", { for: id }, friend.user.display_name)));
  }
  const body = el("div", {}, el("label", { for: "group-title" }, "Group name"), title, members);
  openSheet({
    title: "New group",
    body,
    testid: "group-sheet",
    actions: [
      { label: "Cancel" },
      {
        label: "Create",
        style: "primary",
        testid: "group-create",
        run: showingErrors(async () => {
          const ids = [...members.querySelectorAll("input:checked")].map((input) => input.value);
          const { conversation } = await api.post("/api/v1/conversations", { type: "group", title: title.value.trim(), member_ids: ids });
          upsertConversation(conversation);
          renderConversationList();
          setTimeout(() => openConversation(conversation.id));
        }),
      },
    ],
  });
}
