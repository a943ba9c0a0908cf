// Photos, files and voice notes: uploading them (XMLHttpRequest, for its progress events) to
// `POST /api/v1/media`, then sending a message with their ids; drawing them in messages (an album
// grid of thumbnails, a file link, a voice player) and the image viewer. Their URLs are signed and
// short-lived: an image, audio or link that fails or has expired asks `GET /api/v1/media/{id}`
// for a freshly signed copy (once per element), so a chat left open for hours still loads.

import { ApiError } from "./api.js";
import { sendMessage } from "./composer.js";
import { $, clear, el, openSheet } from "./dom.js";
import { api, newId, showError, state, toast } from "./state.js";

export const ALBUM_MAX = 9;
const IMAGE_TYPES = new Set(["image/jpeg", "image/png", "image/gif", "image/webp"]);
const THUMB_BOX = 240; // px: the largest side of a single photo in a message

// --- signed URLs --------------------------------------------------------------------------------

function expiresAtMs(media) {
  const value = media?.expires_at;
  if (value === undefined || value === null) return Infinity;
  if (typeof value === "number") return value < 1e12 ? value * 1000 : value;
  const parsed = Date.parse(value);
  return Number.isNaN(parsed) ? Infinity : parsed;
}

function expired(media) {
  return expiresAtMs(media) - 5000 <= Date.now();
}

/** Keep the most recently signed copy of a media object (messages carry copies signed when they
 * were produced; a later one replaces an older one). */
export function rememberMedia(media) {
  if (!media?.id) return media;
  const known = state.media.get(media.id);
  if (!known || expiresAtMs(media) >= expiresAtMs(known)) state.media.set(media.id, media);
  return state.media.get(media.id);
}

function current(media) {
  return rememberMedia(media);
}

const refreshing = new Map(); // media id → the pending fetch (shared by every element showing it)

/** A freshly signed copy of a media object (one request however many elements ask). */
export function refreshMedia(id) {
  if (!refreshing.has(id)) {
    const pending = api.get(`/api/v1/media/${encodeURIComponent(id)}`)
      .then(({ media }) => {
        state.media.set(id, media);
        return media;
      })
      .finally(() => refreshing.delete(id));
    refreshing.set(id, pending);
  }
  return refreshing.get(id);
}

/** Set `node[attribute]` to `pick(media)`, re-signed once when it fails to load (or has expired). */
function signedSource(node, media, pick, attribute = "src") {
  const fresh = current(media);
  let retried = false;
  const retry = async () => {
    if (retried) return;
    retried = true;
    try {
      const again = await refreshMedia(media.id);
      node[attribute] = pick(again) || again.url;
      if (node.tagName === "AUDIO") node.load();
    } catch {
      node.dataset.failed = "true";
    }
  };
  node.addEventListener("error", retry);
  if (expired(fresh)) retry();
  else node[attribute] = pick(fresh) || fresh.url;
  return node;
}

// --- formatting ---------------------------------------------------------------------------------

