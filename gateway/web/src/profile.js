// The account's language and region (its locale): mini-programs format prices and dates in it.
// A new sign-in takes the browser's language when the account has none; Settings changes it.
// Its time zone likewise (an IANA name): mini-programs show times and deadlines in it.

import { yourDataSection } from "./account-data.js";
import { el, openSheet } from "./dom.js";
import { twoFactorSection } from "./mfa.js";
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

/** The browser's IANA time zone ("Europe/Berlin"), or null when it does not say. */
export function browserTimeZone() {
  try {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    return typeof zone === "string" && zone.includes("/") || zone === "UTC" ? zone : null;
  } catch {
    return null;
  }
}

/** The zones the Settings select offers: the browser's list (the tz database's names), with
 * UTC, the account's own and the browser's current one sure to be among them. */
export function timeZoneChoices(current) {
  let zones = [];
  try {
    zones = Intl.supportedValuesOf("timeZone");
  } catch {
    // An older browser: the account's and the browser's zone, and UTC.
  }
  const all = new Set(["UTC", ...zones]);
  for (const zone of [current, browserTimeZone()]) if (zone) all.add(zone);
  return [...all].sort((a, b) => (a === "UTC" ? -1 : b === "UTC" ? 1 : a.localeCompare(b)));
}

async function saveTimeZone(time_zone) {
  const answer = await api.request("PATCH", "/api/v1/me", { time_zone });
  api.user = answer.user;
  return answer.user;
}

/** Right after signing in or up: an account without a time zone takes the browser's (best
 * effort: a refusal leaves it without one, and apps use UTC). */
export async function adoptBrowserTimeZone() {
  if (!api.user || api.user.time_zone) return;
  const zone = browserTimeZone();
  if (!zone) return;
  try {
    await saveTimeZone(zone);
  } catch {
    // Not worth stopping the sign-in for; Settings can set it.
  }
}

/** The Settings sheet: "Language and region", "Time zone". */
export function showSettings() {
  const current = api.user?.locale || "";
  const options = LOCALES.map(([tag, name]) => el("option", { value: tag, selected: tag === current }, name));
  if (current && !LOCALES.some(([tag]) => tag === current)) {
    options.unshift(el("option", { value: current, selected: true }, current));
  }
  if (!current) options.unshift(el("option", { value: "", selected: true }, "Not set (English)"));
  const select = el("select", { id: "settings-locale", "data-testid": "settings-locale" }, options);
  const currentZone = api.user?.time_zone || "";
  const zoneOptions = timeZoneChoices(currentZone).map((zone) =>
    el("option", { value: zone, selected: zone === currentZone }, zone.replaceAll("_", " ")));
  if (!currentZone) zoneOptions.unshift(el("option", { value: "", selected: true }, "Not set (UTC)"));
  const zoneSelect = el("select", { id: "settings-time-zone", "data-testid": "settings-time-zone" },
    zoneOptions);
  const body = el("div", {},
    el("label", { for: "settings-locale" }, "Language and region"),
    select,
    el("p", { class: "muted" }, "Mini-programs show prices and dates in it."),
    el("label", { for: "settings-time-zone" }, "Time zone"),
    zoneSelect,
    el("p", { class: "muted" }, "Mini-programs show times and deadlines in it."));
  body.append(twoFactorSection()); // two-factor sign-in: on or off (mfa.js)
  body.append(yourDataSection()); // export my data, delete my account (account-data.js)
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
          const changes = {};
          if (select.value && select.value !== current) changes.locale = select.value;
          if (zoneSelect.value && zoneSelect.value !== currentZone) changes.time_zone = zoneSelect.value;
          if (!Object.keys(changes).length) return;
          const answer = await api.request("PATCH", "/api/v1/me", changes);
          api.user = answer.user;
          toast(changes.time_zone && !changes.locale ? "Time zone saved." : "Settings saved.");
        }),
      },
      { label: "Cancel" },
    ],
  });
}
