// Calls as the page shows them: starting or joining one, the incoming-call sheet and the call
// view. The media itself is call.js (CallSession).

import { CallSession } from "./call.js";
import { $, clear, el, openSheet } from "./dom.js";
import { api, emit, nameOf, showError, state } from "./state.js";

// --- calls -------------------------------------------------------------------------------------------

export async function startCall() {
  const cid = state.currentId;
  if (!cid || state.call) return;
  try {
    const { call } = await emit("call.start", { conversation_id: cid, media: "video" });
    await joinCall(call, "Ringing…");
  } catch (error) {
    if (error.code === "call_busy" && error.details?.call_id) {
      try {
        const { call } = await emit("call.accept", { call_id: error.details.call_id });
        await joinCall(call, "Joining…");
      } catch (inner) {
        showError(inner);
      }
    } else {
      showError(error);
    }
  }
}

async function joinCall(call, status) {
  $("#call-view").hidden = false;
  $("#call-status").textContent = status;
  const container = clear($("#call-videos"));
  const session = new CallSession({ call, socketCall: emit, api, container, names: nameOf });
  state.call = { session, call };
  $("#call-hangup").focus();
  try {
    await session.start();
  } catch (error) {
    showError(error);
    hangUp();
  }
}

export function showRing(call) {
  if (state.ringing || state.call) return;
  const conversation = state.conversations.get(call.conversation_id);
  const sheet = openSheet({
    title: `${nameOf(call.caller_id)} is calling`,
    testid: "incoming-call",
    body: el("p", {}, `${call.media === "video" ? "Video" : "Voice"} call${conversation?.type === "group" ? ` in ${conversation.title}` : ""}`),
    actions: [
      {
        label: "Decline",
        style: "danger",
        testid: "decline-call",
        run: () => emit("call.decline", { call_id: call.id }).catch(showError),
      },
      {
        label: "Accept",
        style: "primary",
        testid: "accept-call",
        run: async () => {
          try {
            const answer = await emit("call.accept", { call_id: call.id });
            setTimeout(() => joinCall(answer.call, "Connecting…"));
          } catch (error) {
            showError(error);
          }
        },
      },
    ],
    onClose: () => {
      if (state.ringing?.call.id === call.id) state.ringing = null;
    },
  });
  state.ringing = { call, sheet };
}

export function toggleMute() {
  if (!state.call) return;
  const button = $("#call-mute");
  const muted = button.getAttribute("aria-pressed") !== "true";
  button.setAttribute("aria-pressed", String(muted));
  button.textContent = muted ? "Unmute" : "Mute";
  state.call.session.setMuted({ audio: !muted, video: true });
}

export async function hangUp() {
  const current = state.call;
  if (!current) return;
  endCallLocally();
  await emit("call.leave", { call_id: current.session.id }).catch(() => {});
}

export function endCallLocally() {
  if (state.call) state.call.session.close();
  state.call = null;
  $("#call-view").hidden = true;
  clear($("#call-videos"));
}