export function formatSize(bytes) {
  if (!Number.isFinite(bytes)) return "";
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function formatDuration(ms) {
  if (!Number.isFinite(ms) || ms < 0) return "";
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

/** A short text for a media message in the chat list and reply quotes. */
export function mediaPreview(message) {
  const count = message.media?.length || 1;
  if (message.type === "image") return count > 1 ? `📷 ${count} photos` : "📷 Photo";
  if (message.type === "voice") return "🎤 Voice message";
  if (message.type === "file") return `📎 ${message.media?.[0]?.name || "File"}`;
  return "";
}

// --- drawing ------------------------------------------------------------------------------------

function fitted(media) {
  const { width, height } = media;
  if (!width || !height) return {};
  const scale = Math.min(1, THUMB_BOX / Math.max(width, height));
  return { width: Math.round(width * scale), height: Math.round(height * scale) };
}

function imageTile(media, index, album) {
  const single = album.length === 1;
  const img = el("img", {
    class: "media-img",
    alt: media.name ? `Photo ${media.name}` : "Photo",
    "data-testid": "media-thumbnail",
    "data-media-id": media.id,
    decoding: "async",
    ...(single ? fitted(media) : {}),
  });
  signedSource(img, media, (m) => m.thumbnail_url || m.url);
  return el("button", {
    type: "button",
    class: "media-tile",
    "data-testid": "media-image",
    "aria-label": album.length > 1 ? `Open photo ${index + 1} of ${album.length}` : "Open photo",
    onclick: () => openViewer(album, index),
  }, img, media.animated ? el("span", { class: "media-badge" }, "GIF") : null);
}

function fileLink(media) {
  const link = el("a", {
    class: "media-file",
    "data-testid": "media-file",
    download: media.name || "file",
    rel: "noopener",
  },
  el("span", { class: "media-file-icon", "aria-hidden": "true" }, "📎"),
  el("span", { class: "media-file-main" },
    el("span", { class: "media-file-name", "data-testid": "media-file-name" }, media.name || "File"),
    el("span", { class: "media-file-size muted" }, formatSize(media.size))));
  link.href = current(media).url;
  // An expired link is re-signed before the download starts.
  link.addEventListener("click", async (event) => {
    if (!expired(current(media))) return;
    event.preventDefault();
    try {
      const fresh = await refreshMedia(media.id);
      link.href = fresh.url;
      link.click();
    } catch (error) {
      showError(error);
    }
  });
  return link;
}

function voicePlayer(media) {
  const audio = el("audio", { controls: true, preload: "metadata", "data-testid": "media-voice", "aria-label": "Voice message" });
  signedSource(audio, media, (m) => m.url);
  return el("div", { class: "media-voice" }, audio,
    el("span", { class: "media-voice-duration muted", "data-testid": "media-voice-duration" }, formatDuration(media.duration_ms)));
}

/** The body of an image, file or voice message (its caption, if any, under it). */
export function renderMediaMessage(message) {
  const items = (message.media || []).filter(Boolean).map(rememberMedia);
  const root = el("div", { class: "media-body", "data-testid": "media-body" });
  if (message.type === "image") {
    const grid = el("div", { class: `media-album count-${Math.min(items.length, ALBUM_MAX)}`, "data-testid": "media-album" });
    items.slice(0, ALBUM_MAX).forEach((media, index) => grid.append(imageTile(media, index, items)));
    root.append(grid);
  } else if (message.type === "voice") {
    for (const media of items) root.append(voicePlayer(media));
  } else {
    for (const media of items) root.append(fileLink(media));
  }
  if (!items.length) root.append(el("em", { class: "muted" }, "This attachment is no longer available"));
  if (message.text) root.append(el("span", { class: "message-text media-caption", "data-testid": "message-text" }, message.text));
  return root;
}

// --- the image viewer ---------------------------------------------------------------------------

export function openViewer(album, start = 0) {
  let index = start;
  const previous = document.activeElement;
  let image = el("img", { class: "viewer-image", alt: "" });
  const caption = el("div", { class: "viewer-caption", "aria-live": "polite" });
  const download = el("a", { class: "btn", "data-testid": "viewer-download", rel: "noopener" }, "Download");
  const prev = el("button", { type: "button", class: "btn viewer-nav", "aria-label": "Previous photo", "data-testid": "viewer-prev" }, "‹");
  const next = el("button", { type: "button", class: "btn viewer-nav", "aria-label": "Next photo", "data-testid": "viewer-next" }, "›");
  const close = el("button", { type: "button", class: "btn", "data-testid": "viewer-close", "aria-label": "Close the photo" }, "×");
  const viewer = el("div", { class: "viewer", role: "dialog", "aria-modal": "true", "aria-label": "Photo", "data-testid": "viewer" },
    el("div", { class: "viewer-bar" }, caption, download, close),
    el("div", { class: "viewer-stage" }, prev, image, next));
  const show = () => {
    const media = current(album[index]);
    // A new element per photo: each gets its own one re-signing on error.
    const fresh = el("img", { class: "viewer-image", "data-testid": "viewer-image", "data-media-id": media.id, alt: media.name || `Photo ${index + 1}` });
    signedSource(fresh, media, (m) => m.url);
    image.replaceWith(fresh);
    image = fresh;
    caption.textContent = album.length > 1 ? `${index + 1} / ${album.length}` : "";
    download.href = media.url;
    download.download = media.name || "photo";
    prev.hidden = next.hidden = album.length < 2;
  };
  const move = (step) => {
    index = (index + step + album.length) % album.length;
    show();
  };
  const onKey = (event) => {
    if (event.key === "Escape") finish();
    else if (event.key === "ArrowLeft") move(-1);
    else if (event.key === "ArrowRight") move(1);
    else return;
    event.preventDefault();
    event.stopPropagation();
  };
  const finish = () => {
    viewer.remove();
    document.removeEventListener("keydown", onKey, true);
    if (previous?.focus) previous.focus();
  };
  prev.addEventListener("click", () => move(-1));
  next.addEventListener("click", () => move(1));
  close.addEventListener("click", finish);
  viewer.addEventListener("click", (event) => {
    if (event.target === viewer || event.target.classList.contains("viewer-stage")) finish();
  });
  document.addEventListener("keydown", onKey, true);
  document.body.append(viewer);
  show();
  close.focus();
  return { close: finish };
}

// --- uploading ----------------------------------------------------------------------------------

/** Upload one file; resolves with its MEDIA. `onProgress(fraction)` follows the bytes sent.
 * `handle.abort()` (the second value) cancels it. An expired token is refreshed once. */
export function uploadMedia(file, { kind, onProgress, name } = {}) {
  let xhr = null;
  let aborted = false;
  const attempt = async (retried) => {
    const token = await api.token();
    if (aborted) throw new ApiError(0, "cancelled", "Upload cancelled.");
    return new Promise((resolve, reject) => {
      xhr = new XMLHttpRequest();
      const form = new FormData();
      if (kind) form.append("kind", kind);
      form.append("file", file, name || file.name || "file");
      xhr.open("POST", "/api/v1/media");
      xhr.setRequestHeader("Authorization", `Bearer ${token}`);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable && onProgress) onProgress(event.loaded / event.total);
      });
      xhr.addEventListener("load", () => {
        let payload = null;
        try {
          payload = JSON.parse(xhr.responseText);
        } catch {
          payload = null;
        }
        if (xhr.status >= 200 && xhr.status < 300 && payload?.media) {
          resolve(rememberMedia(payload.media));
          return;
        }
        const error = payload?.error || {};
        reject(new ApiError(xhr.status, error.code || "http_error", error.message || `Upload failed (HTTP ${xhr.status}).`, error.details));
      });
      xhr.addEventListener("error", () => reject(new ApiError(0, "network_error", "Cannot reach the server. Check your connection.")));
      xhr.addEventListener("abort", () => reject(new ApiError(0, "cancelled", "Upload cancelled.")));
      xhr.send(form);
    }).catch((error) => {
      if (!retried && error.status === 401 && ["token_expired", "invalid_token"].includes(error.code)) {
        api.accessToken = null;
        return attempt(true);
      }
      throw error;
    });
  };
  const promise = attempt(false);
  return [promise, { abort: () => { aborted = true; xhr?.abort(); } }];
}

