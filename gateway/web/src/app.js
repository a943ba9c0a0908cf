// Aetherial web chat: REST for accounts, contacts, conversations and history; Socket.IO
// (docs/realtime.md) for everything live. State is kept per conversation by `seq`; every message
// copy with a higher `version` replaces an older one, so live events, sync and history merge.
// This is the entry module (index.html loads it): it wires the page's buttons and boots. Each
// concern is its own module: state.js (shared state and helpers), auth.js, socket.js,
// conversations.js, messages.js, composer.js, contacts.js, miniapps.js (app menu, web views),
// discover.js (the catalogue), webview.js, wallet.js, call-view.js,
// media.js (photos, files, the viewer), voice.js (voice notes), search.js, notifications.js,
// push.js (desktop notifications; the service worker is sw.js), profile.js (language and region).

import { openEmailLink, wireAccountEmail } from "./account-email.js";
import { describeError } from "./api.js";
import { onAuthSubmit, setAuthMode, showAuth, signOut, startApp } from "./auth.js";
import { hangUp, startCall, toggleMute } from "./call-view.js";
import { setReply, wireComposer } from "./composer.js";
import { findPeople, newGroup, showRequests } from "./contacts.js";
import { closeConversation, toggleConversationMute } from "./conversations.js";
import { showDiscover } from "./discover.js";
import { $ } from "./dom.js";
import { wireAttachments } from "./media.js";
import { loadOlder, markRead } from "./messages.js";
import { showApps } from "./miniapps.js";
import { wireNotifications } from "./notifications.js";
import { showSettings } from "./profile.js";
import { wireSearch } from "./search.js";
import { api } from "./state.js";
import { wireVoice } from "./voice.js";
import { sendMoney, sendRedPacket, showWallet } from "./wallet.js";

// --- wiring ---------------------------------------------------------------------------------------

function wire() {
  $("#tab-login").addEventListener("click", () => setAuthMode(false));
  $("#tab-register").addEventListener("click", () => setAuthMode(true));
  $("#auth-form").addEventListener("submit", onAuthSubmit);
  wireAccountEmail();
  $("#sign-out").addEventListener("click", () => signOut(""));
  $("#find-user").addEventListener("click", findPeople);
  $("#requests-button").addEventListener("click", showRequests);
  $("#new-group").addEventListener("click", newGroup);
  $("#wallet-button").addEventListener("click", showWallet);
  $("#apps-button").addEventListener("click", showApps);
  $("#discover-button").addEventListener("click", showDiscover);
  $("#settings-button").addEventListener("click", showSettings);
  $("#money-button").addEventListener("click", sendMoney);
  $("#red-packet-button").addEventListener("click", sendRedPacket);
  $("#call-button").addEventListener("click", startCall);
  $("#call-hangup").addEventListener("click", hangUp);
  $("#call-mute").addEventListener("click", toggleMute);
  $("#back").addEventListener("click", closeConversation);
  $("#reply-cancel").addEventListener("click", () => setReply(null));
  $("#load-older").addEventListener("click", loadOlder);
  $("#mute-button").addEventListener("click", toggleConversationMute);
  wireComposer();
  wireAttachments();
  wireVoice();
  wireSearch();
  wireNotifications();
  document.addEventListener("visibilitychange", () => document.visibilityState === "visible" && markRead());
  window.addEventListener("focus", markRead);
  api.onSignedOut = (reason) => signOut(reason || "Your session ended. Please sign in again.", { callServer: false });
}

async function boot() {
  wire();
  setAuthMode(false);
  document.body.dataset.view = "list";
  if (await openEmailLink()) return; // a mailed reset link: its page, not the chat
  if (!api.refreshToken) {
    showAuth();
    return;
  }
  try {
    await api.refresh();
    await startApp();
  } catch (error) {
    // A refused refresh has already signed out and said why (onSignedOut).
    if ($("#auth").hidden) showAuth(describeError(error));
  }
}

boot();
