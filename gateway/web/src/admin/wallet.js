// The Wallet section: the ledger's reconciliation report per currency.

import { el } from "../dom.js";
import { api } from "./api.js";
import { $, emptyRow } from "./ui.js";

// --- wallet ----------------------------------------------------------------------------------

function money(amount, exponent) {
  const sign = amount < 0 ? "-" : "";
  const digits = String(Math.abs(amount)).padStart(exponent + 1, "0");
  if (!exponent) return sign + digits;
  return `${sign}${digits.slice(0, -exponent)}.${digits.slice(-exponent)}`;
}

export async function loadWallet() {
  const report = await api("GET", "/api/v1/admin/wallet/reconciliation");
  const verdict = $("wallet-balanced");
  verdict.textContent = report.balanced
    ? "Balanced: every currency sums to zero and every account agrees with its entries."
    : "NOT balanced: see the currencies and accounts below.";
  verdict.className = `verdict ${report.balanced ? "good-text" : "bad-text"}`;
  verdict.dataset.balanced = String(report.balanced);
  const tbody = $("wallet-body");
  tbody.replaceChildren();
  if (!report.currencies.length) emptyRow(tbody, 7, "No money has moved yet.");
  for (const row of report.currencies) {
    const m = (v) => money(v, row.exponent);
    tbody.append(
      el(
        "tr",
        {},
        el("th", { scope: "row", text: row.currency }),
        el("td", { text: m(row.users) }),
        el("td", { text: m(row.merchants) }),
        el("td", { text: m(row.held) }),
        el("td", { text: m(row.external) }),
        el("td", { text: m(row.sum) }),
        el("td", { text: row.balanced ? "yes" : "NO" }),
      ),
    );
  }
  const extra = [];
  if (report.mismatched_accounts.length) {
    extra.push(`${report.mismatched_accounts.length} account(s) disagree with their entries: ${report.mismatched_accounts.map((a) => a.account_id).join(", ")}.`);
  }
  if (report.transactions_in_flight) extra.push(`${report.transactions_in_flight} transaction(s) in flight.`);
  $("wallet-extra").textContent = extra.join(" ");
}