/** A row in the upload tray above the composer, with a progress bar and a cancel button. */
function trayRow(label) {
  const progress = el("progress", { max: 100, value: 0, "data-testid": "upload-progress", "aria-label": `Uploading ${label}` });
  const cancel = el("button", { type: "button", class: "btn-icon", "data-testid": "upload-cancel", "aria-label": `Cancel uploading ${label}` }, "×");
  const row = el("li", { class: "upload", "data-testid": "upload-item" }, el("span", { class: "upload-name" }, label), progress, cancel);
  $("#upload-tray").append(row);
  $("#upload-tray").hidden = false;
  return {
    row,
    cancel,
    progress(fraction) {
      progress.value = Math.round(fraction * 100);
    },
    done() {
      row.remove();
      $("#upload-tray").hidden = !$("#upload-tray").children.length;
    },
  };
}

/** Upload files (each with its own progress) and send one message of `type` with their ids. */
export async function uploadAndSend(cid, files, { type, kind, caption, label } = {}) {
  const uploadId = newId();
  const row = trayRow(label || (files.length > 1 ? `${files.length} photos` : files[0].name || "file"));
  const fractions = files.map(() => 0);
  const uploads = files.map((file, i) => uploadMedia(file, {
    kind,
    onProgress: (fraction) => {
      fractions[i] = fraction;
      row.progress(fractions.reduce((a, b) => a + b, 0) / files.length);
    },
  }));
  const handles = uploads.map(([, handle]) => handle);
  row.cancel.addEventListener("click", () => handles.forEach((handle) => handle.abort()));
  state.uploads.set(uploadId, { row, handles });
  try {
    const media = await Promise.all(uploads.map(([promise]) => promise));
    row.progress(1);
    const payload = { conversation_id: cid, client_msg_id: newId(), type, media_ids: media.map((m) => m.id) };
    if (caption?.trim()) payload.text = caption;
    await sendMessage(payload);
  } catch (error) {
    handles.forEach((handle) => handle.abort());
    if (error.code !== "cancelled") showError(error);
    else toast("Upload cancelled.");
  } finally {
    state.uploads.delete(uploadId);
    row.done();
  }
}

