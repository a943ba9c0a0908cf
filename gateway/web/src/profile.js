// The account's language and region (its locale): mini-programs format prices and dates in it.
// A new sign-in takes the browser's language when the account has none; Settings changes it.

import { el, openSheet } from "./dom.js";
import { api, showingErrors, toast } from "./state.js";

// What the server accepts (messaging/actions/accounts.py LOCALE_RE): language, optional script,
// optional region, each in its canonical letter case.
const LOCALE_RE = /^[a-z]{2,3}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?$/;

export const LOCALES = [
  ["en-US", "English (US)"],
  ["en-GB", "English (UK)"],
  ["de-DE", "Deutsch"],
  ["fr-FR", "Français"],
  ["es-ES", "Español"],
  ["ja-JP", "日本語"],
  ["zh-CN", "中文"],
];

/** A browser language tag ("en-us", "zh_hans_cn", "de-DE-u-co-phonebk") in the server's form
 * ("en-US", "zh-Hans-CN", "de-DE"), or null when it has none. */
export function normaliseLocale(tag) {
  if (typeof tag !== "string") return null;
  const parts = tag.trim().split(/[-_]/);
  const out = [parts.shift().toLowerCase()];
  let next = parts[0] || "";
  if (/^[A-Za-z]{4}$/.test(next)) {
    out.push(next[0].toUpperCase() + next.slice(1).toLowerCase());
    parts.shift();
    next = parts[0] || "";
  }
  // Variants and extensions (after the region) say nothing a price or a date needs.
  if (/^([A-Za-z]{2}|[0-9]{3})$/.test(next)) out.push(next.toUpperCase());
  const locale = out.join("-");
  return LOCALE_RE.test(locale) ? locale : null;
}

async function saveLocale(locale) {
  const answer = await api.request("PATCH", "/api/v1/me", { locale });
  api.user = answer.user;
  return answer.user;
}

/** Right after signing in or up: an account without a locale takes the browser's (best effort:
 * a refusal leaves it without one, and apps use English). */
export async function adoptBrowserLocale() {
  if (!api.user || api.user.locale) return;
  const locale = normaliseLocale(navigator.language);
  if (!locale) return;
  try {
    await saveLocale(locale);
  } catch {
    // Not worth stopping the sign-in for; Settings can set it.
  }
}

/** The Settings sheet: "Language and region". */
export function showSettings() {
  const current = api.user?.locale || "";
  const options = LOCALES.map(([tag, name]) => el("option", { value: tag, selected: tag === current }, name));
  if (current && !LOCALES.some(([tag]) => tag === current)) {
    options.unshift(el("option", { value: current, selected: true }, current));
  }
  if (!current) options.unshift(el("option", { value: "", selected: true }, "Not set (English)"));
  const select = el("select", { id: "settings-locale", "data-testid": "settings-locale" }, options);
  const body = el("div", {},
    el("label", { for: "settings-locale" }, "Language and region"),
    select,
    el("p", { class: "muted" }, "Mini-programs show prices and dates in it."));
  openSheet({
    title: "Settings",
    body,
    testid: "settings-sheet",
    actions: [
      {
        label: "Save",
        style: "primary",
        testid: "settings-save",
        run: showingErrors(async () => {
          if (!select.value) return;
          await saveLocale(select.value);
          toast("Language and region saved.");
        }),
      },
      { label: "Cancel" },
    ],
  });
}
