// The wallet: the balance in the sidebar, transfers, red packets and their cards' buttons.

import { $, el, formatMoney, openSheet } from "./dom.js";
import { api, newId, showError, showingErrors, state, toast } from "./state.js";

// --- wallet ---------------------------------------------------------------------------------------

export async function refreshWallet() {
  try {
    state.wallet = await api.get("/api/v1/wallet");
    renderWallet();
  } catch {
    $("#wallet-balance").textContent = "Wallet";
  }
}

export function renderWallet() {
  const balances = state.wallet?.balances || [];
  $("#wallet-balance").textContent = balances.length ? balances.map((b) => formatMoney(b.amount, b.currency, b.exponent)).join(" · ") : "0.00";
}

export function showWallet() {
  const body = el("div", {}, el("p", { "data-testid": "wallet-balances" }, $("#wallet-balance").textContent));
  const actions = [{ label: "Close" }];
  if (state.wallet?.dev_topup) {
    body.append(el("p", { class: "muted" }, "Development mode: top up with play money (labelled dev_topup in the ledger)."));
    actions.unshift({
      label: "Dev top-up 100.00 USD",
      style: "primary",
      testid: "dev-topup",
      run: showingErrors(async () => {
        await api.post("/api/v1/wallet/dev-topup", { amount: 10000, currency: "USD" });
        await refreshWallet();
        toast("Added 100.00 USD.");
      }),
    });
  }
  openSheet({ title: "Wallet", body, testid: "wallet-sheet", actions });
}

function moneyInput(id, label, value) {
  return [el("label", { for: id }, label), el("input", { id, "data-testid": id, inputmode: "decimal", value })];
}

function toMinor(text) {
  const value = Number(String(text).replace(",", "."));
  if (!Number.isFinite(value) || value <= 0) throw Object.assign(new Error("Enter an amount above zero."), { code: "invalid_amount" });
  return Math.round(value * 100);
}

export function sendMoney() {
  const conversation = state.conversations.get(state.currentId);
  if (!conversation) return;
  if (conversation.type !== "direct") {
    toast("Transfers go to one person: open your direct chat with them (or send a red packet here).");
    return;
  }
  const body = el("div", {}, ...moneyInput("transfer-amount", "Amount (USD)", "5.00"), el("label", { for: "transfer-note" }, "Note"), el("input", { id: "transfer-note", "data-testid": "transfer-note", maxlength: 100 }));
  openSheet({
    title: `Send money to ${conversation.title}`,
    body,
    testid: "transfer-sheet",
    actions: [
      { label: "Cancel" },
      {
        label: "Send",
        style: "primary",
        testid: "transfer-submit",
        run: showingErrors(async () => {
          const note = $("#transfer-note").value.trim();
          await api.post("/api/v1/wallet/transfers", {
            to_user_id: conversation.peer.id, amount: toMinor($("#transfer-amount").value), currency: "USD",
            conversation_id: conversation.id, idempotency_key: newId(), ...(note ? { note } : {}),
          });
        }),
      },
    ],
  });
}

export function sendRedPacket() {
  const conversation = state.conversations.get(state.currentId);
  if (!conversation) return;
  const body = el("div", {}, ...moneyInput("red-packet-total", "Total (USD)", "10.00"),
    el("label", { for: "red-packet-count" }, "Shares"), el("input", { id: "red-packet-count", "data-testid": "red-packet-count", type: "number", min: 1, value: conversation.type === "group" ? Math.max(1, conversation.member_count - 1) : 1 }),
    el("label", { for: "red-packet-greeting" }, "Greeting"), el("input", { id: "red-packet-greeting", "data-testid": "red-packet-greeting", value: "Best wishes!", maxlength: 100 }));
  openSheet({
    title: "Red packet",
    body,
    testid: "red-packet-sheet",
    actions: [
      { label: "Cancel" },
      {
        label: "Send",
        style: "primary",
        testid: "red-packet-submit",
        run: showingErrors(async () => {
          await api.post("/api/v1/wallet/red-packets", {
            conversation_id: conversation.id, total: toMinor($("#red-packet-total").value), count: Number($("#red-packet-count").value),
            currency: "USD", mode: "random", greeting: $("#red-packet-greeting").value.trim() || "Best wishes!", idempotency_key: newId(),
          });
        }),
      },
    ],
  });
}

/** A button on a transfer or red-packet card: accept the transfer, grab a share. */
export async function walletButton(message, button) {
  const id = message.wallet?.id;
  try {
    if (button.action_id === "wallet.transfer.accept") {
      await api.post(`/api/v1/wallet/transfers/${id}/accept`);
      toast("Transfer accepted.");
    } else if (button.action_id === "wallet.red_packet.claim") {
      const answer = await api.post(`/api/v1/wallet/red-packets/${id}/claim`);
      toast(`You grabbed ${formatMoney(answer.amount, answer.currency, answer.exponent)}!`, { testid: "toast-claimed" });
    }
  } catch (error) {
    showError(error);
  }
}