/** Chosen files: photos go as albums of up to nine, anything else as one file message each; the
 * caption goes with the first message. */
export function sendFiles(cid, files, caption) {
  const photos = files.filter((file) => IMAGE_TYPES.has(file.type));
  const others = files.filter((file) => !IMAGE_TYPES.has(file.type));
  const sends = [];
  let text = caption;
  for (let start = 0; start < photos.length; start += ALBUM_MAX) {
    sends.push(uploadAndSend(cid, photos.slice(start, start + ALBUM_MAX), { type: "image", kind: "image", caption: text }));
    text = "";
  }
  for (const file of others) {
    sends.push(uploadAndSend(cid, [file], { type: "file", kind: "file", caption: text }));
    text = "";
  }
  return Promise.all(sends);
}

/** The "attach" sheet: previews of what was chosen, a caption, Send. */
export function confirmAttachments(files) {
  const cid = state.currentId;
  if (!cid || !files.length) return;
  const previews = el("ul", { class: "attach-previews", "data-testid": "attach-previews" });
  const urls = [];
  for (const file of files) {
    if (IMAGE_TYPES.has(file.type)) {
      const url = URL.createObjectURL(file);
      urls.push(url);
      previews.append(el("li", {}, el("img", { src: url, alt: file.name, class: "attach-preview-img" })));
    } else {
      previews.append(el("li", { class: "attach-preview-file" }, `📎 ${file.name} · ${formatSize(file.size)}`));
    }
  }
  const caption = el("input", { id: "attach-caption", "data-testid": "attach-caption", maxlength: 4000, autocomplete: "off" });
  caption.value = $("#composer-input").value;
  const photos = files.filter((file) => IMAGE_TYPES.has(file.type)).length;
  const title = photos === files.length ? (photos === 1 ? "Send a photo" : `Send ${photos} photos`) : (files.length === 1 ? "Send a file" : `Send ${files.length} files`);
  const sheet = openSheet({
    title,
    testid: "attach-sheet",
    body: el("div", {}, previews, el("label", { for: "attach-caption" }, "Caption"), caption),
    actions: [
      { label: "Cancel" },
      {
        label: "Send",
        style: "primary",
        testid: "attach-send",
        run: () => {
          $("#composer-input").value = "";
          sendFiles(cid, files, caption.value);
        },
      },
    ],
    onClose: () => urls.forEach((url) => URL.revokeObjectURL(url)),
  });
  caption.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.isComposing) {
      event.preventDefault();
      sheet.sheet.querySelector("[data-testid=attach-send]").click();
    }
  });
}

/** The composer's paper clip (a hidden file input) and dropping files on the chat. */
export function wireAttachments() {
  const input = $("#attach-input");
  $("#attach-button").addEventListener("click", () => input.click());
  input.addEventListener("change", () => {
    const files = [...input.files];
    input.value = "";
    confirmAttachments(files);
  });
  const chat = $("#chat");
  chat.addEventListener("dragover", (event) => {
    if (event.dataTransfer?.types?.includes("Files") && !$("#composer-input").disabled) event.preventDefault();
  });
  chat.addEventListener("drop", (event) => {
    if (!event.dataTransfer?.files?.length || $("#composer-input").disabled) return;
    event.preventDefault();
    confirmAttachments([...event.dataTransfer.files]);
  });
  clear($("#upload-tray"));
}
